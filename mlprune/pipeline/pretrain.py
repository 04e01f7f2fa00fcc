"""Stage `pretrain`: train the model from scratch (or from `model.init`), then fold BatchNorm into the convs."""

from __future__ import annotations

from pathlib import Path

from torch import nn
from tqdm import tqdm

from mlprune.data.splits import DataConfig, train_dataset
from mlprune.errors import ConfigError
from mlprune.interop.importing import import_model
from mlprune.models.arch import ArchSpec, ModelConfig
from mlprune.models.build import build_model
from mlprune.pipeline.training import train_and_fold
from mlprune.runtime import RuntimeConfig, setup
from mlprune.train import TrainConfig


def pretrain(data: DataConfig, model_config: ModelConfig, schedule: TrainConfig, runtime: RuntimeConfig,
             out: Path, history_csv: Path, work_dir: Path) -> None:
    """Writes the BN-folded checkpoint to `out` and one row per epoch to `history_csv`."""
    device = setup(runtime)
    dataset = train_dataset(data, runtime.seed, schedule.augment)
    model = initial_model(model_config, model_config.to_spec(len(data.classes)))
    data.check_model_task(model.spec.task, model.spec.model)
    train_and_fold(model, dataset, schedule, device, runtime.seed, out, history_csv, work_dir, desc="pretrain")


INIT_DIR = Path("data/init")  # the pretrain stage's dep: DVC hashes the start weights, not only their name


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
