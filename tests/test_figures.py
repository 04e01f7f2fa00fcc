"""The offline report: README.md + PNGs from a tiny metrics folder, for a detector and a classifier."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from mlprune.errors import MlpruneError
from mlprune.pipeline.report_figures import write_report

PHASES = ["phase1", "phase2"]


def _json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def _csv(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")


def _eval(params: int, score: float, score_name: str) -> dict:
    metrics = {score_name: score, "params": params, "gflops": params / 1e6, "size_mb": params * 4 / 1e6,
               "cpu_latency_ms": 2.5}
    return metrics | ({"map_area": score + 0.01} if score_name == "map_voc07" else {})


def write_metrics(root: Path, score_name: str = "map_voc07", kdet: tuple[int, ...] = (1, 2)) -> Path:
    """pretrain + 2 phases (phase2 without histogram layers or selection.json) + k-det models."""
    _json(root / "pretrain" / "eval.json", _eval(1000, 0.8, score_name))
    for index, phase in enumerate(PHASES):
        folder = root / phase
        _json(folder / "eval.json", _eval(900 - 100 * index, 0.79 - 0.01 * index, score_name)
              | {"compression_x": 1000 / (900 - 100 * index), "flops_reduction": 0.1})
        _json(folder / "threshold.json", {"t": 0.01, "grid": 0.5, "score": 0.78, "reference_score": 0.8,
                                          "tolerance": 0.03, "sparsity": 0.4})
        _csv(folder / "threshold_sweep.csv", "grid,t,score,sparsity,nonzero_params",
             ["0.5,0.01,0.78,0.4,600", "1.0,0.02,0.6,0.6,400"])
        _csv(folder / "nonzero.csv", "layer,before,after_threshold", ["conv1_1,100,80", "conv1_2,400,100"])
        (folder / "weight_hist").mkdir()
    _csv(root / "phase1" / "weight_hist" / "conv1_2.csv", "weight,without_l1,with_l1",
         ["-0.1,3,1", "0.0,10,300", "0.1,4,0"])
    _json(root / "phase1" / "selection.json", {"layers": {"conv1_1": {"width_before": 8, "width_after": 6,
                                                                      "removed": [0, 1], "kept": list(range(2, 8))}}})
    for k in kdet:
        _json(root / f"kdet_k{k}" / "eval.json", _eval(500 + k, 0.5 + 0.1 * k, score_name))
    return root


def _links(readme: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)


def test_detection_report_mentions_every_phase_and_links_existing_pngs(tmp_path: Path) -> None:
    readme_path = write_report(write_metrics(tmp_path / "metrics"), PHASES, [1, 2], tmp_path / "report")
    readme = readme_path.read_text()
    assert readme_path == tmp_path / "report" / "README.md"
    links = _links(readme)
    assert links == ["score_vs_params.png", "threshold_sweeps.png", "fig2_weight_histograms.png",
                     "fig3_nonzero_weights.png"]
    for link in links:
        with Image.open(tmp_path / "report" / link) as image:
            assert image.format == "PNG" and min(image.size) > 200
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(["README.md", *links])
    assert "| pretrain | 1,000 | - | 0.8000 | 0.8100 |" in readme
    assert "| phase2 | 800 | 1.25x | 0.7800 | 0.7900 |" in readme
    assert "| k=2 | 502 | 0.7000 | 0.7100 |" in readme  # Table 5; no column is all "-"
    assert "| phase1 | 0.5 | 0.01 | 0.7800 | 0.8000 | 0.03 | 40.0% |" in readme  # the chosen threshold
    assert "No histogram for phase2 (the phase lists no `hist_layers`)." in readme
    assert "| phase1 | conv1_1 | 8 | 6 |" in readme and "| phase2 | conv1_1 |" not in readme


def test_classification_report_has_top1_and_no_kdet(tmp_path: Path) -> None:
    metrics = write_metrics(tmp_path / "metrics", score_name="top1", kdet=())
    readme = write_report(metrics, PHASES, [], tmp_path / "report").read_text()
    assert "## top-1 accuracy against parameters" in readme and "k-det" not in readme
    assert "| model | params | compression | top-1 | GFLOPs |" in readme
    assert all((tmp_path / "report" / link).is_file() for link in _links(readme))


def test_the_report_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    metrics = write_metrics(tmp_path / "metrics")
    first, second = (write_report(metrics, PHASES, [1, 2], tmp_path / name).parent for name in ("a", "b"))
    assert [p.read_bytes() for p in sorted(first.iterdir())] == [p.read_bytes() for p in sorted(second.iterdir())]


@pytest.mark.parametrize("missing", ["pretrain/eval.json", "phase2/threshold_sweep.csv", "phase1/nonzero.csv",
                                     "phase2/threshold.json", "kdet_k2/eval.json"])
def test_a_missing_required_file_is_one_line_naming_it(tmp_path: Path, missing: str) -> None:
    metrics = write_metrics(tmp_path / "metrics")
    (metrics / missing).unlink()
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "README.md").write_text("an earlier report\n")
    with pytest.raises(MlpruneError) as info:
        write_report(metrics, PHASES, [1, 2], tmp_path / "report")
    assert str(info.value).startswith(f"{metrics / missing}: ") and "\n" not in str(info.value)
    assert (tmp_path / "report" / "README.md").read_text() == "an earlier report\n"  # left as it was


def test_a_csv_without_its_columns_is_named(tmp_path: Path) -> None:
    metrics = write_metrics(tmp_path / "metrics")
    _csv(metrics / "phase1" / "nonzero.csv", "layer,count", ["conv1_1,3"])
    with pytest.raises(MlpruneError) as info:
        write_report(metrics, PHASES, [], tmp_path / "report")
    assert str(info.value) == (f"{metrics / 'phase1' / 'nonzero.csv'}: missing column(s) before, after_threshold "
                               "(has layer, count)")


def test_a_phase_scored_with_another_metric_is_named(tmp_path: Path) -> None:
    metrics = write_metrics(tmp_path / "metrics")
    _json(metrics / "phase2" / "eval.json", _eval(800, 0.7, "top1"))
    with pytest.raises(MlpruneError) as info:
        write_report(metrics, PHASES, [], tmp_path / "report")
    assert str(info.value) == (f"{metrics / 'phase2' / 'eval.json'}: missing map_voc07 (the pretrained model's "
                               "metrics have map_voc07)")
