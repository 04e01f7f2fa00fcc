"""The second, adversarial bad-input round (issue 15), through the `mlprune` CLI.

As in test_bad_input.py, every case checks the exact one-line error, exit code 2 and
that the output folder, holding an earlier run's results, is left byte for byte as it
was. Each group is named after the item of the issue it covers.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from conftest import CLASSES
from stage_workspace import snapshot
from typer.testing import CliRunner

from mlprune.checkpoint import FORMAT, save_checkpoint
from mlprune.cli import app
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model

TRAINING_STAGES = {"pretrain": "pretrain", "l1-finetune": "phases.phase1.l1", "retrain": "phases.phase1.retrain",
                   "kdet": "kdet.retrain"}
MODEL_INPUT = {"l1-finetune": "start.pt", "threshold-search": "l1.pt", "retrain": "pruned.pt", "kdet": "model.pt",
               "evaluate": "model.pt", "surgery": "l1.pt"}


def detector(classes=CLASSES, **spec_options) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(build_spec("ssd300", len(classes) + 1, width=0.0625, classes=classes, **spec_options))


def save_inputs(ws, stage: str, model: torch.nn.Module | None = None) -> Path:
    """The stage's input checkpoint (a tiny detector for tiny_voc's classes, or `model`)."""
    path = ws.inputs / MODEL_INPUT[stage]
    save_checkpoint(path, model if model is not None else detector())
    if stage == "retrain":  # threshold search's JSON: the start model's score
        (ws.inputs / "threshold.json").write_text(json.dumps({"start_score": 0.0}))
    return path


# --- 1. a schedule that takes no step ---------------------------------------------------

@pytest.mark.parametrize("stage", sorted(TRAINING_STAGES))
def test_batch_larger_than_the_training_images(ws, stage):
    """tiny_voc has 8 trainval images; the validation split keeps one."""
    key = TRAINING_STAGES[stage]
    ws.set_param(f"{key}.batch_size", 8)
    if stage != "pretrain":
        save_inputs(ws, stage)
    ws.assert_refused(stage, f"{key}.batch_size: 8 is more than the 7 training images of {ws.voc} "
                             "(after the validation split): an epoch would take no step")


def test_epoch_smaller_than_a_batch(ws):
    ws.set_param("phase_defaults.l1.epoch_images", 3)
    ws.assert_refused("validate", "phase_defaults.l1.epoch_images: must be 0 (the whole set) or at least batch_size "
                                  "(4), got 3: an epoch of fewer images than one batch takes no step")


def test_pretraining_for_no_epoch(ws):
    ws.set_param("pretrain.epochs", 0)
    ws.assert_refused("pretrain", "pretrain.epochs: must be >= 1 (0 would save an untrained model; 0 keeps a "
                                  "model.init as it is), got 0")


# --- 2, 6. values accepted before and meaningless ----------------------------------------

@pytest.mark.parametrize("key,value,message", [
    ("pretrain.grad_clip", -1.0, "pretrain.grad_clip: must be > 0, got -1.0"),
    ("pretrain.grad_clip", 0, "pretrain.grad_clip: must be > 0, got 0.0"),
    ("pretrain.weight_decay", -1e-4, "pretrain.weight_decay: must be >= 0, got -0.0001"),
    ("pretrain.warmup_iters", -5, "pretrain.warmup_iters: must be >= 0, got -5"),
    ("pretrain.lr_steps", [0.8, 0.5],
     "pretrain.lr_steps: fractions of training in (0, 1), strictly increasing, got [0.8, 0.5]"),
    ("pretrain.lr_steps", [-0.5, 0.5],
     "pretrain.lr_steps: fractions of training in (0, 1), strictly increasing, got [-0.5, 0.5]"),
    ("kdet.retrain.grad_clip", -1.0, "kdet.retrain.grad_clip: must be > 0, got -1.0"),
    ("phase_defaults.retrain.weight_decay", -1.0, "phase_defaults.retrain.weight_decay: must be >= 0, got -1.0"),
    ("common.seed", -1, "common.seed: must be in [0, 2**32) (numpy's range), got -1"),
])
def test_meaningless_values(ws, key, value, message):
    ws.set_param(key, value)
    ws.assert_refused("validate", message)
    if key.startswith("pretrain."):
        ws.assert_refused("pretrain", message)


def test_a_misspelt_section(ws):
    params = yaml.safe_load(ws.params.read_text())
    params["pretrian"] = params.pop("pretrain")
    ws.params.write_text(yaml.safe_dump(params))
    ws.assert_refused("validate", "pretrian: unknown section (did you mean 'pretrain'? the sections are "
                                  "common, data, synthetic, model, pretrain, evaluate, threshold, phase_defaults, "
                                  "phases, kdet, scratch)")


# --- 3. non-finite values ------------------------------------------------------------------

@pytest.mark.parametrize("key,value,message", [
    ("pretrain.lr", float("inf"), "pretrain.lr: expected a finite number, got inf"),
    ("pretrain.lr", float("nan"), "pretrain.lr: expected a finite number, got nan"),
    ("phase_defaults.l1_strength", float("inf"), "phase_defaults.l1_strength: expected a finite number, got inf"),
    ("threshold.grid", [0.5, float("inf")], "threshold.grid[1]: expected a finite number, got inf"),
    ("model.width", 10**400, f"model.width: expected a finite number, got {10**400}"),
])
def test_non_finite_params(ws, key, value, message):
    ws.set_param(key, value)
    ws.assert_refused("validate", message)


def test_a_diverging_run_stops_at_the_first_non_finite_loss(ws):
    """lr 1e20: the first step leaves finite but huge weights, the next loss is NaN. The
    resume state of epoch 1 stays; no model or history is written."""
    ws.set_param("pretrain.lr", 1e20)
    before = snapshot(ws.out)
    result = CliRunner().invoke(app, ws.cli_args("pretrain"))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "error: pretrain: epoch 2/2, step 1: the loss is nan; training stopped before saving anything of this epoch "
        "(a lower lr may help)")
    resume = ws.out / "work" / "resume.pt"
    assert {k: v for k, v in snapshot(ws.out).items() if not k.startswith("work")} == before
    state = torch.load(resume, weights_only=True)
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())


def nan_checkpoint(path: Path) -> None:
    """A checkpoint as save_checkpoint writes it, but with one NaN weight (save refuses those)."""
    model = detector()
    state = model.state_dict()
    state["backbone.convs.conv1_1.weight"][0, 0, 0, 0] = float("nan")
    torch.save({"format": FORMAT, "spec": json.dumps(model.spec.to_json()), "state_dict": state}, path)


@pytest.mark.parametrize("stage", ["evaluate", "surgery", "l1-finetune"])
def test_a_checkpoint_with_nan_weights_is_refused(ws, stage):
    path = ws.inputs / MODEL_INPUT[stage]
    nan_checkpoint(path)
    ws.assert_refused(stage, f"{path}: backbone.convs.conv1_1.weight holds 1 non-finite value(s) (NaN or inf): the "
                             "training that wrote it diverged")


# --- 4. a model built for other classes ------------------------------------------------------

@pytest.mark.parametrize("stage", ["l1-finetune", "threshold-search", "retrain", "kdet", "evaluate"])
@pytest.mark.parametrize("classes", [CLASSES[:2], [*CLASSES[1:], CLASSES[0]]], ids=["fewer", "reordered"])
def test_a_model_built_for_other_classes(ws, stage, classes):
    path = save_inputs(ws, stage, detector(classes))
    ws.assert_refused(stage, f"{path}: built for classes {classes}, data.classes lists {CLASSES}")


def test_an_old_checkpoint_is_checked_by_its_number_of_classes(ws):
    """A checkpoint written before the spec stored class names: its number of outputs is checked."""
    path = save_inputs(ws, "evaluate", build_model(build_spec("ssd300", 3, width=0.0625)))
    ws.assert_refused("evaluate", f"{path}: built for 2 classes, data.classes lists 5: {CLASSES}")


# --- 5. a selection that removes filters the phase may not -----------------------------------

def selection_removing(ws, layer: str, removed: int, width: int) -> Path:
    path = ws.inputs / "selection.json"
    entry = {"width_before": width, "removed": list(range(removed)), "kept": list(range(removed, width))}
    path.write_text(json.dumps({"layers": {layer: entry}}))
    return path


def assert_phase2_surgery_refused(ws, message: str) -> None:
    save_inputs(ws, "surgery")
    args = ws.cli_args("surgery")
    args[args.index("phase1")] = "phase2"
    before = snapshot(ws.out)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"error: {message}"
    assert snapshot(ws.out) == before


def test_selection_removing_filters_of_another_phase(ws):
    path = selection_removing(ws, "conv9_1", 2, 8)  # a layer of phase 4
    assert_phase2_surgery_refused(ws, f"{path}: layer conv9_1 is not selected in phase2 (only conv4_3, conv5_1, "
                                      "conv5_2, conv5_3, conv6 may lose filters), but the file removes 2 of its 8 "
                                      "filters")


def test_selection_removing_filters_of_the_phases_last_layer(ws):
    """Phase 2's last layer, conv7 (64 filters at this width), only loses input channels."""
    path = selection_removing(ws, "conv7", 60, 64)
    assert_phase2_surgery_refused(ws, f"{path}: layer conv7 is the last layer of phase2, which only loses input "
                                      "channels (the next phase selects its filters), but the file removes 60 of its "
                                      "64 filters")


# --- 7, 8. augmentation names, a batch of one with BatchNorm -----------------------------------

@pytest.mark.parametrize("stage", ["validate", "pretrain"])
def test_unknown_augmentation(ws, stage):
    ws.set_param("pretrain.augment", ["flip", "rotate"])
    ws.assert_refused(stage, "pretrain.augment: unknown augmentation 'rotate' for detection; allowed: photometric, "
                             "zoom_out, iou_crop, flip")


def test_unknown_augmentation_in_a_phase_default(ws):
    ws.set_param("phase_defaults.retrain.augment", ["crop"])  # a classification augmentation
    ws.assert_refused("validate", "phase_defaults.retrain.augment: unknown augmentation 'crop' for detection; "
                                  "allowed: photometric, zoom_out, iou_crop, flip")


def test_unknown_augmentation_in_a_preset(tmp_path, monkeypatch, tiny_voc):
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    params["pretrain"]["augment"] = ["rotate"]
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mine.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "params.yaml").write_text("mine: 1\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["preset", "mine"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: configs/mine.yaml: pretrain.augment: unknown augmentation 'rotate' "
                                          "for detection; allowed: photometric, zoom_out, iou_crop, flip"]
    assert (tmp_path / "params.yaml").read_text() == "mine: 1\n"


@pytest.mark.parametrize("stage", ["validate", "pretrain"])
def test_a_batch_of_one_with_batch_norm(ws, stage):
    ws.set_param("pretrain.batch_size", 1)
    ws.assert_refused(stage, "pretrain.batch_size: must be >= 2 with model.batch_norm: true (BatchNorm needs more "
                             "than one image per batch), got 1")


# --- 9. files that are no checkpoint at all ---------------------------------------------------

def zip_without_torch_data() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return buffer.getvalue()


@pytest.mark.parametrize("content,reason", [
    (b"model: ssd300\nweights: none\n", "not the zip archive torch.save writes"),
    (b"hello world\n", "not the zip archive torch.save writes"),  # torch.load: KeyError
    (b"a: 1\n", "not the zip archive torch.save writes"),  # torch.load: IndexError
    (random.Random(0).randbytes(3000), "not the zip archive torch.save writes"),
    (b"", "an empty file"),
    (zip_without_torch_data(), "truncated or corrupt: ..."),
], ids=["yaml", "text", "short_text", "random_bytes", "empty", "zip_without_torch_data"])
@pytest.mark.parametrize("stage", ["surgery", "evaluate"])
def test_a_file_that_is_no_checkpoint(ws, stage, content, reason):
    path = ws.inputs / MODEL_INPUT[stage]
    path.write_bytes(content)
    ws.assert_refused(stage, f"{path}: not an mlprune checkpoint ({reason})")


# --- 12. a phase that starts from nothing --------------------------------------------------------

@pytest.mark.parametrize("key,value,message", [
    ("phases.phase2.start", "phase9", "phases.phase2.start: must be pretrain or an earlier phase (pretrain, phase1), "
                                      "got 'phase9'"),
    ("phases.phase1.start", "phase2", "phases.phase1.start: must be pretrain or an earlier phase (pretrain), "
                                      "got 'phase2'"),
    ("kdet.source", "phase9", "kdet.source: must name a phase (phase1, phase2, phase3, phase4), got 'phase9'"),
    ("kdet.ks", [2, 7], "kdet.ks: ssd300 has 6 detection sources, so k must be in 1..6, got 7"),
])
def test_a_model_that_no_stage_makes(ws, key, value, message):
    ws.set_param(key, value)
    ws.assert_refused("validate", message)
