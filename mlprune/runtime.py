"""Where and how a stage runs: device, precision, threads, seeds."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import numpy as np
import torch

from mlprune.config import require
from mlprune.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class RuntimeConfig:
    """The `common` section of params.yaml."""

    seed: int = 0
    device: str = "auto"  # auto: CUDA when present (bf16 autocast there), else CPU
    threads: int = 2  # CPU threads; 0 leaves torch's default

    def __post_init__(self) -> None:
        require(0 <= self.seed < 2**32, "seed", f"must be in [0, 2**32) (numpy's range), got {self.seed}")
        require(self.device in DEVICES, "device", f"must be one of {DEVICES}, got {self.device!r}")
        require(self.threads >= 0, "threads", f"must be >= 0, got {self.threads}")


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("common.device: 'cuda' requested but no CUDA device is available; "
                          "set it to 'auto' or 'cpu'")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; full fp32 on CPU (bf16 is slow there and changes results)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def setup(config: RuntimeConfig) -> torch.device:
    """Seed every RNG, pin the thread count and make CPU results repeatable."""
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return resolve_device(config.device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
