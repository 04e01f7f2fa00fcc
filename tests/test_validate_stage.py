"""The `validate` stage: a bad params.yaml stops `dvc repro` before DVC deletes any stage's
outputs, and a good edit still re-runs only the stages that track the edited keys.

DVC removes a stage's outputs before it runs the stage, and `cache: false` metrics are in
no cache: a param error found inside threshold_search used to cost the committed
metrics/<phase>/threshold.json. Every stage depends on validate's output, whose bytes
never change, so DVC runs validate first and nothing after it sees a changed dependency.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pipeline_helpers import ROOT, dvc, run, subprocess_env, tiny_params
from typer.testing import CliRunner

from mlprune.cli import app

VALID = "models/params_valid.txt"  # validate's output in dvc.yaml


def validate(params: Path, out: Path):
    return CliRunner().invoke(app, ["validate", "--params", str(params), "--out", str(out)])


def test_the_output_is_the_same_for_every_valid_params_file(tmp_path, monkeypatch):
    """Two different valid params files give byte-identical outputs: editing a param never
    changes what the other stages depend on."""
    monkeypatch.chdir(tmp_path)
    outputs = []
    for grid in ([0.1, 0.5], [0.2, 0.6, 1.0]):
        params = tiny_params()
        params["threshold"]["grid"] = grid
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        result = validate(Path("params.yaml"), tmp_path / "valid.txt")
        assert result.exit_code == 0, result.output
        outputs.append((tmp_path / "valid.txt").read_bytes())
    assert outputs[0] == outputs[1] == b"params.yaml passed every check of stages/validate.py\n"


def test_every_stage_runs_after_validate():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages["validate"]["outs"] == [VALID]
    for name, stage in stages.items():
        if name != "validate":
            assert VALID in stage.get("do", stage)["deps"], name


# --- through `dvc repro`, on a copy of the tiny pipeline's finished run ---------------------

def copy_of(tiny_pipeline: Path, dest: Path) -> Path:
    """A copy of the finished tiny pipeline, as committed (other tests may change the original)."""
    repo = Path(shutil.copytree(tiny_pipeline, dest, symlinks=True))
    run(["git", "checkout", "-q", "--", "."], repo)
    run(dvc("checkout", "-q"), repo)
    return repo


def results(repo: Path) -> dict[str, bytes]:
    """Every output file of every stage but validate's own, with its bytes."""
    return {str(p.relative_to(repo)): p.read_bytes() for folder in ("models", "metrics", "plots", "results")
            for p in sorted((repo / folder).rglob("*")) if p.is_file() and p != repo / VALID}


def set_param(repo: Path, dotted_key: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    *parents, key = dotted_key.split(".")
    node = params
    for name in parents:
        node = node[name]
    node[key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def failed_repro(repo: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(dvc("repro"), cwd=repo, env=subprocess_env(repo), capture_output=True, text=True)
    assert proc.returncode != 0, proc.stdout[-2000:]
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("key,value,message", [
    ("threshold.grid", [0.5, -1.0], "threshold.grid: values must be >= 0, got [0.5, -1.0]"),
    ("phases.phase2.start", "phase9", "phases.phase2.start: must be pretrain or an earlier phase (pretrain, phase1), "
                                      "got 'phase9'"),
], ids=["bad_grid", "phase_start_no_stage_makes"])
def test_a_bad_param_stops_repro_with_nothing_deleted(tiny_pipeline, tmp_path, key, value, message):
    repo = copy_of(tiny_pipeline, tmp_path / "repo")
    before = results(repo)
    assert "metrics/phase1/threshold.json" in before and "metrics/phase1/threshold_sweep.csv" in before
    set_param(repo, key, value)
    proc = failed_repro(repo)
    assert f"error: {message}\n" in proc.stderr
    assert "Running stage 'validate'" in proc.stdout and proc.stdout.count("Running stage") == 1
    assert results(repo) == before


@pytest.mark.slow
def test_a_good_edit_reruns_only_the_stages_that_track_it(tiny_pipeline, tmp_path):
    repo = copy_of(tiny_pipeline, tmp_path / "repo")
    set_param(repo, "threshold.grid", [0.2, 0.6])
    run(dvc("repro", "validate"), repo)
    changed = json.loads(run(dvc("status", "--json"), repo).strip().splitlines()[-1])
    assert sorted(changed) == [f"threshold_search@phase{i}" for i in range(1, 5)]
    assert all(entry == [{"changed deps": {"params.yaml": {"threshold": "modified"}}}]
               for entry in changed.values()), changed


@pytest.mark.slow
def test_a_killed_writes_leftover_is_neither_a_change_nor_a_git_file(tiny_pipeline, tmp_path):
    """A temporary that a kill left in metrics/ (which report depends on) changes nothing."""
    repo = copy_of(tiny_pipeline, tmp_path / "repo")
    leftover = repo / "metrics/phase1/.eval.json.k1ll3d_x.tmp"
    leftover.mkdir()
    (leftover / "eval.json").write_text('{"map_voc07": 0.1')
    assert "Data and pipelines are up to date." in run(dvc("status"), repo)
    assert run(["git", "status", "--porcelain"], repo) == ""
