"""The Pareto sweep table and plot (issue 18), from a `dvc exp show --json` output whose
structure was recorded from DVC 3.67 (a baseline commit, experiments that succeeded,
one failed run, one still queued), with mlprune's metric files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlprune.cli import app
from mlprune.errors import MlpruneError
from mlprune.pareto import (
    check_locks,
    drop_removed_stages,
    experiment_runs,
    flatten,
    on_front,
    pareto_rows,
    read_exp_show,
    stale_stages,
)

EXP_SHOW = Path(__file__).parent / "data" / "exp_show.json"


def row(experiment, l1, tolerance, compression, score, scratch, front):
    return {"experiment": experiment, "phase_defaults.l1_strength": l1, "phases.phase2.tolerance": tolerance,
            "final": "phase4", "score_name": "map_voc07", "compression_x": compression, "score": score,
            "scratch_compression_x": compression, "scratch_score": scratch, "pretrain_score": 0.8873,
            "on_front": front}


def runs() -> list[tuple[str, str, dict]]:
    return list(experiment_runs(read_exp_show(EXP_SHOW)))


def test_one_row_per_finished_experiment_with_the_swept_params():
    assert pareto_rows(runs()) == [
        row("main", 0.5, 0.03, 1.24, 0.8869, 0.85, True),
        row("lucky-bell", 1.0, 0.03, 2.1, 0.8555, 0.8702, False),  # quiet-fern: smaller and more accurate
        row("brisk-cove", 0.25, 0.05, 1.6, 0.8801, 0.8604, True),
        row("quiet-fern", 1.0, 0.05, 2.3, 0.8601, 0.8555, True),
    ]


def test_failed_and_queued_runs_are_named_not_plotted():
    states = {name: state for name, state, _ in runs()}
    assert states == {"main": "success", "idle-wren": "queued", "lucky-bell": "success", "brisk-cove": "success",
                      "quiet-fern": "success", "stale-moth": "failed"}


def test_flatten_keeps_lists_whole():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": {}}) == {"a.b": 1, "a.c": [1, 2], "d": {}}


def test_on_front():
    points = [{"compression_x": 2.0, "score": 0.8}, {"compression_x": 2.0, "score": 0.7},
              {"compression_x": 1.0, "score": 0.9}]
    assert [on_front(p, points) for p in points] == [True, False, True]


def test_no_finished_experiment_is_an_error():
    with pytest.raises(MlpruneError, match=r"^dvc exp show: no finished experiment has a final evaluation"):
        pareto_rows(list(experiment_runs([{"rev": "workspace", "name": None, "data": {}, "error": None,
                                           "experiments": None}])))


def lock(grid: list[float], l1_strength: float) -> dict:
    """A dvc.lock of two stages, with the params DVC records for each."""
    return {"schema": "2.0", "stages": {
        "threshold_search@phase1": {"cmd": "python stages/threshold_search.py", "params": {"params.yaml": {
            "threshold": {"grid": grid, "relative_to": "mean_abs"}, "phase_defaults.tolerance": 0.03}}},
        "l1_finetune@phase1": {"cmd": "python stages/l1_finetune.py", "params": {"params.yaml": {
            "phase_defaults.l1_strength": l1_strength}}},
        "data": {"cmd": "python stages/data.py"}}}


def test_stale_stages_are_those_run_with_other_params():
    params = {"threshold": {"grid": [0.25, 0.5], "relative_to": "mean_abs"},
              "phase_defaults": {"tolerance": 0.03, "l1_strength": 1.0}}
    assert stale_stages(lock([0.25, 0.5], 1.0), params) == []
    assert stale_stages(lock([0.5], 0.5), params) == ["threshold_search@phase1", "l1_finetune@phase1"]
    assert stale_stages(lock([0.25, 0.5], 1.0), {"threshold": params["threshold"]}) == ["threshold_search@phase1",
                                                                                       "l1_finetune@phase1"]


def test_stale_stages_include_those_run_on_another_model():
    """A run for a target leaves a later stage's entry as the baseline ran it: same params,
    but its dep is a model the re-run stages no longer produce."""
    params = {"threshold": {"grid": [0.25, 0.5], "relative_to": "mean_abs"},
              "phase_defaults": {"tolerance": 0.03, "l1_strength": 1.0}}
    run = lock([0.25, 0.5], 1.0)
    run["stages"]["l1_finetune@phase1"]["outs"] = [{"path": "models/phase1/l1.pt", "hash": "md5", "md5": "new"}]
    run["stages"]["scratch"] = {"deps": [{"path": "models/phase1/l1.pt", "hash": "md5", "md5": "old"},
                                         {"path": "mlprune/train.py", "hash": "md5", "md5": "code"}]}
    assert stale_stages(run, params) == ["scratch"]
    run["stages"]["scratch"]["deps"][0]["md5"] = "new"
    assert stale_stages(run, params) == []


def test_a_run_that_did_not_reproduce_every_stage_is_left_out():
    grid = [0.25, 0.5, 0.75, 1.0, 1.5]
    locks = {"1" * 40: lock(grid, 1.0), "2" * 40: lock(grid, 0.5), "3" * 40: lock(grid, 1.0)}  # brisk-cove: 0.25
    checked = check_locks(runs(), locks.get)
    states = {name: state for name, state, _ in checked}
    assert states["brisk-cove"] == "stale: l1_finetune@phase1 not re-run"
    assert states["lucky-bell"] == states["quiet-fern"] == states["main"] == "success"  # main: no lock, unchecked
    assert [row["experiment"] for row in pareto_rows(checked)] == ["main", "lucky-bell", "quiet-fern"]


def test_pareto_command_writes_the_table_and_the_plot(tmp_path):
    result = CliRunner().invoke(app, ["pareto", "--exp-show-json", str(EXP_SHOW), "--out", str(tmp_path / "p.csv"),
                                      "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("4 experiment(s); skipped idle-wren (queued), stale-moth (failed)")
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["experiment"] for r in rows] == ["main", "lucky-bell", "brisk-cove", "quiet-fern"]
    assert rows[2]["phases.phase2.tolerance"] == "0.05" and rows[2]["scratch_score"] == "0.8604"
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_saved_output_that_is_not_a_list_is_refused(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"rev": "workspace"}))
    with pytest.raises(MlpruneError, match=r"x.json: expected the list `dvc exp show --json` prints$"):
        read_exp_show(tmp_path / "x.json")


def test_entries_of_stages_no_longer_in_the_pipeline_are_not_checked():
    # DVC keeps a removed stage's lock entry (here one from before `evaluate` became a foreach):
    # its recorded params never change again, so every sweep run would look stale.
    params = {"threshold": {"grid": [0.25, 0.5], "relative_to": "mean_abs"},
              "phase_defaults": {"tolerance": 0.03, "l1_strength": 1.0}}
    old = lock([0.25, 0.5], 1.0)
    old["stages"]["evaluate_phase@phase1"] = {"params": {"params.yaml": {"evaluate.batch_size": 16}}}
    assert stale_stages(old, params) == ["evaluate_phase@phase1"]
    current = drop_removed_stages(old, {"threshold_search@phase1", "l1_finetune@phase1"})
    assert stale_stages(current, params) == []
    assert set(current["stages"]) == {"threshold_search@phase1", "l1_finetune@phase1"}
