"""Reliability: graceful edge cases of the stages, then, end to end, a `dvc repro` killed
mid-training that leaves no partial output and, run again, resumes to exactly the results
of an uninterrupted run (which also shows that two runs from an empty cache agree)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from dvc.repo import Repo
from PIL import Image
from pipeline_helpers import committed_text, dvc, make_repo, run, subprocess_env, tiny_params
from torch import nn
from typer.testing import CliRunner

from mlprune.checkpoint import load_checkpoint, save_checkpoint
from mlprune.cli import app
from mlprune.data.splits import DataConfig
from mlprune.evaluation.config import EvalConfig
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model
from mlprune.pipeline.evaluate import evaluate_checkpoint
from mlprune.runtime import RuntimeConfig

# --- graceful edge cases ---------------------------------------------------------------

EVAL_CLASSES = ["circle", "square", "hexagon"]  # no test image holds a hexagon
IMAGE_SIDE = 64


def write_test_split(root: Path, n_images: int = 2) -> Path:
    """A VOC root whose test images each hold a circle filling the image and a small square."""
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    objects = {"circle": (0, 0, IMAGE_SIDE, IMAGE_SIDE), "square": (8, 8, 24, 24)}
    xml_objects = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
        "</bndbox></object>" for name, (x0, y0, x1, y1) in objects.items())
    ids = [f"{i:06d}" for i in range(n_images)]
    for image_id in ids:
        Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), (120, 120, 120)).save(root / "JPEGImages" / f"{image_id}.jpg")
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><size><width>{IMAGE_SIDE}</width><height>{IMAGE_SIDE}</height></size>{xml_objects}"
            "</annotation>")
    (root / "ImageSets" / "Main" / "test.txt").write_text("".join(f"{i}\n" for i in ids))
    return root


@torch.no_grad()
def whole_image_circle_detector() -> nn.Module:
    """An SSD that, on any image, finds one circle nearly filling it and nothing else: every
    default box says background except the first of its coarsest source, the centred
    square of 87 % of the image side, which says circle."""
    model = build_model(build_spec("ssd300", len(EVAL_CLASSES) + 1, width=0.0625))
    heads = model.head.classification_head.module_list, model.head.regression_head.module_list
    for conv in (conv for head in heads for conv in head):
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    for conf in heads[0]:
        conf.bias.view(-1, len(EVAL_CLASSES) + 1)[:, 0] = 10.0  # (boxes, background + classes): torchvision's layout
    first_coarse_box = heads[0][-1].bias.view(-1, len(EVAL_CLASSES) + 1)[0]
    first_coarse_box[0], first_coarse_box[1 + EVAL_CLASSES.index("circle")] = 0.0, 10.0
    return model


def test_class_without_test_objects_is_reported_missing_and_left_out_of_the_mean(tmp_path):
    checkpoint, metrics_json = tmp_path / "model.pt", tmp_path / "eval.json"
    save_checkpoint(checkpoint, whole_image_circle_detector())
    data = DataConfig(root=str(write_test_split(tmp_path / "voc")), classes=EVAL_CLASSES)
    evaluate_checkpoint(checkpoint, checkpoint, data, EvalConfig(models=["pretrain"], batch_size=2, latency_runs=1),
                        RuntimeConfig(device="cpu"),
                        metrics_out=metrics_json, results_dir=tmp_path / "results")
    metrics = json.loads(metrics_json.read_text())
    assert metrics["ap_voc07"] == metrics["ap_area"] == {"circle": 1.0, "square": 0.0, "hexagon": None}
    assert metrics["map_voc07"] == metrics["map_area"] == 0.5  # (1 + 0) / 2: hexagon neither 0 nor NaN
    assert '"hexagon": null' in metrics_json.read_text()


def invoke_ok(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_threshold_that_removes_nothing_warns_and_selects_zero(tmp_path, tiny_detector):
    save_checkpoint(tmp_path / "l1.pt", tiny_detector)
    (tmp_path / "threshold.json").write_text(json.dumps({"t": 0.0}))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    output = invoke_ok(["select", "--phase", "phase1", "--model", str(tmp_path / "l1.pt"), "--start",
                        str(tmp_path / "l1.pt"), "--threshold", str(tmp_path / "threshold.json"), "--out",
                        str(tmp_path / "selection.json"), "--nonzero", str(tmp_path / "nonzero.csv"),
                        "--params", str(tmp_path / "params.yaml")])
    assert "warning: threshold t=0 leaves no filter to remove in this phase" in output
    selection = json.loads((tmp_path / "selection.json").read_text())
    assert selection["summary"]["removed"] == 0
    assert all(layer["width_after"] == layer["width_before"] for layer in selection["layers"].values())


def test_layer_left_with_a_single_filter_survives_surgery_and_runs(tmp_path, tiny_detector):
    save_checkpoint(tmp_path / "l1.pt", tiny_detector)
    width = tiny_detector.spec.widths["conv3_3"]
    layer = {"removed": list(range(1, width)), "kept": [0]}
    (tmp_path / "selection.json").write_text(json.dumps({"layers": {"conv3_3": layer}}))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    invoke_ok(["surgery", "--phase", "phase1", "--model", str(tmp_path / "l1.pt"), "--selection",
               str(tmp_path / "selection.json"), "--out", str(tmp_path / "pruned.pt"), "--params",
               str(tmp_path / "params.yaml")])
    pruned = load_checkpoint(tmp_path / "pruned.pt")
    assert pruned.spec.widths["conv3_3"] == 1
    (detections,) = pruned.eval()([torch.rand(3, 96, 96)])
    assert detections["boxes"].shape[1] == 4


# --- a killed `dvc repro` ----------------------------------------------------------------

KILLED_STAGE, KILLED_WORK_DIR = "pretrain", "tmp/pretrain"
RESUMED_TARGET = "select@phase1"  # pretrain, then the phase-1 steps its weights decide


def kill_repro_after_first_epoch(repo: Path, work_dir: str, log: Path) -> None:
    """Start `dvc repro` and SIGKILL its whole process group (dvc and the stage it runs)
    as soon as the training that keeps its resume state in `work_dir` finished an epoch."""
    resume_state = repo / work_dir / "resume.pt"
    with log.open("w") as out:
        proc = subprocess.Popen(dvc("repro"), cwd=repo, env=subprocess_env(repo), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 300
    while not resume_state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"dvc repro ended before it could be killed:\n{log.read_text()[-3000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stage_outputs(repo: Path, stage: str) -> list[Path]:
    """Every path DVC tracks as an output of `stage` (cached outs, metrics and plots)."""
    with Repo(str(repo)) as dvc_repo:
        (found,) = dvc_repo.stage.collect(f"{repo / 'dvc.yaml'}:{stage}")  # a bare name resolves from the cwd
        return [Path(out.fs_path) for out in found.outs]


def temporaries(repo: Path) -> list[Path]:
    """Leftovers of an atomic write (mlprune.atomic) outside the work dirs."""
    return [p for folder in ("models", "metrics") for p in (repo / folder).rglob(".*.tmp")]


def result_files(repo: Path) -> list[str]:
    """Selection documents and metrics of every stage, relative to the repository."""
    return sorted(str(p.relative_to(repo)) for pattern in ("*/selection.json", "**/eval.json", "*/threshold.json")
                  for p in (repo / "metrics").glob(pattern))


@pytest.mark.slow
def test_killed_repro_resumes_to_the_results_of_an_uninterrupted_run(tiny_pipeline, tmp_path):
    repo = make_repo(tmp_path / "repo")
    kill_repro_after_first_epoch(repo, KILLED_WORK_DIR, tmp_path / "killed.log")
    assert not [p for p in stage_outputs(repo, KILLED_STAGE) if p.exists()]
    assert not temporaries(repo)

    out = run(dvc("repro", RESUMED_TARGET), repo)
    assert "Stage 'data' didn't change, skipping" in out
    assert f"resuming from {KILLED_WORK_DIR}/resume.pt after epoch 1" in out

    resumed = load_checkpoint(repo / "models/pretrain/model.pt")
    uninterrupted = load_checkpoint(tiny_pipeline / "models/pretrain/model.pt")
    for name, tensor in uninterrupted.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], tensor), name
    files = result_files(repo)
    assert files == ["metrics/phase1/selection.json", "metrics/phase1/threshold.json"]
    for path in files:
        assert (repo / path).read_text() == committed_text(tiny_pipeline, path), path
