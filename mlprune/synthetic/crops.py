"""A classification dataset of 32x32 crops, one synthetic shape each, stored in the CIFAR-10 layout.

An image is the detection generator's gradient background and clutter with one shape on it,
in a colour that stands out from what lies under it, at a random scale (40-90 % of the side),
aspect ratio and position. It is drawn at twice the size and downsampled, so edges are
antialiased and clutter lines are thin, then Gaussian noise is added. Image i comes from an
RNG seeded by (seed, i) and shows class i mod 5: output is deterministic and balanced.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm import tqdm

from mlprune.data.cifar import SIDE, write_cifar_batches
from mlprune.data.labeled import LabeledImages
from mlprune.synthetic.scenes import NOISE_SIGMA, background, clutter, contrasting_colour, draw_shape

CROP_CLASSES = ("circle", "square", "triangle", "cross", "ring")
SUPERSAMPLE = 2
SCALE_RANGE = (0.4, 0.9)  # shape side, as a fraction of the image side
ASPECT_RANGE = (0.8, 1.25)


def render_crop(shape: str, rng: np.random.Generator) -> np.ndarray:
    """One uint8 (3, 32, 32) image of `shape`."""
    canvas = SIDE * SUPERSAMPLE
    image = background(rng, canvas)
    draw = ImageDraw.Draw(image)
    clutter(draw, rng, canvas)
    x0, y0, x1, y1 = box = _random_box(rng, canvas)
    draw_shape(draw, shape, box, contrasting_colour(rng, np.asarray(image.crop((x0, y0, x1 + 1, y1 + 1)))))
    small = np.asarray(image.resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float32)
    noisy = small + rng.normal(0.0, NOISE_SIGMA, small.shape)
    return np.clip(noisy.round(), 0, 255).astype(np.uint8).transpose(2, 0, 1)


def _random_box(rng: np.random.Generator, canvas: int) -> tuple[int, int, int, int]:
    """Inclusive pixel extents of a box inside the canvas."""
    side = rng.uniform(*SCALE_RANGE) * canvas
    aspect = rng.uniform(*ASPECT_RANGE)
    w, h = (min(canvas, round(side * factor)) for factor in (math.sqrt(aspect), 1 / math.sqrt(aspect)))
    x0, y0 = int(rng.integers(0, canvas - w + 1)), int(rng.integers(0, canvas - h + 1))
    return x0, y0, x0 + w - 1, y0 + h - 1


def render_crops(n: int, seed: int, start: int = 0) -> LabeledImages:
    """Images start .. start + n - 1 of the sequence that `seed` defines."""
    indices = range(start, start + n)
    labels = [i % len(CROP_CLASSES) for i in indices]
    images = [render_crop(CROP_CLASSES[label], np.random.default_rng([seed, i]))
              for i, label in zip(tqdm(indices, desc="synthetic crops", mininterval=1.0), labels, strict=True)]
    stacked = np.stack(images) if images else np.empty((0, 3, SIDE, SIDE), np.uint8)
    return LabeledImages(torch.from_numpy(stacked), torch.tensor(labels, dtype=torch.int64), list(CROP_CLASSES))


def generate_cifar_dataset(root: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """Write `root/cifar-10-batches-py`: images 0 .. n_train - 1 train, the next n_test test."""
    write_cifar_batches(root, render_crops(n_train, seed), render_crops(n_test, seed, start=n_train))
