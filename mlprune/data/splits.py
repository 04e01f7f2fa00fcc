"""The `data` section of params.yaml and the datasets every stage reads from it.

The train split is divided once, deterministically, into train and a validation split
(used by threshold search); the test split is only ever used for the final evaluation.
`format` names the on-disk layout of `root`; detection formats give `DetectionDataset`s,
classification formats `ClassificationDataset`s. `image-folder` may leave `classes` empty: the
class list is then the sorted names of its class folders, and every stage must take it from
`resolve_classes` (or `resolved`) so that all of them see the same list.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from mlprune.config import parse_section, require
from mlprune.data.cifar import BATCHES as CIFAR10_SPLITS
from mlprune.data.cifar import read_cifar10
from mlprune.data.classification import ClassificationDataset
from mlprune.data.gtsdb import SPLITS as GTSDB_SPLITS
from mlprune.data.gtsdb import read_gtsdb
from mlprune.data.gtsrb import SPLITS as GTSRB_SPLITS
from mlprune.data.gtsrb import read_gtsrb
from mlprune.data.image_folder import folder_classes, read_image_folder
from mlprune.data.invalid_boxes import INVALID_BOXES, apply_invalid_boxes
from mlprune.data.labeled import LabeledImages
from mlprune.data.voc import Annotation, SkippedBox, read_split, split_validation
from mlprune.data.voc_devkit import read_devkit
from mlprune.errors import ConfigError
from mlprune.task_names import CLASSIFICATION, DETECTION

FORMAT_TASKS = {"voc": DETECTION, "voc-devkit": DETECTION, "gtsdb": DETECTION,
                "cifar10": CLASSIFICATION, "gtsrb": CLASSIFICATION, "image-folder": CLASSIFICATION}
FIXED_SPLITS = {"cifar10": tuple(CIFAR10_SPLITS), "gtsrb": GTSRB_SPLITS, "gtsdb": GTSDB_SPLITS}


@dataclass(frozen=True)
class DataConfig:
    root: str
    classes: list[str]  # image-folder: [] takes the class folders' names, sorted
    format: str = "voc"  # voc | voc-devkit | gtsdb (detection); cifar10 | gtsrb | image-folder (classification)
    train_split: str = "trainval"  # voc-devkit: years joined by '+', e.g. 2007/trainval+2012/trainval
    test_split: str = "test"
    val_fraction: float = 0.1
    image_size: int = 32  # classification: gtsrb and image-folder images are resized to this square
    invalid_boxes: str = "error"  # detection: error | skip a zero-area or out-of-image box (invalid_boxes.py)

    def __post_init__(self) -> None:
        formats = tuple(FORMAT_TASKS)
        require(self.format in formats, "format", f"must be one of {formats}, got {self.format!r}")
        require(len(self.classes) >= 1 or self.format == "image-folder", "classes",
                "needs at least one class (only image-folder may leave it empty, to take its folders' names)")
        duplicates = sorted({name for name in self.classes if self.classes.count(name) > 1})
        require(not duplicates, "classes", f"lists {', '.join(map(repr, duplicates))} more than once")
        require(0 < self.val_fraction < 1, "val_fraction", f"must be in (0, 1), got {self.val_fraction}")
        require(self.image_size >= 1, "image_size", f"must be >= 1, got {self.image_size}")
        require(self.invalid_boxes in INVALID_BOXES, "invalid_boxes",
                f"must be one of {', '.join(INVALID_BOXES)}, got {self.invalid_boxes!r}")
        for field in ("train_split", "test_split"):
            self._require_known_split(field, getattr(self, field))

    def _require_known_split(self, field: str, split: str) -> None:
        """Formats with a fixed set of splits reject any other name here, before a stage runs
        (a voc split is any ImageSets/Main/<split>.txt, checked when it is read)."""
        known = FIXED_SPLITS.get(self.format)
        if known is not None:
            require(split in known, field, f"{self.format} splits are {', '.join(known)}, got {split!r}")

    @property
    def task(self) -> str:
        return FORMAT_TASKS[self.format]

    def check_model_task(self, model_task: str, model_name: str) -> None:
        """A detection dataset needs a detector, a classification dataset a classifier."""
        if model_task != self.task:
            raise ConfigError(f"data.format: {self.format!r} is a {self.task} dataset but model "
                              f"{model_name!r} is a {model_task} model")


def resolve_classes(config: DataConfig) -> list[str]:
    """The class list every stage must use: `config.classes`, or for an image-folder that leaves it
    empty, the sorted union of the class folders of its train and test splits."""
    if config.classes:
        return list(config.classes)
    return folder_classes(Path(config.root), [config.train_split, config.test_split])


def resolved(config: DataConfig) -> DataConfig:
    """`config` with its classes resolved (resolve_classes), for stages that read `config.classes`."""
    return config if config.classes else dataclasses.replace(config, classes=resolve_classes(config))


def read_annotations(config: DataConfig, split: str, training: bool = False) -> list[Annotation]:
    """A detection split's annotations under `data.invalid_boxes`; `training`: the split trains and
    validates, so under `skip` the images left without a box are dropped (invalid_boxes.py)."""
    return _read_detection(config, split, training)[0]


def _read_detection(config: DataConfig, split: str, training: bool) -> tuple[list[Annotation], int]:
    """(annotations, number of invalid boxes left out of them)."""
    skipped: list[SkippedBox] = []
    annotations = _read_format(config, split, skipped)
    return apply_invalid_boxes(annotations, skipped, config.invalid_boxes, split, training)


def _read_format(config: DataConfig, split: str, skipped: list[SkippedBox]) -> list[Annotation]:
    root = Path(config.root)
    if config.format == "voc-devkit":
        parts = [tuple(part.split("/", 1)) for part in split.split("+")]
        if any(len(part) != 2 for part in parts):
            raise ConfigError(f"data: voc-devkit splits look like 2007/trainval+2012/trainval, got {split!r}")
        return read_devkit(root, parts, config.classes, skipped)
    if config.format == "gtsdb":
        return read_gtsdb(root, split, config.classes, skipped=skipped)
    return read_split(root, split, config.classes, skipped)


def read_labeled(config: DataConfig, split: str) -> LabeledImages:
    """A classification split; its class names must be the ones params.yaml lists."""
    root = Path(config.root)
    if config.format == "image-folder":
        return read_image_folder(root, split, resolve_classes(config), config.image_size)
    data = read_cifar10(root, split) if config.format == "cifar10" else read_gtsrb(root, split, config.image_size)
    if list(data.classes) != list(config.classes):
        raise ConfigError(f"data.classes: {root} has classes {list(data.classes)}, params.yaml lists "
                          f"{list(config.classes)}")
    return data


def train_dataset(config: DataConfig, seed: int, augment: list[str]) -> torch.utils.data.Dataset:
    if config.task == CLASSIFICATION:
        data = read_labeled(config, config.train_split)
        return ClassificationDataset(data, _train_val_indices(len(data), config, seed)[0], augment)
    train, _ = split_validation(read_annotations(config, config.train_split, training=True), config.val_fraction, seed)
    return _detection_dataset(train, augment)


def val_dataset(config: DataConfig, seed: int) -> torch.utils.data.Dataset:
    if config.task == CLASSIFICATION:
        data = read_labeled(config, config.train_split)
        return ClassificationDataset(data, _train_val_indices(len(data), config, seed)[1])
    _, val = split_validation(read_annotations(config, config.train_split, training=True), config.val_fraction, seed)
    return _detection_dataset(val)


def test_dataset(config: DataConfig) -> torch.utils.data.Dataset:
    if config.task == CLASSIFICATION:
        return ClassificationDataset(read_labeled(config, config.test_split))
    annotations, skipped_boxes = _read_detection(config, config.test_split, training=False)
    return _detection_dataset(annotations, skipped_boxes=skipped_boxes)


def _detection_dataset(annotations: list[Annotation], augment: list[str] | None = None,
                       skipped_boxes: int = 0) -> torch.utils.data.Dataset:
    """Images with the SSD transforms: augmented with `augment`, else the evaluation transform.

    Imported here, not at the top: the transforms pull in torchvision (~1 s at every start),
    which the stages that only read annotations (check-data, validate) never use.
    """
    from mlprune.data.dataset import DetectionDataset
    from mlprune.data.transforms import build_eval_transform, build_train_transform

    transform = build_eval_transform() if augment is None else build_train_transform(augment)
    return DetectionDataset(annotations, transform, skipped_boxes=skipped_boxes)


def _train_val_indices(n: int, config: DataConfig, seed: int) -> tuple[list[int], list[int]]:
    return split_validation(range(n), config.val_fraction, seed)


def data_from_params(params: dict) -> DataConfig:
    """The `data` section of a params file, its classes resolved: what every stage that reads data uses."""
    return resolved(parse_section(params, "data", DataConfig))
