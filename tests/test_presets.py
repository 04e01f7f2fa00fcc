"""Presets: every configs/*.yaml parses and builds its model; switching replaces params.yaml."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlprune.cli import app
from mlprune.config import load_params
from mlprune.models.build import build_model, count_parameters
from mlprune.presets import check_params, preset_names

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
PAPER = ["ssd300_voc", "ssd512_voc", "ssd512_gtsdb", "vgg16_cifar10", "vgg16_gtsrb"]


def test_every_preset_of_the_issue_exists():
    assert set(preset_names(CONFIGS)) >= {"detection", "classification", "smoke", *PAPER}


@pytest.mark.parametrize("name", preset_names(CONFIGS))
def test_preset_parses_and_builds_its_model(name):
    spec = check_params(load_params(CONFIGS / f"{name}.yaml"))
    assert count_parameters(build_model(spec)) > 0


@pytest.mark.parametrize("name", PAPER)
def test_paper_presets_are_full_width_with_bf16_on_cuda(name):
    params = load_params(CONFIGS / f"{name}.yaml")
    assert params["model"]["width"] == 1.0 and params["common"]["device"] == "auto"


def test_params_yaml_is_the_detection_default():
    default = yaml.safe_load((CONFIGS / "detection.yaml").read_text())
    assert yaml.safe_load((ROOT / "params.yaml").read_text()) == default


def test_switching_copies_the_preset(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    params = tmp_path / "params.yaml"
    result = CliRunner().invoke(app, ["preset", "classification", "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert params.read_text() == (CONFIGS / "classification.yaml").read_text()


def test_unknown_preset_leaves_params_untouched(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    params = tmp_path / "params.yaml"
    params.write_text("mine: 1\n")
    result = CliRunner().invoke(app, ["preset", "nope", "--params", str(params)])
    assert result.exit_code == 2
    assert "preset 'nope': no configs/nope.yaml" in result.output
    assert params.read_text() == "mine: 1\n"
