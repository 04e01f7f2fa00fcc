"""Stage `retrain`: train a pruned model with the original loss (no L1 term).

A retrained model is refused when it scores at chance on validation while the phase's
start model did not: retraining collapsed (seen when layers were cut to a few BN-free
filters), and the next phase would prune a model that predicts nothing. The pruned model
itself is no reference: with a wide tolerance it often scores at chance before retraining.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from mlprune.atomic import write_csv
from mlprune.checkpoint import load_checkpoint, save_checkpoint
from mlprune.data.splits import DataConfig
from mlprune.errors import MlpruneError
from mlprune.evaluation.tasks import ValidationScorer, validation_scorer
from mlprune.models.build import fold_batch_norm, freeze_before, insert_batch_norm, trainable_convs
from mlprune.pipeline.report import read_metrics
from mlprune.pipeline.training import training_set
from mlprune.runtime import RuntimeConfig, setup
from mlprune.train import TrainConfig, train

CALIBRATION_IMAGES = 256  # training images that set the re-inserted BatchNorms' statistics


class RetrainCollapsed(MlpruneError):
    """The retrained model scores at chance, the phase's start model above."""


def retrain(pruned: Path, threshold_json: Path, check_chance: bool, schedule: TrainConfig, freeze_from: str | None,
            batch_norm: bool, data: DataConfig, runtime: RuntimeConfig, eval_batch_size: int, out: Path,
            history_csv: Path, work_dir: Path, schedule_key: str) -> None:
    """Retrain the pruned checkpoint; with `freeze_from`, the layers before it stay fixed;
    with `batch_norm`, the trained convs get BatchNorm back while retraining (folded after).
    `threshold_json` is threshold search's: the phase's start model's validation score, the
    reference of the check at chance (`check_chance`, `ThresholdConfig.checks_chance`)."""
    start_score = start_validation_score(threshold_json) if check_chance else None  # before training
    model = load_checkpoint(pruned, data.classes)
    if freeze_from is not None:
        freeze_before(model, freeze_from)
    retrain_model(model, schedule, data, runtime, out, history_csv, work_dir, schedule_key,
                  batch_norm=batch_norm, start_score=start_score, eval_batch_size=eval_batch_size)


def retrain_model(model: nn.Module, schedule: TrainConfig, data: DataConfig, runtime: RuntimeConfig, out: Path,
                  history_csv: Path, work_dir: Path, schedule_key: str, batch_norm: bool = False,
                  start_score: float | None = None, eval_batch_size: int = 1) -> None:
    """Train `model` on the train split, then write it and its per-epoch history. `schedule_key`
    names `schedule` in params.yaml for error messages. With `start_score` (the phase's start
    model's validation score), a model retrained to chance while that was above it is
    refused and nothing is written."""
    device = setup(runtime, trains=True)
    dataset = training_set(data, schedule, runtime.seed, schedule_key)
    # Loaded before training: under torchrun only rank 0 is left after it, outside the process group.
    scorer = validation_scorer(model.spec, data, runtime, eval_batch_size) if start_score is not None else None
    if batch_norm and schedule.epochs:
        batches = calibration_batches(dataset, schedule.batch_size, runtime.seed)
        insert_batch_norm(model, trainable_convs(model), batches)
    history = train(model, dataset, schedule, device=device, seed=runtime.seed, work_dir=work_dir,
                    desc="retrain", precision=runtime.precision, channels_last=runtime.channels_last)
    model = fold_batch_norm(model.cpu().eval())
    if scorer is not None:
        check_retrained(model, scorer, start_score, schedule_key)
    save_checkpoint(out, model)
    write_csv(history_csv, history)


def calibration_batches(dataset: torch.utils.data.Dataset, batch_size: int, seed: int) -> Iterator[list[torch.Tensor]]:
    """The first CALIBRATION_IMAGES training images (augmented as in training, seeded), in batches."""
    torch.manual_seed(seed)
    count = min(len(dataset), CALIBRATION_IMAGES)
    for start in tqdm(range(0, count, batch_size), desc="BatchNorm calibration", leave=False):
        yield [dataset[i][0] for i in range(start, min(start + batch_size, count))]


def start_validation_score(threshold_json: Path) -> float:
    """The phase's start model's validation score, from threshold search's JSON."""
    chosen = read_metrics(threshold_json, "has threshold search run?")
    score = chosen.get("start_score") if isinstance(chosen, dict) else None
    if not isinstance(score, (int, float)) or isinstance(score, bool):
        raise MlpruneError(f"{threshold_json}: expected a numeric 'start_score' (the phase's start model's), "
                           f"got {score!r}")
    return float(score)


def check_retrained(model: nn.Module, scorer: ValidationScorer, start_score: float, schedule_key: str) -> None:
    """Refuse a retrained model at chance on validation when the phase's start model scored above it."""
    task, score, chance = scorer
    retrained_score = score(model)
    tqdm.write(f"retrain: validation {task.score_name} {retrained_score:.4f} (the phase's start model "
               f"{start_score:.4f}, chance {chance:.4f})")
    if retrained_score <= chance < start_score:
        raise RetrainCollapsed(
            f"{schedule_key}: the retrained model scores {retrained_score:.4f} {task.score_name} on validation, "
            f"chance level ({chance:.4f}); the phase's start model scored {start_score:.4f}: retraining collapsed; "
            f"lower {schedule_key}.lr or keep more filters (select.min_keep), or retrain with BatchNorm "
            f"(retrain_batch_norm: true)")
