"""Bad input through the CLI: one line naming the field or file, exit code 2, no output."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlprune.cli import app

ROOT = Path(__file__).resolve().parents[1]


def params_with(tmp_path: Path, section: str, key: str, value) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def invoke(args: list[str]):
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize("section,key,value,message", [
    ("model", "width", 0, "model.width: must be > 0, got 0"),
    ("model", "name", "yolo", "model.name: unknown model 'yolo'"),
    ("model", "wdith", 1.0, "model.wdith: unknown key"),
    ("pretrain", "batch_size", 0, "pretrain.batch_size: must be >= 1, got 0"),
    ("pretrain", "lr", "fast", "pretrain.lr: expected a number, got 'fast'"),
    ("common", "device", "tpu", "common.device: must be one of"),
])
def test_bad_params_for_pretrain(tmp_path, section, key, value, message):
    params = params_with(tmp_path, section, key, value)
    out = tmp_path / "model.pt"
    result = invoke(["pretrain", "--params", str(params), "--out", str(out), "--history",
                     str(tmp_path / "h.csv"), "--work-dir", str(tmp_path / "work")])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "h.csv").exists()


def test_cuda_requested_without_cuda(tmp_path, tiny_voc, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    params = params_with(tmp_path, "common", "device", "cuda")
    result = invoke(["pretrain", "--params", str(params), "--out", str(tmp_path / "m.pt"), "--history",
                     str(tmp_path / "h.csv"), "--work-dir", str(tmp_path / "work")])
    assert result.exit_code == 2 and "set it to 'auto' or 'cpu'" in result.output


@pytest.mark.parametrize("grid,message", [
    ([], "threshold.grid: is empty"),
    ([1.0, 0.5], "threshold.grid: must be strictly increasing"),
    ([-0.5, 1.0], "threshold.grid: values must be >= 0"),
    (["a"], "threshold.grid[0]: expected a number"),
])
def test_bad_threshold_grid(tmp_path, grid, message):
    params = params_with(tmp_path, "threshold", "grid", grid)
    result = invoke(["threshold-search", "--params", str(params), "--phase", "phase1", "--model",
                     str(tmp_path / "l1.pt"), "--start", str(tmp_path / "start.pt"),
                     "--sweep", str(tmp_path / "s.csv"), "--chosen", str(tmp_path / "t.json")])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "s.csv").exists()


def test_missing_checkpoint_is_named(tmp_path):
    result = invoke(["surgery", "--phase", "phase1", "--model", str(tmp_path / "nope.pt"), "--selection",
                     str(tmp_path / "s.json"), "--out", str(tmp_path / "out.pt"), "--params",
                     str(ROOT / "params.yaml")])
    assert result.exit_code == 2 and "nope.pt: checkpoint not found" in result.output


def test_unknown_class_in_data_is_named(tmp_path, tiny_voc):
    params = params_with(tmp_path, "data", "root", str(tiny_voc))
    data = yaml.safe_load(params.read_text())
    data["data"]["classes"] = ["circle", "square"]  # the tiny dataset also has triangles, ...
    params.write_text(yaml.safe_dump(data))
    result = invoke(["pretrain", "--params", str(params), "--out", str(tmp_path / "m.pt"), "--history",
                     str(tmp_path / "h.csv"), "--work-dir", str(tmp_path / "work")])
    assert result.exit_code == 2 and ".xml" in result.output and "unknown class" in result.output
    assert not (tmp_path / "m.pt").exists()
