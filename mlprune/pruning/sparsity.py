"""Sparsity induction: the L1 penalty, the global magnitude threshold, and their statistics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from mlprune.models.arch import ArchSpec
from mlprune.models.build import named_convs


def conv_weights(model: nn.Module, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The weight tensors (not copies) of the named convs."""
    convs = named_convs(model)
    return {name: convs[name].weight for name in names}


def state_weights(spec: ArchSpec, state: Mapping[str, torch.Tensor], names: Sequence[str]) -> dict[str, torch.Tensor]:
    """`conv_weights` of a model held as its spec and state_dict (`checkpoint.load_weights`)."""
    paths = spec.family.layer_paths(spec)
    return {name: state[f"{paths[name]}.weight"] for name in names}


def l1_penalty(names: Sequence[str], strength: float) -> Callable[[nn.Module], torch.Tensor]:
    """`strength * sum |w|` over the named convs' weights (biases are not penalised)."""

    def penalty(model: nn.Module) -> torch.Tensor:
        return strength * sum(w.abs().sum() for w in conv_weights(model, names).values())

    return penalty


def ramped(strength: float, ramp: float, progress: float) -> float:
    """lambda at `progress` (the fraction of the fine-tune done) under a ramp that raises it
    linearly from 0 to `strength` over the first `ramp` of the fine-tune (0: no ramp).

    Under Adam a proximal step of lr * lambda keeps a weight only while its gradient's
    consistency |m| / sqrt(v) exceeds lambda, so a strong lambda from the first step empties
    layers before the task loss can move their work into fewer filters; a ramp raises
    the bar step by step instead."""
    return strength * min(1.0, progress / ramp) if ramp > 0 else strength


def l1_proximal(names: Sequence[str], strength: float, ramp: float = 0.0) -> Callable[[nn.Module, float, float], None]:
    """The proximal step of `strength * sum |w|`: soft-threshold the named convs' weights
    by lr * strength (`ramped` over the first `ramp` of the fine-tune) after each optimizer update.

    This minimises the same objective as adding the penalty to the loss, but unlike a
    (sub)gradient through Adam, whose per-weight normalisation makes the L1 term's pull
    negligible next to the task gradient, it shrinks every weight by a known amount and
    produces exact zeros.
    """

    @torch.no_grad()
    def shrink(model: nn.Module, lr: float, progress: float) -> None:
        step = lr * ramped(strength, ramp, progress)
        for weight in conv_weights(model, names).values():
            weight.copy_(weight.sign() * (weight.abs() - step).clamp_min(0))

    return shrink


def group_dims(selected: Sequence[str], penalised: Sequence[str]) -> dict[str, int]:
    """The dim each penalised layer's groups run along for the group lasso: 0 (whole filters)
    for the layers a phase selects filters of, 1 (input-channel slices) for the others, the
    phase's last conv and the heads, whose outputs stay but whose slices Algorithm 1 reads."""
    return {name: 0 if name in selected else 1 for name in penalised}


def _within_group(weight: torch.Tensor, dim: int) -> list[int]:
    """The dims one group spans: all but `dim`, the one groups run along."""
    return [d for d in range(weight.dim()) if d != dim]


def group_lasso_proximal(groups: Mapping[str, int], strength: float,
                         ramp: float = 0.0) -> Callable[[nn.Module, float, float], None]:
    """The proximal step of the group lasso `strength * sum_g sqrt(|g|) * ||w_g||_2` (Wen et
    al., 2016), `groups` from `group_dims`: after each optimizer update, every group's norm
    shrinks by lr * strength * sqrt(|g|) (strength `ramped`), and a group below that becomes exactly zero whole.

    The structured alternative to `l1_proximal`: it empties whole filters (and whole input
    slices of their consumers) instead of scattering zeros. With sqrt(|g|) a group whose
    weights all have magnitude m shrinks like m would under `l1_proximal` of the same strength.
    """

    @torch.no_grad()
    def shrink(model: nn.Module, lr: float, progress: float) -> None:
        step_per_weight = lr * ramped(strength, ramp, progress)
        for name, weight in conv_weights(model, list(groups)).items():
            norms = torch.linalg.vector_norm(weight, dim=_within_group(weight, groups[name]), keepdim=True)
            step = step_per_weight * (weight.numel() // weight.shape[groups[name]]) ** 0.5
            weight.mul_((1 - step / norms.clamp_min(torch.finfo(weight.dtype).tiny)).clamp_min(0))

    return shrink


def mean_abs_weight(model: nn.Module, names: Sequence[str]) -> float:
    weights = list(conv_weights(model, names).values())
    return float(sum(float(w.detach().abs().sum()) for w in weights) / sum(w.numel() for w in weights))


def threshold_groups(l1_method: str, selected: Sequence[str], penalised: Sequence[str]) -> dict[str, int] | None:
    """What the global threshold is compared with: each weight's |w| (None) after the
    weight-level L1, or after the group lasso each group's RMS (`group_dims`), so that a
    group goes whole; a weight-level threshold would scatter zeros over the dense groups
    the group lasso keeps."""
    return group_dims(selected, penalised) if l1_method == "group_lasso" else None


@torch.no_grad()
def apply_threshold(weights: Mapping[str, torch.Tensor], threshold: float,
                    groups: Mapping[str, int] | None = None) -> None:
    """Zero, in place, every weight with |w| < threshold (`weights`: `conv_weights`' tensors),
    or with `groups` (`threshold_groups`) every group whose RMS is < threshold."""
    for name, weight in weights.items():
        if groups is None:
            weight[weight.abs() < threshold] = 0.0
        else:
            rms = weight.pow(2).mean(dim=_within_group(weight, groups[name]), keepdim=True).sqrt()
            weight.mul_(rms >= threshold)


def count_nonzero(weights: Mapping[str, torch.Tensor]) -> dict[str, int]:
    return {name: int(torch.count_nonzero(w)) for name, w in weights.items()}


def sparsity(model: nn.Module, names: Sequence[str]) -> float:
    """Fraction of exactly-zero weights over all the named convs together."""
    weights = conv_weights(model, names).values()
    total = sum(w.numel() for w in weights)
    return 1 - sum(int(torch.count_nonzero(w)) for w in weights) / total


def weight_histogram(before: torch.Tensor, after: torch.Tensor, bins: int = 100) -> list[dict[str, float]]:
    """Counts of `before` and `after` over one shared set of bins (the paper's Fig 2)."""
    low = float(torch.minimum(before.min(), after.min()))
    high = float(torch.maximum(before.max(), after.max()))
    if high <= low:
        high = low + 1e-8
    counts_before = torch.histc(before.float(), bins, low, high)
    counts_after = torch.histc(after.float(), bins, low, high)
    width = (high - low) / bins
    return [{"weight": round(low + (i + 0.5) * width, 6), "without_l1": int(counts_before[i]),
             "with_l1": int(counts_after[i])} for i in range(bins)]
