"""Presets: every configs/*.yaml resolves over its base, parses and builds the paper's model;
switching writes the resolved params.yaml; DVC tracks every value the stages parse."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dataset_writers import IMAGE_FOLDER_CLASSES, write_image_folder
from typer.testing import CliRunner

from mlprune.cli import app
from mlprune.config import load_params, merge_params
from mlprune.errors import ConfigError
from mlprune.models.build import build_model, count_parameters, fold_batch_norm
from mlprune.pipeline.phase_config import PHASE_STRUCTURE, phase_from_params
from mlprune.presets import (
    UNKNOWN_CLASS_COUNT,
    check_params,
    nested_pipeline,
    phase_structure_only,
    preset_names,
    resolve_preset,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
PAPER = ["ssd300_voc", "ssd512_voc", "ssd512_gtsdb", "vgg16_cifar10", "vgg16_gtsrb"]


def test_every_preset_of_the_issue_exists():
    assert set(preset_names(CONFIGS)) >= {"detection", "classification", "smoke", "vgg16_imagefolder", *PAPER}


@pytest.mark.parametrize("name", preset_names(CONFIGS))
def test_preset_resolves_and_parses(name):
    params = resolve_preset(name, CONFIGS)
    spec = check_params(params)
    dataset_classes = len(params["data"]["classes"]) or UNKNOWN_CLASS_COUNT  # an image folder not there yet
    assert spec.num_classes == dataset_classes + spec.family.extra_classes


def test_the_image_folder_preset_takes_its_classes_from_the_folders(tmp_path):
    params = resolve_preset("vgg16_imagefolder", CONFIGS)
    assert params["data"]["classes"] == [] and params["data"]["root"] == "/datasets/my_images"
    params["data"]["root"] = str(write_image_folder(tmp_path / "images"))
    assert check_params(params).num_classes == len(IMAGE_FOLDER_CLASSES)


def test_ssd300_voc_builds_the_papers_26_3_million_parameters():
    """SPEC's exact check: conv weights + biases + heads + L2Norm scale, 21 outputs, BN folded."""
    model = build_model(check_params(resolve_preset("ssd300_voc", CONFIGS)))
    assert count_parameters(fold_batch_norm(model.eval())) == 26_285_486


def test_a_derived_preset_is_its_base_updated():
    own = yaml.safe_load((CONFIGS / "smoke.yaml").read_text())
    base = resolve_preset(own.pop("base"), CONFIGS)
    resolved = resolve_preset("smoke", CONFIGS)
    # smoke sets its own phase_defaults, so it inherits the phases' structure only
    assert resolved == merge_params(phase_structure_only(base), own) | {"evaluate": resolved["evaluate"]}
    assert resolved["evaluate"]["models"] == ["pretrain", "phase1", "phase2", "phase3", "phase4", "kdet_k2", "scratch"]
    assert resolved["phase_defaults"]["l1"] == {"epochs": 1, "epoch_images": 200, "lr": 1.0e-3, "warmup_iters": 0,
                                                "batch_size": 4}  # nested keys merged, not replaced


@pytest.mark.parametrize("name", PAPER)
def test_paper_presets_are_full_width_with_bf16_on_cuda(name):
    params = resolve_preset(name, CONFIGS)
    assert params["model"]["width"] == 1.0 and params["common"]["device"] == "auto"


def phase_settings(params: dict) -> list[dict]:
    """How each phase trains: its parsed config without its structure."""
    return [{key: value for key, value in vars(phase_from_params(params, phase)).items()
             if key not in PHASE_STRUCTURE} for phase in params["phases"]]


@pytest.mark.parametrize("name", [*PAPER, "smoke"])
def test_presets_with_their_own_recipe_train_every_phase_alike(name):
    """The paper tunes no phase apart from the others, nor does the smoke preset: none of the
    defaults' per-phase settings (made for the embedded data) may reach them through `base:`."""
    settings = phase_settings(resolve_preset(name, CONFIGS))
    assert all(setting == settings[0] for setting in settings), name
    assert name == "smoke" or not settings[0]["retrain_batch_norm"]


def test_a_preset_that_sets_phase_defaults_inherits_only_the_phases_structure(tmp_path):
    shutil.copyfile(CONFIGS / "detection.yaml", tmp_path / "detection.yaml")
    (tmp_path / "own_recipe.yaml").write_text(yaml.safe_dump(
        {"base": "detection", "phase_defaults": {"tolerance": 0.2}, "phases": {"phase2": {"tolerance": 0.3}}}))
    (tmp_path / "same_recipe.yaml").write_text(yaml.safe_dump({"base": "detection", "model": {"width": 0.5}}))
    default = resolve_preset("detection", tmp_path)["phases"]
    own = resolve_preset("own_recipe", tmp_path)["phases"]
    assert default["phase1"]["tolerance"] == 0.08 and default["phase2"]["retrain"] == {"epoch_images": 1200}
    assert own == {name: {key: phase[key] for key in PHASE_STRUCTURE if key in phase}
                   | ({"tolerance": 0.3} if name == "phase2" else {}) for name, phase in default.items()}
    assert resolve_preset("same_recipe", tmp_path)["phases"] == default


def test_a_malformed_base_phase_is_named_not_a_traceback(tmp_path):
    base = yaml.safe_load((CONFIGS / "detection.yaml").read_text())
    base["phases"]["phase2"] = 3
    (tmp_path / "detection.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"base": "detection", "phase_defaults": {"tolerance": 0.2}}))
    with pytest.raises(ConfigError, match=r"phases.phase2: expected a mapping, got int"):
        check_params(resolve_preset("mine", tmp_path))


def test_params_yaml_is_the_detection_default():
    assert load_params(ROOT / "params.yaml") == resolve_preset("detection", CONFIGS)


def test_the_committed_classification_pipeline_is_the_preset_and_the_root_dvc_yaml():
    """classification/ (the committed classification default) must follow the root's dvc.yaml
    and the preset: re-run `mlprune preset classification --dir classification` after changing them."""
    folder = ROOT / "classification"
    assert load_params(folder / "params.yaml") == resolve_preset("classification", CONFIGS)
    header, text = (folder / "dvc.yaml").read_text().split("\n", 1)
    assert header.startswith("# Generated by `mlprune preset classification --dir classification`")
    assert text == nested_pipeline((ROOT / "dvc.yaml").read_text())
    assert (folder / "data/init/README.md").read_text() == (ROOT / "data/init/README.md").read_text()


def test_a_nested_pipeline_takes_its_code_from_the_root_and_the_rest_from_its_folder():
    stages = yaml.safe_load(nested_pipeline((ROOT / "dvc.yaml").read_text()))["stages"]
    deps = [dep for stage in stages.values() for dep in (stage.get("do", stage).get("deps") or [])]
    code = [dep for dep in deps if dep.startswith("../")]
    assert code and all((ROOT / "classification" / dep).exists() for dep in code)
    assert not any(dep.startswith(("stages/", "mlprune/")) for dep in deps)
    assert "params.yaml" in deps and "${data.root}" in deps  # the folder's own
    assert stages["pretrain"]["cmd"].startswith("python ../stages/pretrain.py --out models/pretrain/model.pt")
    assert all(stage.get("do", stage)["cmd"].startswith("python ../stages/") for stage in stages.values())


def test_preset_dir_writes_a_pipeline_of_its_own(tmp_path, monkeypatch):
    for name in ("dvc.yaml", "configs", "data/init"):
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["preset", "vgg16_cifar10", "--dir", "runs/cifar"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs/cifar"
    assert load_params(folder / "params.yaml") == resolve_preset("vgg16_cifar10", CONFIGS)
    assert "python ../../stages/pretrain.py" in (folder / "dvc.yaml").read_text()
    assert (folder / "data/init/README.md").is_file()
    assert "/models/" in (folder / ".gitignore").read_text().split()


def test_switching_to_a_complete_preset_copies_it(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    params = tmp_path / "params.yaml"
    result = CliRunner().invoke(app, ["preset", "classification", "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert params.read_text() == (CONFIGS / "classification.yaml").read_text()


def test_switching_to_a_derived_preset_writes_it_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    params = tmp_path / "params.yaml"
    result = CliRunner().invoke(app, ["preset", "ssd300_voc", "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert params.read_text().startswith("# Generated by `mlprune preset ssd300_voc`")
    assert load_params(params) == resolve_preset("ssd300_voc", CONFIGS)


def test_unknown_preset_leaves_params_untouched(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    params = tmp_path / "params.yaml"
    params.write_text("mine: 1\n")
    result = CliRunner().invoke(app, ["preset", "nope", "--params", str(params)])
    assert result.exit_code == 2
    assert "preset 'nope': no configs/nope.yaml" in result.output
    assert params.read_text() == "mine: 1\n"


def test_a_preset_deriving_from_itself_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b\n")
    (tmp_path / "b.yaml").write_text("base: a\n")
    with pytest.raises(Exception, match=r"base: presets derive from each other in a loop \(a -> b -> a\)"):
        resolve_preset("a", tmp_path)


DVC_PARAMS = """
import json, sys
import dvc.api
print(json.dumps(dvc.api.params_show(repo=sys.argv[1])))
"""


@pytest.mark.parametrize("name", ["detection", "classification", "ssd512_gtsdb"])
def test_what_dvc_tracks_parses_to_what_the_stages_parse(tmp_path, name):
    """Each stage lists the params it reads in dvc.yaml; the union DVC tracks must hold
    every value the stages parse, or a change to an untracked key would leave stale results."""
    (tmp_path / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    resolved = resolve_preset(name, CONFIGS)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(resolved))
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    shown = subprocess.run([sys.executable, "-c", DVC_PARAMS, str(tmp_path)], capture_output=True, text=True,
                           check=True).stdout
    tracked = yaml.safe_load(shown)
    assert check_params(tracked) == check_params(resolved)
    assert tracked == {key: value for key, value in resolved.items() if key in tracked}
