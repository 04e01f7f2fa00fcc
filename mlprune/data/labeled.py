"""A classification split held in memory: what the CIFAR-10 and GTSRB readers return."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == on tensors would be ambiguous
class LabeledImages:
    images: torch.Tensor  # uint8 [N, 3, H, W]
    labels: torch.Tensor  # int64 [N], indices into classes
    classes: list[str]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images: expected uint8 [N, 3, H, W], got {self.images.dtype} {list(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (len(self.images),):
            raise ValueError(f"labels: expected int64 [{len(self.images)}], got {self.labels.dtype} "
                             f"{list(self.labels.shape)}")

    def __len__(self) -> int:
        return len(self.labels)
