"""The VOC reader: parsing, every validation error, and the train/val split."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from mlprune.data.voc import Annotation, parse_annotation, read_split, split_validation
from mlprune.errors import DataError

CLASSES = ["circle", "square"]


def _obj(name: str = "circle", box: tuple = (10, 20, 30, 40), difficult: str | None = "0") -> str:
    tags = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True))
    flag = "" if difficult is None else f"<difficult>{difficult}</difficult>"
    return f"<object><name>{name}</name><pose>Unspecified</pose>{flag}<bndbox>{tags}</bndbox></object>"


def _xml(objects: str = "", size: str = "<size><width>64</width><height>48</height><depth>3</depth></size>") -> str:
    return f"<annotation><folder>x</folder><filename>img.jpg</filename>{size}{objects}</annotation>"


def _write_root(root: Path, annotations: dict[str, str], split: str | None = None, images: bool = True) -> Path:
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for image_id, xml in annotations.items():
        (root / "Annotations" / f"{image_id}.xml").write_text(xml)
        if images:
            Image.new("RGB", (64, 48), (90, 120, 30)).save(root / "JPEGImages" / f"{image_id}.jpg")
    (root / "ImageSets" / "Main" / "trainval.txt").write_text(
        split if split is not None else "".join(f"{i}\n" for i in annotations))
    return root


def test_reads_boxes_labels_and_difficult_flags(tmp_path: Path) -> None:
    root = _write_root(tmp_path, {
        "a": _xml(_obj("square", (1, 2, 64, 48), "1") + _obj("circle", (5.5, 6, 7, 8.25), None)),
        "b": _xml(),
    })
    a, b = read_split(root, "trainval", CLASSES)
    assert (a.image_id, a.image_path, a.width, a.height) == ("a", root / "JPEGImages" / "a.jpg", 64, 48)
    assert a.boxes.dtype == torch.float32 and a.labels.dtype == torch.int64 and a.difficult.dtype == torch.bool
    assert a.boxes.tolist() == [[1, 2, 64, 48], [5.5, 6, 7, 8.25]]
    assert a.labels.tolist() == [2, 1]
    assert a.difficult.tolist() == [True, False]
    assert b.boxes.shape == (0, 4) and b.labels.shape == (0,) and b.difficult.shape == (0,)


def test_split_file_order_and_extra_columns(tmp_path: Path) -> None:
    root = _write_root(tmp_path, {"x1": _xml(), "x2": _xml()}, split="x2  1\n\n x1 -1\n")
    assert [a.image_id for a in read_split(root, "trainval", CLASSES)] == ["x2", "x1"]


BAD_XML = {
    "malformed": ("<annotation><size><width>64</width>", "malformed XML"),
    "no_size": ("<annotation>" + _obj() + "</annotation>", "missing <size>"),
    "zero_width": (_xml(size="<size><width>0</width><height>48</height></size>"), "in 1..65535, got 0x48"),
    "negative_height": (_xml(size="<size><width>64</width><height>-4</height></size>"), "in 1..65535"),
    "wider_than_any_jpeg": (_xml(size="<size><width>65536</width><height>48</height></size>"), "in 1..65535"),
    "infinite_height": (_xml(size="<size><width>64</width><height>inf</height></size>"), "not a finite number"),
    "size_not_number": (_xml(size="<size><width>wide</width><height>48</height></size>"), "not a number"),
    "no_bndbox": (_xml("<object><name>circle</name></object>"), "missing <bndbox>"),
    "missing_ymax": (_xml(_obj().replace("<ymax>40</ymax>", "")), "missing <ymax>"),
    "xmin_not_number": (_xml(_obj(box=("ten", 20, 30, 40))), "not a number"),
    "xmin_nan": (_xml(_obj(box=("nan", 20, 30, 40))), "<xmin> is not a finite number: 'nan'"),
    "empty_after_float32_rounding": (_xml(_obj(box=(10, 20, 10.0000001, 40))), "area"),
    "xmin_after_xmax": (_xml(_obj(box=(30, 20, 10, 40))), "area"),
    "zero_area": (_xml(_obj(box=(10, 20, 30, 20))), "area"),
    "negative_coordinate": (_xml(_obj(box=(-3, 20, 30, 40))), "negative"),
    "outside_image": (_xml(_obj(box=(10, 20, 65, 40))), "outside"),
    "below_image": (_xml(_obj(box=(10, 20, 30, 49))), "outside"),
    "unknown_class": (_xml(_obj("hexagon")), "unknown class 'hexagon' (allowed: circle, square)"),
    "bad_difficult": (_xml(_obj(difficult="yes")), "difficult"),
}


@pytest.mark.parametrize("case", sorted(BAD_XML))
def test_bad_annotation_raises_data_error_naming_the_file(tmp_path: Path, case: str) -> None:
    xml, keyword = BAD_XML[case]
    root = _write_root(tmp_path, {"good": _xml(_obj()), case: xml})
    with pytest.raises(DataError) as info:
        read_split(root, "trainval", CLASSES)
    message = str(info.value)
    assert message.startswith(str(root / "Annotations" / f"{case}.xml") + ":")
    assert keyword in message
    assert "\n" not in message


def test_parse_annotation_directly(tmp_path: Path) -> None:
    root = _write_root(tmp_path, {"one": _xml(_obj("square"))})
    annotation = parse_annotation(root / "Annotations" / "one.xml", root / "JPEGImages", CLASSES)
    assert annotation.labels.tolist() == [2]


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere: dataset root not found"):
        read_split(tmp_path / "nowhere", "trainval", CLASSES)


def test_missing_split_file(tmp_path: Path) -> None:
    root = _write_root(tmp_path, {"a": _xml()})
    with pytest.raises(DataError, match=r"test\.txt: split file not found"):
        read_split(root, "test", CLASSES)


def test_empty_split_file(tmp_path: Path) -> None:
    root = _write_root(tmp_path, {"a": _xml()}, split="\n  \n")
    with pytest.raises(DataError, match=r"trainval\.txt: split file is empty"):
        read_split(root, "trainval", CLASSES)


def test_duplicate_ids_in_split(tmp_path: Path) -> None:
    root = _write_root(tmp_path, {"a": _xml()}, split="a\na\n")
    with pytest.raises(DataError, match=r"trainval\.txt: duplicate image id"):
        read_split(root, "trainval", CLASSES)


def test_listed_image_without_jpeg(tmp_path: Path) -> None:
    root = _write_root(tmp_path, {"a": _xml()}, images=False)
    with pytest.raises(DataError) as info:
        read_split(root, "trainval", CLASSES)
    assert str(info.value).startswith(str(root / "JPEGImages" / "a.jpg") + ": image not found")


def test_listed_image_without_annotation(tmp_path: Path) -> None:
    root = _write_root(tmp_path, {"a": _xml()}, split="a\nghost\n")
    with pytest.raises(DataError, match=r"ghost\.xml: annotation file not found"):
        read_split(root, "trainval", CLASSES)


def _fake(n: int) -> list[Annotation]:
    empty = torch.zeros(0, 4)
    return [Annotation(f"{i:04d}", Path(f"{i}.jpg"), 8, 8, empty, torch.zeros(0, dtype=torch.int64),
                       torch.zeros(0, dtype=torch.bool)) for i in range(n)]


def _ids(train: list[Annotation], val: list[Annotation]) -> tuple[list[str], list[str]]:
    return [a.image_id for a in train], [a.image_id for a in val]


def test_split_validation_is_deterministic_and_disjoint() -> None:
    items = _fake(50)
    train, val = _ids(*split_validation(items, 0.2, seed=7))
    assert (train, val) == _ids(*split_validation(items, 0.2, seed=7))
    assert len(val) == 10 and len(train) == 40
    assert not set(train) & set(val)
    assert val != _ids(*split_validation(items, 0.2, seed=8))[1]


@given(n=st.integers(0, 40), fraction=st.floats(0, 0.99), seed=st.integers(0, 2**32))
def test_split_validation_properties(n: int, fraction: float, seed: int) -> None:
    items = _fake(n)
    train, val = split_validation(items, fraction, seed)
    assert sorted(a.image_id for a in train + val) == [a.image_id for a in items]
    assert [a.image_id for a in train] == sorted(a.image_id for a in train)  # input order kept
    if n >= 1:
        assert train
    if n >= 2 and fraction > 0:
        assert val
    if fraction == 0:
        assert not val


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_split_validation_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        split_validation(_fake(5), fraction, seed=0)
