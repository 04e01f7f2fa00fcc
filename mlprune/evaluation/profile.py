"""What a model costs: parameters, GFLOPs, size on disk and CPU latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mlprune.models.build import count_parameters

Forward = Callable[[nn.Module, torch.Tensor], object]


def count_gflops(model: nn.Module, image_size: int, forward: Forward = nn.Module.__call__) -> float:
    """GFLOPs of `forward(model, images)` at batch 1 (1 MAC = 2 FLOPs)."""
    x = torch.zeros(1, 3, image_size, image_size)
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward(model, x)
    model.train(was_training)
    return counter.get_total_flops() / 1e9


def latency_image(image_size: int) -> torch.Tensor:
    """The one image every latency is measured on: [3, S, S] in 0-1, the same in every run."""
    return torch.rand(3, image_size, image_size, generator=torch.Generator().manual_seed(0))


def median_ms(call: Callable[[], object], warmup: int, runs: int) -> float:
    """Median wall time of `call()` in milliseconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@torch.no_grad()
def cpu_latency_ms(models: Sequence[nn.Module], image_size: int, threads: int = 2, warmup: int = 3,
                   runs: int = 20) -> list[float]:
    """Median wall time of one full prediction at batch 1 on CPU (a detector's: resize, backbone,
    heads, NMS), for each model. Runs alternate between the models (A B A B ...), so a
    noisy machine slows them alike and their ratio holds."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    models = [model.cpu().eval() for model in models]
    image = [latency_image(image_size)]
    times: list[list[float]] = [[] for _ in models]
    try:
        for _ in range(warmup):
            for model in models:
                model(image)
        for _ in range(runs):
            for model, series in zip(models, times, strict=True):
                start = time.perf_counter()
                model(image)
                series.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return [statistics.median(series) * 1000 for series in times]


def cost_metrics(model: nn.Module, checkpoint: Path, baseline: nn.Module, latency_runs: int,
                 threads: int = 2, forward: Forward = nn.Module.__call__) -> dict[str, float]:
    """Params, GFLOPs, size and CPU latency of `model`, and each against `baseline` (the model
    pruning started from). Costs are measured on the CPU, so they compare across runs trained
    on any device. GFLOPs count `forward` (for a detector, the task leaves out the
    content-dependent NMS)."""
    image_size = model.spec.image_size
    params, baseline_params = count_parameters(model), count_parameters(baseline)
    gflops, baseline_gflops = (count_gflops(m.cpu(), image_size, forward) for m in (model, baseline))
    latency, baseline_latency = cpu_latency_ms([model, baseline], image_size, threads, runs=latency_runs)
    return {
        "params": params,
        "gflops": round(gflops, 4),
        "size_mb": round(Path(checkpoint).stat().st_size / 1e6, 3),
        "cpu_latency_ms": round(latency, 2),
        "compression_x": round(baseline_params / params, 3),
        "flops_reduction": round(1 - gflops / baseline_gflops, 4),
        "latency_speedup_x": round(baseline_latency / latency, 3),
    }
