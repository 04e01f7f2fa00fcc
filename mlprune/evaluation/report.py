"""The evaluate stage: accuracy on the test split + cost, as one DVC metrics file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mlprune.atomic import write_json
from mlprune.checkpoint import load_checkpoint
from mlprune.config import require
from mlprune.data.splits import DataConfig, test_dataset
from mlprune.evaluation.predict import ground_truth, predict
from mlprune.evaluation.profile import cost_metrics
from mlprune.evaluation.voc_ap import evaluate_voc, write_voc_results
from mlprune.runtime import RuntimeConfig, setup


@dataclass(frozen=True)
class EvalConfig:
    """The `evaluate` section of params.yaml."""

    batch_size: int = 16
    latency_runs: int = 20  # timed runs (after 3 warm-up runs) for the median CPU latency
    latency_threads: int = 2

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.latency_runs >= 1, "latency_runs", f"must be >= 1, got {self.latency_runs}")


def evaluate_checkpoint(checkpoint: Path, data: DataConfig, config: EvalConfig, runtime: RuntimeConfig,
                        metrics_out: Path, results_dir: Path, baseline: Path | None = None) -> dict:
    """Score `checkpoint` on the test split; write metrics JSON and devkit-format detections.

    With `baseline` (the pretrained model's metrics JSON), also report compression_x and
    flops_reduction against it.
    """
    device = setup(runtime)
    model, _ = load_checkpoint(checkpoint)
    dataset = test_dataset(data)
    detections = predict(model, dataset, device, config.batch_size)
    scores = evaluate_voc(detections, ground_truth(dataset.annotations), data.classes).to_metrics()
    write_voc_results(results_dir, detections, data.classes)
    cost = cost_metrics(model, checkpoint, model.spec.image_size, config.latency_runs, config.latency_threads)
    metrics = {"map_voc07": scores["map_voc07"], "map_area": scores["map_area"], **cost}
    if baseline is not None:
        metrics.update(relative_cost(cost, json.loads(Path(baseline).read_text())))
    metrics.update(ap_voc07=scores["ap_voc07"], ap_area=scores["ap_area"])
    write_json(metrics_out, metrics)
    tqdm.write(f"{checkpoint}: mAP(VOC07) {metrics['map_voc07']:.4f}, {metrics['params']:,} params, "
               f"{metrics['gflops']} GFLOPs, {metrics['cpu_latency_ms']} ms")
    return metrics


def validation_map(model, dataset, classes, device, batch_size: int) -> float:
    """VOC07 mAP of `model` on `dataset`: the score that threshold search compares."""
    detections = predict(model, dataset, device, batch_size, desc="validate")
    return evaluate_voc(detections, ground_truth(dataset.annotations), classes).map_voc07


def relative_cost(cost: dict, baseline: dict) -> dict[str, float]:
    return {"compression_x": round(baseline["params"] / cost["params"], 3),
            "flops_reduction": round(1 - cost["gflops"] / baseline["gflops"], 4),
            "latency_speedup_x": round(baseline["cpu_latency_ms"] / cost["cpu_latency_ms"], 3)}
