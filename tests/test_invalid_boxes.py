"""`data.invalid_boxes`: a VOC-format set with 2 zero-area boxes among many is refused in one line by
default, and trains with `skip`; check-data reports the same either way; the test split counts them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
import yaml
from dataset_writers import SHAPES, set_box, write_gtsdb, write_voc_with_invalid_boxes
from pipeline_helpers import tiny_params
from typer.testing import CliRunner

from mlprune.cli import app
from mlprune.config import parse
from mlprune.data import splits
from mlprune.data.gtsdb import GTSDB_CLASS_IDS, read_gtsdb
from mlprune.data.invalid_boxes import apply_invalid_boxes
from mlprune.data.voc import SkippedBox, read_split
from mlprune.errors import ConfigError, DataError
from mlprune.synthetic.scenes import generate_voc_dataset

N_TRAINVAL, N_TEST = 40, 8
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def voc(tmp_path: Path) -> tuple[Path, Path, Path]:
    return write_voc_with_invalid_boxes(tmp_path / "voc", N_TRAINVAL, N_TEST)


def _config(root: Path, **fields) -> splits.DataConfig:
    return parse(splits.DataConfig, {"root": str(root), "classes": SHAPES, **fields}, "data")


def _messages(emptied: Path, crowded: Path) -> list[str]:
    return [f"{emptied}: object 0 <bndbox> has zero or negative area (xmin=10, ymin=12, xmax=10, ymax=30)",
            f"{crowded}: object 1 <bndbox> has zero or negative area (xmin=5, ymin=20, xmax=30, ymax=20)"]


def test_by_default_one_line_names_both_files_and_how_to_skip(voc) -> None:
    root, emptied, crowded = voc
    with pytest.raises(DataError) as info:
        splits.train_dataset(_config(root), seed=0, augment=[])
    first, second = _messages(emptied, crowded)
    assert str(info.value) == (f"{first}; {second} (2 invalid boxes found reading split trainval: set "
                               "data.invalid_boxes: skip to train without them)")


def test_skip_warns_per_box_drops_the_emptied_image_and_sums_up(voc, capsys: pytest.CaptureFixture) -> None:
    root, emptied, crowded = voc
    config = _config(root, invalid_boxes="skip")
    train = splits.train_dataset(config, seed=0, augment=[])
    first, second = _messages(emptied, crowded)
    assert capsys.readouterr().out.splitlines() == [
        f"warning: {first}: box skipped (data.invalid_boxes: skip)",
        f"warning: {second}: box skipped (data.invalid_boxes: skip)",
        "warning: split trainval: skipped 2 invalid boxes in 2 images; dropped 1 training image left without a box"]
    val = splits.val_dataset(config, seed=0)
    ids = [a.image_id for a in train.annotations + val.annotations]
    assert len(ids) == N_TRAINVAL - 1 and "000003" not in ids
    kept = next(a for a in train.annotations + val.annotations if a.image_id == crowded.stem)
    assert len(kept.labels) == len(ET.parse(crowded).getroot().findall("object")) - 1
    assert all(bool((a.boxes[:, 2:] > a.boxes[:, :2]).all()) for a in train.annotations)


def test_a_test_image_keeps_its_other_boxes_and_the_count_is_reported(voc, capsys: pytest.CaptureFixture) -> None:
    root, _, _ = voc
    xml = root / "Annotations" / f"{N_TRAINVAL + 1:06d}.xml"
    set_box(xml, 0, (40, 40, 70, 60), only=True)  # out of the 64x64 image: the image's only box
    test = splits.test_dataset(_config(root, invalid_boxes="skip"))
    assert test.skipped_boxes == 1 and len(test) == N_TEST  # the emptied image is still evaluated
    assert len(test.annotations[0].labels) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "warning: split test: skipped 1 invalid box in 1 image; every image is still evaluated "
        "(metrics: skipped_boxes)")
    as_test = splits.test_dataset(_config(root, invalid_boxes="skip", test_split="trainval"))
    assert as_test.skipped_boxes == 2 and len(as_test) == N_TRAINVAL  # a test split drops no image


def test_check_data_reports_the_same_either_way(voc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, emptied, crowded = voc
    monkeypatch.chdir(tmp_path)
    outputs = []
    for policy in ("error", "skip"):
        Path("params.yaml").write_text(yaml.safe_dump({"data": {
            "root": str(root), "format": "voc", "classes": SHAPES, "invalid_boxes": policy}}))
        result = CliRunner().invoke(app, ["check-data", str(root)])
        assert result.exit_code == 2
        outputs.append(result.output)
    assert outputs[0] == outputs[1]
    first, second = _messages(emptied, crowded)
    assert outputs[0].endswith(f"2 problem(s):\n  {first}\n  {second}\n2 of them are invalid boxes: training "
                               "refuses them unless params.yaml sets data.invalid_boxes: skip\n")
    assert f"trainval: {N_TRAINVAL} images," in outputs[0]  # every image counted, with the boxes that remain


def test_pretrain_is_refused_in_one_line_and_trains_with_skip(voc, tmp_path: Path) -> None:
    """The issue's "done when", through the pretrain stage (1 tiny epoch)."""
    root, emptied, crowded = voc
    params = tiny_params()
    params["data"] |= {"root": str(root)}
    params["pretrain"] |= {"epochs": 1, "epoch_images": 8}
    out = tmp_path / "model.pt"
    args = ["pretrain", "--out", str(out), "--history", str(tmp_path / "h.csv"), "--work-dir", str(tmp_path / "w"),
            "--params", str(tmp_path / "params.yaml")]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    refused = CliRunner().invoke(app, args)
    error_lines = [line for line in refused.output.splitlines() if line.startswith("error: ")]
    assert refused.exit_code == 2 and len(error_lines) == 1
    assert str(emptied) in error_lines[0] and str(crowded) in error_lines[0]
    assert "data.invalid_boxes: skip" in error_lines[0] and not out.exists()
    params["data"]["invalid_boxes"] = "skip"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    trained = CliRunner().invoke(app, args)
    assert trained.exit_code == 0, trained.output
    assert "dropped 1 training image left without a box" in trained.output and out.is_file()


def test_the_refusal_quotes_five_boxes_then_counts(tmp_path: Path) -> None:
    skipped = [SkippedBox(tmp_path / f"{i}.jpg", f"{i}.xml: bad") for i in range(7)]
    with pytest.raises(DataError) as info:
        apply_invalid_boxes([], skipped, "error", "train", training=True)
    assert str(info.value) == ("0.xml: bad; 1.xml: bad; 2.xml: bad; 3.xml: bad; 4.xml: bad; and 2 more (7 invalid "
                               "boxes found reading split train: set data.invalid_boxes: skip to train without them; "
                               "mlprune check-data lists every one)")


def test_every_kind_of_invalid_box_is_skipped_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    generate_voc_dataset(root, SHAPES, n_trainval=4, n_test=1, image_size=64, seed=5)
    boxes = {"000001": (-1, 0, 20, 20), "000002": (30, 10, 20, 20), "000003": (0, 0, 65, 20),
             "000004": (0, 0, 20, 64)}  # the last one ends on the image's edge: valid
    for image_id, box in boxes.items():
        set_box(root / "Annotations" / f"{image_id}.xml", 0, box, only=True)
    skipped: list[SkippedBox] = []
    annotations = read_split(root, "trainval", SHAPES, skipped)
    assert [s.message.split(">", 1)[1].split("(")[0].strip() for s in skipped] == [
        "has a negative coordinate", "has zero or negative area", "lies outside the 64x64 image"]
    assert [s.image_path.name for s in skipped] == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert [len(a.labels) for a in annotations] == [0, 0, 0, 1]
    xml = root / "Annotations" / "000001.xml"
    xml.write_text(xml.read_text().replace("<xmin>-1</xmin>", "<xmin>nan</xmin>"))
    with pytest.raises(DataError, match="not a finite number"):  # malformed, not an invalid box: still refused
        read_split(root, "trainval", SHAPES, [])


def test_gtsdb_skips_too_and_still_refuses_the_other_splits_boxes(tmp_path: Path) -> None:
    root = write_gtsdb(tmp_path / "gtsdb", lines=["00000.ppm;1;2;11;12;14", "00000.ppm;5;2;5;12;5",
                                                  "00600.ppm;0;0;41;30;11"])
    gt = root / "gt.txt"
    with pytest.raises(DataError, match=r"gt\.txt:2: box \(5, 2, 5, 12\) has zero or negative area"):
        read_gtsdb(root, "train", GTSDB_CLASS_IDS)
    skipped: list[SkippedBox] = []
    (first, _) = read_gtsdb(root, "train", GTSDB_CLASS_IDS, skipped=skipped)
    assert first.boxes.tolist() == [[1, 2, 11, 12]]
    assert [s.message for s in skipped] == [f"{gt}:2: box (5, 2, 5, 12) has zero or negative area",
                                            f"{gt}:3: box (0, 0, 41, 30) lies outside the 40x30 image 00600.ppm"]
    config = {"format": "gtsdb", "classes": list(GTSDB_CLASS_IDS), "train_split": "train"}
    _write_gt(gt, ["00000.ppm;1;2;11;12;14", "00600.ppm;0;0;41;30;11"])  # only the test split has one now
    with pytest.raises(DataError) as info:  # gt.txt is validated in full: pretraining already refuses it
        splits.train_dataset(_config(root, **config), seed=0, augment=[])
    assert str(info.value).startswith(f"{gt}:2: box (0, 0, 41, 30) lies outside the 40x30 image 00600.ppm (1 ")
    train = splits.train_dataset(_config(root, **config, invalid_boxes="skip"), seed=0, augment=[])
    assert len(train) + len(splits.val_dataset(_config(root, **config, invalid_boxes="skip"), seed=0)) == 2
    test = splits.test_dataset(_config(root, **config, invalid_boxes="skip"))
    assert test.skipped_boxes == 1 and torch.equal(test.annotations[0].labels, torch.zeros(0, dtype=torch.int64))


def _write_gt(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


def test_invalid_boxes_must_be_error_or_skip() -> None:
    with pytest.raises(ConfigError) as info:
        _config(Path("x"), invalid_boxes="drop")
    assert str(info.value) == "data.invalid_boxes: must be one of error, skip, got 'drop'"
