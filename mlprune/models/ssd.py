"""VGG16-SSD300/512 on torchvision's SSD, SSDHead and DefaultBoxGenerator.

The backbone keeps every conv under its paper name (`backbone.convs.conv4_3`), so
pruning, selection JSON and metrics speak the paper's language. Matching, loss and NMS
are torchvision's.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD, SSDHead

from mlprune.models.arch import ArchSpec

# Inputs are 0-1 images of our own data; there are no Caffe-style pretrained weights.
IMAGE_MEAN = [0.485, 0.456, 0.406]
IMAGE_STD = [0.229, 0.224, 0.225]
L2NORM_INIT = 20.0


class L2Norm(nn.Module):
    """conv4_3's channel-wise L2 normalisation with a learned per-channel scale."""

    def __init__(self, channels: int, init_scale: float = L2NORM_INIT):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), init_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight.view(1, -1, 1, 1) * F.normalize(x, dim=1)


class VGGBackbone(nn.Module):
    """The VGG16 trunk + SSD extra layers; returns the detection source feature maps."""

    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.defs = spec.convs
        self.sources = spec.sources
        self.convs = nn.ModuleDict()
        self.norms = nn.ModuleDict()
        in_channels = 3
        for d in self.defs:
            out = spec.widths[d.name]
            self.convs[d.name] = nn.Conv2d(in_channels, out, d.kernel, d.stride, d.padding, d.dilation,
                                           bias=not spec.batch_norm)
            if spec.batch_norm:
                self.norms[d.name] = nn.BatchNorm2d(out)
            in_channels = out
        self.conv4_3_norm = L2Norm(spec.widths["conv4_3"])
        self.out_channels = [spec.widths[s] for s in self.sources]
        _init_convs(self.convs.values())

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features: OrderedDict[str, torch.Tensor] = OrderedDict()
        for d in self.defs:
            x = self.convs[d.name](x)
            if d.name in self.norms:
                x = self.norms[d.name](x)
            x = F.relu(x)
            if d.name in self.sources:
                features[d.name] = self.conv4_3_norm(x) if d.name == "conv4_3" else x
            if d.pool_after is not None:
                kernel, stride, padding, ceil = d.pool_after
                x = F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil)
        return features


def _init_convs(convs) -> None:
    for conv in convs:
        nn.init.xavier_uniform_(conv.weight)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)


def build_model(spec: ArchSpec, score_thresh: float = 0.01, nms_thresh: float = 0.45,
                detections_per_img: int = 200) -> SSD:
    """A torchvision `SSD` with our named VGG backbone, built from `spec` alone."""
    backbone = VGGBackbone(spec)
    k = spec.num_sources
    boxes = spec.family.boxes
    anchors = DefaultBoxGenerator([list(a) for a in boxes.aspect_ratios[:k]],
                                  scales=list(boxes.scales[: k + 1]), steps=list(boxes.steps[:k]))
    head = SSDHead(backbone.out_channels, anchors.num_anchors_per_location(), spec.num_classes)
    size = (spec.image_size, spec.image_size)
    model = SSD(backbone, anchors, size, spec.num_classes, image_mean=IMAGE_MEAN, image_std=IMAGE_STD,
                head=head, score_thresh=score_thresh, nms_thresh=nms_thresh,
                detections_per_img=detections_per_img)
    model.spec = spec
    return model


def head_convs(model: SSD) -> dict[str, nn.Conv2d]:
    """The loc/conf head convs by paper name: `<source>_loc`, `<source>_conf`."""
    sources = model.backbone.sources
    loc = model.head.regression_head.module_list
    conf = model.head.classification_head.module_list
    return {**{f"{s}_loc": loc[i] for i, s in enumerate(sources)},
            **{f"{s}_conf": conf[i] for i, s in enumerate(sources)}}


def named_convs(model: SSD) -> dict[str, nn.Conv2d]:
    """Every conv of the detector by paper name: backbone convs, then head convs."""
    return {**dict(model.backbone.convs.items()), **head_convs(model)}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def fold_batch_norm(model: SSD) -> SSD:
    """A new model without BatchNorm whose convs absorb the BN affine transform.

    Eval-mode outputs are unchanged; the folded model has exactly the paper's structure
    (conv + bias), which is what the pruning phases need: an L1 penalty on a conv that
    feeds a BN is scale-invariant and would do nothing.
    """
    spec = model.spec
    if not spec.batch_norm:
        return model
    folded = build_model(spec.replace(batch_norm=False), model.score_thresh, model.nms_thresh,
                         model.detections_per_img)
    state = {k: v for k, v in model.state_dict().items() if ".norms." not in k}
    for name, conv in model.backbone.convs.items():
        bn = model.backbone.norms[name]
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        state[f"backbone.convs.{name}.weight"] = conv.weight * scale.view(-1, 1, 1, 1)
        state[f"backbone.convs.{name}.bias"] = bn.bias - bn.running_mean * scale
    folded.load_state_dict(state)
    return folded


def freeze_before(model: SSD, layer: str) -> None:
    """Stop training every backbone conv before `layer`.

    Fine-tuning a late phase then skips the backward pass through the early,
    high-resolution layers, which is most of the cost of a step.
    """
    for name, conv in model.backbone.convs.items():
        if name == layer:
            return
        conv.requires_grad_(False)
    raise ValueError(f"freeze_before: the model has no layer {layer!r}")
