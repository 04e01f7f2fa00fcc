"""Stage `check_pruned`: the pruned model's validation score before retraining, beside the
thresholded model's.

Threshold search vouches for the thresholded L1 model, but surgery removes whole filters
from the un-thresholded one: a selection that removes filters the model still needs shows
up here as a drop, before retraining can hide it. With `max_pruned_drop` set the stage
refuses such a model, so retraining never starts from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tqdm import tqdm

from mlprune.atomic import write_json
from mlprune.checkpoint import load_checkpoint
from mlprune.data.splits import DataConfig
from mlprune.errors import MlpruneError
from mlprune.evaluation.tasks import validation_scorer
from mlprune.models.build import count_parameters
from mlprune.pipeline.report import read_metrics
from mlprune.runtime import RuntimeConfig


def check_pruned(pruned: Path, l1_model: Path, chosen_json: Path, phase: str, max_drop: float | None,
                 data: DataConfig, runtime: RuntimeConfig, batch_size: int, metrics_out: Path) -> dict:
    """Score the pruned checkpoint on the validation split and write `metrics_out`; with
    `max_drop`, refuse (writing nothing) when it scores more than that below the thresholded model.

    `l1_model` is surgery's input: its widths and parameter count are the "before"."""
    model = load_checkpoint(pruned, data.classes)
    before = load_checkpoint(l1_model, data.classes)
    task, score, _ = validation_scorer(model.spec, data, runtime, batch_size)
    thresholded = thresholded_score(chosen_json)
    pruned_score = score(model)
    hardest = hardest_cut(before.spec.widths, model.spec.widths)
    metrics = {"score_name": task.score_name, "thresholded_score": thresholded, "pruned_score": pruned_score,
               "drop": thresholded - pruned_score, "max_pruned_drop": max_drop,
               "params_before": count_parameters(before), "params_after": count_parameters(model),
               "hardest_cut": hardest}
    tqdm.write(f"check_pruned: validation {task.score_name} {metrics['pruned_score']:.4f} before retraining, "
               f"{thresholded:.4f} thresholded; {metrics['params_before']:,} -> {metrics['params_after']:,} params")
    if max_drop is not None and metrics["drop"] > max_drop:
        raise MlpruneError(f"phases.{phase}.max_pruned_drop: the pruned model scores {metrics['pruned_score']:.3f} "
                           f"on validation, {metrics['drop']:.3f} below the thresholded {thresholded:.3f}; "
                           f"{describe_cut(hardest)}")
    write_json(metrics_out, metrics)
    return metrics


def hardest_cut(before: Mapping[str, int], after: Mapping[str, int]) -> dict | None:
    """The layer that lost the largest fraction of its filters (the first in network order
    on a tie), or None when no layer lost any."""
    cut = [name for name in after if after[name] < before[name]]
    if not cut:
        return None
    layer = max(cut, key=lambda name: 1 - after[name] / before[name])
    return {"layer": layer, "width_before": before[layer], "width_after": after[layer],
            "fraction_removed": round(1 - after[layer] / before[layer], 4)}


def describe_cut(hardest: dict | None) -> str:
    if hardest is None:
        return "no filter was removed"
    return (f"the layer cut hardest is {hardest['layer']} "
            f"({hardest['width_before']} -> {hardest['width_after']} filters)")


def thresholded_score(chosen_json: Path) -> float:
    """The validation score threshold search measured at the chosen threshold."""
    chosen = read_metrics(chosen_json, "has threshold search run?")
    score = chosen.get("score") if isinstance(chosen, dict) else None
    if not isinstance(score, (int, float)) or isinstance(score, bool):
        raise MlpruneError(f"{chosen_json}: expected a numeric 'score' (the thresholded model's), got {score!r}")
    return float(score)
