"""PASCAL VOC as distributed: one VOCdevkit folder holding a VOC-layout root per year.

`VOCdevkit/VOC2007` and `VOCdevkit/VOC2012` are each read by the single-root reader
(mlprune.data.voc); a dataset is the concatenation of (year, split) parts. The paper trains
on VOC2007+2012 trainval and tests on VOC2007 test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlprune.data.voc import Annotation, SkippedBox, read_split
from mlprune.errors import DataError

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
PAPER_TRAIN_PARTS = (("2007", "trainval"), ("2012", "trainval"))
PAPER_TEST_PARTS = (("2007", "test"),)


def year_root(devkit: Path, year: str) -> Path:
    """`devkit/VOC<year>`, which must exist."""
    devkit = Path(devkit)
    if not devkit.is_dir():
        raise DataError(f"{devkit}: VOCdevkit folder not found")
    root = devkit / f"VOC{year}"
    if not root.is_dir():
        raise DataError(f"{root}: year folder not found (expected a VOC-layout root in the VOCdevkit)")
    return root


def read_devkit(devkit: Path, parts: Sequence[tuple[str, str]], classes: Sequence[str],
                skipped: list[SkippedBox] | None = None) -> list[Annotation]:
    """Annotations of every (year, split) part, in the order given, e.g. PAPER_TRAIN_PARTS.

    Invalid boxes raise, or with `skipped` are appended to it and left out (read_split)."""
    if len(set(parts)) != len(parts):
        raise ValueError(f"parts: each (year, split) may appear once, got {list(parts)}")
    return [a for year, split in parts for a in read_split(year_root(devkit, year), split, classes, skipped)]
