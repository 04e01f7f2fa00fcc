"""GTSDB, the German Traffic Sign Detection Benchmark, as distributed (FullIJCNN2013).

A root holds the images `00000.ppm` ... `00899.ppm` and `gt.txt`, one sign per line:
`<file>;<x1>;<y1>;<x2>;<y2>;<class id>` with inclusive pixel columns/rows and class ids 0-42.
An image without a line has no sign, which is legitimate. The usual split: 00000-00599
train, 00600-00899 test. Boxes are returned as written, like the VOC reader's, and an invalid
box (zero or negative area, outside the image) is refused or, given a `skipped` list, recorded
there and left out, as there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

from mlprune.data.images import open_image
from mlprune.data.problems import Problems
from mlprune.data.voc import Annotation, SkippedBox
from mlprune.errors import ConfigError, DataError

GTSDB_CLASS_IDS = tuple(str(i) for i in range(43))
# The standard grouping of the 43 sign classes (as in the benchmark's competition categories).
GTSDB_CATEGORIES = {
    "prohibitory": (0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16),
    "danger": (11, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31),
    "mandatory": (33, 34, 35, 36, 37, 38, 39, 40),
    "other": (6, 12, 13, 14, 17, 32, 41, 42),
}
SPLITS = ("train", "test", "all")
TRAIN_IMAGES = 600  # images 00000-00599 are the training split

_Object = tuple[tuple[int, int, int, int], int]  # (x1, y1, x2, y2), class id


def read_gtsdb(root: Path, split: str, classes: Sequence[str], problems: Problems | None = None,
               skipped: list[SkippedBox] | None = None) -> list[Annotation]:
    """Annotations of the split's images, in file-name order.

    `classes` is either the 43 class ids ('0'..'42') or the 4 categories of GTSDB_CATEGORIES,
    in any order; labels are 1..C in that order. gt.txt is validated in full whatever the split,
    so `skipped` receives the invalid boxes of every split (each names its image).
    """
    if split not in SPLITS:
        raise ValueError(f"split: must be one of {', '.join(SPLITS)}, got {split!r}")
    problems = problems if problems is not None else Problems()
    label_of = gtsdb_labels(classes)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root not found")
    sizes = {path.name: size for path in sorted(root.glob("*.ppm"))
             if (size := problems.attempt(_image_size, path)) is not None}
    objects, invalid = _read_gt(root / "gt.txt", sizes, problems, raise_invalid=skipped is None)
    if skipped is not None:
        skipped += invalid
    return [_annotation(root / name, size, objects.get(name, []), label_of)
            for name, size in sizes.items() if _in_split(name, split)]


def gtsdb_labels(classes: Sequence[str]) -> list[int]:
    """The label (1..C) of each of the 43 class ids, for class names as read_gtsdb takes them."""
    category_of = {i: name for name, ids in GTSDB_CATEGORIES.items() for i in ids}
    if sorted(classes) == sorted(GTSDB_CATEGORIES):
        names = [category_of[i] for i in range(len(GTSDB_CLASS_IDS))]
    elif sorted(classes) == sorted(GTSDB_CLASS_IDS):
        names = list(GTSDB_CLASS_IDS)
    else:
        raise ConfigError(f"classes: GTSDB takes the 43 class ids '0'..'42' or the 4 categories "
                          f"{', '.join(GTSDB_CATEGORIES)}, got {list(classes)}")
    return [list(classes).index(name) + 1 for name in names]


def _image_size(path: Path) -> tuple[int, int]:
    if not re.fullmatch(r"\d{5}\.ppm", path.name):
        raise DataError(f"{path}: unexpected image name (GTSDB names its images 00000.ppm, 00001.ppm, ...)")
    with open_image(path) as image:
        return image.size


def _in_split(name: str, split: str) -> bool:
    return split == "all" or (int(name[:5]) < TRAIN_IMAGES) == (split == "train")


def _read_gt(gt_path: Path, sizes: dict[str, tuple[int, int]], problems: Problems,
             raise_invalid: bool) -> tuple[dict[str, list[_Object]], list[SkippedBox]]:
    """Every valid line of gt.txt, grouped by image name, and the invalid boxes unless they raise."""
    if not gt_path.is_file():
        raise DataError(f"{gt_path}: ground-truth file not found")
    objects: dict[str, list[_Object]] = {}
    invalid: list[SkippedBox] = []
    for number, line in enumerate(gt_path.read_text().splitlines(), start=1):
        where = f"{gt_path}:{number}"
        parsed = problems.attempt(_parse_line, line.strip(), where, sizes) if line.strip() else None
        if parsed is None:
            continue
        name, (box, class_id) = parsed
        problem = _box_problem(box, sizes[name], name)
        if problem is None:
            objects.setdefault(name, []).append((box, class_id))
        elif raise_invalid:
            problems.report(f"{where}: {problem}")
        else:
            invalid.append(SkippedBox(gt_path.parent / name, f"{where}: {problem}"))
    return objects, invalid


def _parse_line(line: str, where: str, sizes: dict[str, tuple[int, int]]) -> tuple[str, _Object]:
    name, *numbers = line.split(";")
    try:
        x1, y1, x2, y2, class_id = map(int, numbers)
    except ValueError:  # a wrong field count or a field that is not an integer
        raise DataError(f"{where}: expected 'file;x1;y1;x2;y2;class_id' with integers, got {line!r}") from None
    if not 0 <= class_id < len(GTSDB_CLASS_IDS):
        raise DataError(f"{where}: class id {class_id} out of range 0-{len(GTSDB_CLASS_IDS) - 1}")
    if name not in sizes:
        raise DataError(f"{where}: image {name} not found or unreadable")
    return name, ((x1, y1, x2, y2), class_id)


def _box_problem(box: tuple[int, int, int, int], size: tuple[int, int], name: str) -> str | None:
    x1, y1, x2, y2 = box
    if x1 >= x2 or y1 >= y2:
        return f"box {box} has zero or negative area"
    width, height = size
    # Like the VOC reader, accept a box that ends on the image's far edge.
    if min(x1, y1) < 0 or x2 > width or y2 > height:
        return f"box {box} lies outside the {width}x{height} image {name}"
    return None


def _annotation(path: Path, size: tuple[int, int], objects: list[_Object], label_of: list[int]) -> Annotation:
    return Annotation(
        image_id=path.stem,
        image_path=path,
        width=size[0],
        height=size[1],
        boxes=torch.tensor([box for box, _ in objects], dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor([label_of[class_id] for _, class_id in objects], dtype=torch.int64),
        difficult=torch.zeros(len(objects), dtype=torch.bool),
    )
