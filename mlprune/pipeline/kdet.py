"""Stage `kdet`: keep the final model's first k detection sources, retrain (paper's Table 5)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlprune.checkpoint import load_checkpoint
from mlprune.config import require
from mlprune.data.splits import DataConfig
from mlprune.pipeline.retrain import retrain_model
from mlprune.pruning.surgery import keep_sources
from mlprune.runtime import RuntimeConfig
from mlprune.train import TrainConfig

SCHEDULE_KEY = "kdet.retrain"


@dataclass(frozen=True)
class KdetConfig:
    """The `kdet` section: cut the final model (of phase `source`) to k sources, k in `ks`."""

    source: str
    ks: list[int]
    retrain: TrainConfig

    def __post_init__(self) -> None:
        require(all(k >= 1 for k in self.ks), "ks", f"needs ks >= 1, got {self.ks}")  # [] for a classifier


def kdet(final: Path, k: int, schedule: TrainConfig, data: DataConfig, runtime: RuntimeConfig, out: Path,
         history_csv: Path, work_dir: Path) -> None:
    """Cut the final pruned model to its first k detection sources, then retrain it."""
    retrain_model(keep_sources(load_checkpoint(final, data.classes), k), schedule, data, runtime, out, history_csv,
                  work_dir, SCHEDULE_KEY)
