"""What a model costs: parameters, GFLOPs, size on disk and CPU latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
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


@torch.no_grad()
def cpu_latency_ms(model: nn.Module, image_size: int, threads: int = 2, warmup: int = 3, runs: int = 20) -> float:
    """Median wall time of one full prediction at batch 1 on CPU (a detector's: resize, backbone,
    heads, NMS)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    model = model.cpu().eval()
    image = [torch.rand(3, image_size, image_size, generator=torch.Generator().manual_seed(0))]
    try:
        for _ in range(warmup):
            model(image)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model(image)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return statistics.median(times) * 1000


def cost_metrics(model: nn.Module, checkpoint: Path, image_size: int, latency_runs: int,
                 threads: int = 2, forward: Forward = nn.Module.__call__) -> dict[str, float]:
    """Costs are measured on the CPU, so they compare across runs trained on any device.
    GFLOPs count `forward` (for a detector, the task leaves out the content-dependent NMS)."""
    model = model.cpu()
    return {
        "params": count_parameters(model),
        "gflops": round(count_gflops(model, image_size, forward), 4),
        "size_mb": round(Path(checkpoint).stat().st_size / 1e6, 3),
        "cpu_latency_ms": round(cpu_latency_ms(model, image_size, threads, runs=latency_runs), 2),
    }
