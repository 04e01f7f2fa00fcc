"""The one Pascal VOC reader, for any VOC-layout root.

A root holds `ImageSets/Main/<split>.txt` (one image id per line), `Annotations/<id>.xml`
and `JPEGImages/<id>.jpg`. Every problem raises a DataError whose message starts with
the offending file, so a user can fix their own data without reading a traceback.

Real VOC-format sets hold a few boxes that parse but are not boxes of their image (zero or
negative area, a negative coordinate, outside the image). Given a `skipped` list, the reader
records each such box there and leaves it out instead of raising; mlprune.data.invalid_boxes
decides what happens then (`data.invalid_boxes`).
"""

from __future__ import annotations

import math
import random
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from mlprune.errors import DataError

_BOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")
MAX_SIDE = 65535  # the largest width or height a JPEG can have


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == on tensors would be ambiguous
class Annotation:
    """One image's ground truth. Labels are 1..C (0 is background, as torchvision expects)."""

    image_id: str
    image_path: Path
    width: int
    height: int
    boxes: torch.Tensor  # (N, 4) float32 xyxy, absolute pixels as written in the XML
    labels: torch.Tensor  # (N,) int64
    difficult: torch.Tensor  # (N,) bool


@dataclass(frozen=True)
class SkippedBox:
    """An invalid box left out of its image's annotation."""

    image_path: Path  # the image it was drawn on
    message: str  # the error it would have raised: the file, the object and its coordinates


def read_split(root: Path, split: str, classes: Sequence[str],
               skipped: list[SkippedBox] | None = None) -> list[Annotation]:
    """Annotations of every image listed in `root/ImageSets/Main/<split>.txt`, in file order.

    Invalid boxes raise a DataError, or with `skipped` are appended to it and left out.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root not found")
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not split_file.is_file():
        raise DataError(f"{split_file}: split file not found")
    ids = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{split_file}: split file is empty (expected one image id per line)")
    duplicates = sorted(i for i, count in Counter(ids).items() if count > 1)
    if duplicates:
        raise DataError(f"{split_file}: duplicate image id(s) {duplicates[:5]}")
    return [parse_annotation(root / "Annotations" / f"{i}.xml", root / "JPEGImages", classes, skipped)
            for i in ids]


def parse_annotation(xml_path: Path, image_dir: Path, classes: Sequence[str],
                     skipped: list[SkippedBox] | None = None) -> Annotation:
    """Parse and validate one VOC XML file; its image is `image_dir/<xml stem>.jpg`.

    An invalid box raises a DataError, or with `skipped` is appended to it and left out.
    """
    xml_path = Path(xml_path)
    if not xml_path.is_file():
        raise DataError(f"{xml_path}: annotation file not found")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        raise DataError(f"{xml_path}: malformed XML ({err})") from None
    width, height = _size(root, xml_path)
    image_path = Path(image_dir) / f"{xml_path.stem}.jpg"
    boxes, labels, difficult = [], [], []
    for index, obj in enumerate(root.iter("object")):
        label = _label(obj, xml_path, classes)
        box = _box(obj, xml_path, index, width, height)
        flag = _difficult(obj, xml_path, index)
        problem = box_problem(box, width, height)
        if problem is not None:
            message = f"{xml_path}: object {index} <bndbox> {problem}"
            if skipped is None:
                raise DataError(message)
            skipped.append(SkippedBox(image_path, message))
            continue
        boxes.append(box)
        labels.append(label)
        difficult.append(flag)
    if not image_path.is_file():
        raise DataError(f"{image_path}: image not found (annotated in {xml_path})")
    return Annotation(
        image_id=xml_path.stem,
        image_path=image_path,
        width=width,
        height=height,
        boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(labels, dtype=torch.int64),
        difficult=torch.tensor(difficult, dtype=torch.bool),
    )


def _number(node: ET.Element, tag: str, xml_path: Path, where: str) -> float:
    text = node.findtext(tag)
    if text is None or not text.strip():
        raise DataError(f"{xml_path}: {where} is missing <{tag}>")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{xml_path}: {where} <{tag}> is not a number: {text.strip()!r}") from None
    if not math.isfinite(value):
        raise DataError(f"{xml_path}: {where} <{tag}> is not a finite number: {text.strip()!r}")
    return value


def _size(root: ET.Element, xml_path: Path) -> tuple[int, int]:
    size = root.find("size")
    if size is None:
        raise DataError(f"{xml_path}: missing <size>")
    width, height = (_number(size, tag, xml_path, "<size>") for tag in ("width", "height"))
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE and width.is_integer() and height.is_integer()):
        raise DataError(f"{xml_path}: <size> needs integer width and height in 1..{MAX_SIDE}, "
                        f"got {width:g}x{height:g}")
    return int(width), int(height)


def _label(obj: ET.Element, xml_path: Path, classes: Sequence[str]) -> int:
    name = (obj.findtext("name") or "").strip()
    if name not in classes:
        raise DataError(f"{xml_path}: unknown class {name!r} (allowed: {', '.join(classes)})")
    return list(classes).index(name) + 1


def _box(obj: ET.Element, xml_path: Path, index: int, width: int, height: int) -> list[float]:
    """The object's coordinates as stored (float32), so rounding cannot make a box that
    box_problem accepts empty or spill out of the image."""
    where = f"object {index} <bndbox>"
    bndbox = obj.find("bndbox")
    if bndbox is None:
        raise DataError(f"{xml_path}: object {index} is missing <bndbox>")
    coordinates = [_number(bndbox, tag, xml_path, where) for tag in _BOX_FIELDS]
    return torch.tensor(coordinates, dtype=torch.float32).tolist()


def box_problem(box: Sequence[float], width: int, height: int) -> str | None:
    """What makes an xyxy box invalid in a width x height image, or None for a valid one."""
    x0, y0, x1, y1 = box
    if x0 >= x1 or y0 >= y1:
        return f"has zero or negative area (xmin={x0:g}, ymin={y0:g}, xmax={x1:g}, ymax={y1:g})"
    if min(x0, y0) < 0:
        return f"has a negative coordinate ({x0:g}, {y0:g}, {x1:g}, {y1:g})"
    if x1 > width or y1 > height:
        return f"lies outside the {width}x{height} image (xmax={x1:g}, ymax={y1:g})"
    return None


def _difficult(obj: ET.Element, xml_path: Path, index: int) -> bool:
    text = (obj.findtext("difficult") or "0").strip()
    if text not in ("0", "1"):
        raise DataError(f"{xml_path}: object {index} <difficult> must be 0 or 1, got {text!r}")
    return text == "1"


def split_validation(annotations: Sequence[Annotation], fraction: float,
                     seed: int) -> tuple[list[Annotation], list[Annotation]]:
    """A deterministic (train, val) split; both keep the input order.

    Train always keeps at least one image; with fraction > 0 and at least two images,
    val holds at least one.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction: must be in [0, 1), got {fraction}")
    n = len(annotations)
    n_val = min(max(round(n * fraction), 1 if fraction > 0 else 0), max(n - 1, 0))
    chosen = set(random.Random(seed).sample(range(n), n_val))
    train = [a for i, a in enumerate(annotations) if i not in chosen]
    val = [a for i, a in enumerate(annotations) if i in chosen]
    return train, val
