"""VGG16-SSD300/512 on torchvision's SSD, SSDHead and DefaultBoxGenerator.

The backbone keeps every conv under its paper name (`backbone.convs.conv4_3`), so
pruning, selection JSON and metrics speak the paper's language. Matching, loss and NMS
are torchvision's.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD, SSDHead

from mlprune.models.vgg import IMAGE_MEAN, IMAGE_STD, VGGTrunk

if TYPE_CHECKING:
    from mlprune.models.arch import ArchSpec

L2NORM_INIT = 20.0


class L2Norm(nn.Module):
    """conv4_3's channel-wise L2 normalisation with a learned per-channel scale."""

    def __init__(self, channels: int, init_scale: float = L2NORM_INIT):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), init_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight.view(1, -1, 1, 1) * F.normalize(x, dim=1)


class VGGBackbone(VGGTrunk):
    """The VGG16 trunk + SSD extra layers; returns the detection source feature maps."""

    def __init__(self, spec: ArchSpec):
        super().__init__(spec)
        self.sources = spec.sources
        self.normalised_layer = spec.family.normalised_layer
        self.conv4_3_norm = L2Norm(spec.widths[self.normalised_layer])
        self.out_channels = [spec.widths[s] for s in self.sources]

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features: OrderedDict[str, torch.Tensor] = OrderedDict()
        for d, activation in self.layers(x):
            if d.name in self.sources:
                features[d.name] = self.conv4_3_norm(activation) if d.name == self.normalised_layer else activation
        return features


def build_ssd(spec: ArchSpec, score_thresh: float = 0.01, nms_thresh: float = 0.45,
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
