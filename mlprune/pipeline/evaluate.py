"""Stage `evaluate`: the test-split score of a model plus its cost against the pretrained model."""

from __future__ import annotations

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

    models: list[str]  # what the evaluate stage scores: pretrain, each phase, each kdet_k<k>
    batch_size: int = 16
    latency_runs: int = 20  # timed runs (after 3 warm-up runs) for the median CPU latency
    latency_threads: int = 2

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.latency_runs >= 1, "latency_runs", f"must be >= 1, got {self.latency_runs}")
        require(self.latency_threads >= 1, "latency_threads", f"must be >= 1, got {self.latency_threads}")


def evaluate_checkpoint(checkpoint: Path, baseline: Path, data: DataConfig, config: EvalConfig,
                        runtime: RuntimeConfig, metrics_out: Path, results_dir: Path) -> dict:
    """Score `checkpoint` on the test split; write metrics JSON and the raw results.

    `baseline` is the pretrained checkpoint: compression_x, flops_reduction and
    latency_speedup_x are measured against it, latency side by side in this process.
    """
    device = setup(runtime)
    model = load_checkpoint(checkpoint, data.classes)
    task = task_for(data, model.spec)
    scores = task.test_metrics(model, test_dataset(data), data.classes, device, config.batch_size, results_dir)
    cost = cost_metrics(model, checkpoint, load_checkpoint(baseline), config.latency_runs,
                        config.latency_threads, task.network_forward)
    headline = {k: v for k, v in scores.items() if not isinstance(v, dict)}
    metrics = {**headline, **cost, **{k: v for k, v in scores.items() if isinstance(v, dict)}}
    write_json(metrics_out, metrics)
    tqdm.write(f"{checkpoint}: {task.score_name} {metrics[task.score_name]:.4f}, {metrics['params']:,} params, "
               f"{metrics['gflops']} GFLOPs, {metrics['cpu_latency_ms']} ms")
    return metrics
