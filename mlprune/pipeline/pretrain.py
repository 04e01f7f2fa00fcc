"""Stage `pretrain`: train the model from scratch (or from `model.init`), then fold BatchNorm into the convs."""

from __future__ import annotations

from pathlib import Path

from torch import nn
from tqdm import tqdm

from mlprune.config import require
from mlprune.data.splits import DataConfig
from mlprune.errors import ConfigError
from mlprune.interop.importing import import_model
from mlprune.models.arch import ArchSpec, ModelConfig
from mlprune.models.build import build_model
from mlprune.pipeline.training import train_and_fold, training_set
from mlprune.runtime import RuntimeConfig, setup
from mlprune.train import TrainConfig

SCHEDULE_KEY = "pretrain"
INIT_DIR = Path("data/init")  # the pretrain stage's dep: DVC hashes the start weights, not only their name


def pretrain(data: DataConfig, model_config: ModelConfig, schedule: TrainConfig, runtime: RuntimeConfig,
             out: Path, history_csv: Path, work_dir: Path) -> None:
    """Writes the BN-folded checkpoint to `out` and one row per epoch to `history_csv`."""
    spec = model_config.to_spec(data.classes)
    data.check_model_task(spec.task, spec.model)
    check_pretrain_schedule(schedule, spec.batch_norm, started=model_config.init is not None)
    device = setup(runtime, trains=True)
    dataset = training_set(data, schedule, runtime.seed, SCHEDULE_KEY)
    model = initial_model(model_config, spec)
    train_and_fold(model, dataset, schedule, device, runtime, out, history_csv, work_dir, desc="pretrain")


def check_pretrain_schedule(schedule: TrainConfig, batch_norm: bool, started: bool) -> None:
    """What only training from scratch needs: at least one epoch (else the model is random;
    a model started from `model.init` may keep its weights with 0 epochs), and with
    BatchNorm at least two images per batch (BatchNorm normalises over the batch; torch
    refuses a single value per channel)."""
    require(started or schedule.epochs >= 1, f"{SCHEDULE_KEY}.epochs",
            f"must be >= 1 (0 would save an untrained model; 0 keeps a model.init as it is), got {schedule.epochs}")
    require(not batch_norm or schedule.batch_size >= 2, f"{SCHEDULE_KEY}.batch_size",
            f"must be >= 2 with model.batch_norm: true (BatchNorm needs more than one image per batch), "
            f"got {schedule.batch_size}")


def initial_model(config: ModelConfig, spec: ArchSpec) -> nn.Module:
    """A freshly initialised model of `spec`, or the one `model.init` names (see data/init/README.md)."""
    if config.init is None:
        return build_model(spec)
    init = Path(config.init)
    if INIT_DIR.resolve() not in init.resolve().parents:
        raise ConfigError(f"model.init: {init} is not under {INIT_DIR}/; copy or link the file there, so DVC "
                          "re-runs pretrain when it changes")
    imported = import_model(init, spec, new_class_head=config.init_new_head)
    tqdm.write(f"pretrain: starts from {init} ({imported.source}, {len(imported.layers)} layers)")
    return imported.model
