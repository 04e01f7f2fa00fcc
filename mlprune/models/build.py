"""Any model from its ArchSpec, and what pruning does to every model alike.

Detectors (VGG16-SSD) and classifiers (VGG16) share the trunk layout
`backbone.convs.<paper name>`; what differs (heads, their inputs, per-channel scales)
is their family's to say (`models/family.py`).
"""

from __future__ import annotations

import torch
from torch import nn

from mlprune.models.arch import ArchSpec


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
    feeds a BN is scale-invariant and would do nothing.
    """
    spec = model.spec
    if not spec.batch_norm:
        return model
    folded = rebuild(model, spec.replace(batch_norm=False))
    state = {k: v for k, v in model.state_dict().items() if ".norms." not in k}
    for name, conv in model.backbone.convs.items():
        bn = model.backbone.norms[name]
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        state[f"backbone.convs.{name}.weight"] = conv.weight * scale.view(-1, 1, 1, 1)
        state[f"backbone.convs.{name}.bias"] = bn.bias - bn.running_mean * scale
    folded.load_state_dict(state)
    return folded


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
