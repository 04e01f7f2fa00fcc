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
from mlprune.errors import MlpruneError
from mlprune.runtime import autocast

Penalty = Callable[[nn.Module], torch.Tensor]  # added to the loss
AfterStep = Callable[[nn.Module, float], None]  # called with the step's learning rate after each update


class TrainingDiverged(MlpruneError):
    """The loss became NaN or infinite (too high a learning rate, or bad data)."""


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
    steps_per_epoch = epoch_steps(config, len(dataset))
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
        stop_if_not_finite(loss, desc, i)
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


def stop_if_not_finite(loss: torch.Tensor, desc: str, step: int) -> None:
    """Stop at the first NaN or infinite loss: every later step would train on it, ending in
    NaN weights and a clean exit. Nothing of this epoch is saved, so the resume state of the
    last finished epoch stays as it was. `desc` is the progress bar's "<what> <epoch>/<epochs>"."""
    value = float(loss.detach())
    if not math.isfinite(value):
        what, _, epoch = desc.rpartition(" ")
        raise TrainingDiverged(f"{what}: epoch {epoch}, step {step}: the loss is {value}; training stopped "
                               "before saving anything of this epoch (a lower lr may help)")


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
