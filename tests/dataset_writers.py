"""Tiny datasets written in their exact on-disk formats, for the reader and check-data tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from PIL import Image

from mlprune.data.cifar import write_cifar_batches
from mlprune.data.labeled import LabeledImages
from mlprune.errors import DataError
from mlprune.synthetic.scenes import generate_voc_dataset

SHAPES = ["circle", "square", "triangle", "cross", "ring"]
CIFAR_CLASSES = ["cat", "dog", "ship"]
CIFAR10_LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

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


def relabel_objects(root: Path, names: dict[str, str] | None = None, difficult: bool | None = None) -> None:
    """Rewrite every object of the VOC layout folder `root`: rename it (old name -> new), set its
    difficult flag (a one-image split of synthetic scenes may otherwise hold only difficult ones)."""
    for xml_path in sorted((root / "Annotations").glob("*.xml")):
        tree = ET.parse(xml_path)
        for item in tree.getroot().iter("object"):
            if names is not None:
                item.find("name").text = names.get(item.find("name").text, item.find("name").text)
            if difficult is not None:
                item.find("difficult").text = str(int(difficult))
        tree.write(xml_path)


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


def write_cifar(root: Path, n_train: int = 12, n_test: int = 4,
                classes: list[str] = CIFAR_CLASSES) -> tuple[LabeledImages, LabeledImages]:
    train, test = random_images(n_train, seed=0, classes=classes), random_images(n_test, seed=1, classes=classes)
    write_cifar_batches(root, train, test)
    return train, test


# Image folder: split -> class -> (file name, PIL mode, size, fill). Mixed formats, sizes and modes:
# a grayscale PNG, a palette PNG (fill = palette index 1), an upper-case extension, a nested subfolder.
PALETTE_COLOUR = (10, 200, 60)
IMAGE_FOLDER = {
    "train": {
        "cat": [("a.png", "RGB", (40, 30), (200, 30, 30)), ("b.jpg", "RGB", (64, 64), (30, 30, 200))],
        "dog": [("c.bmp", "RGB", (20, 50), (250, 250, 0)), ("d.ppm", "RGB", (33, 33), (0, 90, 90)),
                ("sub/e.JPEG", "RGB", (8, 8), (255, 255, 255))],
        "bird": [("gray.png", "L", (17, 40), 100), ("palette.png", "P", (25, 25), 1)],
    },
    "test": {
        "cat": [("x.png", "RGB", (90, 12), (1, 2, 3))],
        "dog": [("y.bmp", "RGB", (16, 16), (4, 5, 6))],
        "bird": [("z.ppm", "RGB", (31, 7), (7, 8, 9))],
    },
}
IMAGE_FOLDER_CLASSES = ["bird", "cat", "dog"]  # the folder names, sorted


def write_image(path: Path, mode: str, size: tuple[int, int], fill) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new(mode, size, fill)
    if mode == "P":
        image.putpalette([0, 0, 0, *PALETTE_COLOUR] + [0] * (256 - 2) * 3)
    image.save(path)


def write_image_folder(root: Path, layout: dict = IMAGE_FOLDER) -> Path:
    """The layout, plus files a reader must ignore: a text file, a hidden folder and a hidden `._` file."""
    for split, classes in layout.items():
        for name, images in classes.items():
            for file_name, mode, size, fill in images:
                write_image(root / split / name / file_name, mode, size, fill)
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    (root / "train" / "cat" / "._a.png").write_bytes(b"macOS resource fork, not an image")
    write_image(root / "train" / ".ipynb_checkpoints" / "x.png", "RGB", (4, 4), (0, 0, 0))
    return root


def set_box(xml_path: Path, index: int, box: tuple[int, int, int, int], only: bool = False) -> None:
    """Overwrite object `index`'s <bndbox> of a VOC XML file; with `only`, drop every other object."""
    tree = ET.parse(xml_path)
    objects = tree.getroot().findall("object")
    for other in objects if only else ():
        if other is not objects[index]:
            tree.getroot().remove(other)
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
        objects[index].find("bndbox").find(tag).text = str(value)
    tree.write(xml_path)


def write_voc_with_invalid_boxes(root: Path, n_trainval: int = 40, n_test: int = 8) -> tuple[Path, Path, Path]:
    """A 64x64 VOC root where two trainval boxes have zero area: the only box of 000003 and one of
    several in another image. Returns (root, 000003's XML, the other XML)."""
    generate_voc_dataset(root, SHAPES, n_trainval=n_trainval, n_test=n_test, image_size=64, seed=5)
    emptied = root / "Annotations" / "000003.xml"
    set_box(emptied, 0, (10, 12, 10, 30), only=True)
    crowded = next(path for path in sorted((root / "Annotations").glob("*.xml"))[10:n_trainval]
                   if len(ET.parse(path).getroot().findall("object")) >= 2)
    set_box(crowded, 1, (5, 20, 30, 20))
    return root, emptied, crowded


def data_error(read, *args, **kwargs) -> str:
    """The message of the DataError that `read` raises; it must be a single line."""
    with pytest.raises(DataError) as info:
        read(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message
