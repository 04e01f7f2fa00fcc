"""The VGG16 trunk shared by both tasks, and the VGG16 classifier (CIFAR-10, GTSRB).

Every conv lives at `backbone.convs.<paper name>` (its BN at `backbone.norms.<name>`) in
both models, so BN folding, freezing, selection and surgery treat them alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from mlprune.models.batch_norm import BatchNorm2d
from mlprune.models.layers import ConvDef

if TYPE_CHECKING:
    from mlprune.models.arch import ArchSpec

# Inputs are 0-1 images of our own data; there are no Caffe-style pretrained weights.
IMAGE_MEAN = [0.485, 0.456, 0.406]
IMAGE_STD = [0.229, 0.224, 0.225]


class VGGTrunk(nn.Module):
    """Conv (+ BN) + ReLU (+ max-pool) for each layer of `spec.convs`, by paper name."""

    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.defs = spec.convs
        self.convs = nn.ModuleDict()
        self.norms = nn.ModuleDict()
        in_channels = 3
        for d in self.defs:
            out = spec.widths[d.name]
            self.convs[d.name] = nn.Conv2d(in_channels, out, d.kernel, d.stride, d.padding, d.dilation,
                                           bias=not spec.batch_norm)
            if spec.batch_norm:
                self.norms[d.name] = BatchNorm2d(out)
            in_channels = out
        for conv in self.convs.values():
            nn.init.xavier_uniform_(conv.weight)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    def layers(self, x: torch.Tensor) -> Iterator[tuple[ConvDef, torch.Tensor]]:
        """Yield each layer's activation (after ReLU, before its pool), in order."""
        for d in self.defs:
            x = self.convs[d.name](x)
            if d.name in self.norms:
                x = self.norms[d.name](x)
            x = F.relu(x, inplace=True)
            yield d, x
            if d.pool_after is not None:
                kernel, stride, padding, ceil = d.pool_after
                x = F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The last layer's activation."""
        *_, (_, last) = self.layers(x)
        return last


class VGGClassifier(nn.Module):
    """VGG16-BN trunk, global average pool, one linear layer.

    Like torchvision's detectors, it takes a list (or batch) of 0-1 images and normalises
    them itself; in training mode with targets it returns its loss as a dict.
    """

    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.spec = spec
        self.backbone = VGGTrunk(spec)
        self.classifier = nn.Linear(spec.widths[spec.convs[-1].name], spec.num_classes)
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Sequence[torch.Tensor] | torch.Tensor,
                targets: Sequence[dict[str, torch.Tensor]] | None = None):
        x = torch.stack(list(images)) if not isinstance(images, torch.Tensor) else images
        features = self.backbone((x - self.mean) / self.std)
        logits = self.classifier(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))
        if self.training and targets is not None:
            labels = torch.stack([t["labels"] for t in targets])
            return {"classification": F.cross_entropy(logits.float(), labels)}
        return logits
