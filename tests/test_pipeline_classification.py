"""End to end, the classification track: `dvc repro` of the classification preset shrunk to
two phases, with the same dvc.yaml and stages as detection."""

import json

import pytest
import yaml
from pipeline_helpers import ROOT, dvc, make_repo, run, shrink_phase_schedules

from mlprune.config import merge_params

TINY = {
    "synthetic": {"trainval": 160, "test": 40},
    "model": {"width": 0.0625},
    "pretrain": {"epochs": 1, "batch_size": 16},
    "evaluate": {"latency_runs": 2, "onnx_latency": False},
    "threshold": {"grid": [0.1, 0.5, 1.0]},
}
TINY_SCHEDULE = {"epochs": 1, "batch_size": 16}
# min_keep 1: the default's floor of 8 filters is as wide as most layers at this width
TINY_PHASE = {"tolerance": 1.0, "l1": TINY_SCHEDULE, "retrain": TINY_SCHEDULE, "select": {"min_keep": 1}}


def classification_params() -> dict:
    params = merge_params(yaml.safe_load((ROOT / "configs/classification.yaml").read_text()), TINY)
    params["phase_defaults"] = merge_params(params["phase_defaults"], TINY_PHASE)
    params["phases"] = shrink_phase_schedules({name: params["phases"][name] for name in ("phase1", "phase2")},
                                              TINY_SCHEDULE)
    params["evaluate"]["models"] = ["pretrain", "phase1", "phase2", "scratch"]
    params["scratch"] = {"source": "phase2"}
    params["kdet"]["source"] = "phase2"  # the final model, which the export stage exports
    return params


@pytest.mark.slow
def test_classification_repro(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "params.yaml").write_text(yaml.safe_dump(classification_params(), sort_keys=False))
    run(dvc("repro"), repo)
    pretrain = json.loads((repo / "metrics/pretrain/eval.json").read_text())
    assert 0 <= pretrain["top1"] <= 1 and set(pretrain["acc_per_class"]) == {"circle", "square", "triangle",
                                                                               "cross", "ring"}
    for phase in ("phase1", "phase2"):
        metrics = json.loads((repo / f"metrics/{phase}/eval.json").read_text())
        assert metrics["compression_x"] >= 1.0 and "top1" in metrics and "map_voc07" not in metrics
        selection = json.loads((repo / f"metrics/{phase}/selection.json").read_text())
        assert all(layer["kept"] for layer in selection["layers"].values())
    assert "top1" in (repo / "plots/map_vs_params.csv").read_text()
    scratch = json.loads((repo / "metrics/scratch/eval.json").read_text())
    assert scratch["params"] == json.loads((repo / "metrics/phase2/eval.json").read_text())["params"]
    assert (repo / "results/phase2/predictions.csv").is_file()
    assert not list((repo / "metrics").glob("kdet/*/eval.json"))  # no k-det for a classifier
