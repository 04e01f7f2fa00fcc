"""The image-folder reader (torchvision's ImageFolder layout), its class list, and the datasets built on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from dataset_writers import IMAGE_FOLDER_CLASSES, PALETTE_COLOUR, data_error, write_image, write_image_folder

from mlprune.config import parse
from mlprune.data import splits
from mlprune.data.image_folder import class_folders, folder_classes, read_image_folder, split_names
from mlprune.data.problems import Problems
from mlprune.data.splits import DataConfig, resolve_classes, resolved
from mlprune.errors import ConfigError, DataError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images")


def _config(root: Path, classes: list[str] | None = None, **fields) -> DataConfig:
    return parse(DataConfig, {"root": str(root), "format": "image-folder", "classes": classes or [],
                              "train_split": "train", "test_split": "test", **fields}, "data")


def test_reads_every_format_and_mode_resized_to_the_square(root: Path) -> None:
    data = read_image_folder(root, "train", IMAGE_FOLDER_CLASSES, size=16)
    assert data.images.shape == (7, 3, 16, 16) and data.images.dtype == torch.uint8
    assert data.classes == IMAGE_FOLDER_CLASSES
    assert data.labels.tolist() == [0, 0, 1, 1, 2, 2, 2]  # by class in list order, then by path
    centre = data.images[:, :, 8, 8].tolist()
    assert centre[0] == [100, 100, 100]  # bird/gray.png: grayscale to RGB
    assert centre[1] == list(PALETTE_COLOUR)  # bird/palette.png: palette index 1 to its RGB colour
    assert centre[2] == [200, 30, 30]  # cat/a.png
    assert max(abs(a - b) for a, b in zip(centre[3], (30, 30, 200), strict=True)) <= 3  # cat/b.jpg (lossy)
    assert centre[4:] == [[250, 250, 0], [0, 90, 90], [255, 255, 255]]  # dog: .bmp, .ppm, sub/e.JPEG


def test_the_class_list_is_the_sorted_folders_and_hidden_ones_are_left_out(root: Path) -> None:
    assert split_names(root) == ["test", "train"]
    assert class_folders(root, "train") == IMAGE_FOLDER_CLASSES  # not .ipynb_checkpoints
    write_image(root / "test" / "ant" / "a.png", "RGB", (5, 5), (0, 0, 0))
    assert folder_classes(root, ["train", "test"]) == ["ant", *IMAGE_FOLDER_CLASSES]


def test_resolve_classes_gives_every_stage_one_list(root: Path) -> None:
    assert resolve_classes(_config(root)) == IMAGE_FOLDER_CLASSES
    assert resolve_classes(_config(root, ["dog", "cat", "bird"])) == ["dog", "cat", "bird"]
    assert resolved(_config(root)).classes == IMAGE_FOLDER_CLASSES
    given = _config(root, ["dog", "cat", "bird"])
    assert resolved(given) is given


def test_a_given_class_order_sets_the_labels(root: Path) -> None:
    data = read_image_folder(root, "test", ["dog", "cat", "bird"], size=4)
    assert data.labels.tolist() == [0, 1, 2] and data.images[:, :, 0, 0].tolist() == [[4, 5, 6], [1, 2, 3], [7, 8, 9]]


def test_unknown_class_folder(root: Path) -> None:
    assert data_error(read_image_folder, root, "train", ["cat", "dog"]) == (
        f"{root / 'train' / 'bird'}: unknown class folder 'bird' (allowed: cat, dog)")


def test_empty_class_folder(root: Path) -> None:
    for path in (root / "test" / "dog").iterdir():
        path.unlink()
    (root / "test" / "dog" / "readme.txt").write_text("no image here")
    assert data_error(read_image_folder, root, "test", IMAGE_FOLDER_CLASSES) == (
        f"{root / 'test' / 'dog'}: class folder has no image (.bmp, .jpeg, .jpg, .png, .ppm)")


def test_undecodable_image(root: Path) -> None:
    broken = root / "train" / "dog" / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    assert data_error(read_image_folder, root, "train", IMAGE_FOLDER_CLASSES).startswith(
        f"{broken}: cannot decode image (")


def test_truncated_jpeg(root: Path) -> None:
    image = root / "train" / "cat" / "b.jpg"
    image.write_bytes(image.read_bytes()[:200])
    message = data_error(read_image_folder, root, "train", IMAGE_FOLDER_CLASSES)
    assert message.startswith(f"{image}: cannot decode image (")


def test_missing_folders(root: Path, tmp_path: Path) -> None:
    assert data_error(read_image_folder, root, "train", ["ant", *IMAGE_FOLDER_CLASSES]) == (
        f"{root / 'train' / 'ant'}: class folder not found (each split needs one folder per class)")
    assert data_error(read_image_folder, root, "val", IMAGE_FOLDER_CLASSES) == f"{root / 'val'}: split folder not found"
    assert data_error(read_image_folder, tmp_path / "none", "train", ["a"]) == (
        f"{tmp_path / 'none'}: dataset root not found")
    (tmp_path / "flat" / "train").mkdir(parents=True)
    assert data_error(class_folders, tmp_path / "flat", "train") == (
        f"{tmp_path / 'flat' / 'train'}: no class folder (expected {tmp_path / 'flat' / 'train'}/<class>/<image>)")


def test_collecting_lists_every_problem_and_keeps_the_good_images(root: Path) -> None:
    broken = root / "train" / "dog" / "broken.bmp"
    broken.write_bytes(b"BM broken")
    (root / "train" / "fish").mkdir()
    problems = Problems(collect=True)
    data = read_image_folder(root, "train", ["cat", "dog", "fish"], size=8, problems=problems)
    assert data.labels.tolist() == [0, 0, 1, 1, 1]
    assert [m.split(": ", 1)[0] for m in problems.messages] == [
        str(root / "train" / "bird"), str(root / "train" / "fish"), str(broken)]


def test_datasets_resize_to_data_image_size_and_split_validation(root: Path) -> None:
    config = _config(root, image_size=12, val_fraction=0.3)
    train, val = splits.train_dataset(config, seed=0, augment=["flip"]), splits.val_dataset(config, seed=0)
    test = splits.test_dataset(config)  # imported as splits.*: pytest would collect a test_* name
    assert (len(train), len(val), len(test)) == (5, 2, 3)
    image, target = test[0]
    assert image.shape == (3, 12, 12) and image.dtype == torch.float32 and target["labels"].item() == 0
    assert test.classes == IMAGE_FOLDER_CLASSES == train.classes
    assert sorted(train.labels.tolist() + val.labels.tolist()) == [0, 0, 1, 1, 2, 2, 2]


def test_only_image_folder_may_leave_classes_empty(root: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse(DataConfig, {"root": "x", "format": "voc", "classes": []}, "data")
    assert str(info.value) == ("data.classes: needs at least one class (only image-folder may leave it empty, "
                               "to take its folders' names)")
    with pytest.raises(ConfigError) as info:
        _config(root, ["cat", "dog", "cat"])
    assert str(info.value) == "data.classes: lists 'cat' more than once"


def test_a_test_split_without_a_train_class_is_named(root: Path) -> None:
    """With classes from the folders, a class only one split has is caught in the other, not mislabelled."""
    write_image(root / "test" / "ant" / "a.png", "RGB", (5, 5), (0, 0, 0))
    with pytest.raises(DataError) as info:
        splits.train_dataset(_config(root), seed=0, augment=[])
    assert str(info.value) == (
        f"{root / 'train' / 'ant'}: class folder not found (each split needs one folder per class)")

