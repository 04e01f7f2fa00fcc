"""Training shared by the training stages: the training set checked against the stage's schedule
first, and the train-then-fold recipe of pretrain, which the scratch baseline repeats.

A schedule that cannot train (an augmentation the task does not have, a batch larger
than the data) is refused before a checkpoint or image is read, with the params key it
came from; a run that took no step would exit 0 with an untrained model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from mlprune import distributed
from mlprune.atomic import write_csv
from mlprune.checkpoint import save_checkpoint
from mlprune.data import classification, transforms
from mlprune.data.splits import DataConfig, train_dataset
from mlprune.errors import ConfigError
from mlprune.models.build import count_parameters, fold_batch_norm
from mlprune.runtime import RuntimeConfig
from mlprune.task_names import CLASSIFICATION, DETECTION
from mlprune.train import TrainConfig, train

AUGMENTATIONS = {DETECTION: transforms.AUGMENTATIONS, CLASSIFICATION: classification.AUGMENTATIONS}


def check_augment(augment: Any, task: str, schedule_key: str) -> None:
    """Every name in `augment` is an augmentation of `task`."""
    if not isinstance(augment, list) or not all(isinstance(name, str) for name in augment):
        raise ConfigError(f"{schedule_key}.augment: expected a list of names, got {augment!r}")
    allowed = AUGMENTATIONS[task]
    unknown = [name for name in augment if name not in allowed]
    if unknown:
        raise ConfigError(f"{schedule_key}.augment: unknown augmentation {unknown[0]!r} for {task}; "
                          f"allowed: {', '.join(allowed)}")


def check_steps(schedule: TrainConfig, n_images: int, data_root: str, schedule_key: str) -> None:
    """At least one full batch per epoch (the trainer drops a ragged last batch)."""
    if schedule.epochs and n_images < schedule.batch_size:
        raise ConfigError(f"{schedule_key}.batch_size: {schedule.batch_size} is more than the {n_images} training "
                          f"images of {data_root} (after the validation split): an epoch would take no step")


def training_set(data: DataConfig, schedule: TrainConfig, seed: int, schedule_key: str) -> torch.utils.data.Dataset:
    """The train split, augmented as `schedule` says; `schedule_key` names it in params.yaml."""
    check_augment(schedule.augment, data.task, schedule_key)
    dataset = train_dataset(data, seed, schedule.augment)
    check_steps(schedule, len(dataset), data.root, schedule_key)
    distributed.local_batch_size(schedule.batch_size, schedule_key)  # refused here, before any step
    return dataset


def train_and_fold(model: nn.Module, dataset: torch.utils.data.Dataset, schedule: TrainConfig,
                   device: torch.device, runtime: RuntimeConfig, out: Path, history_csv: Path, work_dir: Path,
                   desc: str) -> None:
    """Train a freshly built model, fold its BatchNorm, write it and its per-epoch history:
    the recipe of the pretrained model, which the scratch baseline repeats."""
    tqdm.write(f"{desc}: {len(dataset)} images, {count_parameters(model):,} params, {device}")
    history = train(model, dataset, schedule, device=device, seed=runtime.seed, work_dir=work_dir, desc=desc,
                    precision=runtime.precision, channels_last=runtime.channels_last)
    save_checkpoint(out, fold_batch_norm(model.cpu().eval()))
    write_csv(history_csv, history)
