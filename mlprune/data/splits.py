"""The `data` section of params.yaml and the datasets every stage reads from it.

trainval is split once, deterministically, into train and a validation split (used by
threshold search); the test split is only ever used for the final evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlprune.config import require
from mlprune.data.dataset import DetectionDataset
from mlprune.data.transforms import build_eval_transform, build_train_transform
from mlprune.data.voc import Annotation, read_split, split_validation


@dataclass(frozen=True)
class DataConfig:
    root: str
    classes: list[str]
    train_split: str = "trainval"
    test_split: str = "test"
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        require(len(self.classes) >= 1, "classes", "needs at least one class")
        require(len(set(self.classes)) == len(self.classes), "classes", "has duplicates")
        require(0 < self.val_fraction < 1, "val_fraction", f"must be in (0, 1), got {self.val_fraction}")

    @property
    def num_classes(self) -> int:
        """Classes + background, as torchvision's detectors count them."""
        return len(self.classes) + 1


def train_val_annotations(config: DataConfig, seed: int) -> tuple[list[Annotation], list[Annotation]]:
    annotations = read_split(Path(config.root), config.train_split, config.classes)
    return split_validation(annotations, config.val_fraction, seed)


def train_dataset(config: DataConfig, seed: int, augment: list[str]) -> DetectionDataset:
    train, _ = train_val_annotations(config, seed)
    return DetectionDataset(train, build_train_transform(augment))


def val_dataset(config: DataConfig, seed: int) -> DetectionDataset:
    _, val = train_val_annotations(config, seed)
    return DetectionDataset(val, build_eval_transform())


def test_dataset(config: DataConfig) -> DetectionDataset:
    annotations = read_split(Path(config.root), config.test_split, config.classes)
    return DetectionDataset(annotations, build_eval_transform())
