"""`mlprune check-data`: validate a dataset root without training, and summarise it.

Each format is read by its own reader with problems collected (mlprune.data.problems), so
every problem is listed, not only the first. Detection images are decoded too, as the
training dataset would; classification readers decode theirs anyway. Invalid boxes are
listed as problems whatever `data.invalid_boxes` says, each on its own line, and their
images are counted with the boxes that remain.
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
from mlprune.data.image_folder import class_folders, looks_like_image_folder, read_image_folder, split_names
from mlprune.data.images import load_image
from mlprune.data.labeled import LabeledImages
from mlprune.data.problems import Problems
from mlprune.data.voc import Annotation, SkippedBox, parse_annotation, read_split
from mlprune.data.voc_devkit import PAPER_TEST_PARTS, PAPER_TRAIN_PARTS, VOC_CLASSES, year_root
from mlprune.errors import ConfigError, DataError

DatasetFormat = Literal["voc", "voc-devkit", "gtsdb", "cifar10", "gtsrb", "image-folder"]
FORMATS: tuple[str, ...] = get_args(DatasetFormat)
VOC_SPLITS = ("train", "val", "trainval", "test")
# What tells a root's format, tried in order: a path under the root, and the format it marks.
# image-folder has no marker: it is what a root with images in <split>/<class>/ is when no marker matches.
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
    invalid_boxes: int = 0  # how many of the problems are invalid boxes

    def render(self) -> str:
        lines = [f"{self.root}: {self.dataset_format}"]
        for split in self.splits:
            lines += _render_split(split)
        lines.append(f"{len(self.problems)} problem(s):" if self.problems else "no problems")
        lines += [f"  {problem}" for problem in self.problems]
        if self.invalid_boxes:
            lines.append(f"{self.invalid_boxes} of them are invalid boxes: training refuses them unless params.yaml "
                         "sets data.invalid_boxes: skip")
        return "\n".join(lines)


@dataclass
class _Reading:
    """What every format's check shares: the problems so far, the invalid boxes among them, the image size."""

    problems: Problems
    image_size: int
    invalid_boxes: list[str]

    def record_skipped(self, skipped: Sequence[SkippedBox]) -> None:
        for box in skipped:
            if box.message not in self.invalid_boxes:  # the same file may be in two VOC splits
                self.invalid_boxes.append(box.message)
            self.problems.add(box.message)


def detect_format(root: Path) -> str:
    """The format whose layout `root` has (see _MARKERS; image-folder when no marker is found)."""
    for marker, dataset_format in _MARKERS:
        if (Path(root) / marker).exists():
            return dataset_format
    if looks_like_image_folder(root):
        return "image-folder"
    raise DataError(f"{root}: cannot tell the dataset format from its layout (give one of {', '.join(FORMATS)})")


def choose_format(root: Path, configured: str | None) -> str:
    """The format `root`'s layout shows, else `configured` (params.yaml's data.format).

    The layout comes first so that checking another dataset than params.yaml's needs no --format.
    """
    try:
        return detect_format(root)
    except DataError:
        if configured is None:
            raise
        return configured


def check_dataset(root: Path, dataset_format: str | None = None, classes: Sequence[str] | None = None,
                  image_size: int = 32) -> CheckReport:
    """Read every split of `root` and report its counts and all problems found.

    `classes`: for detection formats the class names to read with (default: VOC's 20 for
    voc and voc-devkit, the 4 categories for gtsdb); for classification formats the names
    the data must have (default: whatever it has; image-folder: its class folders, sorted).
    `image_size`: the square gtsrb and image-folder images are resized to.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root not found")
    duplicates = sorted({name for name in classes or () if list(classes).count(name) > 1})
    if duplicates:
        raise ConfigError(f"classes: lists {', '.join(map(repr, duplicates))} more than once")
    dataset_format = dataset_format or detect_format(root)
    if dataset_format not in _CHECKS:
        raise ValueError(f"dataset_format: must be one of {', '.join(FORMATS)}, got {dataset_format!r}")
    reading = _Reading(Problems(collect=True), image_size, [])
    splits = reading.problems.attempt(_CHECKS[dataset_format], root, classes, reading) or []
    for split in splits:
        if split.images == 0:
            reading.problems.add(f"split {split.name}: no images")
    return CheckReport(dataset_format, root, splits, reading.problems.messages, len(reading.invalid_boxes))


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


_DetectionRead = Callable[[list[SkippedBox]], list[Annotation]]  # a split's reader, given where to put invalid boxes


def _detection_splits(reads: list[tuple[str, _DetectionRead]], classes: Sequence[str],
                      reading: _Reading) -> list[SplitSummary]:
    summaries = []
    for name, read in reads:
        skipped: list[SkippedBox] = []
        annotations = reading.problems.attempt(read, skipped)
        reading.record_skipped(skipped)
        if annotations is not None:
            decodable = [a for a in annotations if reading.problems.attempt(load_image, a) is not None]
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


def _voc_split(root: Path, split: str, classes: Sequence[str], problems: Problems,
               skipped: list[SkippedBox]) -> list[Annotation]:
    """read_split, except that when it fails every bad file of the split is listed, not only the first."""
    first_pass: list[SkippedBox] = []
    try:
        annotations = read_split(root, split, classes, first_pass)
        skipped += first_pass
        return annotations
    except DataError as error:
        problems.add(str(error))
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    lines = split_file.read_text().splitlines() if split_file.is_file() else []
    ids = dict.fromkeys(line.split()[0] for line in lines if line.strip())
    return [a for i in ids if (a := problems.attempt(parse_annotation, root / "Annotations" / f"{i}.xml",
                                                     root / "JPEGImages", classes, skipped)) is not None]


def _check_voc(root: Path, classes: Sequence[str] | None, reading: _Reading) -> list[SplitSummary]:
    classes = classes or VOC_CLASSES
    main = root / "ImageSets" / "Main"
    splits = [split for split in VOC_SPLITS if (main / f"{split}.txt").is_file()]
    if not splits:
        raise DataError(f"{main}: no split file ({', '.join(f'{s}.txt' for s in VOC_SPLITS)})")
    reads = [(split, functools.partial(_voc_split, root, split, classes, reading.problems)) for split in splits]
    return _detection_splits(reads, classes, reading)


def _read_devkit_part(devkit: Path, year: str, split: str, classes: Sequence[str], problems: Problems,
                      skipped: list[SkippedBox]) -> list[Annotation]:
    return _voc_split(year_root(devkit, year), split, classes, problems, skipped)


def _check_voc_devkit(root: Path, classes: Sequence[str] | None, reading: _Reading) -> list[SplitSummary]:
    """The parts the paper uses: VOC2007 and VOC2012 trainval, VOC2007 test."""
    classes = classes or VOC_CLASSES
    reads = [(f"VOC{year}/{split}", functools.partial(_read_devkit_part, root, year, split, classes, reading.problems))
             for year, split in PAPER_TRAIN_PARTS + PAPER_TEST_PARTS]
    return _detection_splits(reads, classes, reading)


def _read_gtsdb_split(root: Path, split: str, classes: Sequence[str], problems: Problems,
                      skipped: list[SkippedBox]) -> list[Annotation]:
    return read_gtsdb(root, split, classes, problems, skipped)


def _check_gtsdb(root: Path, classes: Sequence[str] | None, reading: _Reading) -> list[SplitSummary]:
    classes = classes or list(GTSDB_CATEGORIES)
    reads = [(split, functools.partial(_read_gtsdb_split, root, split, classes, reading.problems))
             for split in ("train", "test")]
    return _detection_splits(reads, classes, reading)


def _check_cifar10(root: Path, classes: Sequence[str] | None, reading: _Reading) -> list[SplitSummary]:
    reads = [(split, functools.partial(read_cifar10, root, split, reading.problems)) for split in ("train", "test")]
    return _classification_splits(reads, classes, reading.problems)


def _check_gtsrb(root: Path, classes: Sequence[str] | None, reading: _Reading) -> list[SplitSummary]:
    reads = [(split, functools.partial(read_gtsrb, root, split, reading.image_size, reading.problems))
             for split in ("train", "test")]
    return _classification_splits(reads, classes, reading.problems)


def _check_image_folder(root: Path, classes: Sequence[str] | None, reading: _Reading) -> list[SplitSummary]:
    """Every split folder of the root, against `classes` or else the union of their class folders
    (as mlprune.data.image_folder.folder_classes, but a split without any is one more problem)."""
    splits = split_names(root)
    found = [reading.problems.attempt(class_folders, root, split) or [] for split in splits]
    classes = classes or sorted(set().union(*found))
    reads = [(split, functools.partial(read_image_folder, root, split, classes, reading.image_size, reading.problems))
             for split in splits]
    return _classification_splits(reads, classes, reading.problems)


_CHECKS = {"voc": _check_voc, "voc-devkit": _check_voc_devkit, "gtsdb": _check_gtsdb,
           "cifar10": _check_cifar10, "gtsrb": _check_gtsrb, "image-folder": _check_image_folder}


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
