"""The from-scratch baseline (issue 18, Liu et al. 2019): its training budget, exactly, and a
tiny run of the stage through the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from pipeline_helpers import ROOT, tiny_params
from typer.testing import CliRunner

from mlprune.checkpoint import load_checkpoint, save_checkpoint
from mlprune.cli import app
from mlprune.config import load_params, parse_section, section
from mlprune.data.voc import split_validation
from mlprune.errors import MlpruneError
from mlprune.pipeline.phase_config import parse_phases
from mlprune.pipeline.scratch import pruned_model_schedules, scratch_schedule, training_budget
from mlprune.presets import resolve_preset
from mlprune.pruning.surgery import prune_filters
from mlprune.schedule import TrainConfig, images_seen


def schedules_of(params: dict, source: str = "phase4") -> list[TrainConfig]:
    phases = parse_phases(section(params, "phases"), section(params, "phase_defaults"), section(params, "model.name"))
    return pruned_model_schedules(parse_section(params, "pretrain", TrainConfig), phases, source)


def test_the_detection_default_budget():
    # 1,800 trainval images less the 10 % validation split; every epoch drops its ragged batch,
    # so pretraining draws 1620 // 8 * 8 = 1616 images an epoch, not 1620.
    n_train = len(split_validation(list(range(1800)), 0.1, seed=0)[0])
    assert n_train == 1620
    params = load_params(ROOT / "params.yaml")
    # Every phase: 2 L1 epochs of 600 images and 2 retrain epochs of 800 (phase 2: of 1,200).
    assert training_budget(schedules_of(params), n_train) == 3 * 1616 + 4 * (1200 + 1600) + 800 == 16848
    schedule = scratch_schedule(parse_section(params, "pretrain", TrainConfig), 16848, n_train)
    # 2106 steps of 8 over ceil(2106 / 202) = 11 epochs of 191 steps: 40 images short of the budget.
    assert (schedule.epochs, schedule.epoch_images, images_seen(schedule, n_train)) == (11, 1528, 16808)
    assert schedule.lr == 3.0e-3 and schedule.warmup_iters == 50 and schedule.augment == ["flip"]


def test_the_classification_default_budget():
    params = resolve_preset("classification", ROOT / "configs")
    # 5,400 training crops, batches of 128: 42 steps (5,376 images) an epoch everywhere.
    # Every phase: 3 L1 epochs; 12 retrain epochs in phase 1, 24 in phases 2-4.
    phases = 4 * 3 * 5376 + (12 + 3 * 24) * 5376
    assert training_budget(schedules_of(params), 5400) == 8 * 5376 + phases == 559104
    schedule = scratch_schedule(parse_section(params, "pretrain", TrainConfig), 559104, 5400)
    assert (schedule.epochs, schedule.epoch_images) == (104, 5376)


def test_the_budget_follows_the_chain_to_the_source_only():
    params = load_params(ROOT / "params.yaml")
    assert training_budget(schedules_of(params, "phase2"), 1620) == 3 * 1616 + (1200 + 1600) + (1200 + 2400)


def test_a_budget_under_one_batch_is_refused():
    with pytest.raises(MlpruneError, match=r"^scratch: the pruned model saw 7 training images, not one batch"):
        scratch_schedule(TrainConfig(epochs=1, batch_size=8), 7, 100)


def test_scratch_stage_trains_the_final_widths_afresh(tmp_path, tiny_voc, tiny_detector):
    params = tiny_params()
    params["data"]["root"] = str(tiny_voc)
    # A budget of three batches: 1 pretraining epoch, phase 2's L1 fine-tune and phase 4's retrain.
    params["pretrain"]["epochs"] = 1
    params["phase_defaults"]["l1"]["epochs"] = params["phase_defaults"]["retrain"]["epochs"] = 0
    params["phases"]["phase2"]["l1"] = {"epochs": 1}
    params["phases"]["phase4"]["retrain"] = {"epochs": 1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    final = prune_filters(tiny_detector, {"conv5_3": [0, 1, 2], "conv7": list(range(10))})
    save_checkpoint(tmp_path / "final.pt", final)
    result = CliRunner().invoke(app, [
        "scratch", "--final", str(tmp_path / "final.pt"), "--out", str(tmp_path / "model.pt"),
        "--history", str(tmp_path / "train.csv"), "--budget", str(tmp_path / "budget.json"),
        "--work-dir", str(tmp_path / "work"), "--params", str(tmp_path / "params.yaml")])
    assert result.exit_code == 0, result.output
    model = load_checkpoint(tmp_path / "model.pt")
    assert model.spec == final.spec  # same widths, and BatchNorm (smoke: model.batch_norm) folded away
    assert model.spec.widths["conv5_3"] == 3 and model.spec.widths["conv7"] == 10
    fresh, pruned = model.state_dict(), final.state_dict()
    assert all(not fresh[key].equal(pruned[key]) for key in pruned if key.endswith("weight"))
    # 7 training images (8 less 1 for validation), batches of 4: one step of 4 images an epoch.
    assert json.loads((tmp_path / "budget.json").read_text()) == {
        "train_images": 7, "pruned_model_images": 12, "scratch_images": 12, "epochs": 3, "epoch_images": 4}
    with open(tmp_path / "train.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2", "3"]
    assert not Path(tmp_path / "work").exists()
