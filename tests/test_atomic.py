"""Atomic writes: what a killed write of a path left behind goes with the next write of it."""

import tempfile
from pathlib import Path

from mlprune.atomic import write_json


def killed_write(path: Path) -> Path:
    """The temporary folder a write of `path` killed midway leaves (see atomic_path)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    (tmp / path.name).write_text("half of it")
    return tmp


def test_a_write_removes_the_stale_temporaries_of_its_path_only(tmp_path):
    path = tmp_path / "eval.json"
    stale = [killed_write(path), killed_write(path)]
    other = killed_write(tmp_path / "eval.json.bak")  # another path's: '.eval.json.bak.<random>.tmp'
    write_json(path, {"map": 0.5})
    assert not any(p.exists() for p in stale)
    assert other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, "eval.json"])
