"""Tiny datasets written in their exact on-disk formats, for the reader and check-data tests."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from mlprune.data.cifar import write_cifar_batches
from mlprune.data.labeled import LabeledImages
from mlprune.synthetic.scenes import generate_voc_dataset

SHAPES = ["circle", "square", "triangle", "cross", "ring"]
CIFAR_CLASSES = ["cat", "dog", "ship"]

GTSDB_SIZE = (40, 30)  # every fixture image, width x height
# Class 14 (stop) is in 'other', 33 in 'mandatory', 11 in 'danger'; 00001 has no sign.
GTSDB_LINES = ["00000.ppm;1;2;11;12;14", "00000.ppm;20;5;39;29;33", "00600.ppm;0;0;40;30;11"]
GTSDB_IMAGES = ("00000", "00001", "00600")

GTSRB_TEST_HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"
GTSRB_TRAIN = {"00000": [(20, 24), (31, 29)], "00002": [(40, 40)]}  # class folder: image sizes
GTSRB_TEST_ROWS = ["00000.ppm;30;33;5;5;25;28;2", "00001.ppm;16;16;1;1;15;15;0"]


def write_ppm(path: Path, size: tuple[int, int], colour: tuple[int, int, int] = (200, 30, 30)) -> None:
    """A binary (P6) PPM, the format of GTSDB and GTSRB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def write_voc_devkit(devkit: Path) -> Path:
    """VOC2007 (4 trainval, 2 test) and VOC2012 (3 trainval, 1 test), 64x64 synthetic images."""
    generate_voc_dataset(devkit / "VOC2007", SHAPES, n_trainval=4, n_test=2, image_size=64, seed=1)
    generate_voc_dataset(devkit / "VOC2012", SHAPES, n_trainval=3, n_test=1, image_size=64, seed=2)
    return devkit


def write_gtsdb(root: Path, lines: list[str] = GTSDB_LINES, images: tuple[str, ...] = GTSDB_IMAGES) -> Path:
    for name in images:
        write_ppm(root / f"{name}.ppm", GTSDB_SIZE)
    (root / "gt.txt").write_text("".join(f"{line}\n" for line in lines))
    return root


def write_gtsrb(root: Path, test_rows: list[str] = GTSRB_TEST_ROWS) -> Path:
    base = root / "gtsrb"
    for class_dir, sizes in GTSRB_TRAIN.items():
        for index, size in enumerate(sizes):
            write_ppm(base / "GTSRB" / "Training" / class_dir / f"00000_{index:05d}.ppm", size)
    for row in GTSRB_TEST_ROWS:
        name, width, height = row.split(";")[:3]
        write_ppm(base / "GTSRB" / "Final_Test" / "Images" / name, (int(width), int(height)), (10, 200, 90))
    (base / "GT-final_test.csv").write_text("".join(f"{line}\n" for line in [GTSRB_TEST_HEADER, *test_rows]))
    return root


def random_images(n: int, seed: int, classes: list[str] = CIFAR_CLASSES) -> LabeledImages:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=generator, dtype=torch.uint8)
    return LabeledImages(images, torch.arange(n) % len(classes), list(classes))


def write_cifar(root: Path, n_train: int = 12, n_test: int = 4) -> tuple[LabeledImages, LabeledImages]:
    train, test = random_images(n_train, seed=0), random_images(n_test, seed=1)
    write_cifar_batches(root, train, test)
    return train, test
