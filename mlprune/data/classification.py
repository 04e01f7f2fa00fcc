"""An in-memory classification dataset over `LabeledImages`, with CIFAR-style augmentation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mlprune.data.labeled import LabeledImages

AUGMENTATIONS = ("crop", "flip")  # random 4-pixel-padded crop, horizontal flip
CROP_PADDING = 4


class ClassificationDataset(torch.utils.data.Dataset):
    """Items are `(image float32 CHW in [0, 1], {"labels": int64 scalar})`.

    The target is a dict like a detection target, so one trainer serves both tasks.
    Augmentation draws from torch's global RNG, which the trainer seeds per epoch.
    """

    def __init__(self, data: LabeledImages, indices: Sequence[int] | None = None, augment: Sequence[str] = ()):
        unknown = [op for op in augment if op not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"unknown augmentation {unknown[0]!r} for classification; allowed: "
                             f"{', '.join(AUGMENTATIONS)}")
        chosen = torch.as_tensor(list(indices) if indices is not None else range(len(data)), dtype=torch.long)
        self.images = data.images[chosen]
        self.labels = data.labels[chosen]
        self.classes = data.classes
        self.augment = set(augment)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image = self.images[index].float() / 255
        if "crop" in self.augment:
            image = random_crop(image, CROP_PADDING)
        if "flip" in self.augment and torch.rand(()) < 0.5:
            image = image.flip(-1)
        return image, {"labels": self.labels[index].clone()}


def random_crop(image: torch.Tensor, padding: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    padded = F.pad(image, (padding,) * 4)
    top, left = (int(v) for v in torch.randint(0, 2 * padding + 1, (2,)))
    return padded[:, top: top + height, left: left + width]
