"""Opening image files with one error for every way a file can fail to decode."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

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
