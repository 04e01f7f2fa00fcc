"""Stage `evaluate`: the test-split score of a model plus its cost against the pretrained model."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from mlprune.atomic import write_json
from mlprune.checkpoint import load_checkpoint
from mlprune.data.splits import DataConfig, test_dataset
from mlprune.evaluation.config import EvalConfig
from mlprune.evaluation.profile import cost_metrics
from mlprune.evaluation.tasks import task_for
from mlprune.interop.onnx_export import onnx_cpu_latency_ms
from mlprune.runtime import RuntimeConfig, memory_layout, setup


def evaluate_checkpoint(checkpoint: Path, baseline: Path, data: DataConfig, config: EvalConfig,
                        runtime: RuntimeConfig, metrics_out: Path, results_dir: Path) -> dict:
    """Score `checkpoint` on the test split; write metrics JSON and the raw results.

    `baseline` is the pretrained checkpoint: compression_x, flops_reduction and
    latency_speedup_x are measured against it, latency side by side in this process.
    """
    device = setup(runtime)
    model = load_checkpoint(checkpoint, data.classes)
    task = task_for(data, model.spec)
    with memory_layout(model, runtime.channels_last):
        scores = task.test_metrics(model, test_dataset(data), data.classes, device, config.batch_size, results_dir)
    cost = cost_metrics(model, checkpoint, load_checkpoint(baseline), config.latency_runs,
                        config.latency_threads, task.network_forward)
    if config.onnx_latency:
        # onnxruntime runs the network only (no resize, no NMS): compare it with gflops, not cpu_latency_ms
        cost["onnx_cpu_latency_ms"] = round(onnx_cpu_latency_ms(model, model.spec.image_size,
                                                                config.latency_threads, config.latency_runs), 2)
    headline = {k: v for k, v in scores.items() if not isinstance(v, dict)}
    metrics = {**headline, **cost, **{k: v for k, v in scores.items() if isinstance(v, dict)}}
    write_json(metrics_out, metrics)
    tqdm.write(f"{checkpoint}: {task.score_name} {metrics[task.score_name]:.4f}, {metrics['params']:,} params, "
               f"{metrics['gflops']} GFLOPs, {metrics['cpu_latency_ms']} ms")
    return metrics
