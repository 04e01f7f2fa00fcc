"""The embedded default datasets, generated instead of downloaded: shapes in VOC layout for
detection, 32x32 shape crops in CIFAR-10 layout for classification."""

from __future__ import annotations

from pathlib import Path

from mlprune.data.splits import DataConfig
from mlprune.errors import ConfigError
from mlprune.synthetic.crops import CROP_CLASSES, generate_cifar_dataset
from mlprune.synthetic.scenes import SyntheticConfig, generate_voc_dataset

EMBEDDED_FORMATS = ("voc", "cifar10")


def generate_dataset(out: Path, data: DataConfig, config: SyntheticConfig, seed: int) -> None:
    if data.format == "voc":
        generate_voc_dataset(out, data.classes, config.trainval, config.test, config.image_size, seed)
    elif data.format == "cifar10":
        if tuple(data.classes) != CROP_CLASSES:
            raise ConfigError(f"data.classes: the embedded classification set has classes {list(CROP_CLASSES)}")
        generate_cifar_dataset(out, config.trainval, config.test, seed)
    else:
        raise ConfigError(f"data.format: the embedded datasets are {' or '.join(EMBEDDED_FORMATS)}, "
                          f"got {data.format!r}")
