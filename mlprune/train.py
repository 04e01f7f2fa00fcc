"""One trainer for every training stage: pretrain, L1 fine-tune and retrain.

Resume: after every epoch the full training state goes to `<work_dir>/resume.pt`. A
restarted run with the same fingerprint (config + starting weights) continues from the
last finished epoch and ends with the same weights as an uninterrupted run, because the
data order and augmentation RNG are re-seeded from (seed, epoch) at each epoch start.

Under torchrun (`common.distributed`), see mlprune.distributed: each rank trains on its
share of every batch, and `train` returns on rank 0 alone.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from mlprune import distributed
from mlprune.atomic import atomic_path
from mlprune.errors import ConfigError, MlpruneError
from mlprune.runtime import autocast, memory_layout, resolve_precision
from mlprune.schedule import TrainConfig, epoch_steps, lr_factor

Penalty = Callable[[nn.Module], torch.Tensor]  # added to the loss
# Called after each update with the step's learning rate and the fraction of training done
# (step / total steps; it counts from the scheduler, so a resumed run carries on where it was).
AfterStep = Callable[[nn.Module, float, float], None]


class TrainingDiverged(MlpruneError):
    """The loss became NaN or infinite (too high a learning rate, or bad data)."""


def build_optimizer(model: nn.Module, config: TrainConfig, foreach: bool | None = True) -> torch.optim.Optimizer:
    """foreach: one multi-tensor update instead of a Python loop over ~100 tensors, with the
    same arithmetic per element (bit-identical, tests/test_speed.py); torch's default (None)
    uses it only on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]  # frozen layers stay out
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay,
                               foreach=foreach)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, foreach=foreach)


def fingerprint(model: nn.Module, config: TrainConfig, seed: int, n_images: int,
                numerics: tuple[str, bool] = ("fp32", False)) -> str:
    """Identifies a training run, so a resume never continues someone else's run.

    `numerics`: the resolved precision and channels-last flag, which change the weights."""
    extra = [] if numerics == ("fp32", False) else [list(numerics)]  # earlier runs' resume states stay valid
    digest = hashlib.sha256(json.dumps([asdict(config), seed, n_images, *extra]).encode())
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train(model: nn.Module, dataset: torch.utils.data.Dataset, config: TrainConfig, *,
          device: torch.device, seed: int, work_dir: str | Path, penalty: Penalty | None = None,
          after_step: AfterStep | None = None, desc: str = "train", precision: str = "auto",
          channels_last: bool = False) -> list[dict[str, float]]:
    """Train `model` in place; returns one row of averages per epoch (loss parts, lr, img/s).

    `precision` (`common.precision`) selects bf16 autocast or fp32 for the forward and
    backward passes; the weights and optimizer state stay fp32 either way.
    `channels_last` (`common.channels_last`) trains with NHWC conv weights and activations,
    ~1.6x faster on CPU at the default width (its convs and batch norms sum in another
    order, so results differ in the last bits); the model comes back in the usual layout.
    Under torchrun, ranks other than 0 exit at the end, once every rank has finished.
    """
    work_dir = Path(work_dir)
    resume_file = work_dir / "resume.pt"
    run_id = fingerprint(model, config, seed, len(dataset), (resolve_precision(precision, device), channels_last))
    model.to(device).train()
    with memory_layout(model, channels_last):  # back in the usual layout after
        optimizer = build_optimizer(model, config)
        steps_per_epoch = epoch_steps(config, len(dataset))
        if config.epochs and not steps_per_epoch:
            raise ConfigError(f"{desc}: batch_size {config.batch_size} is more than the "
                              f"{min(config.epoch_images or len(dataset), len(dataset))} training images of an epoch, "
                              "so not one step would train; lower batch_size")
        total = steps_per_epoch * config.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, config))
        start_epoch, history = _resume(resume_file, run_id, model, optimizer, scheduler)
        step = StepRunner(model, optimizer, config.grad_clip, device, precision, penalty,
                          forward=distributed.data_parallel(model, device))
        for epoch in range(start_epoch, config.epochs):
            row = _train_epoch(step, dataset, steps_per_epoch, total, config, scheduler, after_step,
                               generator_seed=seed * 100_003 + epoch, desc=f"{desc} {epoch + 1}/{config.epochs}")
            history.append({"epoch": epoch + 1, **row})
            if distributed.is_main():
                _save_resume(resume_file, run_id, epoch + 1, model, optimizer, scheduler, history)
    model.eval()
    distributed.finish_training()
    shutil.rmtree(work_dir, ignore_errors=True)
    return history


class StepRunner:
    """One optimisation step on a batch of samples: the trainer's, and the speed benchmark's.

    `forward` is the module the batch goes through: `model` itself, or its DDP wrapper
    (whose backward averages the gradients over the ranks); the penalty and the optimizer
    see `model`'s own parameters either way."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float, device: torch.device,
                 precision: str = "auto", penalty: Penalty | None = None, forward: nn.Module | None = None):
        self.model, self.optimizer, self.grad_clip = model, optimizer, grad_clip
        self.device, self.precision, self.penalty = device, precision, penalty
        self.forward = model if forward is None else forward

    def __call__(self, samples: Sequence[tuple]) -> dict[str, torch.Tensor]:
        """The loss parts of the step and their sum, `loss` (detached)."""
        images, targets = _to_device(samples, self.device)
        with autocast(self.device, self.precision):
            parts = self.forward(images, targets)
        if self.penalty is not None:
            parts["l1_penalty"] = self.penalty(self.model)
        loss = sum(parts.values())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return {name: value.detach() for name, value in {"loss": loss, **parts}.items()}


def _train_epoch(step: StepRunner, dataset, steps, total, config, scheduler, after_step, generator_seed, desc):
    # Augmentation draws from the global RNG: one stream per rank (rank 0's is a lone run's).
    torch.manual_seed(generator_seed + 1_000_003 * distributed.rank())
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(generator_seed))
    batches = order[: steps * config.batch_size].view(-1, config.batch_size)
    sums: dict[str, float] = {}
    start = time.perf_counter()
    bar = tqdm(batches, desc=desc, leave=False, mininterval=1.0)
    for i, batch in enumerate(bar, 1):
        parts = step([dataset[j] for j in distributed.rank_share(batch).tolist()])
        stop_if_not_finite(parts["loss"], desc, i)
        if after_step is not None:
            after_step(step.model, scheduler.get_last_lr()[0], (scheduler.last_epoch + 1) / total)
        scheduler.step()
        for name, value in parts.items():
            sums[name] = sums.get(name, 0.0) + float(value)
        rate = i * config.batch_size / (time.perf_counter() - start)
        bar.set_postfix(loss=f"{sums['loss'] / i:.3f}", img_s=f"{rate:.1f}")
    seconds = time.perf_counter() - start
    sums = distributed.mean_over_ranks(sums)
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
