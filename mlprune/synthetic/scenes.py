"""A small synthetic detection dataset in exact Pascal VOC layout.

Classes are shapes (circle, square, ...) in random colours on cluttered backgrounds, so
a detector must learn shape, not colour. Every image is drawn from its own RNG seeded
by (seed, image index), so the output is byte-identical for the same arguments.
Boxes are the full extent of each shape, even where a later shape partly covers it.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from mlprune.atomic import atomic_path
from mlprune.config import require

SHAPES = ("circle", "square", "triangle", "cross", "ring", "star", "diamond", "hexagon")

MIN_SIZE = 14  # px, shorter side of the smallest object
MAX_FRACTION = 0.45  # largest object side, as a fraction of the image side
DIFFICULT_BELOW = 18  # px: objects with a shorter side below this are flagged difficult
MAX_COVERED = 0.5  # reject a placement covering more than this much of an earlier box
MIN_CONTRAST = 110.0  # RGB distance between an object's colour and what lies under it
JPEG_QUALITY = 90
NOISE_SIGMA = 8.0


@dataclass(frozen=True)
class SyntheticConfig:
    """The `synthetic` section of params.yaml: how many images, and their side in pixels."""

    trainval: int
    test: int
    image_size: int = 300

    def __post_init__(self) -> None:
        require(self.trainval >= 2, "trainval", f"must be >= 2, got {self.trainval}")
        require(self.test >= 1, "test", f"must be >= 1, got {self.test}")
        require(self.image_size >= 2 * MIN_SIZE, "image_size", f"must be >= {2 * MIN_SIZE}, got {self.image_size}")


@dataclass(frozen=True)
class _Object:
    shape: str
    box: tuple[int, int, int, int]  # 0-based inclusive pixel extents x0, y0, x1, y1


def _regular(n: int, start_deg: float, inner: float | None = None) -> list[tuple[float, float]]:
    """Unit polygon with n corners (2n alternating outer/inner points when `inner` is set)."""
    steps = 2 * n if inner else n
    radii = [inner if inner and k % 2 else 1.0 for k in range(steps)]
    angles = [math.radians(start_deg + 360 * k / steps) for k in range(steps)]
    return [(r * math.cos(a), r * math.sin(a)) for r, a in zip(radii, angles, strict=True)]


_POLYGONS = {
    "triangle": [(0.0, 1.0), (1.0, 1.0), (0.5, 0.0)],
    "diamond": [(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)],
    "hexagon": _regular(6, 0.0),
    "star": _regular(5, -90.0, inner=0.45),
    "cross": [(0.34, 0.0), (0.66, 0.0), (0.66, 0.34), (1.0, 0.34), (1.0, 0.66), (0.66, 0.66),
              (0.66, 1.0), (0.34, 1.0), (0.34, 0.66), (0.0, 0.66), (0.0, 0.34), (0.34, 0.34)],
}


def _fit(points: list[tuple[float, float]], box: tuple[int, int, int, int]) -> list[tuple[float, float]]:
    """Stretch a polygon so its extents are exactly `box`: the box is then tight."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, y0, x1, y1 = box
    sx, sy = (x1 - x0) / (max(xs) - min(xs)), (y1 - y0) / (max(ys) - min(ys))
    return [(x0 + (x - min(xs)) * sx, y0 + (y - min(ys)) * sy) for x, y in points]


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int],
               colour: tuple[int, int, int]) -> None:
    """Fill `shape` so that its extents are `box` (inclusive pixels x0, y0, x1, y1)."""
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "ring":
        thickness = max(2, round(0.2 * min(box[2] - box[0], box[3] - box[1])))
        draw.ellipse(box, outline=colour, width=thickness)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon(_fit(_POLYGONS[shape], box), fill=colour)


def background(rng: np.random.Generator, size: int) -> Image.Image:
    """A linear gradient between two random colours, in a random direction."""
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    t = np.float32(math.cos(angle)) * ramp[None, :] + np.float32(math.sin(angle)) * ramp[:, None]
    t -= t.min()
    t *= 255 / max(float(t.max()), 1e-6)
    level = Image.fromarray(t.astype(np.uint8))
    # Colour each channel through a lookup table: far cheaper than float maths per pixel.
    v = np.arange(256) / 255
    return Image.merge("RGB", [level.point((a + (b - a) * v).astype(np.uint8).tolist())
                               for a, b in zip(start, end, strict=True)])


def clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int) -> None:
    """Thin lines and small irregular blobs: texture that is none of the shapes."""
    for _ in range(rng.integers(3, 10)):
        points = [tuple(p) for p in rng.uniform(0, size, (int(rng.integers(2, 4)), 2)).tolist()]
        draw.line(points, fill=tuple(rng.integers(0, 256, 3).tolist()), width=int(rng.integers(1, 3)))
    for _ in range(rng.integers(2, 8)):
        cx, cy = rng.uniform(0, size, 2)
        angles = np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(5, 8))))
        radii = rng.uniform(1.5, 4.5, len(angles))
        blob = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a, r in zip(angles, radii, strict=True)]
        draw.polygon(blob, fill=tuple(rng.integers(0, 256, 3).tolist()))


def _covered(box: tuple[int, int, int, int], by: tuple[int, int, int, int]) -> float:
    """Fraction of `box`'s area that `by` covers."""
    w = min(box[2], by[2]) - max(box[0], by[0]) + 1
    h = min(box[3], by[3]) - max(box[1], by[1]) + 1
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / ((box[2] - box[0] + 1) * (box[3] - box[1] + 1))


def _place(rng: np.random.Generator, shape: str, size: int,
           placed: list[_Object], attempts: int = 30) -> _Object | None:
    """A random box (log-uniform scale) that hides at most half of any earlier box."""
    largest = max(MIN_SIZE + 1, round(MAX_FRACTION * size))
    for _ in range(attempts):
        side = math.exp(rng.uniform(math.log(MIN_SIZE), math.log(largest)))
        aspect = rng.uniform(0.8, 1.25)
        w = min(largest, max(MIN_SIZE, round(side * math.sqrt(aspect))))
        h = min(largest, max(MIN_SIZE, round(side / math.sqrt(aspect))))
        x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        box = (x0, y0, x0 + w - 1, y0 + h - 1)
        if all(_covered(p.box, box) <= MAX_COVERED for p in placed):
            return _Object(shape, box)
    return None


def contrasting_colour(rng: np.random.Generator, under: np.ndarray) -> tuple[int, int, int]:
    """A random colour that stands out from the mean colour of the region it covers."""
    mean = under.reshape(-1, 3).mean(axis=0)
    best, best_dist = (0, 0, 0), -1.0
    for _ in range(20):
        colour = rng.integers(0, 256, 3)
        dist = float(np.linalg.norm(colour - mean))
        if dist >= MIN_CONTRAST:
            return tuple(colour.tolist())
        if dist > best_dist:
            best, best_dist = tuple(colour.tolist()), dist
    return best


def _render(classes: list[str], size: int, rng: np.random.Generator,
            noise: np.ndarray) -> tuple[Image.Image, list[_Object]]:
    """One image and its objects, drawn in order (later objects occlude earlier ones)."""
    image = background(rng, size)
    draw = ImageDraw.Draw(image)
    clutter(draw, rng, size)
    placed: list[_Object] = []
    for _ in range(rng.integers(1, 5)):
        obj = _place(rng, classes[int(rng.integers(len(classes)))], size, placed)
        if obj is None:
            continue
        x0, y0, x1, y1 = obj.box
        colour = contrasting_colour(rng, np.asarray(image.crop((x0, y0, x1 + 1, y1 + 1))))
        draw_shape(draw, obj.shape, obj.box, colour)
        placed.append(obj)
    oy, ox = rng.integers(0, noise.shape[0] - size + 1, 2)
    pixels = np.asarray(image).astype(np.int16) + noise[oy:oy + size, ox:ox + size]
    return Image.fromarray(np.clip(pixels, 0, 255, out=pixels).astype(np.uint8)), placed


def _annotation_xml(image_id: str, size: int, objects: list[_Object]) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "synthetic"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    dims = ET.SubElement(root, "size")
    for tag, value in (("width", size), ("height", size), ("depth", 3)):
        ET.SubElement(dims, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for obj in objects:
        x0, y0, x1, y1 = obj.box
        node = ET.SubElement(root, "object")
        ET.SubElement(node, "name").text = obj.shape
        ET.SubElement(node, "pose").text = "Unspecified"
        ET.SubElement(node, "truncated").text = "0"
        difficult = min(x1 - x0, y1 - y0) + 1 < DIFFICULT_BELOW
        ET.SubElement(node, "difficult").text = str(int(difficult))
        bndbox = ET.SubElement(node, "bndbox")
        # VOC pixel coordinates are 1-based and inclusive.
        for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1 + 1), ("ymax", y1 + 1)):
            ET.SubElement(bndbox, tag).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8") + b"\n"


def _check_classes(classes: list[str]) -> None:
    if not classes:
        raise ValueError("classes: need at least one shape name")
    unknown = [c for c in classes if c not in SHAPES]
    if unknown:
        raise ValueError(f"classes: unknown shape(s) {unknown}; choose from {', '.join(SHAPES)}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes: duplicate names in {classes}")


def generate_voc_dataset(root: Path, classes: list[str], n_trainval: int, n_test: int,
                         image_size: int = 300, seed: int = 0) -> None:
    """Write a VOC-layout dataset (JPEGImages, Annotations, ImageSets/Main) to `root`.

    Ids run 000001.. with the first `n_trainval` in trainval.txt and the rest in test.txt.
    The folder is replaced atomically.
    """
    _check_classes(classes)
    if image_size < 2 * MIN_SIZE:
        raise ValueError(f"image_size: must be >= {2 * MIN_SIZE}, got {image_size}")
    ids = [f"{i:06d}" for i in range(1, n_trainval + n_test + 1)]
    # One shared noise field; each image takes a random window of it (cheaper than fresh noise).
    noise = np.random.default_rng([seed, 2**31]).normal(0, NOISE_SIGMA, (2 * image_size, 2 * image_size, 3))
    noise = noise.round().astype(np.int16)
    with atomic_path(root) as tmp:
        for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (tmp / sub).mkdir(parents=True)
        for index, image_id in enumerate(tqdm(ids, desc="synthetic VOC", mininterval=1.0)):
            image, objects = _render(classes, image_size, np.random.default_rng([seed, index]), noise)
            image.save(tmp / "JPEGImages" / f"{image_id}.jpg", quality=JPEG_QUALITY)
            (tmp / "Annotations" / f"{image_id}.xml").write_bytes(_annotation_xml(image_id, image_size, objects))
        for split, members in (("trainval", ids[:n_trainval]), ("test", ids[n_trainval:])):
            (tmp / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in members))
