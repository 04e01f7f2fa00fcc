"""A training schedule (the `pretrain`, `l1`, `retrain` sections) and its learning-rate curve.

Kept free of torch, so a stage that only reads params (report) starts in a fraction of a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mlprune.config import require


@dataclass(frozen=True)
class TrainConfig:
    """A training schedule: AdamW or SGD, linear warmup, then cosine or step decay."""

    epochs: int
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"  # adamw | sgd (momentum 0.9, the paper's SSD recipe)
    warmup_iters: int = 50
    schedule: str = "cosine"  # cosine | step
    lr_steps: list[float] = field(default_factory=lambda: [2 / 3, 5 / 6])  # step: fractions of training, x0.1
    grad_clip: float = 10.0  # max gradient norm; > 0 (a large value such as 1e9 leaves gradients unclipped)
    augment: list[str] = field(default_factory=lambda: ["flip"])  # names checked against the task's by the stages
    epoch_images: int = 0  # images drawn (without replacement) per epoch; 0 = the whole set

    def __post_init__(self) -> None:
        require(self.epochs >= 0, "epochs", f"must be >= 0, got {self.epochs}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        require(self.optimizer in ("adamw", "sgd"), "optimizer", f"adamw or sgd, got {self.optimizer!r}")
        require(self.warmup_iters >= 0, "warmup_iters", f"must be >= 0, got {self.warmup_iters}")
        require(self.schedule in ("cosine", "step"), "schedule", f"cosine or step, got {self.schedule!r}")
        require(all(0 < s < 1 for s in self.lr_steps) and self.lr_steps == sorted(set(self.lr_steps)), "lr_steps",
                f"fractions of training in (0, 1), strictly increasing, got {self.lr_steps}")
        # 0 would zero every gradient and a negative norm reverse them (torch scales by max_norm / norm)
        require(self.grad_clip > 0, "grad_clip", f"must be > 0, got {self.grad_clip}")
        require(self.epoch_images == 0 or self.epoch_images >= self.batch_size, "epoch_images",
                f"must be 0 (the whole set) or at least batch_size ({self.batch_size}), got {self.epoch_images}: "
                "an epoch of fewer images than one batch takes no step")


def epoch_steps(config: TrainConfig, n_images: int) -> int:
    """Optimizer steps per epoch on a dataset of `n_images`: `epoch_images` of them (all when 0
    or more than there are), in whole batches (the ragged batch is dropped: BN needs > 1 sample)."""
    return min(config.epoch_images or n_images, n_images) // config.batch_size


def images_seen(config: TrainConfig, n_images: int) -> int:
    """Training images the whole schedule draws, exactly as `train` draws them."""
    return config.epochs * epoch_steps(config, n_images) * config.batch_size


def lr_factor(step: int, total: int, config: TrainConfig) -> float:
    """Multiplier of the base learning rate at iteration `step` of `total`."""
    if step < config.warmup_iters:
        return (step + 1) / config.warmup_iters
    progress = step / max(1, total)
    if config.schedule == "step":
        return 0.1 ** sum(progress >= s for s in config.lr_steps)
    rest = (step - config.warmup_iters) / max(1, total - config.warmup_iters)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, rest)))
