"""The `data` stage: it generates the embedded dataset only where data.root points at it; with a
dataset of one's own it leaves that dataset alone and writes only its note."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_writers import SHAPES, write_gtsdb

from mlprune.config import parse
from mlprune.data.splits import DataConfig
from mlprune.errors import ConfigError
from mlprune.pipeline.data import NOTE, prepare_data
from mlprune.synthetic.scenes import SyntheticConfig, generate_voc_dataset

SYNTHETIC = SyntheticConfig(trainval=4, test=2, image_size=64)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def data_config(root: Path | str, data_format: str = "voc", classes: list[str] = SHAPES) -> DataConfig:
    return parse(DataConfig, {"root": str(root), "format": data_format, "classes": classes,
                              "train_split": "train" if data_format == "gtsdb" else "trainval"}, "data")


def test_the_embedded_root_gets_the_embedded_dataset_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "data" / "synthetic"
    prepare_data(out, data_config(out), SYNTHETIC, seed=7)
    generate_voc_dataset(tmp_path / "direct", SHAPES, n_trainval=4, n_test=2, image_size=64, seed=7)
    assert files(out) == files(tmp_path / "direct")


def test_a_relative_root_naming_the_out_is_the_embedded_root(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    prepare_data(Path("data/synthetic"), data_config("./data/../data/synthetic"), SYNTHETIC, seed=7)
    assert (tmp_path / "data/synthetic/ImageSets/Main/trainval.txt").read_text() == "000001\n000002\n000003\n000004\n"


def test_a_real_root_is_left_alone_and_only_the_note_is_written(tmp_path: Path) -> None:
    root = write_gtsdb(tmp_path / "FullIJCNN2013")
    before = files(root)
    out = tmp_path / "data" / "synthetic"
    generate_voc_dataset(out, SHAPES, n_trainval=2, n_test=1, image_size=64)  # from an earlier default run
    prepare_data(out, data_config(root, "gtsdb", ["prohibitory", "danger", "mandatory", "other"]), SYNTHETIC, seed=0)
    assert files(out) == {NOTE: (f"Nothing generated: data.root is {root} (gtsdb); the stages read it from there.\n"
                                 f"The data stage generates the embedded dataset here only when data.root is {out}.\n"
                                 ).encode()}
    assert files(root) == before


def test_a_root_that_is_not_there_yet_is_no_failure_here(tmp_path: Path) -> None:
    out = tmp_path / "synthetic"
    prepare_data(out, data_config("/datasets/VOCdevkit", "voc-devkit"), SYNTHETIC, seed=0)
    assert list(files(out)) == [NOTE]


def test_another_format_at_the_embedded_root_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "synthetic"
    with pytest.raises(ConfigError) as info:
        prepare_data(out, data_config(out, "voc-devkit"), SYNTHETIC, seed=0)
    assert str(info.value) == (f"data.root: {out} is where the data stage generates the embedded dataset (voc or "
                               "cifar10); point data.root at your voc-devkit dataset elsewhere")
    assert not out.exists()
