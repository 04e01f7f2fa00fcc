"""Stage `retrain`: train a pruned model with the original loss (no L1 term)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from mlprune.atomic import write_csv
from mlprune.checkpoint import load_checkpoint, save_checkpoint
from mlprune.data.splits import DataConfig
from mlprune.models.build import freeze_before
from mlprune.pipeline.training import training_set
from mlprune.runtime import RuntimeConfig, setup
from mlprune.train import TrainConfig, train


def retrain(pruned: Path, schedule: TrainConfig, freeze_from: str | None, data: DataConfig,
            runtime: RuntimeConfig, out: Path, history_csv: Path, work_dir: Path, schedule_key: str) -> None:
    """Retrain the pruned checkpoint; with `freeze_from`, the layers before it stay fixed."""
    model = load_checkpoint(pruned, data.classes)
    if freeze_from is not None:
        freeze_before(model, freeze_from)
    retrain_model(model, schedule, data, runtime, out, history_csv, work_dir, schedule_key)


def retrain_model(model: nn.Module, schedule: TrainConfig, data: DataConfig, runtime: RuntimeConfig, out: Path,
                  history_csv: Path, work_dir: Path, schedule_key: str) -> None:
    """Train `model` on the train split, then write it and its per-epoch history. `schedule_key`
    names `schedule` in params.yaml for error messages."""
    device = setup(runtime, trains=True)
    dataset = training_set(data, schedule, runtime.seed, schedule_key)
    history = train(model, dataset, schedule, device=device, seed=runtime.seed, work_dir=work_dir,
                    desc="retrain", precision=runtime.precision, channels_last=runtime.channels_last)
    save_checkpoint(out, model.cpu())
    write_csv(history_csv, history)
