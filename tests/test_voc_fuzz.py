"""Fuzzing the VOC reader with generated annotation files, well formed or not: it raises
nothing but DataError (one line, naming the file) and never accepts a box outside its image."""

from __future__ import annotations

import math
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mlprune.data.voc import Annotation, parse_annotation
from mlprune.errors import DataError

CLASSES = ["circle", "square"]
BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")

ODD_NUMBERS = st.one_of(
    st.floats().map(repr),  # includes nan, inf, -0.0, 1e+300, 5e-324
    st.sampled_from(["", " ", "nan", "-inf", "1e999", "1e39", "1e-320", "0x10", "1_0", "٣", "12abc"]),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=4),  # XML-safe: the oracle below parses it
)
NUMBERS = st.one_of(st.integers(-20, 120).map(str), ODD_NUMBERS)  # half plain integers, so many boxes are valid
NAMES = st.one_of(st.sampled_from(CLASSES), st.text(max_size=6))
FLAGS = st.one_of(st.sampled_from(["0", "1"]), st.text(max_size=3))


def maybe(element: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """The element, or one time in ten nothing: a missing tag."""
    return st.tuples(st.integers(0, 9), element).map(lambda drawn: drawn[1] if drawn[0] else "")


def tag(name: str, content: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`<name>content</name>` with the content escaped, maybe missing."""
    return maybe(content.map(lambda text: f"<{name}>{escape(text)}</{name}>"))


def nested(name: str, *children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`<name>` around the children, maybe missing."""
    return maybe(st.tuples(*children).map(lambda parts: f"<{name}>{''.join(parts)}</{name}>"))


BOX = nested("bndbox", *(tag(t, NUMBERS) for t in BOX_TAGS))
OBJECT = nested("object", tag("name", NAMES), tag("difficult", FLAGS), BOX)
ANNOTATION = st.tuples(nested("size", tag("width", NUMBERS), tag("height", NUMBERS)), st.lists(OBJECT, max_size=3))


@st.composite
def annotation_files(draw) -> bytes:
    """An annotation file: mostly well formed, else cut short, with junk spliced in, or only junk."""
    size, objects = draw(ANNOTATION)
    xml = f"<annotation><filename>fuzz.jpg</filename>{size}{''.join(objects)}</annotation>".encode()
    cut = draw(st.integers(0, len(xml)))
    junk = draw(st.binary(min_size=1, max_size=8))
    return draw(st.sampled_from([xml, xml, xml, xml[:cut], xml[:cut] + junk + xml[cut:], junk]))


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    """A root whose one image exists (the reader only checks that it is there)."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "Annotations").mkdir()
    (root / "JPEGImages").mkdir()
    (root / "JPEGImages" / "fuzz.jpg").touch()
    return root


def read(voc: Path, content: bytes) -> Annotation:
    xml = voc / "Annotations" / "fuzz.xml"
    xml.write_bytes(content)
    return parse_annotation(xml, voc / "JPEGImages", CLASSES)


def assert_inside_image(annotation: Annotation) -> None:
    x0, y0, x1, y1 = annotation.boxes.T
    assert ((0 <= x0) & (x0 < x1) & (x1 <= annotation.width)).all(), annotation.boxes
    assert ((0 <= y0) & (y0 < y1) & (y1 <= annotation.height)).all(), annotation.boxes


@settings(max_examples=300, deadline=None)
@given(content=annotation_files())
def test_reader_raises_only_data_error_and_never_accepts_a_box_outside(voc, content):
    try:
        annotation = read(voc, content)
    except DataError as err:
        message = str(err)
        assert message.startswith(f"{voc / 'Annotations' / 'fuzz.xml'}: ") and "\n" not in message
    else:
        assert_inside_image(annotation)


COORDINATES = st.one_of(st.integers(-4, 80).map(lambda n: f"{n / 2:g}"), ODD_NUMBERS)


def stored(text: str) -> float | None:
    """The float32 the reader would store for `text`; None where no finite number is written."""
    try:
        value = torch.tensor(float(text), dtype=torch.float32).item()
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@settings(max_examples=300, deadline=None)
@example(width=8, height=8, box=("nan", "0", "5", "5"))  # once accepted: every comparison with NaN is False
@example(width=8, height=8, box=("2", "0", "2.0000001", "5"))  # once accepted: empty after rounding to float32
@given(width=st.integers(1, 32), height=st.integers(1, 32), box=st.tuples(*[COORDINATES] * 4))
def test_a_box_is_accepted_exactly_when_it_lies_inside_the_image(voc, width, height, box):
    values = "".join(f"<{t}>{escape(v)}</{t}>" for t, v in zip(BOX_TAGS, box, strict=True))
    content = (f"<annotation><size><width>{width}</width><height>{height}</height></size>"
               f"<object><name>circle</name><bndbox>{values}</bndbox></object></annotation>").encode()
    x0, y0, x1, y1 = coordinates = [stored(text) for text in box]
    if None not in coordinates and 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height:
        assert read(voc, content).boxes.tolist() == [coordinates]
    else:
        with pytest.raises(DataError, match="<bndbox>|XML"):
            read(voc, content)
