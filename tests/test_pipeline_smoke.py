"""End to end: `dvc repro` of a tiny config in a temporary git repository (the shared
`tiny_pipeline` run), then a no-op repro, then `dvc exp run -S threshold.grid=...` that
must re-run threshold search and what follows it, but not pretrain or the L1 fine-tune."""

import json

import pytest
from pipeline_helpers import dvc, run


@pytest.mark.slow
def test_repro_writes_every_phase(tiny_pipeline):
    repo = tiny_pipeline
    pretrain = json.loads((repo / "metrics/pretrain/eval.json").read_text())
    assert {"map_voc07", "map_area", "params", "gflops", "size_mb", "cpu_latency_ms", "skipped_boxes"} <= set(pretrain)
    assert pretrain["compression_x"] == 1.0  # its own baseline
    for phase in ["phase1", "phase2", "phase3", "phase4"]:
        metrics = json.loads((repo / f"metrics/{phase}/eval.json").read_text())
        assert metrics["compression_x"] >= 1.0 and 0 <= metrics["map_voc07"] <= 1
        selection = json.loads((repo / f"metrics/{phase}/selection.json").read_text())
        assert all(layer["kept"] for layer in selection["layers"].values())
        pruned = json.loads((repo / f"metrics/{phase}/pruned.json").read_text())
        assert pruned["params_after"] == metrics["params"] and 0 <= pruned["pruned_score"] <= 1
    scratch = json.loads((repo / "metrics/scratch/eval.json").read_text())
    assert scratch["params"] == json.loads((repo / "metrics/phase4/eval.json").read_text())["params"]
    assert "scratch" in (repo / "plots/map_vs_params.csv").read_text()
    assert (repo / "results/pretrain/comp4_det_test_circle.txt").is_file()
    assert "map_voc07" in (repo / "plots/kdet.csv").read_text()
    assert json.loads((repo / "metrics/export/onnx.json").read_text())["max_abs_diff"] < 1e-4
    assert (repo / "models/export/model.onnx").is_file()
    assert "phase4" in (repo / "report/README.md").read_text()


@pytest.mark.slow
def test_second_repro_is_a_noop(tiny_pipeline):
    out = run(dvc("repro"), tiny_pipeline)
    assert "Running stage" not in out


@pytest.mark.slow
def test_exp_run_with_new_grid_and_default_tolerance_skips_pretrain(tiny_pipeline):
    # Targeting phase 1's check of the pruned model keeps the test short; the whole graph behaves the same.
    out = run(dvc("exp", "run", "-S", "threshold.grid=[0.2,0.6]", "-S", "phase_defaults.tolerance=0.9",
                  "check_pruned@phase1"), tiny_pipeline)
    assert "Running stage 'threshold_search@phase1'" in out and "Running stage 'select@phase1'" in out
    assert "Running stage 'check_pruned@phase1'" in out
    assert "Running stage 'pretrain'" not in out and "Running stage 'l1_finetune@phase1'" not in out
