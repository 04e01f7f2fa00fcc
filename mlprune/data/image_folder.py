"""Image-folder classification data: the layout of torchvision's ImageFolder, one folder per split.

`<root>/<split>/<class>/<image>` (images may sit in subfolders of a class folder), with the
extensions of IMAGE_EXTENSIONS in any case; other files are ignored, as torchvision does, and so
are hidden files and folders (`.ipynb_checkpoints/`, macOS `._x.jpg`), which torchvision would
take for a class or fail to decode. Every image is converted to RGB and resized to a square.

Unlike ImageFolder, which takes each root's own sorted folder names as its classes (so a test
split that lacks one class shifts every label after it), one class list serves every split:
`data.classes`, or when that is empty the sorted union of the class folders of the splits read
(mlprune.data.splits.resolve_classes). Each split needs a folder with at least one image for
each class.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mlprune.data.images import load_resized
from mlprune.data.labeled import LabeledImages
from mlprune.data.problems import Problems
from mlprune.errors import DataError

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".ppm")

_Sample = tuple[Path, int]  # image file, index into the class list


def split_names(root: Path) -> list[str]:
    """The split folders of `root`, sorted."""
    names = _subfolders(_existing_root(root))
    if not names:
        raise DataError(f"{root}: no split folder (expected {root}/<split>/<class>/<image>)")
    return names


def class_folders(root: Path, split: str) -> list[str]:
    """The class folder names of `root/split`, sorted."""
    split_dir = _split_dir(root, split)
    names = _subfolders(split_dir)
    if not names:
        raise DataError(f"{split_dir}: no class folder (expected {split_dir}/<class>/<image>)")
    return names


def folder_classes(root: Path, splits: Sequence[str]) -> list[str]:
    """The class list when params leave it empty: the sorted union of the splits' class folders."""
    return sorted(set().union(*(class_folders(root, split) for split in dict.fromkeys(splits))))


def read_image_folder(root: Path, split: str, classes: Sequence[str], size: int = 32,
                      problems: Problems | None = None) -> LabeledImages:
    """The split's images resized to size x size, class by class in `classes` order, then by path.

    A label is the index of its folder's name in `classes`.
    """
    problems = problems if problems is not None else Problems()
    split_dir = _split_dir(root, split)
    samples = _samples(split_dir, class_folders(root, split), classes, problems)
    loaded = [(image, label) for path, label in tqdm(samples, desc=f"load {split}", leave=False, mininterval=1.0)
              if (image := problems.attempt(load_resized, path, size)) is not None]
    images = np.stack([image for image, _ in loaded]) if loaded else np.empty((0, 3, size, size), np.uint8)
    labels = torch.tensor([label for _, label in loaded], dtype=torch.int64)
    return LabeledImages(torch.from_numpy(images), labels, list(classes))


def looks_like_image_folder(root: Path) -> bool:
    """Whether some `root/<split>/<class>/` holds an image file (check-data's format detection)."""
    root = Path(root)
    class_dirs = (root / split / name for split in _subfolders(root) for name in _subfolders(root / split))
    return any(next(_iter_images(class_dir), None) is not None for class_dir in class_dirs)


def _existing_root(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root not found")
    return root


def _split_dir(root: Path, split: str) -> Path:
    split_dir = _existing_root(root) / split
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: split folder not found")
    return split_dir


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(class_dir: Path) -> list[Path]:
    """The image files under `class_dir`, at any depth, sorted."""
    return sorted(_iter_images(class_dir))


def _iter_images(class_dir: Path) -> Iterator[Path]:
    """The image files under `class_dir`, hidden ones left out, in no particular order."""
    for path in class_dir.rglob("*"):
        if (path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
                and not any(part.startswith(".") for part in path.relative_to(class_dir).parts)):
            yield path


def _samples(split_dir: Path, present: Sequence[str], classes: Sequence[str], problems: Problems) -> list[_Sample]:
    for name in present:
        if name not in classes:
            problems.report(f"{split_dir / name}: unknown class folder {name!r} (allowed: {', '.join(classes)})")
    samples: list[_Sample] = []
    for label, name in enumerate(classes):
        samples += [(path, label) for path in problems.attempt(_class_images, split_dir / name) or []]
    return samples


def _class_images(class_dir: Path) -> list[Path]:
    if not class_dir.is_dir():
        raise DataError(f"{class_dir}: class folder not found (each split needs one folder per class)")
    images = _images(class_dir)
    if not images:
        raise DataError(f"{class_dir}: class folder has no image ({', '.join(IMAGE_EXTENSIONS)})")
    return images
