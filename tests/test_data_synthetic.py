"""The synthetic VOC generator: determinism, exact layout, content statistics."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlprune.data.voc import read_split
from mlprune.errors import ConfigError
from mlprune.synthetic import scenes as synthetic
from mlprune.synthetic.scenes import SHAPES, SyntheticConfig, generate_voc_dataset

CLASSES = ["circle", "square", "triangle", "cross", "ring"]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "voc"
    generate_voc_dataset(root, CLASSES, n_trainval=6, n_test=3, image_size=96, seed=3)
    return root


def test_same_seed_gives_byte_identical_files(small_root: Path, tmp_path: Path) -> None:
    generate_voc_dataset(tmp_path / "again", CLASSES, n_trainval=6, n_test=3, image_size=96, seed=3)
    generate_voc_dataset(tmp_path / "other", CLASSES, n_trainval=6, n_test=3, image_size=96, seed=4)
    first, again, other = _files(small_root), _files(tmp_path / "again"), _files(tmp_path / "other")
    assert first == again
    assert first.keys() == other.keys()
    assert first["JPEGImages/000001.jpg"] != other["JPEGImages/000001.jpg"]


def test_writes_exact_voc_layout(small_root: Path) -> None:
    ids = [f"{i:06d}" for i in range(1, 10)]
    expected = ({f"JPEGImages/{i}.jpg" for i in ids} | {f"Annotations/{i}.xml" for i in ids}
                | {"ImageSets/Main/trainval.txt", "ImageSets/Main/test.txt"})
    assert set(_files(small_root)) == expected
    assert (small_root / "ImageSets/Main/trainval.txt").read_text().split() == ids[:6]
    assert (small_root / "ImageSets/Main/test.txt").read_text().split() == ids[6:]
    assert not list(small_root.parent.glob(".voc.*"))  # no temporary folder left behind


def test_generated_annotations_parse_and_fit_the_image(small_root: Path) -> None:
    annotations = read_split(small_root, "trainval", CLASSES) + read_split(small_root, "test", CLASSES)
    assert len(annotations) == 9
    for a in annotations:
        assert (a.width, a.height) == (96, 96)
        assert 1 <= len(a.boxes) <= 4
        assert (a.boxes[:, :2] >= 1).all() and (a.boxes[:, 2:] <= 96).all()
        assert (a.boxes[:, :2] < a.boxes[:, 2:]).all()
        assert ((a.labels >= 1) & (a.labels <= len(CLASSES))).all()


def test_object_statistics_over_a_moderate_sample(tmp_path: Path) -> None:
    generate_voc_dataset(tmp_path / "voc", CLASSES, n_trainval=60, n_test=0, image_size=96, seed=0)
    annotations = read_split(tmp_path / "voc", "trainval", CLASSES)
    n_objects = sum(len(a.labels) for a in annotations)
    n_difficult = sum(int(a.difficult.sum()) for a in annotations)
    sides = [float(s) for a in annotations for s in (a.boxes[:, 2:] - a.boxes[:, :2] + 1).min(dim=1).values]
    assert n_objects / len(annotations) >= 2.0
    assert 0 < n_difficult < 0.5 * n_objects
    assert min(sides) < 16 and max(sides) > 30  # small and large objects both present
    assert {int(label) for a in annotations for label in a.labels} == set(range(1, len(CLASSES) + 1))


def test_difficult_flag_marks_exactly_the_small_objects(small_root: Path) -> None:
    for a in read_split(small_root, "trainval", CLASSES):
        shorter = (a.boxes[:, 2:] - a.boxes[:, :2] + 1).min(dim=1).values
        assert a.difficult.tolist() == (shorter < synthetic.DIFFICULT_BELOW).tolist()


@pytest.mark.parametrize("shape", sorted(synthetic._POLYGONS))
def test_polygons_fill_their_box_exactly(shape: str) -> None:
    points = synthetic._fit(synthetic._POLYGONS[shape], (10, 20, 40, 70))
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    assert (min(xs), min(ys), max(xs), max(ys)) == pytest.approx((10, 20, 40, 70))


def test_every_listed_shape_can_be_generated(tmp_path: Path) -> None:
    generate_voc_dataset(tmp_path / "voc", list(SHAPES), n_trainval=40, n_test=0, image_size=96, seed=1)
    labels = {int(x) for a in read_split(tmp_path / "voc", "trainval", SHAPES) for x in a.labels}
    assert labels == set(range(1, len(SHAPES) + 1))


@pytest.mark.parametrize("classes, message", [(["circle", "blob"], "blob"), (["ring", "ring"], "duplicate"),
                                              ([], "at least one")])
def test_bad_class_lists_are_rejected(tmp_path: Path, classes: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_voc_dataset(tmp_path / "voc", classes, n_trainval=2, n_test=1, image_size=96)
    assert not (tmp_path / "voc").exists()


def test_synthetic_config_validates_counts() -> None:
    assert SyntheticConfig(trainval=10, test=2).image_size == 300
    with pytest.raises(ConfigError, match="trainval"):
        SyntheticConfig(trainval=0, test=2)
    with pytest.raises(ConfigError, match="image_size"):
        SyntheticConfig(trainval=10, test=2, image_size=8)
