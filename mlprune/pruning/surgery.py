"""Surgery: rebuild a dense, smaller detector or classifier without the selected filters.

Works on the model's own channel spec: the pruned model is built from the spec with
the new widths, and every weight layer's tensors are copied sliced by the kept indices
of the layer it reads (input channels) and of its own filters (output channels). The
model's family says which layer each head reads and which per-channel vectors (conv4_3's
L2Norm scale) go with a layer's filters.

A removed filter is one L1 drove (nearly) to zero, so what it still outputs is the
constant relu(bias). Dropping that would shift every consumer, so before slicing the
constant is folded into the consumers' biases (`fold_removed_outputs`). Apart from that,
surgery equals masking the removed channels to zero, which is what the property test checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mlprune.errors import MlpruneError
from mlprune.models.arch import ArchSpec
from mlprune.models.build import rebuild


def prune_filters(model: nn.Module, kept: Mapping[str, Sequence[int]]) -> nn.Module:
    """A new model keeping, for each named layer, only the filters in `kept[layer]`."""
    spec, state = prune_state(model.spec, model.state_dict(), kept)
    pruned = rebuild(model, spec)
    pruned.load_state_dict(state)
    return pruned.train(model.training)


def prune_state(spec: ArchSpec, state: Mapping[str, torch.Tensor],
                kept: Mapping[str, Sequence[int]]) -> tuple[ArchSpec, dict[str, torch.Tensor]]:
    """`prune_filters` of a model held as its spec and state_dict: the pruned spec and weights,
    without building either model (the surgery stage then never imports torchvision)."""
    for layer, indices in kept.items():
        _check_indices(layer, indices, spec.widths)
    widths = {name: len(kept.get(name, range(w))) for name, w in spec.widths.items()}
    out_index = {name: torch.as_tensor(sorted(kept[name])) for name in kept}
    plan = slicing_plan(spec)
    return spec.replace(widths=widths), {key: _slice(value, *plan.get(key, (None, None)), out_index)
                                         for key, value in fold_removed_outputs(spec, state, kept).items()}


@torch.no_grad()
def fold_removed_outputs(spec: ArchSpec, state: Mapping[str, torch.Tensor],
                         kept: Mapping[str, Sequence[int]]) -> dict[str, torch.Tensor]:
    """A copy of `state` whose consumers absorb the constant output relu(b) of removed filters.

    Exact for a removed filter with zero weights and a linear, 1x1 or unpadded consumer;
    a padded 3x3 consumer differs on its zero-padded border. conv4_3's heads read it
    through the L2Norm, which is not linear, so they are left as they are. Layers are
    handled in network order, so a consumer's updated bias is what its own removed
    filters pass on.
    """
    folded, paths = dict(state), spec.family.layer_paths(spec)
    for layer in sorted(kept, key=spec.conv_names.index):
        removed = sorted(set(range(spec.widths[layer])) - set(kept[layer]))
        bias = folded.get(f"{paths[layer]}.bias")
        if bias is None or not removed:
            continue
        constant = F.relu(bias[removed])
        for consumer in _linear_consumers(layer, spec):
            weight = folded[f"{paths[consumer]}.weight"][:, removed]
            key = f"{paths[consumer]}.bias"
            folded[key] = folded[key] + weight.reshape(weight.shape[0], len(removed), -1).sum(-1) @ constant
    return folded


def _linear_consumers(layer: str, spec: ArchSpec) -> list[str]:
    """The consumers a removed filter's constant output can be folded into: the heads of a
    normalised layer (conv4_3's L2Norm) read it through a non-linear map."""
    through_norm = spec.heads_of(layer) if layer == spec.family.normalised_layer else []
    return [name for name in spec.consumers_of(layer) if name not in through_norm]


def keep_sources(model: nn.Module, k: int) -> nn.Module:
    """The k-det model: the first k detection sources, without later extra layers and heads."""
    old = model.spec
    if not 1 <= k <= old.num_sources:
        raise MlpruneError(f"kdet.ks: k must be in 1..{old.num_sources} for this model, got {k}")
    last_source = old.family.sources[k - 1]
    names = list(old.widths)[: list(old.widths).index(last_source) + 1]
    spec = old.replace(num_sources=k, widths={name: old.widths[name] for name in names})
    cut = rebuild(model, spec)
    wanted = cut.state_dict()
    cut.load_state_dict({key: value for key, value in model.state_dict().items() if key in wanted})
    return cut.train(model.training)


def _check_indices(layer: str, indices: Sequence[int], widths: Mapping[str, int]) -> None:
    if layer not in widths:
        raise MlpruneError(f"surgery: the model has no layer {layer!r}")
    if not indices:
        raise MlpruneError(f"surgery: would remove every filter of {layer}")
    bad = [i for i in indices if not 0 <= i < widths[layer]]
    if bad or len(set(indices)) != len(indices):
        raise MlpruneError(f"surgery: {layer} indices must be distinct and in [0, {widths[layer]}), got {bad}")


def slicing_plan(spec) -> dict[str, tuple[str | None, str | None]]:
    """For each state-dict key that pruning resizes: the layer whose kept filters select its
    dim 0 (its own outputs) and the layer whose kept filters select its dim 1 (its inputs)."""
    plan = {}
    for name, path in spec.family.layer_paths(spec).items():
        own = name if name in spec.widths else None  # heads keep their outputs
        plan[f"{path}.weight"] = (own, spec.input_of(name))
        plan[f"{path}.bias"] = (own, None)
    plan.update({key: (layer, None) for key, layer in spec.family.channel_scales(spec).items()})
    return plan


def _slice(value: torch.Tensor, outputs_of: str | None, inputs_of: str | None,
           out_index: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return _take(_take(value, 0, out_index.get(outputs_of)), 1, out_index.get(inputs_of))


def _take(value: torch.Tensor, dim: int, index: torch.Tensor | None) -> torch.Tensor:
    return value if index is None else value.index_select(dim, index).clone()
