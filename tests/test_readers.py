"""The dataset readers (VOCdevkit, GTSDB, CIFAR-10, GTSRB), the CIFAR writer and the crops generator."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_writers import (
    CIFAR_CLASSES,
    GTSDB_LINES,
    GTSDB_SIZE,
    GTSRB_TEST_HEADER,
    GTSRB_TEST_ROWS,
    SHAPES,
    data_error,
    random_images,
    write_cifar,
    write_gtsdb,
    write_gtsrb,
    write_ppm,
    write_voc_devkit,
)

from mlprune.data.cifar import read_cifar10, write_cifar_batches
from mlprune.data.gtsdb import GTSDB_CATEGORIES, GTSDB_CLASS_IDS, gtsdb_labels, read_gtsdb
from mlprune.data.gtsrb import GTSRB_CLASSES, read_gtsrb
from mlprune.data.labeled import LabeledImages
from mlprune.data.problems import Problems
from mlprune.data.voc_devkit import PAPER_TEST_PARTS, PAPER_TRAIN_PARTS, read_devkit
from mlprune.errors import ConfigError
from mlprune.synthetic.crops import CROP_CLASSES, generate_cifar_dataset, render_crops

# --- PASCAL VOC devkit ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def devkit(tmp_path_factory) -> Path:
    return write_voc_devkit(tmp_path_factory.mktemp("voc") / "VOCdevkit")


def test_devkit_trains_on_07_12_trainval_and_tests_on_07_test(devkit: Path) -> None:
    train = read_devkit(devkit, PAPER_TRAIN_PARTS, SHAPES)
    test = read_devkit(devkit, PAPER_TEST_PARTS, SHAPES)
    assert [(a.image_path.parts[-3], a.image_id) for a in train] == (
        [("VOC2007", f"00000{i}") for i in range(1, 5)] + [("VOC2012", f"00000{i}") for i in range(1, 4)])
    assert [(a.image_path.parts[-3], a.image_id) for a in test] == [("VOC2007", "000005"), ("VOC2007", "000006")]
    assert all(len(a.boxes) >= 1 and a.labels.max() <= len(SHAPES) for a in train + test)


def test_devkit_missing_year_or_root(devkit: Path, tmp_path: Path) -> None:
    assert data_error(read_devkit, devkit, [("2010", "trainval")], SHAPES) == (
        f"{devkit / 'VOC2010'}: year folder not found (expected a VOC-layout root in the VOCdevkit)")
    assert data_error(read_devkit, tmp_path / "none", PAPER_TEST_PARTS, SHAPES) == (
        f"{tmp_path / 'none'}: VOCdevkit folder not found")


def test_devkit_passes_on_the_voc_reader_errors(devkit: Path) -> None:
    assert data_error(read_devkit, devkit, [("2012", "val")], SHAPES) == (
        f"{devkit / 'VOC2012' / 'ImageSets' / 'Main' / 'val.txt'}: split file not found")
    assert "unknown class 'circle'" in data_error(read_devkit, devkit, PAPER_TEST_PARTS, ["square"])


def test_devkit_rejects_a_repeated_part(devkit: Path) -> None:
    with pytest.raises(ValueError, match="each"):
        read_devkit(devkit, [("2007", "test"), ("2007", "test")], SHAPES)


# --- GTSDB ---------------------------------------------------------------------------------------------

def test_gtsdb_reads_boxes_with_the_four_categories(tmp_path: Path) -> None:
    root = write_gtsdb(tmp_path)
    classes = ["prohibitory", "danger", "mandatory", "other"]
    first, empty = read_gtsdb(root, "train", classes)
    (test,) = read_gtsdb(root, "test", classes)
    assert (first.image_id, first.image_path, first.width, first.height) == ("00000", root / "00000.ppm", 40, 30)
    assert first.boxes.tolist() == [[1, 2, 11, 12], [20, 5, 39, 29]]
    assert first.labels.tolist() == [4, 3]  # 14 stop: other; 33: mandatory
    assert first.difficult.tolist() == [False, False]
    assert empty.image_id == "00001" and empty.boxes.shape == (0, 4) and empty.labels.shape == (0,)
    assert test.image_id == "00600" and test.labels.tolist() == [2]  # 11: danger
    assert [a.image_id for a in read_gtsdb(root, "all", classes)] == ["00000", "00001", "00600"]


def test_gtsdb_labels_follow_the_order_of_the_class_list(tmp_path: Path) -> None:
    root = write_gtsdb(tmp_path)
    ids = [a.labels.tolist() for a in read_gtsdb(root, "all", GTSDB_CLASS_IDS)]
    assert ids == [[15, 34], [], [12]]  # class id + 1
    assert read_gtsdb(root, "test", ["other", "mandatory", "danger", "prohibitory"])[0].labels.tolist() == [3]


def test_gtsdb_grouping_covers_every_class_once() -> None:
    ids = sorted(i for group in GTSDB_CATEGORIES.values() for i in group)
    assert ids == list(range(43))
    assert gtsdb_labels(list(GTSDB_CATEGORIES))[14] == 4  # stop sign: other


def test_gtsdb_rejects_other_class_lists() -> None:
    with pytest.raises(ConfigError, match="classes: GTSDB takes the 43 class ids"):
        gtsdb_labels(["prohibitory", "danger"])


BAD_GT_LINES = {
    "00000.ppm;1;2;3": "expected 'file;x1;y1;x2;y2;class_id' with integers, got '00000.ppm;1;2;3'",
    "00000.ppm;1;2;3;4;5;6": "expected 'file;x1;y1;x2;y2;class_id' with integers, got '00000.ppm;1;2;3;4;5;6'",
    "00000.ppm;1;2;x;4;5": "expected 'file;x1;y1;x2;y2;class_id' with integers, got '00000.ppm;1;2;x;4;5'",
    "00000.ppm;1;2;10;12;43": "class id 43 out of range 0-42",
    "00000.ppm;1;2;10;12;-1": "class id -1 out of range 0-42",
    "00000.ppm;1;2;41;12;5": "box (1, 2, 41, 12) lies outside the 40x30 image 00000.ppm",
    "00000.ppm;-1;2;10;12;5": "box (-1, 2, 10, 12) lies outside the 40x30 image 00000.ppm",
    "00000.ppm;5;2;5;12;5": "box (5, 2, 5, 12) has zero or negative area",
    "00777.ppm;1;2;10;12;5": "image 00777.ppm not found or unreadable",
}


@pytest.mark.parametrize("line", sorted(BAD_GT_LINES))
def test_gtsdb_bad_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    root = write_gtsdb(tmp_path, lines=[GTSDB_LINES[0], "", line])
    assert data_error(read_gtsdb, root, "train", GTSDB_CLASS_IDS) == f"{root / 'gt.txt'}:3: {BAD_GT_LINES[line]}"


def test_gtsdb_bad_line_in_the_other_split_still_fails(tmp_path: Path) -> None:
    root = write_gtsdb(tmp_path, lines=["00600.ppm;1;2;10;12;43"])
    assert data_error(read_gtsdb, root, "train", GTSDB_CLASS_IDS).endswith("gt.txt:1: class id 43 out of range 0-42")


def test_gtsdb_bad_files(tmp_path: Path) -> None:
    root = write_gtsdb(tmp_path / "a")
    (root / "gt.txt").unlink()
    assert data_error(read_gtsdb, root, "train", GTSDB_CLASS_IDS) == f"{root / 'gt.txt'}: ground-truth file not found"
    root = write_gtsdb(tmp_path / "b")
    write_ppm(root / "extra.ppm", GTSDB_SIZE)
    assert data_error(read_gtsdb, root, "train", GTSDB_CLASS_IDS) == (
        f"{root / 'extra.ppm'}: unexpected image name (GTSDB names its images 00000.ppm, 00001.ppm, ...)")
    (root / "extra.ppm").unlink()
    (root / "00001.ppm").write_bytes(b"P6 garbage")
    message = data_error(read_gtsdb, root, "train", GTSDB_CLASS_IDS)
    assert message.startswith(f"{root / '00001.ppm'}: cannot decode image (")
    assert data_error(read_gtsdb, tmp_path / "none", "train", GTSDB_CLASS_IDS) == (
        f"{tmp_path / 'none'}: dataset root not found")


def test_gtsdb_collects_every_problem_and_keeps_the_good_lines(tmp_path: Path) -> None:
    root = write_gtsdb(tmp_path, lines=[GTSDB_LINES[0], "00000.ppm;1;2", "00000.ppm;1;2;10;12;99"])
    problems = Problems(collect=True)
    (first, _) = read_gtsdb(root, "train", GTSDB_CLASS_IDS, problems)
    assert first.boxes.tolist() == [[1, 2, 11, 12]]
    assert [m.split(": ", 1)[0] for m in problems.messages] == [f"{root / 'gt.txt'}:2", f"{root / 'gt.txt'}:3"]


# --- CIFAR-10 ------------------------------------------------------------------------------------------

def test_cifar_round_trip(tmp_path: Path) -> None:
    train, test = write_cifar(tmp_path, n_train=12, n_test=4)
    folder = tmp_path / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"])
    for written, split in ((train, "train"), (test, "test")):
        read = read_cifar10(tmp_path, split)
        assert torch.equal(read.images, written.images) and torch.equal(read.labels, written.labels)
        assert read.classes == CIFAR_CLASSES and len(read) == len(written)


def test_cifar_batches_have_the_original_keys_and_row_layout(tmp_path: Path) -> None:
    train, _ = write_cifar(tmp_path, n_train=12, n_test=4)
    with (tmp_path / "cifar-10-batches-py" / "data_batch_2").open("rb") as f:
        batch = pickle.load(f, encoding="latin1")
    assert set(batch) == {"batch_label", "labels", "data", "filenames"}
    assert batch["batch_label"] == "training batch 2 of 5"
    assert batch["data"].dtype == np.uint8 and batch["data"].shape == (3, 3072)  # 12 images: 3, 3, 2, 2, 2
    first = train.images[3]  # the first image of batch 2: rows are the R, G then B planes, row-major
    assert batch["data"][0, :1024].tolist() == first[0].flatten().tolist()
    assert batch["data"][0, 2048:].tolist() == first[2].flatten().tolist()


def test_torchvision_reads_the_written_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)  # md5 sums are those of the real files
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args: True)
    train, _ = write_cifar(tmp_path, n_train=7, n_test=2)
    reference = CIFAR10(str(tmp_path), train=True)
    assert reference.classes == CIFAR_CLASSES and reference.targets == train.labels.tolist()
    assert np.array_equal(reference.data, train.images.permute(0, 2, 3, 1).numpy())


def test_writer_rejects_other_sizes_and_mismatched_classes(tmp_path: Path) -> None:
    small = LabeledImages(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64), ["a"])
    with pytest.raises(ValueError, match="CIFAR images are 32x32"):
        write_cifar_batches(tmp_path, small, small)
    with pytest.raises(ValueError, match="classes differ"):
        write_cifar_batches(tmp_path, random_images(2, 0), random_images(2, 0, classes=["x", "y"]))
    assert not (tmp_path / "cifar-10-batches-py").exists()


def _pickle(path: Path, content) -> None:
    path.write_bytes(pickle.dumps(content))


def _good_batch(n: int = 2) -> dict:
    return {"data": np.zeros((n, 3072), np.uint8), "labels": [0] * n, "batch_label": "x", "filenames": ["a"] * n}


BAD_BATCHES = {
    "not_a_dict": ([1, 2], "expected a pickled dict, got list"),
    "no_labels": ({"data": np.zeros((2, 3072), np.uint8)}, "missing key 'labels' (has 'data')"),
    "flat_data": ({**_good_batch(), "data": np.zeros(6144, np.uint8)},
                  "'data' must be a uint8 array of shape (N, 3072), got uint8 (6144,)"),
    "float_data": ({**_good_batch(), "data": np.zeros((2, 3072))},
                   "'data' must be a uint8 array of shape (N, 3072), got float64 (2, 3072)"),
    "data_list": ({**_good_batch(), "data": [0, 1]}, "'data' must be a uint8 array of shape (N, 3072), got list"),
    "label_text": ({**_good_batch(), "labels": ["cat", "dog"]}, "'labels' must be a list of ints"),
    "short_labels": ({**_good_batch(), "labels": [0]}, "1 labels for 2 images"),
    "label_range": ({**_good_batch(), "labels": [3, -1]}, "label(s) [-1, 3] out of range 0-2"),
}


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_cifar_malformed_batch(tmp_path: Path, case: str) -> None:
    write_cifar(tmp_path)
    content, message = BAD_BATCHES[case]
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    _pickle(path, content)
    assert data_error(read_cifar10, tmp_path, "train") == f"{path}: {message}"
    assert len(read_cifar10(tmp_path, "test")) == 4  # the test split does not read data_batch_3


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_cifar_refuses_pickles_that_run_code(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    _pickle(path, {**_good_batch(), "data": _Exploit(tmp_path / "pwned")})
    message = data_error(read_cifar10, tmp_path, "test")
    assert message.startswith(f"{path}: not a CIFAR pickle (UnpicklingError: refusing to load ")
    assert not (tmp_path / "pwned").exists()


def test_cifar_bad_files(tmp_path: Path) -> None:
    expected = f"{tmp_path / 'cifar-10-batches-py'}: CIFAR-10 folder not found"
    assert data_error(read_cifar10, tmp_path, "train") == expected
    write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "test_batch").write_bytes(pickle.dumps(_good_batch())[:40])
    assert data_error(read_cifar10, tmp_path, "test").startswith(f"{folder / 'test_batch'}: not a CIFAR pickle (")
    (folder / "data_batch_5").unlink()
    assert data_error(read_cifar10, tmp_path, "train") == f"{folder / 'data_batch_5'}: file not found"
    _pickle(folder / "batches.meta", {"label_names": ["cat", "cat"]})
    assert data_error(read_cifar10, tmp_path, "train") == f"{folder / 'batches.meta'}: 'label_names' has duplicates"
    _pickle(folder / "batches.meta", {"label_names": []})
    assert data_error(read_cifar10, tmp_path, "train") == (
        f"{folder / 'batches.meta'}: 'label_names' must be a non-empty list of strings")


def test_cifar_collects_bad_batches_and_keeps_the_rest(tmp_path: Path) -> None:
    write_cifar(tmp_path, n_train=10)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "data_batch_1").unlink()
    _pickle(folder / "data_batch_4", [])
    problems = Problems(collect=True)
    assert len(read_cifar10(tmp_path, "train", problems)) == 6
    assert problems.messages == [f"{folder / 'data_batch_1'}: file not found",
                                 f"{folder / 'data_batch_4'}: expected a pickled dict, got list"]


def test_labeled_images_checks_its_tensors() -> None:
    with pytest.raises(ValueError, match=r"images: expected uint8 \[N, 3, H, W\]"):
        LabeledImages(torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.int64), ["a"])
    with pytest.raises(ValueError, match=r"labels: expected int64 \[2\]"):
        LabeledImages(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64), ["a"])


# --- GTSRB ---------------------------------------------------------------------------------------------

def test_gtsrb_reads_and_resizes_both_splits(tmp_path: Path) -> None:
    root = write_gtsrb(tmp_path)
    train = read_gtsrb(root, "train")
    assert train.images.shape == (3, 3, 32, 32) and train.labels.tolist() == [0, 0, 2]
    assert train.classes == GTSRB_CLASSES and len(GTSRB_CLASSES) == 43
    assert train.images[:, :, 5, 5].tolist() == [[200, 30, 30]] * 3  # a plain image keeps its colour
    test = read_gtsrb(root, "test", size=8)
    assert test.images.shape == (2, 3, 8, 8) and test.labels.tolist() == [2, 0]
    assert test.images[:, :, 0, 0].tolist() == [[10, 200, 90]] * 2


@pytest.mark.parametrize("name", ["7", "00043"])
def test_gtsrb_bad_class_folder(tmp_path: Path, name: str) -> None:
    class_dir = write_gtsrb(tmp_path) / "gtsrb" / "GTSRB" / "Training" / name
    write_ppm(class_dir / "a.ppm", (20, 20))
    assert data_error(read_gtsrb, tmp_path, "train") == (
        f"{class_dir}: a class folder must be the class id as 5 digits, 00000-00042")


BAD_TEST_ROWS = {
    "00000.ppm;30;33;5;5;25;28;x": "ClassId is not an integer: 'x'",
    "00000.ppm;30;33;5;5;25;28;43": "ClassId 43 out of range 0-42",
    "00000.ppm;30;33;5;5;25;28": "expected 8 ';'-separated fields",
    "00000.ppm;30;33;5;5;25;28;1;9": "expected 8 ';'-separated fields",
    "missing.ppm;30;33;5;5;25;28;1": "image {images}/missing.ppm not found",
}


@pytest.mark.parametrize("row", sorted(BAD_TEST_ROWS))
def test_gtsrb_bad_test_row_names_file_and_line(tmp_path: Path, row: str) -> None:
    root = write_gtsrb(tmp_path, test_rows=[GTSRB_TEST_ROWS[0], row])
    images = root / "gtsrb" / "GTSRB" / "Final_Test" / "Images"
    expected = f"{root / 'gtsrb' / 'GT-final_test.csv'}:3: {BAD_TEST_ROWS[row].format(images=images)}"
    assert data_error(read_gtsrb, root, "test") == expected


def test_gtsrb_bad_files(tmp_path: Path) -> None:
    assert data_error(read_gtsrb, tmp_path, "train") == f"{tmp_path / 'gtsrb' / 'GTSRB' / 'Training'}: folder not found"
    root = write_gtsrb(tmp_path)
    csv_path = root / "gtsrb" / "GT-final_test.csv"
    csv_path.write_text("Filename,ClassId\n00000.ppm,2\n")
    assert data_error(read_gtsrb, root, "test") == (
        f"{csv_path}:1: expected the header {GTSRB_TEST_HEADER}, got ['Filename,ClassId']")
    csv_path.unlink()
    assert data_error(read_gtsrb, root, "test") == f"{csv_path}: ground-truth file not found"
    image = root / "gtsrb" / "GTSRB" / "Training" / "00002" / "00000_00000.ppm"
    image.write_bytes(b"not an image")
    assert data_error(read_gtsrb, root, "train").startswith(f"{image}: cannot decode image (")


# --- the embedded classification default: synthetic crops in the CIFAR layout --------------------------

def test_crops_are_deterministic_balanced_and_labelled() -> None:
    first, again, other = render_crops(10, seed=5), render_crops(10, seed=5), render_crops(10, seed=6)
    assert torch.equal(first.images, again.images) and not torch.equal(first.images, other.images)
    assert first.images.shape == (10, 3, 32, 32) and first.classes == list(CROP_CLASSES)
    assert first.labels.tolist() == [0, 1, 2, 3, 4] * 2
    assert torch.equal(render_crops(4, seed=5, start=6).images, first.images[6:])


def test_crops_are_not_separable_by_raw_pixels() -> None:
    """Clutter, noise, colour, scale and position vary: nearest neighbour on raw pixels stays poor."""
    train, test = render_crops(150, seed=0), render_crops(50, seed=0, start=150)
    distances = torch.cdist(test.images.flatten(1).float(), train.images.flatten(1).float())
    accuracy = (train.labels[distances.argmin(dim=1)] == test.labels).float().mean()
    assert accuracy < 0.5  # chance is 0.2; a trivially easy set would be near 1


def test_crops_dataset_is_stored_in_the_cifar_layout(tmp_path: Path) -> None:
    generate_cifar_dataset(tmp_path / "a", n_train=10, n_test=5, seed=2)
    generate_cifar_dataset(tmp_path / "b", n_train=10, n_test=5, seed=2)
    files_a = sorted((tmp_path / "a" / "cifar-10-batches-py").iterdir())
    assert [p.read_bytes() for p in files_a] == [
        p.read_bytes() for p in sorted((tmp_path / "b" / "cifar-10-batches-py").iterdir())]
    train, test = read_cifar10(tmp_path / "a", "train"), read_cifar10(tmp_path / "a", "test")
    assert torch.equal(train.images, render_crops(10, seed=2).images)
    assert torch.equal(test.images, render_crops(5, seed=2, start=10).images)
    assert train.classes == list(CROP_CLASSES) and test.labels.tolist() == [0, 1, 2, 3, 4]
