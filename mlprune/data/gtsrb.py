"""GTSRB, the German Traffic Sign Recognition Benchmark, in the layout torchvision's GTSRB reads.

Train: `<root>/gtsrb/GTSRB/Training/<class id as 5 digits>/*.ppm`. Test:
`<root>/gtsrb/GTSRB/Final_Test/Images/*.ppm`, labelled by `<root>/gtsrb/GT-final_test.csv`,
';'-separated with the header Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId.
Class names are the ids '0'..'42' and a label is its ClassId.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import torch

from mlprune.data.images import load_resized
from mlprune.data.labeled import LabeledImages
from mlprune.data.problems import Problems
from mlprune.errors import DataError

GTSRB_CLASSES = [str(i) for i in range(43)]
SPLITS = ("train", "test")
TEST_COLUMNS = ["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"]

_Sample = tuple[Path, int]  # image file, class id


def read_gtsrb(root: Path, split: str, size: int = 32, problems: Problems | None = None) -> LabeledImages:
    """The split's images, each resized to size x size, in file order (train: by class folder).

    GTSRB images are 15x15 to 250x250 px, roughly square, with a margin around the sign.
    Like torchvision's GTSRB + Resize((size, size)), the whole image is resized (bilinear,
    antialiased, aspect ratio not kept); it is not cropped to the Roi columns.
    """
    if split not in SPLITS:
        raise ValueError(f"split: must be one of {', '.join(SPLITS)}, got {split!r}")
    problems = problems if problems is not None else Problems()
    base = Path(root) / "gtsrb"
    samples = _train_samples(base, problems) if split == "train" else _test_samples(base, problems)
    loaded = [(image, class_id) for path, class_id in samples
              if (image := problems.attempt(load_resized, path, size)) is not None]
    images = np.stack([image for image, _ in loaded]) if loaded else np.empty((0, 3, size, size), np.uint8)
    labels = torch.tensor([class_id for _, class_id in loaded], dtype=torch.int64)
    return LabeledImages(torch.from_numpy(images), labels, list(GTSRB_CLASSES))


def _folder(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: folder not found")
    return path


def _train_samples(base: Path, problems: Problems) -> list[_Sample]:
    class_dirs = sorted(p for p in _folder(base / "GTSRB" / "Training").iterdir() if p.is_dir())
    return [(image, class_id) for class_dir in class_dirs
            if (class_id := problems.attempt(_class_id, class_dir)) is not None
            for image in sorted(class_dir.glob("*.ppm"))]


def _class_id(class_dir: Path) -> int:
    if not re.fullmatch(r"\d{5}", class_dir.name) or int(class_dir.name) >= len(GTSRB_CLASSES):
        raise DataError(f"{class_dir}: a class folder must be the class id as 5 digits, 00000-00042")
    return int(class_dir.name)


def _test_samples(base: Path, problems: Problems) -> list[_Sample]:
    image_dir = _folder(base / "GTSRB" / "Final_Test" / "Images")
    csv_path = base / "GT-final_test.csv"
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: ground-truth file not found")
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f, delimiter=";", skipinitialspace=True)
        if reader.fieldnames != TEST_COLUMNS:
            raise DataError(f"{csv_path}:1: expected the header {';'.join(TEST_COLUMNS)}, got {reader.fieldnames}")
        rows = [(f"{csv_path}:{reader.line_num}", row) for row in reader]
    return [sample for where, row in rows
            if (sample := problems.attempt(_test_sample, row, where, image_dir)) is not None]


def _test_sample(row: dict, where: str, image_dir: Path) -> _Sample:
    if None in row or None in row.values():  # csv's marks for too many / too few fields
        raise DataError(f"{where}: expected {len(TEST_COLUMNS)} ';'-separated fields")
    try:
        class_id = int(row["ClassId"])
    except ValueError:
        raise DataError(f"{where}: ClassId is not an integer: {row['ClassId']!r}") from None
    if not 0 <= class_id < len(GTSRB_CLASSES):
        raise DataError(f"{where}: ClassId {class_id} out of range 0-{len(GTSRB_CLASSES) - 1}")
    path = image_dir / row["Filename"]
    if not path.is_file():
        raise DataError(f"{where}: image {path} not found")
    return path, class_id
