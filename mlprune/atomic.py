"""Atomic outputs: write to a temporary sibling, then rename, so a crash never leaves
a half-written file (or folder) where DVC would cache it.

The temporary of `dir/name` is the hidden folder `dir/.name.<random>.tmp/`. A kill
leaves it behind; the next write of the same path removes it, and `.gitignore` and
`.dvcignore` keep such leftovers out of git and out of the folders DVC hashes.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`.

    Works for files and folders. On any exception the temporary is removed and
    `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temporaries(path: Path) -> None:
    """Remove what killed writes of `path` left (a stage writes each of its paths from one
    process). The pattern is mkdtemp's exactly, so no other path's temporary matches."""
    random_part = "[a-z0-9_]" * 8  # tempfile's names: 8 characters of this set
    for stale in path.parent.glob(f".{glob.escape(path.name)}.{random_part}{TMP_SUFFIX}"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Rows of equal keys as CSV (the format DVC plots read)."""
    import pandas as pd

    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
