"""VGG16-SSD300/512 on torchvision's SSD, SSDHead and DefaultBoxGenerator.

The backbone keeps every conv under its paper name (`backbone.convs.conv4_3`), so
pruning, selection JSON and metrics speak the paper's language. Matching, loss and NMS
are torchvision's; its input transform and default boxes are replaced by subclasses that
give the same numbers faster (`use_torchvision_parts` puts the originals back, for the
tests and the benchmark that check this).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.ssd import SSD, SSDHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

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


class CachedDefaultBoxes(DefaultBoxGenerator):
    """DefaultBoxGenerator that builds the boxes once per input geometry instead of every forward.

    Keyed by (feature-map sizes, padded image size, dtype, device): the stock generator
    computes them in the feature maps' dtype (bf16 under autocast), so the cache does too.
    Every image of a batch gets the same tensor; torchvision only reads it (indexing,
    IoU, box coding), never writes to it.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._boxes: dict[tuple, torch.Tensor] = {}

    def forward(self, image_list: ImageList, feature_maps: list[torch.Tensor]) -> list[torch.Tensor]:
        first = feature_maps[0]
        key = (tuple(tuple(f.shape[-2:]) for f in feature_maps), tuple(image_list.tensors.shape[-2:]),
               first.dtype, first.device, torch.is_inference_mode_enabled())
        boxes = self._boxes.get(key)
        if boxes is None:
            one_image = ImageList(image_list.tensors, image_list.image_sizes[:1])
            boxes = self._boxes[key] = super().forward(one_image, feature_maps)[0]
        return [boxes] * len(image_list.image_sizes)


class FixedSizeTransform(GeneralizedRCNNTransform):
    """SSD's input transform without the resize of an image that already has the input size.

    Bilinear resizing to the same size is an exact identity (weights 1 and 0), and so is
    the box rescaling by 1.0, but it costs a few ms per image. The stock transform draws
    one number from the global RNG per training image (its random choice of one size out
    of one); this one draws it too, so the augmentation of later images is unchanged.
    """

    def resize(self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None):
        width, height = self.fixed_size
        if tuple(image.shape[-2:]) != (height, width):
            return super().resize(image, target)
        if self.training:
            self.torch_choice(self.min_size)
        return image, target


def build_ssd(spec: ArchSpec, score_thresh: float = 0.01, nms_thresh: float = 0.45,
              detections_per_img: int = 200) -> SSD:
    """A torchvision `SSD` with our named VGG backbone, built from `spec` alone."""
    backbone = VGGBackbone(spec)
    k = spec.num_sources
    boxes = spec.family.boxes
    anchors = CachedDefaultBoxes([list(a) for a in boxes.aspect_ratios[:k]],
                                 scales=list(boxes.scales[: k + 1]), steps=list(boxes.steps[:k]))
    head = SSDHead(backbone.out_channels, anchors.num_anchors_per_location(), spec.num_classes)
    size = (spec.image_size, spec.image_size)
    model = SSD(backbone, anchors, size, spec.num_classes, image_mean=IMAGE_MEAN, image_std=IMAGE_STD,
                head=head, score_thresh=score_thresh, nms_thresh=nms_thresh,
                detections_per_img=detections_per_img)
    stock = model.transform
    model.transform = FixedSizeTransform(stock.min_size, stock.max_size, stock.image_mean, stock.image_std,
                                         stock.size_divisible, stock.fixed_size)
    model.spec = spec
    return model


def use_torchvision_parts(model: SSD) -> SSD:
    """Put torchvision's own transform and default-box generator back into `model` (in place).

    The reference path for the bit-identity test and the speed benchmark.
    """
    t, a = model.transform, model.anchor_generator
    model.transform = GeneralizedRCNNTransform(t.min_size, t.max_size, t.image_mean, t.image_std,
                                               t.size_divisible, t.fixed_size)
    model.anchor_generator = DefaultBoxGenerator(a.aspect_ratios, scales=a.scales, steps=a.steps, clip=a.clip)
    return model

