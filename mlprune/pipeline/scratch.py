"""Stage `scratch`: the final pruned architecture trained from scratch, the baseline pruning must beat.

Liu et al. ("Rethinking the Value of Network Pruning", ICLR 2019) found that a pruned
architecture trained from a fresh initialisation often matches the pruned and retrained
model, in which case the pruning found an architecture, not weights worth keeping. This
stage measures that instead of assuming it: the final model's per-layer widths, built
afresh (BatchNorm as in `model.batch_norm`, folded afterwards, as pretraining does) and
trained with the `pretrain` recipe on as many training images as the pruned model saw in
all: its pretraining plus every L1 fine-tune and retrain on its way (their "Scratch-B",
with the budget counted in images).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from mlprune.atomic import write_json
from mlprune.checkpoint import load_checkpoint
from mlprune.data.splits import DataConfig
from mlprune.errors import MlpruneError
from mlprune.models.build import build_model
from mlprune.pipeline.phase_config import PhaseConfig, phase_chain
from mlprune.pipeline.training import train_and_fold, training_set
from mlprune.runtime import RuntimeConfig, setup
from mlprune.schedule import TrainConfig, images_seen


@dataclass(frozen=True)
class ScratchConfig:
    """The `scratch` section of params.yaml."""

    source: str = "phase4"  # the phase whose final (retrained) model's architecture is trained from scratch


def pruned_model_schedules(pretrain: TrainConfig, phases: dict[str, PhaseConfig], source: str) -> list[TrainConfig]:
    """Every schedule the model of phase `source` was trained with, in order: pretraining,
    then each phase's L1 fine-tune and retrain, from the first phase to `source`."""
    chain = phase_chain(phases, source, "scratch.source")
    return [pretrain, *(schedule for name in chain for schedule in (phases[name].l1, phases[name].retrain))]


def training_budget(schedules: Sequence[TrainConfig], n_images: int) -> int:
    """Training images the schedules draw in all, on a train split of `n_images`."""
    return sum(images_seen(schedule, n_images) for schedule in schedules)


def scratch_schedule(recipe: TrainConfig, budget: int, n_images: int) -> TrainConfig:
    """`recipe` over whole epochs of equal length that draw `budget` images, less the
    remainder of whole batches spread over the epochs (under one batch per epoch)."""
    steps = budget // recipe.batch_size
    steps_per_full_epoch = n_images // recipe.batch_size
    if steps == 0 or steps_per_full_epoch == 0:
        raise MlpruneError(f"scratch: the pruned model saw {budget} training images, not one batch of "
                           f"pretrain.batch_size {recipe.batch_size} from {n_images}: no baseline to train")
    epochs = math.ceil(steps / steps_per_full_epoch)
    return replace(recipe, epochs=epochs, epoch_images=steps // epochs * recipe.batch_size)


def scratch(final: Path, batch_norm: bool, recipe: TrainConfig, pruned_schedules: Sequence[TrainConfig],
            data: DataConfig, runtime: RuntimeConfig, out: Path, history_csv: Path, budget_json: Path,
            work_dir: Path) -> None:
    """Train the architecture of checkpoint `final` from a fresh initialisation with `recipe`
    for the images `pruned_schedules` drew; write it BN-folded, its history and its budget."""
    spec = load_checkpoint(final, data.classes).spec.replace(batch_norm=batch_norm)
    device = setup(runtime, trains=True)
    dataset = training_set(data, recipe, runtime.seed, "pretrain")  # the recipe is pretrain's
    budget = training_budget(pruned_schedules, len(dataset))
    schedule = scratch_schedule(recipe, budget, len(dataset))
    tqdm.write(f"scratch: the pruned model saw {budget:,} training images; {schedule.epochs} epochs of "
               f"{schedule.epoch_images} = {images_seen(schedule, len(dataset)):,}")
    train_and_fold(build_model(spec), dataset, schedule, device, runtime, out, history_csv, work_dir,
                   desc="scratch")
    write_json(budget_json, {"train_images": len(dataset), "pruned_model_images": budget,
                             "scratch_images": images_seen(schedule, len(dataset)), "epochs": schedule.epochs,
                             "epoch_images": schedule.epoch_images})
