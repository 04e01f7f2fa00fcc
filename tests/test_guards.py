"""The guards around a phase's selection (issue 18): threshold search warns when it chose the
grid's largest value and measures the tolerance from the L1 or the start model; check_pruned
reports the pruned model's validation score beside the thresholded one's, and refuses it on request."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from conftest import CLASSES
from pipeline_helpers import tiny_params
from typer.testing import CliRunner

from mlprune.checkpoint import load_checkpoint, save_checkpoint
from mlprune.cli import app
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model, count_parameters
from mlprune.pipeline import retrain as retrain_module
from mlprune.pipeline import threshold_search as threshold_search_module
from mlprune.pipeline.check_pruned import hardest_cut
from mlprune.pipeline.threshold_search import largest_grid_warning
from mlprune.pruning.surgery import prune_filters


@pytest.fixture
def workspace(tmp_path, tiny_voc, tiny_detector) -> Path:
    """params.yaml over tiny_voc (4 validation images, grid [0.1, 0.5, 1.0], tolerance 1.0), an L1
    and a start checkpoint."""
    params = tiny_params()
    params["data"].update(root=str(tiny_voc), val_fraction=0.5)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    save_checkpoint(tmp_path / "l1.pt", tiny_detector)
    torch.manual_seed(1)
    save_checkpoint(tmp_path / "start.pt", build_model(build_spec("ssd300", len(CLASSES) + 1, width=0.0625)))
    return tmp_path


def set_param(params_file: Path, dotted_key: str, value) -> None:
    params = yaml.safe_load(params_file.read_text())
    *parents, key = dotted_key.split(".")
    node = params
    for name in parents:
        node = node.setdefault(name, {})
    node[key] = value
    params_file.write_text(yaml.safe_dump(params))


def invoke(ws: Path, *args: str):
    return CliRunner().invoke(app, [*args, "--params", str(ws / "params.yaml")])


def assert_refused(result, line: str, *absent: Path) -> None:
    """The stage exited 2 with `line` (or, a compiled pattern, a line matching it) as its last
    stderr line, and wrote none of `absent`."""
    assert result.exit_code == 2, result.output
    last = result.stderr.splitlines()[-1]
    assert re.fullmatch(line, last) if isinstance(line, re.Pattern) else last == line, last
    assert not [path for path in absent if path.exists()]


def search_threshold(ws: Path):
    return invoke(ws, "threshold-search", "--phase", "phase1", "--model", str(ws / "l1.pt"),
                  "--start", str(ws / "start.pt"), "--sweep", str(ws / "sweep.csv"),
                  "--chosen", str(ws / "threshold.json"))


# --- threshold search ------------------------------------------------------------------

def test_largest_grid_value_is_warned_about():
    assert largest_grid_warning(1.0, [0.25, 0.5, 1.0]) == (
        "warning: threshold.grid: the chosen value 1.0 is the grid's largest, so larger thresholds may stay "
        "within tolerance too; extend the grid, e.g. dvc exp run -S 'threshold.grid=[0.25,0.5,1,2,4]'")
    assert largest_grid_warning(0.5, [0.25, 0.5, 1.0]) is None


def test_threshold_search_records_both_references_and_the_grid_warning(workspace):
    result = search_threshold(workspace)
    assert result.exit_code == 0, result.output
    assert "warning: threshold.grid: the chosen value 1.0 is the grid's largest" in result.output
    chosen = json.loads((workspace / "threshold.json").read_text())
    assert chosen["grid"] == 1.0 and chosen["largest_grid_value"] is True  # tolerance 1.0: everything passes
    assert chosen["reference"] == "l1" and chosen["reference_score"] == chosen["l1_score"]
    assert {"start_score", "l1_score", "score", "t", "sparsity"} <= set(chosen)


@pytest.fixture
def scripted_scores(monkeypatch):
    """Validation scores in call order: the L1 model 0.6, the start model 0.9, then the
    grid's thresholded models 0.6, 0.55, 0.5."""
    scores = iter([0.6, 0.9, 0.6, 0.55, 0.5])
    monkeypatch.setattr(threshold_search_module, "validation_scorer",
                        lambda *args: (SimpleNamespace(score_name="map_voc07"), lambda model: next(scores), 0.0))


def test_tolerance_from_the_l1_model(workspace, scripted_scores):
    set_param(workspace / "params.yaml", "phases.phase1.tolerance", 0.05)
    assert search_threshold(workspace).exit_code == 0
    chosen = json.loads((workspace / "threshold.json").read_text())
    assert (chosen["grid"], chosen["score"], chosen["largest_grid_value"]) == (0.5, 0.55, False)
    assert (chosen["reference"], chosen["reference_score"], chosen["l1_score"], chosen["start_score"]) == (
        "l1", 0.6, 0.6, 0.9)


def test_tolerance_from_the_start_model(workspace, scripted_scores):
    set_param(workspace / "params.yaml", "phases.phase1.tolerance", 0.05)
    set_param(workspace / "params.yaml", "phase_defaults.tolerance_reference", "start")
    result = search_threshold(workspace)
    assert_refused(result, re.compile(
        r"error: threshold.grid: no threshold keeps the score within 0.05 of the start model's 0.9000; the best "
        r"was t=\S+ \(grid value 0.1\) with 0.6000: add smaller grid values or raise the phase's tolerance"),
        workspace / "threshold.json")


def score_l1_model_at(monkeypatch, score_name: str, chance: float) -> None:
    """The L1 model scores 0.3 on validation (and at every threshold), the start model 0.9."""
    scores = iter([0.3, 0.9, 0.3, 0.3, 0.3])
    monkeypatch.setattr(threshold_search_module, "validation_scorer",
                        lambda *args: (SimpleNamespace(score_name=score_name), lambda model: next(scores), chance))


@pytest.fixture
def broken_l1_model(monkeypatch):
    """The L1 model scores 0.3 on validation, the start model 0.9 (a detector: chance is 0)."""
    score_l1_model_at(monkeypatch, "map_voc07", 0.0)


def test_an_l1_model_that_lost_most_of_the_start_models_score_is_refused(workspace, broken_l1_model):
    set_param(workspace / "params.yaml", "threshold.min_l1_retained", 0.5)
    result = search_threshold(workspace)
    assert_refused(result, (
        "error: threshold.min_l1_retained: the L1 model scores 0.3000 map_voc07 on validation against the start "
        "model's 0.9000 (chance 0.0000), keeping 33% of its margin over chance, below 50%: the L1 fine-tune "
        "broke the model; lower the phase's l1_strength or lengthen l1_ramp"),
        workspace / "threshold.json", workspace / "sweep.csv")


def test_the_l1_model_check_can_be_turned_off(workspace, broken_l1_model):
    set_param(workspace / "params.yaml", "threshold.min_l1_retained", 0.0)
    assert search_threshold(workspace).exit_code == 0
    assert json.loads((workspace / "threshold.json").read_text())["l1_score"] == 0.3


def test_turned_off_the_l1_model_check_passes_a_model_below_chance(workspace, monkeypatch):
    """With min_l1_retained 0 the check is off, not "at least chance": a few-step model may score below it."""
    score_l1_model_at(monkeypatch, "top1", 0.5)
    set_param(workspace / "params.yaml", "threshold.min_l1_retained", 0.0)
    assert search_threshold(workspace).exit_code == 0


# --- check_pruned ----------------------------------------------------------------------

def test_hardest_cut_is_the_largest_fraction_removed():
    before = {"conv1_1": 4, "conv1_2": 8, "conv2_1": 8}
    assert hardest_cut(before, {"conv1_1": 2, "conv1_2": 2, "conv2_1": 8}) == {
        "layer": "conv1_2", "width_before": 8, "width_after": 2, "fraction_removed": 0.75}
    assert hardest_cut(before, {"conv1_1": 2, "conv1_2": 4, "conv2_1": 8})["layer"] == "conv1_1"  # tie: first
    assert hardest_cut(before, before) is None


@pytest.fixture
def pruned_workspace(workspace, tiny_detector) -> Path:
    """Surgery keeps 1 of conv5_3's 32 filters; threshold search claimed 0.777 on validation."""
    save_checkpoint(workspace / "pruned.pt", prune_filters(tiny_detector, {"conv5_3": [0]}))
    (workspace / "threshold.json").write_text(json.dumps({"t": 0.01, "grid": 0.5, "score": 0.777}))
    return workspace


def check(ws: Path):
    return invoke(ws, "check-pruned", "--phase", "phase2", "--model", str(ws / "pruned.pt"),
                  "--l1-model", str(ws / "l1.pt"), "--threshold", str(ws / "threshold.json"),
                  "--metrics", str(ws / "pruned.json"))


def test_check_pruned_reports_scores_params_and_the_hardest_cut(pruned_workspace, tiny_detector):
    result = check(pruned_workspace)
    assert result.exit_code == 0, result.output
    metrics = json.loads((pruned_workspace / "pruned.json").read_text())
    pruned = prune_filters(tiny_detector, {"conv5_3": [0]})
    assert metrics["score_name"] == "map_voc07" and metrics["thresholded_score"] == 0.777
    assert 0 <= metrics["pruned_score"] <= 1 and metrics["drop"] == pytest.approx(0.777 - metrics["pruned_score"])
    assert metrics["params_before"] == count_parameters(tiny_detector)
    assert metrics["params_after"] == count_parameters(pruned) < metrics["params_before"]
    assert metrics["hardest_cut"] == {"layer": "conv5_3", "width_before": 32, "width_after": 1,
                                      "fraction_removed": 0.9688}
    assert metrics["max_pruned_drop"] is None


def test_check_pruned_refuses_a_drop_above_max_pruned_drop(pruned_workspace):
    assert check(pruned_workspace).exit_code == 0
    score = json.loads((pruned_workspace / "pruned.json").read_text())["pruned_score"]
    (pruned_workspace / "pruned.json").unlink()
    set_param(pruned_workspace / "params.yaml", "phases.phase2.max_pruned_drop", 0.1)
    result = check(pruned_workspace)
    assert_refused(result, (
        f"error: phases.phase2.max_pruned_drop: the pruned model scores {score:.3f} on validation, "
        f"{0.777 - score:.3f} below the thresholded 0.777; the layer cut hardest is conv5_3 (32 -> 1 filters)"),
        pruned_workspace / "pruned.json")


def test_check_pruned_passes_a_drop_within_max_pruned_drop(pruned_workspace):
    set_param(pruned_workspace / "params.yaml", "phases.phase2.max_pruned_drop", 0.8)
    assert check(pruned_workspace).exit_code == 0
    assert json.loads((pruned_workspace / "pruned.json").read_text())["max_pruned_drop"] == 0.8


# --- retrain ---------------------------------------------------------------------------

def retrain(ws: Path):
    return invoke(ws, "retrain", "--phase", "phase2", "--model", str(ws / "pruned.pt"),
                  "--threshold", str(ws / "threshold.json"), "--out", str(ws / "model.pt"),
                  "--history", str(ws / "retrain.csv"), "--work-dir", str(ws / "work"))


@pytest.fixture
def retrained_score(monkeypatch) -> dict[str, float]:
    """The validation score the retrained model gets: `["score"]`, 0.5 unless a test sets
    it (a detector: chance is 0)."""
    scored = {"score": 0.5}
    monkeypatch.setattr(retrain_module, "validation_scorer", lambda *args: (
        SimpleNamespace(score_name="map_voc07"), lambda model: scored["score"], 0.0))
    return scored


@pytest.fixture
def retrain_workspace(workspace, tiny_detector, retrained_score) -> Path:
    """A pruned model of a phase whose start model scored 0.6 (threshold search's JSON), the
    checks on (tiny_params turns them off)."""
    set_param(workspace / "params.yaml", "threshold.min_l1_retained", 0.5)
    save_checkpoint(workspace / "pruned.pt", tiny_detector)
    (workspace / "threshold.json").write_text(json.dumps({"start_score": 0.6}))
    return workspace


def test_a_retrained_model_at_chance_is_refused(retrain_workspace, retrained_score):
    retrained_score["score"] = 0.0
    result = retrain(retrain_workspace)
    assert_refused(result, (
        "error: phases.phase2.retrain: the retrained model scores 0.0000 map_voc07 on validation, chance level "
        "(0.0000); the phase's start model scored 0.6000: retraining collapsed; lower phases.phase2.retrain.lr or "
        "keep more filters (select.min_keep), or retrain with BatchNorm (retrain_batch_norm: true)"),
        retrain_workspace / "model.pt", retrain_workspace / "retrain.csv")


@pytest.mark.parametrize("batch_norm", [False, True])
def test_retrain_writes_the_pruned_structure_with_or_without_batch_norm(retrain_workspace, tiny_detector, batch_norm):
    set_param(retrain_workspace / "params.yaml", "phase_defaults.retrain_batch_norm", batch_norm)
    result = retrain(retrain_workspace)
    assert result.exit_code == 0, result.output
    assert "retrain: validation map_voc07 0.5000 (the phase's start model 0.6000, chance 0.0000)" in result.output
    retrained = load_checkpoint(retrain_workspace / "model.pt")
    assert len(retrained.backbone.norms) == 0 and retrained.spec == tiny_detector.spec
    before, after = tiny_detector.state_dict(), retrained.state_dict()
    assert before.keys() == after.keys()
    frozen = "backbone.convs.conv4_2.weight"  # before phase2's first layer: fixed, BN or not
    assert torch.equal(before[frozen], after[frozen])
    assert not torch.equal(before["backbone.convs.conv5_1.weight"], after["backbone.convs.conv5_1.weight"])


def test_retrain_needs_the_start_models_score(retrain_workspace):
    (retrain_workspace / "threshold.json").write_text(json.dumps({"t": 0.1}))
    result = retrain(retrain_workspace)
    assert_refused(result, (
        f"error: {retrain_workspace / 'threshold.json'}: expected a numeric 'start_score' (the phase's start "
        "model's), got None"), retrain_workspace / "model.pt")


def test_the_retrain_check_is_off_with_the_l1_check(retrain_workspace, retrained_score):
    """threshold.min_l1_retained 0 (models that score near chance) turns both checks off."""
    retrained_score["score"] = 0.0
    set_param(retrain_workspace / "params.yaml", "threshold.min_l1_retained", 0.0)
    assert retrain(retrain_workspace).exit_code == 0
    assert (retrain_workspace / "model.pt").exists()
