"""Opening and decoding image files, with one error for every way a file can fail to decode.

Kept free of torchvision: `check-data` decodes every image and imports nothing heavier.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from mlprune.data.voc import Annotation
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


def load_image(annotation: Annotation) -> torch.Tensor:
    """Decode one image as uint8 RGB CHW; its size must match the annotation."""
    path = annotation.image_path
    with open_image(path) as image:
        pixels = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    height, width = pixels.shape[:2]
    if (width, height) != (annotation.width, annotation.height):
        raise DataError(f"{path}: image is {width}x{height} but its annotation says "
                        f"{annotation.width}x{annotation.height}")
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy())


def load_images(annotations: Sequence[Annotation], desc: str) -> list[torch.Tensor]:
    """`load_image` of each, in order, on torch's CPU threads: the decoder releases the GIL,
    and decoding is most of a training stage's start-up (1,600 images: ~1.5 s on one core).
    The first failure, in order, is raised."""
    with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        return list(tqdm(pool.map(load_image, annotations), total=len(annotations), desc=desc, leave=False,
                         mininterval=1.0))
