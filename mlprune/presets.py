"""Presets: complete params files in configs/, one per experiment.

`mlprune preset NAME` validates configs/NAME.yaml and copies it over params.yaml. DVC
only ever reads params.yaml, so `dvc repro`, `dvc exp run -S ...` and `dvc metrics diff`
work the same on every preset; switch presets on a branch to compare them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mlprune.atomic import atomic_path
from mlprune.config import load_params, parse_section, section
from mlprune.data.splits import DataConfig
from mlprune.data.synthetic import SyntheticConfig
from mlprune.errors import ConfigError
from mlprune.evaluation.report import EvalConfig
from mlprune.evaluation.tasks import task_for
from mlprune.models.arch import ArchSpec, ModelConfig
from mlprune.pruning.phases import parse_phases
from mlprune.pruning.steps import KdetConfig
from mlprune.pruning.threshold import ThresholdConfig
from mlprune.runtime import RuntimeConfig
from mlprune.train import TrainConfig

CONFIGS = Path("configs")


def preset_names(configs: Path = CONFIGS) -> list[str]:
    return sorted(path.stem for path in configs.glob("*.yaml"))


def check_params(params: dict[str, Any]) -> ArchSpec:
    """Parse every section the pipeline reads; returns the spec of the model it pretrains."""
    parse_section(params, "common", RuntimeConfig)
    parse_section(params, "synthetic", SyntheticConfig)
    parse_section(params, "pretrain", TrainConfig)
    parse_section(params, "evaluate", EvalConfig)
    parse_section(params, "threshold", ThresholdConfig)
    parse_section(params, "kdet", KdetConfig)
    data = parse_section(params, "data", DataConfig)
    model = parse_section(params, "model", ModelConfig)
    parse_phases(section(params, "phases"), model.name)
    spec = model.to_spec(len(data.classes))
    task_for(data, spec)
    return spec


def apply_preset(name: str, params_file: Path = Path("params.yaml"), configs: Path = CONFIGS) -> Path:
    """Validate configs/<name>.yaml, then replace `params_file` with it."""
    source = configs / f"{name}.yaml"
    if not source.is_file():
        raise ConfigError(f"preset {name!r}: no {source}; presets are {', '.join(preset_names(configs))}")
    try:
        check_params(load_params(source))
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    with atomic_path(params_file) as tmp:
        shutil.copyfile(source, tmp)
    return source
