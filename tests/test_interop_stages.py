"""The interop stages as a user runs them: `model.init` in pretrain, `mlprune export`."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from pipeline_helpers import tiny_params
from typer.testing import CliRunner

from mlprune.checkpoint import load_checkpoint, save_checkpoint
from mlprune.cli import app


def pretrain_args(tmp_path: Path) -> list[str]:
    return ["pretrain", "--out", str(tmp_path / "model.pt"), "--history", str(tmp_path / "train.csv"),
            "--work-dir", str(tmp_path / "work"), "--params", str(tmp_path / "params.yaml")]


def write_params(tmp_path: Path, tiny_voc: Path, init: str) -> None:
    params = tiny_params()
    params["data"]["root"] = str(tiny_voc)
    params["model"] |= {"init": init, "batch_norm": False}
    params["pretrain"] |= {"epochs": 0}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))


def test_pretrain_starts_from_a_checkpoint_under_data_init(tmp_path, tiny_voc, tiny_detector, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/init").mkdir(parents=True)
    save_checkpoint(tmp_path / "data/init/start.pt", tiny_detector)
    write_params(tmp_path, tiny_voc, "data/init/start.pt")
    result = CliRunner().invoke(app, pretrain_args(tmp_path))
    assert result.exit_code == 0, result.output
    assert "pretrain: starts from data/init/start.pt (mlprune checkpoint" in result.output
    started = load_checkpoint(tmp_path / "model.pt")
    for key, value in tiny_detector.state_dict().items():  # no epoch: the weights are the file's
        assert torch.equal(started.state_dict()[key], value)


def test_an_init_file_outside_data_init_is_refused(tmp_path, tiny_voc, tiny_detector, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_checkpoint(tmp_path / "start.pt", tiny_detector)
    write_params(tmp_path, tiny_voc, "start.pt")
    result = CliRunner().invoke(app, pretrain_args(tmp_path))
    assert result.exit_code == 2
    assert ("error: model.init: start.pt is not under data/init/; copy or link the file there, so DVC re-runs "
            "pretrain when it changes") in result.output
    assert not (tmp_path / "model.pt").exists()


@pytest.mark.parametrize("with_metrics", [False, True])
def test_export_command_writes_onnx_close_to_torch(tmp_path, tiny_detector, with_metrics):
    save_checkpoint(tmp_path / "model.pt", tiny_detector)
    args = ["export", str(tmp_path / "model.pt"), "--out", str(tmp_path / "model.onnx")]
    result = CliRunner().invoke(app, args + (["--metrics", str(tmp_path / "onnx.json")] if with_metrics else []))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "model.onnx").stat().st_size > 0
    if with_metrics:
        assert json.loads((tmp_path / "onnx.json").read_text())["max_abs_diff"] < 1e-4


def test_evaluate_times_the_onnx_export_when_asked(ws, tiny_detector):
    """The pipelines of the other tests turn `evaluate.onnx_latency` off (an export per model);
    here the evaluate stage runs with it on, as both defaults do."""
    save_checkpoint(ws.inputs / "model.pt", tiny_detector)
    ws.set_param("evaluate.onnx_latency", True)
    result = CliRunner().invoke(app, ws.cli_args("evaluate"))
    assert result.exit_code == 0, result.output
    metrics = json.loads((ws.out / "eval.json").read_text())
    assert metrics["onnx_cpu_latency_ms"] > 0 and metrics["cpu_latency_ms"] > 0
