"""CIFAR-10 in the python pickle layout that torchvision's CIFAR10 reads, and a writer for it.

`<root>/cifar-10-batches-py/` holds data_batch_1 ... data_batch_5 (train), test_batch and
batches.meta. A batch is a pickled dict: 'data', uint8 (N, 3072), each row the R, G then B
planes of a 32x32 image; 'labels', N ints; 'batch_label' and 'filenames'. batches.meta holds
'label_names'. Unpickling can run arbitrary code, so only the few numpy globals that rebuild
an array are allowed; anything else is refused with a DataError.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlprune.atomic import atomic_path
from mlprune.data.labeled import LabeledImages
from mlprune.data.problems import Problems
from mlprune.errors import DataError

FOLDER = "cifar-10-batches-py"
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
META = "batches.meta"
SIDE = 32
_ROW = 3 * SIDE * SIDE

# What pickles of numpy arrays reference: numpy 1.x and 2.x spellings, pickle protocols 2 to 5.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_cifar10(root: Path, split: str, problems: Problems | None = None) -> LabeledImages:
    """The 'train' (data_batch_1..5) or 'test' (test_batch) images of `root/cifar-10-batches-py`."""
    if split not in BATCHES:
        raise ValueError(f"split: must be one of {', '.join(BATCHES)}, got {split!r}")
    problems = problems if problems is not None else Problems()
    folder = Path(root) / FOLDER
    if not folder.is_dir():
        raise DataError(f"{folder}: CIFAR-10 folder not found")
    classes = _read_meta(folder / META)
    batches = [batch for name in BATCHES[split]
               if (batch := problems.attempt(_read_batch, folder / name, len(classes))) is not None]
    data = np.concatenate([data for data, _ in batches]) if batches else np.empty((0, _ROW), np.uint8)
    labels = np.concatenate([labels for _, labels in batches]) if batches else np.empty(0, np.int64)
    return LabeledImages(torch.from_numpy(data.reshape(-1, 3, SIDE, SIDE)), torch.from_numpy(labels), classes)


def write_cifar_batches(root: Path, train: LabeledImages, test: LabeledImages) -> None:
    """Write `root/cifar-10-batches-py` (replaced atomically); train is cut into 5 batches in order.

    Both splits need 32x32 images and the same classes. read_cifar10 reads the output back, and
    so does torchvision's CIFAR10 once its md5 check (made for the real files) is bypassed.
    """
    for name, split in (("train", train), ("test", test)):
        if tuple(split.images.shape[2:]) != (SIDE, SIDE):
            raise ValueError(f"{name}: CIFAR images are {SIDE}x{SIDE}, got {list(split.images.shape[2:])}")
    if train.classes != test.classes:
        raise ValueError(f"train and test classes differ: {train.classes} vs {test.classes}")
    chunks = np.array_split(np.arange(len(train)), len(BATCHES["train"]))
    with atomic_path(Path(root) / FOLDER) as tmp:
        tmp.mkdir()
        for number, (name, indices) in enumerate(zip(BATCHES["train"], chunks, strict=True), start=1):
            _dump(tmp / name, _batch(f"training batch {number} of {len(chunks)}", train, indices))
        _dump(tmp / "test_batch", _batch("testing batch 1 of 1", test, np.arange(len(test))))
        _dump(tmp / META, {"num_cases_per_batch": len(chunks[0]), "label_names": list(train.classes),
                           "num_vis": _ROW})


def _batch(batch_label: str, split: LabeledImages, indices: np.ndarray) -> dict[str, Any]:
    labels = split.labels[indices].tolist()
    return {
        "batch_label": batch_label,
        "labels": labels,
        "data": split.images[indices].reshape(len(indices), _ROW).numpy(),
        "filenames": [f"{split.classes[label]}_{index:06d}.png" for label, index in zip(labels, indices, strict=True)],
    }


def _dump(path: Path, content: dict[str, Any]) -> None:
    with path.open("wb") as f:
        pickle.dump(content, f, protocol=4)


def _unpickle(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with path.open("rb") as f:
            content = _ArrayUnpickler(f, encoding="latin1").load()
    except Exception as err:  # malformed pickle bytes can raise almost any exception type
        raise DataError(f"{path}: not a CIFAR pickle ({type(err).__name__}: {err})") from None
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(content).__name__}")
    return content


def _field(content: dict[str, Any], key: str, path: Path) -> Any:
    if key not in content:
        raise DataError(f"{path}: missing key {key!r} (has {', '.join(map(repr, content))})")
    return content[key]


def _read_meta(path: Path) -> list[str]:
    names = _field(_unpickle(path), "label_names", path)
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise DataError(f"{path}: 'label_names' must be a non-empty list of strings")
    if len(set(names)) != len(names):
        raise DataError(f"{path}: 'label_names' has duplicates")
    return names


def _read_batch(path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8 (N, 3072), labels int64 (N,)) of one batch file."""
    content = _unpickle(path)
    data, labels = _field(content, "data", path), _field(content, "labels", path)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == _ROW):
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' must be a uint8 array of shape (N, {_ROW}), got {found}")
    if not (isinstance(labels, list) and all(type(label) is int for label in labels)):
        raise DataError(f"{path}: 'labels' must be a list of ints")
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(labels)} labels for {len(data)} images")
    out_of_range = sorted({label for label in labels if not 0 <= label < n_classes})
    if out_of_range:
        raise DataError(f"{path}: label(s) {out_of_range[:5]} out of range 0-{n_classes - 1}")
    return data, np.array(labels, dtype=np.int64)
