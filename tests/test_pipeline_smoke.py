"""End to end: `dvc repro` of a tiny config in a temporary git repository, then a
no-op repro, then `dvc exp run -S threshold.grid=...` that must re-run threshold search
and what follows it, but not pretrain or the L1 fine-tune."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["dvc.yaml", "params.yaml", "stages", "mlprune", ".dvcignore"]

TINY = {
    "synthetic": {"trainval": 48, "test": 12, "image_size": 160},
    "model": {"width": 0.0625},
    "pretrain": {"epochs": 1, "batch_size": 4, "warmup_iters": 2},
    "evaluate": {"batch_size": 8, "latency_runs": 2},
    "threshold": {"grid": [0.1, 0.5, 1.0]},
    "kdet": {"ks": [2], "retrain": {"epochs": 1, "batch_size": 4, "warmup_iters": 2}},
}
TINY_PHASE = {"tolerance": 1.0, "l1": {"epochs": 1, "batch_size": 4, "warmup_iters": 0},
              "retrain": {"epochs": 1, "batch_size": 4, "warmup_iters": 2}}


def merge(base: dict, update: dict) -> dict:
    for key, value in update.items():
        base[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


def run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("pipeline")
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, repo / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    merge(params, TINY)
    for phase in params["phases"].values():
        merge(phase, TINY_PHASE)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], repo)
    run([sys.executable, "-m", "dvc", "init", "-q"], repo)
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], repo)
    run([sys.executable, "-m", "dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny"], repo)
    return repo


@pytest.mark.slow
def test_repro_writes_every_phase(repo):
    pretrain = json.loads((repo / "metrics/pretrain/eval.json").read_text())
    assert {"map_voc07", "map_area", "params", "gflops", "size_mb", "cpu_latency_ms"} <= set(pretrain)
    for phase in ["phase1", "phase2", "phase3", "phase4"]:
        metrics = json.loads((repo / f"metrics/{phase}/eval.json").read_text())
        assert metrics["compression_x"] >= 1.0 and 0 <= metrics["map_voc07"] <= 1
        selection = json.loads((repo / f"metrics/{phase}/selection.json").read_text())
        assert all(layer["kept"] for layer in selection["layers"].values())
    assert (repo / "results/pretrain/comp4_det_test_circle.txt").is_file()
    assert "map_voc07" in (repo / "plots/kdet.csv").read_text()


@pytest.mark.slow
def test_second_repro_is_a_noop(repo):
    out = run([sys.executable, "-m", "dvc", "repro"], repo)
    assert "Running stage" not in out


@pytest.mark.slow
def test_exp_run_with_new_grid_skips_pretrain(repo):
    # Targeting phase 1's evaluation keeps the test short; the whole graph behaves the same.
    out = run([sys.executable, "-m", "dvc", "exp", "run", "-S", "threshold.grid=[0.2,0.6]",
               "evaluate_phase@phase1"], repo)
    assert "Running stage 'threshold_search@phase1'" in out and "Running stage 'select@phase1'" in out
    assert "Running stage 'pretrain'" not in out and "Running stage 'l1_finetune@phase1'" not in out
