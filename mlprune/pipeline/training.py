"""Training shared by the stages that train a model from its first weights: pretrain and scratch."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from mlprune.atomic import write_csv
from mlprune.checkpoint import save_checkpoint
from mlprune.models.build import count_parameters, fold_batch_norm
from mlprune.train import TrainConfig, train


def train_and_fold(model: nn.Module, dataset: torch.utils.data.Dataset, schedule: TrainConfig,
                   device: torch.device, seed: int, out: Path, history_csv: Path, work_dir: Path,
                   desc: str) -> None:
    """Train a freshly built model, fold its BatchNorm, write it and its per-epoch history:
    the recipe of the pretrained model, which the scratch baseline repeats."""
    tqdm.write(f"{desc}: {len(dataset)} images, {count_parameters(model):,} params, {device}")
    history = train(model, dataset, schedule, device=device, seed=seed, work_dir=work_dir, desc=desc)
    save_checkpoint(out, fold_batch_norm(model.cpu().eval()))
    write_csv(history_csv, history)
