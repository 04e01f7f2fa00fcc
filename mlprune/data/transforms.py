"""SSD-style augmentation on torchvision.transforms.v2.

A transform maps `(image, target)` to `(image, target)`: the image comes in as a uint8
CHW tensor and leaves as float32 in [0, 1]; target holds plain tensors "boxes" (N, 4
xyxy pixels) and "labels" (N,). Images are not resized: the SSD model resizes itself.
Random draws come from torch's global RNG, so a seeded run is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision import tv_tensors
from torchvision.ops import box_iou
from torchvision.transforms import v2

Target = dict[str, torch.Tensor]
Transform = Callable[[torch.Tensor, Target], tuple[torch.Tensor, Target]]

# ImageNet mean in uint8: zoom-out padding then looks like an average image, not black.
_FILL = {tv_tensors.Image: (124, 116, 104), "others": 0}


class FastIoUCrop(v2.RandomIoUCrop):
    """RandomIoUCrop that draws each option's trials as one batch.

    Same sampling rule (first valid trial wins), but torchvision's one-trial-at-a-time
    loop costs ~20 ms per image, more after a zoom-out; this costs about 1 ms.
    """

    def make_params(self, flat_inputs: list) -> dict:
        boxes = next(x for x in flat_inputs if isinstance(x, tv_tensors.BoundingBoxes))
        height, width = boxes.canvas_size
        xyxy = v2.functional.convert_bounding_box_format(
            boxes.as_subclass(torch.Tensor), boxes.format, tv_tensors.BoundingBoxFormat.XYXY).float()
        if len(xyxy) == 0:  # no trial can hold a box centre: torchvision ends up not cropping too
            return {}
        cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
        while True:
            min_iou = self.options[int(torch.randint(len(self.options), (1,)))]
            if min_iou >= 1.0:  # the "keep the whole image" option
                return {}
            scale = self.min_scale + (self.max_scale - self.min_scale) * torch.rand(self.trials, 2)
            new_w, new_h = (width * scale[:, 0]).long(), (height * scale[:, 1]).long()
            offset = torch.rand(self.trials, 2)
            left, top = ((width - new_w) * offset[:, 0]).long(), ((height - new_h) * offset[:, 1]).long()
            right, bottom = left + new_w, top + new_h
            within = (left[:, None] < cx) & (cx < right[:, None]) & (top[:, None] < cy) & (cy < bottom[:, None])
            iou = box_iou(torch.stack([left, top, right, bottom], 1).float(), xyxy).masked_fill(~within, -1.0)
            aspect = new_w / new_h.clamp(min=1)
            valid = ((new_w > 0) & (new_h > 0) & (self.min_aspect_ratio <= aspect) & (aspect <= self.max_aspect_ratio)
                     & within.any(1) & (iou.max(1).values >= min_iou))
            if valid.any():
                k = int(valid.nonzero()[0])
                return {"top": int(top[k]), "left": int(left[k]), "height": int(new_h[k]), "width": int(new_w[k]),
                        "is_within_crop_area": within[k]}


# Canonical order: colour first, then geometry (the original SSD recipe).
_OPS: dict[str, Callable[[], v2.Transform]] = {
    "photometric": v2.RandomPhotometricDistort,
    "zoom_out": lambda: v2.RandomZoomOut(fill=_FILL, side_range=(1.0, 2.0)),
    "iou_crop": FastIoUCrop,
    "flip": v2.RandomHorizontalFlip,
}
AUGMENTATIONS = tuple(_OPS)


class _Pipeline:
    """Wraps a v2 pipeline: plain tensors in, tv_tensors inside, plain tensors out."""

    def __init__(self, steps: list[v2.Transform]):
        self.pipeline = v2.Compose(steps)

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        boxes = tv_tensors.BoundingBoxes(target["boxes"], format=tv_tensors.BoundingBoxFormat.XYXY,
                                         canvas_size=tuple(image.shape[-2:]))
        out_image, out = self.pipeline(tv_tensors.Image(image), {"boxes": boxes, "labels": target["labels"]})
        return out_image.as_subclass(torch.Tensor), {"boxes": out["boxes"].as_subclass(torch.Tensor),
                                                     "labels": out["labels"]}

    def __repr__(self) -> str:
        return repr(self.pipeline)


def build_train_transform(ops: Sequence[str]) -> Transform:
    """Augmentations named in `ops`, applied in canonical order whatever order is given.

    Ends with box clamping and removal of degenerate boxes (labels follow their boxes),
    then conversion to float32 in [0, 1].
    """
    unknown = [op for op in ops if op not in _OPS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; allowed: {', '.join(AUGMENTATIONS)}")
    steps = [_OPS[name]() for name in AUGMENTATIONS if name in ops]
    steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(), v2.ToDtype(torch.float32, scale=True)]
    return _Pipeline(steps)


def build_eval_transform() -> Transform:
    """Only the conversion to float32 in [0, 1]; boxes are left untouched."""
    return _Pipeline([v2.ToDtype(torch.float32, scale=True)])
