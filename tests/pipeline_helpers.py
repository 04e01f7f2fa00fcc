"""The tiny pipeline of the end-to-end tests: its params, and a fresh git + DVC
repository (empty cache) that runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from mlprune.presets import resolve_preset

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["dvc.yaml", "params.yaml", "stages", "mlprune", ".dvcignore", ".gitignore"]


def tiny_params() -> dict:
    """The `smoke` preset: the detection default shrunk to minutes on 2 CPU cores."""
    return resolve_preset("smoke", ROOT / "configs")


def dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def subprocess_env(repo: Path) -> dict[str, str]:
    """Stage commands call `python`: make it this interpreter, importing the repository's
    own copy of mlprune rather than the editable install's working tree, which may change
    while the pipeline runs."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(repo)}


def run(cmd: list[str], cwd: Path) -> str:
    """stdout + stderr of a command that must succeed."""
    proc = subprocess.run(cmd, cwd=cwd, env=subprocess_env(cwd), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def make_repo(repo: Path) -> Path:
    """A new git + DVC repository at `repo` holding the project and the tiny params."""
    repo.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, repo / name)
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    run(["git", "init", "-q"], repo)
    run(dvc("init", "-q"), repo)
    run(dvc("config", "core.analytics", "false"), repo)
    return repo


def commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], repo)


def committed_text(repo: Path, path: str) -> str:
    """The file at `path` as of the repository's last commit."""
    return subprocess.run(["git", "show", f"HEAD:{path}"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout
