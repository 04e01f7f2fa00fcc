"""An in-memory detection dataset over VOC annotations.

All images are decoded once at construction and kept as uint8 CHW tensors (a quarter
of the float32 size); each item is converted to float by its transform. Decoding up
front turns a corrupt file into an immediate, named DataError instead of a crash
hours into training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mlprune.data.images import load_images
from mlprune.data.transforms import Target, Transform, build_eval_transform
from mlprune.data.voc import Annotation


class DetectionDataset(torch.utils.data.Dataset):
    """Items are `(image float32 CHW in [0, 1], {"boxes": (N, 4) float32, "labels": (N,) int64})`.

    `transform` maps (uint8 image, target) to (float image, target); the default only
    converts to float. `annotations[i]` keeps the ground truth (with difficult flags) of
    item i for evaluation; `skipped_boxes` counts the invalid boxes the reader left out of
    them (data.invalid_boxes: skip), which the evaluation reports.
    """

    def __init__(self, annotations: Sequence[Annotation], transform: Transform | None = None,
                 desc: str = "load images", skipped_boxes: int = 0):
        self.annotations = list(annotations)
        self.skipped_boxes = skipped_boxes
        self.transform = transform or build_eval_transform()
        self.images = load_images(self.annotations, desc)

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        annotation = self.annotations[index]
        # Copies: a transform must never alter the ground truth that evaluation reads.
        target = {"boxes": annotation.boxes.clone(), "labels": annotation.labels.clone()}
        return self.transform(self.images[index], target)

