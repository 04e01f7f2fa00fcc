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
from mlprune.evaluation.profile import cost_metrics
from mlprune.evaluation.tasks import task_for
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
    """Score `checkpoint` on the test split; write metrics JSON and the raw results.

    With `baseline` (the pretrained model's metrics JSON), also report compression_x and
    flops_reduction against it.
    """
    device = setup(runtime)
    model, _ = load_checkpoint(checkpoint)
    task = task_for(data, model.spec)
    scores = task.test_metrics(model, test_dataset(data), data.classes, device, config.batch_size, results_dir)
    cost = cost_metrics(model, checkpoint, model.spec.image_size, config.latency_runs, config.latency_threads,
                        task.network_forward)
    headline = {k: v for k, v in scores.items() if not isinstance(v, dict)}
    metrics = {**headline, **cost}
    if baseline is not None:
        metrics.update(relative_cost(cost, json.loads(Path(baseline).read_text())))
    metrics.update({k: v for k, v in scores.items() if isinstance(v, dict)})
    write_json(metrics_out, metrics)
    tqdm.write(f"{checkpoint}: {task.score_name} {metrics[task.score_name]:.4f}, {metrics['params']:,} params, "
               f"{metrics['gflops']} GFLOPs, {metrics['cpu_latency_ms']} ms")
    return metrics


def relative_cost(cost: dict, baseline: dict) -> dict[str, float]:
    return {"compression_x": round(baseline["params"] / cost["params"], 3),
            "flops_reduction": round(1 - cost["gflops"] / baseline["gflops"], 4),
            "latency_speedup_x": round(baseline["cpu_latency_ms"] / cost["cpu_latency_ms"], 3)}
