"""torchvision's VGG16-SSD300 and VGG16 weights on our paper-named layers.

torchvision keeps layers by position (`backbone.features.21` is conv4_3, `backbone.extra.0.7.1`
is conv6). The positions are read from torchvision's own model classes, built on the meta
device (shapes only, no memory, no weights), so the mapping follows torchvision's code
rather than a copied index table: the n-th conv of its backbone is the n-th layer of the
paper's table.

Geometry: torchvision's `SSDFeatureExtractorVGG` is `SSD300_CONVS` layer for layer (pool3 in
ceil mode, pool5 3x3 s1 p1, conv6 3x3 dilation 6 padding 6, conv7 1x1, conv8_2 and conv9_2
3x3 s2 p1, conv10_2 and conv11_2 3x3 p0, conv4_3's L2Norm scale initialised at 20), and its
default boxes, box coder and post-processing defaults are ours. What differs is the input:
torchvision's SSD and its VGG16 `IMAGENET1K_FEATURES` backbone expect Caffe-style inputs (0-255
minus the mean pixel), ours ImageNet mean/std on 0-1 images. `adapt_first_conv` folds that
difference into conv1_1, exactly except on conv1_1's one-pixel zero-padded border.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.models import vgg16, vgg16_bn
from torchvision.models.detection import ssd300_vgg16

from mlprune.errors import CheckpointError
from mlprune.models.arch import ArchSpec, build_spec
from mlprune.models.build import build_model
from mlprune.models.family import family
from mlprune.models.layers import SSD300_CONVS, VGG16_CLASSIFIER_CONVS
from mlprune.models.vgg import IMAGE_MEAN, IMAGE_STD

StateDict = Mapping[str, Tensor]


@dataclass(frozen=True)
class InputNorm:
    """What a network's first conv reads: (x - mean) / std per RGB channel, for x in 0-1."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


# The image_mean/image_std defaults of torchvision's ssd300_vgg16 (and its VGG16 IMAGENET1K_FEATURES).
CAFFE_INPUT = InputNorm((0.48235, 0.45882, 0.40784), (1 / 255,) * 3)
OUR_INPUT = InputNorm(tuple(IMAGE_MEAN), tuple(IMAGE_STD))

SSD_LAYOUT = "torchvision's ssd300_vgg16"
SSD_CLASS_HEAD = "head.classification_head.module_list."
TORCHVISION_BN_EPS = 1e-5  # nn.BatchNorm2d's default, which torchvision's vgg16_bn uses
FC_SUBSAMPLE = 4  # SSD paper: conv6/conv7 keep every 4th of fc6/fc7's 4096 units (1024)


def check_fits(path: object, found: StateDict, expected: Mapping[str, torch.Size | None], layout: str) -> None:
    """One line naming the first key of `found` that does not fit `layout`: missing, unexpected,
    or of another shape (an expected shape of None accepts any)."""
    problems = [f"missing {key}" for key in expected if key not in found]
    problems += [f"unexpected {key}" for key in found if key not in expected]
    problems += [f"{key} is {list(found[key].shape)} in the file but {list(shape)} in {layout}"
                 for key, shape in expected.items()
                 if key in found and shape is not None and found[key].shape != shape]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CheckpointError(f"{path}: does not fit {layout}: {problems[0]}{more}")


def _on_meta(builder: Callable[..., nn.Module], **kwargs) -> nn.Module:
    """A torchvision model with shapes but no storage: its layout, for free."""
    with torch.device("meta"):
        return builder(weights=None, **kwargs)


def _rename(key: str, prefixes: Mapping[str, str]) -> str:
    prefix = next(p for p in prefixes if key.startswith(p))
    return prefixes[prefix] + key[len(prefix):]


def _conv_paths(module: nn.Module) -> list[str]:
    return [name for name, layer in module.named_modules() if isinstance(layer, nn.Conv2d)]


# ---- torchvision ssd300_vgg16 -> our SSD300 ----

def ssd300_class_count(path: object, state: StateDict) -> int:
    """Outputs per default box of the conf heads (background included), from conv4_3's head."""
    key = SSD_CLASS_HEAD + "0.weight"
    if key not in state:
        raise CheckpointError(f"{path}: does not fit {SSD_LAYOUT}: missing {key}")
    boxes = 2 + 2 * len(family("ssd300").boxes.aspect_ratios[0])  # DefaultBoxGenerator's count
    outputs = state[key].shape[0]
    if outputs % boxes or outputs < 2 * boxes:
        raise CheckpointError(f"{path}: {key} has {outputs} outputs, not {boxes} default boxes x "
                              "a class count of at least 2")
    return outputs // boxes


def ssd300_key_map(num_classes: int) -> dict[str, tuple[str, torch.Size]]:
    """Every key of torchvision's ssd300_vgg16 state_dict -> (our key, its shape)."""
    reference = _on_meta(ssd300_vgg16, weights_backbone=None, num_classes=num_classes)
    prefixes = {f"backbone.{path}.": f"backbone.convs.{layer.name}."
                for path, layer in zip(_conv_paths(reference.backbone), SSD300_CONVS, strict=True)}
    prefixes |= {"backbone.scale_weight": "backbone.conv4_3_norm.weight", "head.": "head."}
    return {key: (_rename(key, prefixes), value.shape) for key, value in reference.state_dict().items()}


def ssd300_from_torchvision(path: object, state: StateDict, input_norm: InputNorm | None = CAFFE_INPUT) -> nn.Module:
    """Our full-width SSD300 (no BatchNorm) with a torchvision ssd300_vgg16's weights.

    `input_norm`: what the file's network was trained on; conv1_1 is adapted from it to our
    inputs (None: weights copied as they are, for comparing raw outputs on one tensor).
    """
    num_classes = ssd300_class_count(path, state)
    key_map = ssd300_key_map(num_classes)
    check_fits(path, state, {key: shape for key, (_, shape) in key_map.items()}, SSD_LAYOUT)
    model = build_model(build_spec("ssd300", num_classes))
    model.load_state_dict({ours: state[key] for key, (ours, _) in key_map.items()})
    if input_norm is not None:
        conv = model.backbone.convs["conv1_1"]
        with torch.no_grad():
            conv.weight[:], conv.bias[:] = adapt_first_conv(conv.weight, conv.bias, input_norm)
    return model


def adapt_first_conv(weight: Tensor, bias: Tensor, source: InputNorm, target: InputNorm = OUR_INPUT
                     ) -> tuple[Tensor, Tensor]:
    """conv1_1's weights for `target` inputs, from weights trained on `source` inputs.

    With v = (x - m_t) / s_t and u = (x - m_s) / s_s, u = v * s_t / s_s + (m_t - m_s) / s_s:
    the scale goes into the weights, the offset (summed over the taps) into the bias. Exact
    except on the zero-padded border, where 0 in v is not 0 in u.
    """
    s_t, s_s = torch.tensor(target.std), torch.tensor(source.std)
    offset = (torch.tensor(target.mean) - torch.tensor(source.mean)) / s_s
    return weight * (s_t / s_s).view(1, -1, 1, 1), bias + weight.sum((2, 3)) @ offset


# ---- torchvision vgg16 / vgg16_bn -> our VGG trunk ----

@dataclass(frozen=True)
class _Conv:
    """One layer as the file has it: conv weight and bias, and the BatchNorm after it if any
    (its weight, bias, running_mean, running_var)."""

    weight: Tensor
    bias: Tensor
    norm: dict[str, Tensor] | None = None

    def folded(self) -> tuple[Tensor, Tensor]:
        """Weight and bias of the conv + BN in eval mode, as one conv."""
        if self.norm is None:
            return self.weight, self.bias
        scale = self.norm["weight"] / torch.sqrt(self.norm["running_var"] + TORCHVISION_BN_EPS)
        bias = (self.bias - self.norm["running_mean"]) * scale + self.norm["bias"]
        return self.weight * scale.view(-1, 1, 1, 1), bias


def vgg16_layout(batch_norm: bool) -> tuple[dict[str, torch.Size | None], dict[str, tuple[str, str | None]], list[str]]:
    """torchvision's vgg16(_bn) state_dict: expected shapes (the last linear's class count is
    free), conv1_1..conv5_3 -> (conv path, BN path or None), and the classifier's linear paths."""
    reference = _on_meta(vgg16_bn if batch_norm else vgg16)
    children = list(reference.features.named_children())
    names = iter(layer.name for layer in VGG16_CLASSIFIER_CONVS)
    layers = {}
    for position, (index, module) in enumerate(children):
        if isinstance(module, nn.Conv2d):
            follower, follower_module = children[position + 1]
            norm = f"features.{follower}" if isinstance(follower_module, nn.BatchNorm2d) else None
            layers[next(names)] = (f"features.{index}", norm)
    linears = [f"classifier.{i}" for i, m in reference.classifier.named_children() if isinstance(m, nn.Linear)]
    shapes = {key: (None if key.startswith(linears[-1] + ".") else value.shape)
              for key, value in reference.state_dict().items()}
    return shapes, layers, linears


def _file_convs(state: StateDict, layers: Mapping[str, tuple[str, str | None]]) -> dict[str, _Conv]:
    norm_keys = ("weight", "bias", "running_mean", "running_var")
    return {name: _Conv(state[f"{conv}.weight"], state[f"{conv}.bias"],
                        {k: state[f"{norm}.{k}"] for k in norm_keys} if norm else None)
            for name, (conv, norm) in layers.items()}


def _subsampled_fc(state: StateDict, fc6: str, fc7: str) -> dict[str, _Conv]:
    """conv6/conv7 from fc6/fc7 as the SSD paper does (sec. 3): every 4th unit, and of fc6's
    7x7 taps every 3rd, which conv6's dilation spreads back out."""
    weight6 = state[f"{fc6}.weight"].view(-1, 512, 7, 7)[::FC_SUBSAMPLE, :, ::3, ::3]
    weight7 = state[f"{fc7}.weight"][::FC_SUBSAMPLE, ::FC_SUBSAMPLE, None, None]
    return {"conv6": _Conv(weight6, state[f"{fc6}.bias"][::FC_SUBSAMPLE]),
            "conv7": _Conv(weight7, state[f"{fc7}.bias"][::FC_SUBSAMPLE])}


def _fc_fits(state: StateDict, spec: ArchSpec, fc6: str, fc7: str) -> bool:
    """The paper's fc6/fc7 subsampling needs conv6/conv7 at full width and real fc weights
    (torchvision's IMAGENET1K_FEATURES file has none: its classifier is not valid)."""
    full = 4096 // FC_SUBSAMPLE
    if spec.widths.get("conv6") != full or spec.widths.get("conv7") != full:
        return False
    return _finite(state, fc6, fc7)


def _finite(state: StateDict, *layers: str) -> bool:
    return all(bool(torch.isfinite(state[f"{layer}.weight"]).all()) for layer in layers)


def _write(state: dict[str, Tensor], name: str, conv: _Conv, batch_norm: bool) -> None:
    """Into our state_dict. Without BN, conv + BN folded. With BN our conv has no bias: it goes
    into the running mean (exact in eval mode); a file without BN leaves our BN at its init
    otherwise, and training mode's batch statistics ignore both."""
    prefix = f"backbone.convs.{name}."
    if not batch_norm:
        state[prefix + "weight"], state[prefix + "bias"] = conv.folded()
        return
    state[prefix + "weight"] = conv.weight
    norm = f"backbone.norms.{name}."
    state.update({norm + key: value for key, value in (conv.norm or {}).items()})
    state[norm + "running_mean"] = state[norm + "running_mean"] - conv.bias


def trunk_from_torchvision_vgg(path: object, state: StateDict, spec: ArchSpec,
                               input_norm: InputNorm | None = None) -> tuple[nn.Module, tuple[str, ...]]:
    """A model of `spec` whose conv1_1..conv5_3 (and conv6/conv7 from fc6/fc7 when they fit)
    are a torchvision vgg16 / vgg16_bn's; the rest keeps its initialisation.

    `input_norm`: what the file was trained on; None: see `_file_input_norm`.
    Returns the model and the layers that came from the file.
    """
    batch_norm_file = any(key.endswith("running_mean") for key in state)
    shapes, layers, linears = vgg16_layout(batch_norm_file)
    check_fits(path, state, shapes, "torchvision's vgg16_bn" if batch_norm_file else "torchvision's vgg16")
    model = build_model(spec)
    ours = model.state_dict()
    layers = {name: paths for name, paths in layers.items() if name in spec.widths}  # a k-det may stop early
    _check_full_width(path, state, layers, ours)
    convs = _file_convs(state, layers)
    fc6, fc7 = linears[:2]
    if _fc_fits(state, spec, fc6, fc7):
        convs |= _subsampled_fc(state, fc6, fc7)
    first = convs["conv1_1"]
    norm = input_norm or _file_input_norm(state, batch_norm_file, fc6, fc7)
    convs["conv1_1"] = _Conv(*adapt_first_conv(first.weight, first.bias, norm), first.norm)
    for name, conv in convs.items():
        _write(ours, name, conv, spec.batch_norm)
    model.load_state_dict(ours)
    return model, tuple(convs)


def _check_full_width(path: object, state: StateDict, layers: Mapping[str, tuple[str, str | None]],
                      ours: StateDict) -> None:
    for name, (conv, _) in layers.items():
        found, wanted = state[f"{conv}.weight"].shape, ours[f"backbone.convs.{name}.weight"].shape
        if found != wanted:
            raise CheckpointError(f"{path}: {conv}.weight is {list(found)} in the file but {list(wanted)} in the "
                                  f"model's {name}: a VGG16 initialisation needs width 1.0 up to conv5_3")


def _file_input_norm(state: StateDict, batch_norm_file: bool, fc6: str, fc7: str) -> InputNorm:
    """Caffe-style inputs for a vgg16 without a valid (finite) classifier: torchvision's
    IMAGENET1K_FEATURES, ported from Caffe. Else ImageNet mean/std on 0-1 images, ours
    (vgg16 and vgg16_bn IMAGENET1K_V1)."""
    return CAFFE_INPUT if not batch_norm_file and not _finite(state, fc6, fc7) else OUR_INPUT
