"""An in-memory detection dataset over VOC annotations.

All images are decoded once at construction and kept as uint8 CHW tensors (a quarter
of the float32 size); each item is converted to float by its transform. Decoding up
front turns a corrupt file into an immediate, named DataError instead of a crash
hours into training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from mlprune.data.images import open_image
from mlprune.data.transforms import Target, Transform, build_eval_transform
from mlprune.data.voc import Annotation
from mlprune.errors import DataError


def load_image(annotation: Annotation) -> torch.Tensor:
    """Decode one image as uint8 RGB CHW; its size must match the annotation."""
    path = annotation.image_path
    with open_image(path) as image:
        pixels = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    height, width = pixels.shape[:2]
    if (width, height) != (annotation.width, annotation.height):
        raise DataError(f"{path}: image is {width}x{height} but its annotation says "
                        f"{annotation.width}x{annotation.height}")
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy())


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
        self.images = [load_image(a) for a in tqdm(self.annotations, desc=desc, leave=False, mininterval=1.0)]

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        annotation = self.annotations[index]
        # Copies: a transform must never alter the ground truth that evaluation reads.
        target = {"boxes": annotation.boxes.clone(), "labels": annotation.labels.clone()}
        return self.transform(self.images[index], target)

