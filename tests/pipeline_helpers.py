"""The tiny pipeline of the end-to-end tests: its params, and a fresh git + DVC
repository (empty cache) that runs it."""

from __future__ import annotations

import os
import runpy
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlprune.config import merge_params
from mlprune.presets import models_to_evaluate, resolve_preset

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["dvc.yaml", "params.yaml", "stages", "mlprune", "data/init", ".dvcignore", ".gitignore"]


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


def write_project(repo: Path, params: dict) -> Path:
    """The project's pipeline files at `repo`, with `params` as its params.yaml."""
    repo.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copy(src, repo / name)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return repo


def make_repo(repo: Path, params: dict | None = None) -> Path:
    """A new git + DVC repository at `repo` holding the project and `params` (the tiny ones by default)."""
    write_project(repo, params if params is not None else tiny_params())
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


def shrunk_preset(name: str, root: Path, width: float) -> dict:
    """Preset `name` pointed at the dataset at `root` and shrunk in sizes only: `width`, one epoch of
    every training in batches of two (so that a few images still give steps), the first k-det
    cut, one timed latency run and no ONNX one, on 2 CPU threads, no L1-model check (such
    models score near chance). Its format, classes, splits, phases and recipe stay the preset's."""
    params = resolve_preset(name, ROOT / "configs")
    one_epoch = {"epochs": 1, "batch_size": 2}
    params = merge_params(params, {
        "common": {"device": "cpu", "threads": 2},
        "data": {"root": str(root)},
        "model": {"width": width},
        "pretrain": one_epoch,
        "evaluate": {"latency_runs": 1, "onnx_latency": False},  # the export is most of a tiny evaluation
        "threshold": {"min_l1_retained": 0.0},  # models this small score near chance
        "phase_defaults": {"l1": one_epoch, "retrain": one_epoch},
        "kdet": {"ks": params["kdet"]["ks"][:1], "retrain": one_epoch},
    })
    params["phases"] = shrink_phase_schedules(params["phases"], one_epoch)
    params["evaluate"]["models"] = models_to_evaluate(params)
    return params


def shrink_phase_schedules(phases: dict, schedule: dict) -> dict:
    """`phases` with `schedule` merged over the L1 and retrain schedules a phase states itself
    (a phase's own `retrain: {epochs: 24}` would otherwise win over the shrunk defaults)."""
    return {name: {**phase, **{key: merge_params(phase[key], schedule) for key in ("l1", "retrain") if key in phase}}
            for name, phase in phases.items()}


@dataclass(frozen=True)
class PlannedStage:
    name: str
    cmd: str
    deps: tuple[str, ...]  # paths, relative to the repository when inside it
    outs: tuple[str, ...]


def repro_plan(repo: Path) -> list[PlannedStage]:
    """The stages `dvc repro` runs in `repo`, in its order, from DVC's own planner."""
    from dvc.repo import Repo
    from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro

    with Repo(str(repo)) as project:  # targets are relative to the working directory, not to the project
        stages = collect_stages(project, [str(repo.resolve() / "dvc.yaml")])
        steps = plan_repro(get_active_graph(project.index.graph), stages)
        return [PlannedStage(stage.addressing, stage.cmd, tuple(dep.def_path for dep in stage.deps),
                             tuple(out.def_path for out in stage.outs)) for stage in steps]


def make_dvc_project(repo: Path, params: dict) -> Path:
    """The project and `params` at `repo`, as a DVC project without git (created in this process)."""
    from dvc.repo import Repo

    write_project(repo, params)
    Repo.init(str(repo), no_scm=True).close()
    return repo


def run_in_process(repo: Path, plan: list[PlannedStage]) -> None:
    """Run each planned stage's command (`python stages/<name>.py ...`) from `repo` in this process,
    as its script's `__main__`: the same code and arguments as under `dvc repro`, without an
    interpreter start per stage."""
    cwd, argv = Path.cwd(), sys.argv
    os.chdir(repo)
    try:
        for stage in plan:
            python, script, *args = shlex.split(stage.cmd)
            assert python == "python", stage.cmd
            sys.argv = [script, *args]
            try:
                runpy.run_path(script, run_name="__main__")
            except SystemExit as done:
                assert done.code in (0, None), f"{stage.name}: `{stage.cmd}` exited with {done.code}"
    finally:
        os.chdir(cwd)
        sys.argv = argv
