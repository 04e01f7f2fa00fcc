"""Where and how a stage runs: device, precision, threads, seeds."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mlprune import distributed
from mlprune.config import require
from mlprune.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class RuntimeConfig:
    """The `common` section of params.yaml."""

    seed: int = 0
    device: str = "auto"  # auto: CUDA when present, else CPU
    threads: int = 2  # CPU threads; 0 leaves torch's default
    precision: str = "auto"  # training math: auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16; evaluation is fp32
    channels_last: bool = False  # NHWC convs while training and evaluating: faster on CPU, rounds differently
    distributed: bool = False  # training stages started by torchrun train as one DDP job (mlprune.distributed)

    def __post_init__(self) -> None:
        require(0 <= self.seed < 2**32, "seed", f"must be in [0, 2**32) (numpy's range), got {self.seed}")
        require(self.device in DEVICES, "device", f"must be one of {DEVICES}, got {self.device!r}")
        require(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}, got {self.precision!r}")
        require(self.threads >= 0, "threads", f"must be >= 0, got {self.threads}")


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("common.device: 'cuda' requested but no CUDA device is available; "
                          "set it to 'auto' or 'cpu'")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> str:
    """`fp32` or `bf16`; `auto` keeps CPU runs in fp32, whose results earlier runs recorded."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast (weights, gradients and optimizer state stay fp32), or plain fp32."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def memory_layout(model: nn.Module, channels_last: bool):
    """`model` with NHWC weights (`common.channels_last`) inside the block, in the usual layout
    after it. Scoring a model this way is ~2x faster on CPU at the default width: the same fp32
    math, summed in another order."""
    if not channels_last:
        yield model
        return
    model.to(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        model.to(memory_format=torch.contiguous_format)


def setup(config: RuntimeConfig, trains: bool = False) -> torch.device:
    """Seed every RNG, pin the thread count and make CPU results repeatable; under torchrun,
    join its process group (a stage that `trains` and asks for it, else a clear error)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    deterministic_mode()
    return distributed.start(config.distributed, resolve_device(config.device), trains)


def deterministic_mode(fill_new_memory: bool = False) -> None:
    """Deterministic kernels, without filling every new tensor with NaN.

    The fill only makes reads of uninitialised memory visible; no kernel we run reads
    any (training gives bit-identical weights either way, tests/test_speed.py), and the
    fill takes ~7 % of a CPU training step's time.
    """
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = fill_new_memory


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
