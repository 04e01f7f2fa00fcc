"""`mlprune check-data` through the CLI: counts for a good root, every problem and exit 2 for a bad one."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import yaml
from dataset_writers import SHAPES, write_cifar, write_gtsdb, write_gtsrb, write_image_folder, write_voc_devkit
from typer.testing import CliRunner

from mlprune.cli import app
from mlprune.data.voc import read_split
from mlprune.dataset_check import detect_format
from mlprune.synthetic.scenes import generate_voc_dataset


def check(*args: str | Path):
    return CliRunner().invoke(app, ["check-data", *map(str, args)])


@pytest.fixture(autouse=True)
def _no_params_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where there is no params.yaml, unless a test writes one: the formats' own defaults apply."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    generate_voc_dataset(tmp_path / "voc", SHAPES, n_trainval=6, n_test=3, image_size=64, seed=4)
    return tmp_path / "voc"


def test_good_voc_root_prints_counts_and_box_sizes(voc: Path) -> None:
    result = check("--root", voc, "--classes", ",".join(SHAPES))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    trainval = read_split(voc, "trainval", SHAPES)
    boxes = sum(len(a.labels) for a in trainval)
    difficult = sum(int(a.difficult.sum()) for a in trainval)
    assert lines[0] == f"{voc}: voc"
    assert lines[1] == f"trainval: 6 images, {boxes} boxes ({difficult} difficult), 0 images without boxes"
    assert lines[2].startswith("  box width  min ") and lines[3].startswith("  box height min ")
    circles = sum(int((a.labels == 1).sum()) for a in trainval)
    assert lines[4].split() == ["circle", str(circles)]
    assert any(line.startswith("test: 3 images") for line in lines)
    assert lines[-1] == "no problems"


def test_bad_voc_root_lists_every_problem(voc: Path) -> None:
    (voc / "Annotations" / "000002.xml").write_text("<annotation>")
    (voc / "JPEGImages" / "000004.jpg").unlink()
    (voc / "JPEGImages" / "000008.jpg").write_bytes(b"not a jpeg")
    result = check("--root", voc, "--format", "voc", "--classes", ",".join(SHAPES))
    assert result.exit_code == 2
    problems = result.output.split("3 problem(s):\n")[1].splitlines()
    assert [p.split(": ")[0].strip() for p in problems] == [
        str(voc / "Annotations" / "000002.xml"), str(voc / "JPEGImages" / "000004.jpg"),
        str(voc / "JPEGImages" / "000008.jpg")]
    assert "malformed XML" in problems[0] and "image not found" in problems[1] and "cannot decode" in problems[2]
    assert "trainval: 4 images" in result.output and "test: 2 images" in result.output  # the good ones


def test_voc_with_the_default_classes_reports_unknown_classes(voc: Path) -> None:
    result = check("--root", voc)
    assert result.exit_code == 2
    assert "unknown class" in result.output and "(allowed: aeroplane, bicycle," in result.output


def test_voc_devkit_checks_the_paper_parts(tmp_path: Path) -> None:
    devkit = write_voc_devkit(tmp_path / "VOCdevkit")
    result = check("--root", devkit, "--classes", ",".join(SHAPES))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{devkit}: voc-devkit\n")
    for expected in ("VOC2007/trainval: 4 images", "VOC2012/trainval: 3 images", "VOC2007/test: 2 images"):
        assert expected in result.output
    assert "VOC2012/test" not in result.output


def test_voc_devkit_without_2012(tmp_path: Path) -> None:
    generate_voc_dataset(tmp_path / "VOCdevkit" / "VOC2007", SHAPES, n_trainval=2, n_test=1, image_size=64)
    result = check("--root", tmp_path / "VOCdevkit", "--classes", ",".join(SHAPES))
    assert result.exit_code == 2
    assert f"{tmp_path / 'VOCdevkit' / 'VOC2012'}: year folder not found" in result.output
    assert "VOC2007/test: 1 images" in result.output


def test_gtsdb_good_and_bad(tmp_path: Path) -> None:
    good = check("--root", write_gtsdb(tmp_path / "good"))
    assert good.exit_code == 0, good.output
    assert "train: 2 images, 2 boxes (0 difficult), 1 images without boxes" in good.output
    assert "  box width  min 10  median 14.5  max 19" in good.output
    assert [line.split() for line in good.output.splitlines()[4:8]] == [
        ["prohibitory", "0"], ["danger", "0"], ["mandatory", "1"], ["other", "1"]]
    bad_root = write_gtsdb(tmp_path / "bad", lines=["00000.ppm;1;2;11;12;14", "00000.ppm;1;2", "00601.ppm;0;0;5;5;1"])
    bad = check("--root", bad_root, "--classes", ",".join(str(i) for i in range(43)))
    assert bad.exit_code == 2
    assert bad.output.endswith(f"2 problem(s):\n"
                               f"  {bad_root / 'gt.txt'}:2: expected 'file;x1;y1;x2;y2;class_id' with integers, "
                               f"got '00000.ppm;1;2'\n"
                               f"  {bad_root / 'gt.txt'}:3: image 00601.ppm not found or unreadable\n")
    assert "train: 2 images, 1 boxes" in bad.output


def test_cifar_good_and_bad(tmp_path: Path) -> None:
    write_cifar(tmp_path, n_train=12, n_test=4)
    good = check("--root", tmp_path)
    assert good.exit_code == 0, good.output
    assert good.output.splitlines()[:5] == [f"{tmp_path}: cifar10", "train: 12 images of 32x32",
                                            "  cat         4", "  dog         4", "  ship        4"]
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(pickle.dumps({"data": [], "labels": []}))
    bad = check("--root", tmp_path, "--classes", "cat,dog,bird")
    assert bad.exit_code == 2
    assert f"  {batch}: 'data' must be a uint8 array of shape (N, 3072), got list" in bad.output
    assert "train: 9 images of 32x32" in bad.output  # 12 less the 3 of batch 2
    assert "split test: the data's classes ['cat', 'dog', 'ship'] are not --classes ['cat', 'dog', 'bird']" in (
        bad.output)


def test_gtsrb_good_and_empty_split(tmp_path: Path) -> None:
    root = write_gtsrb(tmp_path)
    good = check("--root", root, "--format", "gtsrb")
    assert good.exit_code == 0, good.output
    assert "train: 3 images of 32x32" in good.output and "test: 2 images of 32x32" in good.output
    (root / "gtsrb" / "GT-final_test.csv").write_text("Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n")
    empty = check("--root", root)
    assert empty.exit_code == 2 and empty.output.endswith("1 problem(s):\n  split test: no images\n")


def test_detect_format(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar")
    write_gtsrb(tmp_path / "gtsrb")
    write_gtsdb(tmp_path / "gtsdb", images=("00000",), lines=[])
    (tmp_path / "devkit" / "VOC2012").mkdir(parents=True)
    (tmp_path / "voc" / "ImageSets" / "Main").mkdir(parents=True)
    assert [detect_format(tmp_path / name) for name in ("cifar", "gtsrb", "gtsdb", "devkit", "voc")] == [
        "cifar10", "gtsrb", "gtsdb", "voc-devkit", "voc"]


def test_unknown_layout_and_missing_root(tmp_path: Path) -> None:
    unknown = check("--root", tmp_path)
    assert unknown.exit_code == 2
    assert f"error: {tmp_path}: cannot tell the dataset format from its layout (give one of voc, voc-devkit" in (
        unknown.output)
    missing = check("--root", tmp_path / "none", "--format", "voc")
    assert missing.exit_code == 2 and f"error: {tmp_path / 'none'}: dataset root not found" in missing.output


def test_gtsdb_with_other_classes_is_a_one_line_error(tmp_path: Path) -> None:
    result = check("--root", write_gtsdb(tmp_path), "--classes", "stop,yield")
    assert result.exit_code == 2
    assert "error: classes: GTSDB takes the 43 class ids '0'..'42' or the 4 categories" in result.output
    assert "Traceback" not in result.output


# --- as users type it: PATH, defaults from params.yaml ---------------------------------------------------

def _write_params(data: dict, path: Path = Path("params.yaml")) -> Path:
    path.write_text(yaml.safe_dump({"data": data}))
    return path


def test_path_is_positional_or_root(voc: Path) -> None:
    positional, option = check(voc, "--classes", ",".join(SHAPES)), check("--root", voc, "--classes", ",".join(SHAPES))
    assert positional.exit_code == 0 and positional.output == option.output
    assert check(voc, "--root", voc, "--classes", ",".join(SHAPES)).exit_code == 0  # the same root twice is fine
    both = check(voc, "--root", voc / "..", "--classes", ",".join(SHAPES))
    assert both.exit_code == 2
    assert f"error: check-data: two dataset roots given, {voc} and --root {voc / '..'}; give one" in both.output


def test_without_a_root_or_params_file() -> None:
    result = check()
    assert result.exit_code == 2
    assert "error: check-data: no dataset root: give PATH (or --root), or run it next to a params.yaml" in (
        result.output)


def test_root_format_and_classes_default_to_params_yaml(voc: Path) -> None:
    _write_params({"root": str(voc), "format": "voc", "classes": SHAPES})
    result = check()
    assert result.exit_code == 0, result.output
    assert result.output == check(voc, "--classes", ",".join(SHAPES)).output


def test_another_params_file(voc: Path, tmp_path: Path) -> None:
    params = _write_params({"root": str(voc), "format": "voc", "classes": SHAPES}, tmp_path / "other.yaml")
    assert check(voc, "--params", params).exit_code == 0
    assert check(voc).exit_code == 2  # no params.yaml here: VOC's 20 classes


def test_params_classes_apply_only_to_params_format(voc: Path, tmp_path: Path) -> None:
    """Checking another kind of dataset than params.yaml's needs no --format: its layout decides."""
    write_cifar(tmp_path / "cifar", n_train=6, n_test=3)
    _write_params({"root": str(voc), "format": "voc", "classes": SHAPES})
    result = check(tmp_path / "cifar")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{tmp_path / 'cifar'}: cifar10\ntrain: 6 images of 32x32\n")


def test_params_format_when_the_layout_tells_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _write_params({"root": str(tmp_path / "empty"), "format": "voc", "classes": SHAPES})
    result = check()
    assert result.exit_code == 2
    assert result.output.startswith(f"{tmp_path / 'empty'}: voc\n")
    assert f"  {tmp_path / 'empty' / 'ImageSets' / 'Main'}: no split file (train.txt" in result.output


def test_a_class_listed_twice_is_an_error(voc: Path) -> None:
    result = check(voc, "--classes", "circle,square,circle")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == "error: classes: lists 'circle' more than once"
    _write_params({"root": str(voc), "format": "voc", "classes": ["ring", "ring"]})
    from_params = check(voc)
    assert from_params.exit_code == 2
    assert from_params.output.splitlines()[-1] == "error: data.classes: lists 'ring' more than once"


# --- image folders ---------------------------------------------------------------------------------------

def test_image_folder_is_detected_and_counted(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "images")
    result = check(root)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [  # stdout: the progress bar is on stderr
        f"{root}: image-folder", "test: 3 images of 32x32", "  bird        1", "  cat         1", "  dog         1",
        "train: 7 images of 32x32", "  bird        2", "  cat         2", "  dog         3", "no problems"]


def test_image_folder_with_params_lists_every_problem(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "images")
    _write_params({"root": str(root), "format": "image-folder", "classes": ["cat", "dog"], "image_size": 8,
                   "train_split": "train"})
    broken = root / "test" / "dog" / "y.bmp"
    broken.write_bytes(b"BM")
    (root / "train" / "cat" / "a.png").unlink()
    (root / "train" / "cat" / "b.jpg").unlink()
    result = check()
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[1] == "test: 1 images of 8x8"
    assert lines[lines.index("4 problem(s):"):] == [
        "4 problem(s):",
        f"  {root / 'test' / 'bird'}: unknown class folder 'bird' (allowed: cat, dog)",
        f"  {broken}: cannot decode image (cannot identify image file '{broken}')",
        f"  {root / 'train' / 'bird'}: unknown class folder 'bird' (allowed: cat, dog)",
        f"  {root / 'train' / 'cat'}: class folder has no image (.bmp, .jpeg, .jpg, .png, .ppm)"]


def test_image_folder_split_without_class_folders(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "images")
    (root / "val").mkdir()
    result = check(root)
    assert result.exit_code == 2
    assert result.stdout.splitlines()[-2:] == [
        "1 problem(s):", f"  {root / 'val'}: no class folder (expected {root / 'val'}/<class>/<image>)"]
