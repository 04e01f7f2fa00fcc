"""One trainer for every training stage: pretrain, L1 fine-tune and retrain.

Resume: after every epoch the full training state goes to `<work_dir>/resume.pt`. A
restarted run with the same fingerprint (config + starting weights) continues from the
last finished epoch and ends with the same weights as an uninterrupted run, because the
data order and augmentation RNG are re-seeded from (seed, epoch) at each epoch start.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from mlprune.atomic import atomic_path
from mlprune.config import require
from mlprune.errors import ConfigError
from mlprune.runtime import autocast

Penalty = Callable[[nn.Module], torch.Tensor]  # added to the loss
AfterStep = Callable[[nn.Module, float], None]  # called with the step's learning rate after each update


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
    grad_clip: float = 10.0
    augment: list[str] = field(default_factory=lambda: ["flip"])
    epoch_images: int = 0  # images drawn (without replacement) per epoch; 0 = the whole set

    def __post_init__(self) -> None:
        require(self.epochs >= 0, "epochs", f"must be >= 0, got {self.epochs}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.optimizer in ("adamw", "sgd"), "optimizer", f"adamw or sgd, got {self.optimizer!r}")
        require(self.schedule in ("cosine", "step"), "schedule", f"cosine or step, got {self.schedule!r}")
        require(self.epoch_images >= 0, "epoch_images", f"must be >= 0, got {self.epoch_images}")


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]  # frozen layers stay out
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(step: int, total: int, config: TrainConfig) -> float:
    """Multiplier of the base learning rate at iteration `step` of `total`."""
    if step < config.warmup_iters:
        return (step + 1) / config.warmup_iters
    progress = step / max(1, total)
    if config.schedule == "step":
        return 0.1 ** sum(progress >= s for s in config.lr_steps)
    rest = (step - config.warmup_iters) / max(1, total - config.warmup_iters)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, rest)))


def fingerprint(model: nn.Module, config: TrainConfig, seed: int, n_images: int) -> str:
    """Identifies a training run, so a resume never continues someone else's run."""
    digest = hashlib.sha256(json.dumps([asdict(config), seed, n_images]).encode())
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train(model: nn.Module, dataset: torch.utils.data.Dataset, config: TrainConfig, *,
          device: torch.device, seed: int, work_dir: str | Path, penalty: Penalty | None = None,
          after_step: AfterStep | None = None, desc: str = "train") -> list[dict[str, float]]:
    """Train `model` in place; returns one row of averages per epoch (loss parts, lr, img/s)."""
    work_dir = Path(work_dir)
    resume_file = work_dir / "resume.pt"
    run_id = fingerprint(model, config, seed, len(dataset))
    model.to(device).train()
    optimizer = build_optimizer(model, config)
    epoch_images = min(config.epoch_images or len(dataset), len(dataset))
    steps_per_epoch = epoch_images // config.batch_size  # drop the ragged batch: BN needs > 1 sample
    if config.epochs and not steps_per_epoch:
        raise ConfigError(f"{desc}: batch_size {config.batch_size} is more than the {epoch_images} training images "
                          "of an epoch, so not one step would train; lower batch_size")
    total = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, config))
    start_epoch, history = _resume(resume_file, run_id, model, optimizer, scheduler)
    for epoch in range(start_epoch, config.epochs):
        row = _train_epoch(model, dataset, steps_per_epoch, config, optimizer, scheduler, device, penalty,
                           after_step, generator_seed=seed * 100_003 + epoch,
                           desc=f"{desc} {epoch + 1}/{config.epochs}")
        history.append({"epoch": epoch + 1, **row})
        _save_resume(resume_file, run_id, epoch + 1, model, optimizer, scheduler, history)
    model.eval()
    shutil.rmtree(work_dir, ignore_errors=True)
    return history


def _train_epoch(model, dataset, steps, config, optimizer, scheduler, device, penalty, after_step, generator_seed,
                 desc):
    torch.manual_seed(generator_seed)  # augmentation draws from the global RNG
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(generator_seed))
    batches = order[: steps * config.batch_size].view(-1, config.batch_size)
    sums: dict[str, float] = {}
    start = time.perf_counter()
    bar = tqdm(batches, desc=desc, leave=False, mininterval=1.0)
    for i, batch in enumerate(bar, 1):
        images, targets = _to_device([dataset[j] for j in batch.tolist()], device)
        with autocast(device):
            parts = model(images, targets)
        if penalty is not None:
            parts["l1_penalty"] = penalty(model)
        loss = sum(parts.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if after_step is not None:
            after_step(model, scheduler.get_last_lr()[0])
        scheduler.step()
        for name, value in {"loss": loss, **parts}.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
        rate = i * config.batch_size / (time.perf_counter() - start)
        bar.set_postfix(loss=f"{sums['loss'] / i:.3f}", img_s=f"{rate:.1f}")
    seconds = time.perf_counter() - start
    n = max(1, len(batches))
    return {**{k: round(v / n, 5) for k, v in sums.items()}, "lr": scheduler.get_last_lr()[0],
            "seconds": round(seconds, 2), "images_per_s": round(len(batches) * config.batch_size / seconds, 2)}


def _to_device(samples: Sequence[tuple], device: torch.device):
    images = [image.to(device, non_blocking=True) for image, _ in samples]
    targets = [{k: v.to(device, non_blocking=True) for k, v in target.items()} for _, target in samples]
    return images, targets


def _save_resume(path: Path, run_id: str, epoch: int, model, optimizer, scheduler, history) -> None:
    state = {"run_id": run_id, "epoch": epoch, "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "history": json.dumps(history)}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _resume(path: Path, run_id: str, model, optimizer, scheduler) -> tuple[int, list[dict]]:
    if not path.is_file():
        return 0, []
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a resume file is a cache: never fatal, just start over
        tqdm.write(f"warning: ignoring unreadable resume state {path} ({type(err).__name__})")
        return 0, []
    if state.get("run_id") != run_id:
        tqdm.write(f"warning: ignoring resume state {path}: it belongs to another config or start model")
        return 0, []
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    tqdm.write(f"resuming from {path} after epoch {state['epoch']}")
    return state["epoch"], json.loads(state["history"])
