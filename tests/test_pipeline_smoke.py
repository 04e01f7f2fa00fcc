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
    assert {"map_voc07", "map_area", "params", "gflops", "size_mb", "cpu_latency_ms"} <= set(pretrain)
    for phase in ["phase1", "phase2", "phase3", "phase4"]:
        metrics = json.loads((repo / f"metrics/{phase}/eval.json").read_text())
        assert metrics["compression_x"] >= 1.0 and 0 <= metrics["map_voc07"] <= 1
        selection = json.loads((repo / f"metrics/{phase}/selection.json").read_text())
        assert all(layer["kept"] for layer in selection["layers"].values())
    assert (repo / "results/pretrain/comp4_det_test_circle.txt").is_file()
    assert "map_voc07" in (repo / "plots/kdet.csv").read_text()


@pytest.mark.slow
def test_second_repro_is_a_noop(tiny_pipeline):
    out = run(dvc("repro"), tiny_pipeline)
    assert "Running stage" not in out


@pytest.mark.slow
def test_exp_run_with_new_grid_skips_pretrain(tiny_pipeline):
    # Targeting phase 1's evaluation keeps the test short; the whole graph behaves the same.
    out = run(dvc("exp", "run", "-S", "threshold.grid=[0.2,0.6]", "evaluate@phase1"), tiny_pipeline)
    assert "Running stage 'threshold_search@phase1'" in out and "Running stage 'select@phase1'" in out
    assert "Running stage 'pretrain'" not in out and "Running stage 'l1_finetune@phase1'" not in out
