"""Stage `pretrain`: train the model from scratch, then fold BatchNorm into the convs."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from mlprune.atomic import write_csv
from mlprune.checkpoint import save_checkpoint
from mlprune.data.splits import DataConfig, train_dataset
from mlprune.models.arch import ModelConfig
from mlprune.models.build import build_model, count_parameters, fold_batch_norm
from mlprune.runtime import RuntimeConfig, setup
from mlprune.train import TrainConfig, train


def pretrain(data: DataConfig, model_config: ModelConfig, schedule: TrainConfig, runtime: RuntimeConfig,
             out: Path, history_csv: Path, work_dir: Path) -> None:
    """Writes the BN-folded checkpoint to `out` and one row per epoch to `history_csv`."""
    device = setup(runtime)
    dataset = train_dataset(data, runtime.seed, schedule.augment)
    model = build_model(model_config.to_spec(len(data.classes)))
    data.check_model_task(model.spec.task, model.spec.model)
    train_and_fold(model, dataset, schedule, device, runtime.seed, out, history_csv, work_dir, desc="pretrain")


def train_and_fold(model: nn.Module, dataset: torch.utils.data.Dataset, schedule: TrainConfig,
                   device: torch.device, seed: int, out: Path, history_csv: Path, work_dir: Path,
                   desc: str) -> None:
    """Train a freshly built model, fold its BatchNorm, write it and its per-epoch history:
    the recipe of the pretrained model, which the scratch baseline repeats."""
    tqdm.write(f"{desc}: {len(dataset)} images, {count_parameters(model):,} params, {device}")
    history = train(model, dataset, schedule, device=device, seed=seed, work_dir=work_dir, desc=desc)
    save_checkpoint(out, fold_batch_norm(model.cpu().eval()))
    write_csv(history_csv, history)
