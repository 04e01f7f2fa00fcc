"""Opening image files with one error for every way a file can fail to decode."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from mlprune.errors import DataError


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """The PIL image at `path`; a failure to open or decode it, inside the block too, is a DataError."""
    try:
        with Image.open(path) as image:
            yield image
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"{path}: cannot decode image ({err})") from None


def load_resized(path: Path, size: int) -> np.ndarray:
    """uint8 (3, size, size): the whole image as RGB (grayscale and palette images converted), resized
    bilinearly with antialiasing, aspect ratio not kept, as torchvision's Resize((size, size)) does."""
    with open_image(path) as image:
        resized = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized).transpose(2, 0, 1)
