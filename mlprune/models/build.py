"""Any model from its ArchSpec, and what pruning does to every model alike.

Detectors (VGG16-SSD) and classifiers (VGG16) share the trunk layout
`backbone.convs.<paper name>`; what differs (heads, their inputs, per-channel scales)
is their family's to say (`models/family.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from mlprune.models.arch import ArchSpec
from mlprune.models.batch_norm import BatchNorm2d


def build_model(spec: ArchSpec, **detector_options) -> nn.Module:
    return spec.family.build(spec, **detector_options)


def rebuild(model: nn.Module, spec: ArchSpec) -> nn.Module:
    """A fresh model of `spec` with the same inference settings as `model`."""
    return build_model(spec, **spec.family.inference_options(model))


def named_convs(model: nn.Module) -> dict[str, nn.Module]:
    """Every weight layer by paper name: backbone convs, then heads (`<source>_loc`/`_conf`, `classifier`)."""
    return {name: model.get_submodule(path) for name, path in model.spec.family.layer_paths(model.spec).items()}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A new model without BatchNorm whose convs absorb the BN affine transform.

    Eval-mode outputs are unchanged; the folded model has exactly the paper's structure
    (conv + bias), which is what the pruning phases need: an L1 penalty on a conv that
    feeds a BN is scale-invariant and would do nothing. Folds a model built with BN
    (`spec.batch_norm`) and a folded one given BN again by `insert_batch_norm` alike.
    """
    if not model.backbone.norms:
        return model
    folded = rebuild(model, model.spec.replace(batch_norm=False))
    state = {k: v for k, v in model.state_dict().items() if ".norms." not in k}
    for name, bn in model.backbone.norms.items():
        conv = model.backbone.convs[name]
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv_bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.bias)
        state[f"backbone.convs.{name}.weight"] = conv.weight * scale.view(-1, 1, 1, 1)
        state[f"backbone.convs.{name}.bias"] = bn.bias + (conv_bias - bn.running_mean) * scale
    folded.load_state_dict(state)
    return folded


class _CalibrationDone(Exception):
    """Stops a calibration forward pass at the last calibrated conv: the layers after it,
    the heads and, in a detector, box decoding and NMS would only cost time."""


@torch.no_grad()
def insert_batch_norm(model: nn.Module, layers: Sequence[str], batches: Iterable[list[torch.Tensor]]) -> None:
    """Give each backbone conv of `layers` in a folded model a BatchNorm again, set from
    its outputs on `batches` of images so that the model computes what it did on them.

    Why: the pruned model retrains without the BatchNorm it was pretrained with, and a
    layer cut to a few filters then trains back poorly (README: the classification study).
    Each new BN starts as the identity on the calibration images (running statistics =
    the conv output's mean and variance, weight = its standard deviation, bias = its
    mean), so retraining starts from the pruned model's function; `fold_batch_norm` folds
    the BNs into the convs again afterwards.
    """
    sums = {name: torch.zeros(3, model.backbone.convs[name].out_channels, dtype=torch.float64) for name in layers}
    last = [name for name in model.backbone.convs if name in sums][-1]

    def accumulate(name: str, output: torch.Tensor) -> None:
        values = output.detach().double().transpose(0, 1).flatten(1)  # [channels, N*H*W]
        sums[name] += torch.stack([torch.full_like(values[:, 0], values.shape[1]), values.sum(1),
                                   (values * values).sum(1)]).cpu()
        if name == last:
            raise _CalibrationDone

    hooks = [model.backbone.convs[name].register_forward_hook(
        lambda _module, _inputs, output, name=name: accumulate(name, output)) for name in layers]
    model.eval()
    try:
        for images in batches:
            try:
                model(images)
            except _CalibrationDone:
                pass
    finally:
        for hook in hooks:
            hook.remove()
    for name in layers:
        count, total, squares = sums[name]
        if not count.min() > 0:
            raise ValueError("insert_batch_norm: no calibration images")
        mean = total / count
        var = (squares / count - mean * mean).clamp(min=0)
        conv = model.backbone.convs[name]
        bn = BatchNorm2d(conv.out_channels).to(conv.weight.device)
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(torch.sqrt(var + bn.eps))
        bn.bias.copy_(mean)
        model.backbone.norms[name] = bn


def trainable_convs(model: nn.Module) -> list[str]:
    """The backbone convs `freeze_before` left trainable, in network order."""
    return [name for name, conv in model.backbone.convs.items() if conv.weight.requires_grad]


def freeze_before(model: nn.Module, layer: str) -> None:
    """Stop training every backbone conv before `layer`.

    Fine-tuning a late phase then skips the backward pass through the early,
    high-resolution layers, which is most of the cost of a step.
    """
    for name, conv in model.backbone.convs.items():
        if name == layer:
            return
        conv.requires_grad_(False)
    raise ValueError(f"freeze_before: the model has no layer {layer!r}")
