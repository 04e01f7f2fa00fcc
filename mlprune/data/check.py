"""`mlprune check-data`: validate a dataset root without training, and summarise it.

Each format is read by its own reader with problems collected (mlprune.data.problems), so
every problem is listed, not only the first. Detection images are decoded too, as the
training dataset would; classification readers decode theirs anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch

from mlprune.data.cifar import read_cifar10
from mlprune.data.gtsdb import GTSDB_CATEGORIES, read_gtsdb
from mlprune.data.gtsrb import read_gtsrb
from mlprune.data.images import load_image
from mlprune.data.labeled import LabeledImages
from mlprune.data.problems import Problems
from mlprune.data.voc import Annotation, parse_annotation, read_split
from mlprune.data.voc_devkit import PAPER_TEST_PARTS, PAPER_TRAIN_PARTS, VOC_CLASSES, year_root
from mlprune.errors import DataError

DatasetFormat = Literal["voc", "voc-devkit", "gtsdb", "cifar10", "gtsrb"]
FORMATS: tuple[str, ...] = get_args(DatasetFormat)
VOC_SPLITS = ("train", "val", "trainval", "test")
# What tells a root's format, tried in order: a path under the root, and the format it marks.
_MARKERS = (("cifar-10-batches-py", "cifar10"), ("gtsrb/GTSRB", "gtsrb"), ("gt.txt", "gtsdb"),
            ("VOC2007", "voc-devkit"), ("VOC2012", "voc-devkit"), ("ImageSets/Main", "voc"))


@dataclass(frozen=True, eq=False)
class SplitSummary:
    name: str
    images: int
    class_counts: dict[str, int]  # boxes per class (detection) or images per class (classification)
    box_sizes: torch.Tensor | None = None  # (N, 2) widths and heights (max - min), detection only
    difficult: int = 0
    images_without_boxes: int = 0
    image_size: tuple[int, int] | None = None  # (height, width) of every image, classification only


@dataclass(frozen=True)
class CheckReport:
    dataset_format: str
    root: Path
    splits: list[SplitSummary]
    problems: list[str]

    def render(self) -> str:
        lines = [f"{self.root}: {self.dataset_format}"]
        for split in self.splits:
            lines += _render_split(split)
        lines.append(f"{len(self.problems)} problem(s):" if self.problems else "no problems")
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


def detect_format(root: Path) -> str:
    """The format whose layout `root` has (see _MARKERS)."""
    for marker, dataset_format in _MARKERS:
        if (Path(root) / marker).exists():
            return dataset_format
    raise DataError(f"{root}: cannot tell the dataset format from its layout (give one of {', '.join(FORMATS)})")


def check_dataset(root: Path, dataset_format: str | None = None, classes: Sequence[str] | None = None) -> CheckReport:
    """Read every split of `root` and report its counts and all problems found.

    `classes`: for detection formats the class names to read with (default: VOC's 20 for
    voc and voc-devkit, the 4 categories for gtsdb); for classification formats the names
    the data must have (default: whatever it has).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root not found")
    dataset_format = dataset_format or detect_format(root)
    if dataset_format not in _CHECKS:
        raise ValueError(f"dataset_format: must be one of {', '.join(FORMATS)}, got {dataset_format!r}")
    problems = Problems(collect=True)
    splits = problems.attempt(_CHECKS[dataset_format], root, classes, problems) or []
    for split in splits:
        if split.images == 0:
            problems.add(f"split {split.name}: no images")
    return CheckReport(dataset_format, root, splits, problems.messages)


def detection_summary(name: str, annotations: Sequence[Annotation], classes: Sequence[str]) -> SplitSummary:
    boxes = torch.cat([torch.empty(0, 4), *(a.boxes for a in annotations)])
    labels = torch.cat([torch.empty(0, dtype=torch.int64), *(a.labels for a in annotations)])
    counts = torch.bincount(labels - 1, minlength=len(classes)).tolist()
    return SplitSummary(name, len(annotations), dict(zip(classes, counts, strict=True)),
                        box_sizes=boxes[:, 2:] - boxes[:, :2],
                        difficult=sum(int(a.difficult.sum()) for a in annotations),
                        images_without_boxes=sum(len(a.labels) == 0 for a in annotations))


def classification_summary(name: str, data: LabeledImages) -> SplitSummary:
    counts = torch.bincount(data.labels, minlength=len(data.classes)).tolist()
    return SplitSummary(name, len(data), dict(zip(data.classes, counts, strict=True)),
                        image_size=(data.images.shape[2], data.images.shape[3]))


def _detection_splits(reads: list[tuple[str, Callable[[], list[Annotation]]]], classes: Sequence[str],
                      problems: Problems) -> list[SplitSummary]:
    summaries = []
    for name, read in reads:
        annotations = problems.attempt(read)
        if annotations is not None:
            decodable = [a for a in annotations if problems.attempt(load_image, a) is not None]
            summaries.append(detection_summary(name, decodable, classes))
    return summaries


def _classification_splits(reads: list[tuple[str, Callable[[], LabeledImages]]], classes: Sequence[str] | None,
                           problems: Problems) -> list[SplitSummary]:
    summaries = []
    for name, read in reads:
        data = problems.attempt(read)
        if data is not None:
            if classes and list(classes) != data.classes:
                problems.add(f"split {name}: the data's classes {data.classes} are not --classes {list(classes)}")
            summaries.append(classification_summary(name, data))
    return summaries


def _voc_split(root: Path, split: str, classes: Sequence[str], problems: Problems) -> list[Annotation]:
    """read_split, except that when it fails every bad file of the split is listed, not only the first."""
    try:
        return read_split(root, split, classes)
    except DataError as error:
        problems.add(str(error))
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    lines = split_file.read_text().splitlines() if split_file.is_file() else []
    ids = dict.fromkeys(line.split()[0] for line in lines if line.strip())
    return [a for i in ids if (a := problems.attempt(parse_annotation, root / "Annotations" / f"{i}.xml",
                                                     root / "JPEGImages", classes)) is not None]


def _check_voc(root: Path, classes: Sequence[str] | None, problems: Problems) -> list[SplitSummary]:
    classes = classes or VOC_CLASSES
    main = root / "ImageSets" / "Main"
    splits = [split for split in VOC_SPLITS if (main / f"{split}.txt").is_file()]
    if not splits:
        raise DataError(f"{main}: no split file ({', '.join(f'{s}.txt' for s in VOC_SPLITS)})")
    reads = [(split, functools.partial(_voc_split, root, split, classes, problems)) for split in splits]
    return _detection_splits(reads, classes, problems)


def _read_devkit_part(devkit: Path, year: str, split: str, classes: Sequence[str],
                      problems: Problems) -> list[Annotation]:
    return _voc_split(year_root(devkit, year), split, classes, problems)


def _check_voc_devkit(root: Path, classes: Sequence[str] | None, problems: Problems) -> list[SplitSummary]:
    """The parts the paper uses: VOC2007 and VOC2012 trainval, VOC2007 test."""
    classes = classes or VOC_CLASSES
    reads = [(f"VOC{year}/{split}", functools.partial(_read_devkit_part, root, year, split, classes, problems))
             for year, split in PAPER_TRAIN_PARTS + PAPER_TEST_PARTS]
    return _detection_splits(reads, classes, problems)


def _check_gtsdb(root: Path, classes: Sequence[str] | None, problems: Problems) -> list[SplitSummary]:
    classes = classes or list(GTSDB_CATEGORIES)
    reads = [(split, functools.partial(read_gtsdb, root, split, classes, problems)) for split in ("train", "test")]
    return _detection_splits(reads, classes, problems)


def _check_cifar10(root: Path, classes: Sequence[str] | None, problems: Problems) -> list[SplitSummary]:
    reads = [(split, functools.partial(read_cifar10, root, split, problems)) for split in ("train", "test")]
    return _classification_splits(reads, classes, problems)


def _check_gtsrb(root: Path, classes: Sequence[str] | None, problems: Problems) -> list[SplitSummary]:
    reads = [(split, functools.partial(read_gtsrb, root, split, problems=problems)) for split in ("train", "test")]
    return _classification_splits(reads, classes, problems)


_CHECKS = {"voc": _check_voc, "voc-devkit": _check_voc_devkit, "gtsdb": _check_gtsdb,
           "cifar10": _check_cifar10, "gtsrb": _check_gtsrb}


def _render_split(split: SplitSummary) -> list[str]:
    if split.image_size is not None:
        lines = [f"{split.name}: {split.images} images of {split.image_size[1]}x{split.image_size[0]}"]
    else:
        lines = [f"{split.name}: {split.images} images, {len(split.box_sizes)} boxes ({split.difficult} difficult), "
                 f"{split.images_without_boxes} images without boxes"]
        if len(split.box_sizes):
            lines += [f"  box {axis:<6} {_spread(split.box_sizes[:, i])}" for i, axis in enumerate(("width", "height"))]
    width = max(map(len, split.class_counts), default=0)
    return lines + [f"  {name:<{width}} {count:>8}" for name, count in split.class_counts.items()]


def _spread(values: torch.Tensor) -> str:
    return f"min {values.min():g}  median {values.quantile(0.5):g}  max {values.max():g}"
