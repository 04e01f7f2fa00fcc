"""The `evaluate` section of params.yaml: what is scored, and how (read by every stage that scores a model)."""

from __future__ import annotations

from dataclasses import dataclass

from mlprune.config import require


@dataclass(frozen=True)
class EvalConfig:
    """The `evaluate` section of params.yaml."""

    models: list[str]  # what the evaluate stage scores: pretrain, each phase, each kdet_k<k>
    batch_size: int = 16
    latency_runs: int = 20  # timed runs (after 3 warm-up runs) for the median CPU latency
    latency_threads: int = 2
    # Also time the network under onnxruntime: one ONNX export per model, seconds each, most of
    # a tiny model's evaluation (the test presets turn it off).
    onnx_latency: bool = True

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.latency_runs >= 1, "latency_runs", f"must be >= 1, got {self.latency_runs}")
        require(self.latency_threads >= 1, "latency_threads", f"must be >= 1, got {self.latency_threads}")
