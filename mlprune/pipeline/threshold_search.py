"""Stage `threshold_search`: the largest grid threshold whose validation score stays in tolerance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from mlprune.atomic import write_csv, write_json
from mlprune.checkpoint import load_checkpoint
from mlprune.data.splits import DataConfig
from mlprune.evaluation.tasks import validation_scorer
from mlprune.pipeline.phase_config import TOLERANCE_REFERENCES, PhaseConfig
from mlprune.pruning.phases import phase_layers
from mlprune.pruning.sparsity import threshold_groups
from mlprune.pruning.threshold import ThresholdConfig, check_l1_model, choose_threshold, sweep_thresholds
from mlprune.runtime import RuntimeConfig


def threshold_search(l1_model: Path, start_model: Path, phase: PhaseConfig, config: ThresholdConfig,
                     data: DataConfig, runtime: RuntimeConfig, batch_size: int, sweep_csv: Path,
                     chosen_json: Path) -> None:
    """Sweep the grid on the validation split; keep the largest t within tolerance of the
    reference model (`phase.tolerance_reference`: the L1 model or the phase's start model),
    after checking that the L1 fine-tune left a model worth thresholding (`check_l1_model`).
    `compared` in the JSON says what t is compared with (`threshold_groups`), for `select`."""
    model = load_checkpoint(l1_model, data.classes)
    roles = phase_layers(model.spec, phase.layers)
    task, score, chance = validation_scorer(model.spec, data, runtime, batch_size)
    scores = {"l1": score(model), "start": score(load_checkpoint(start_model, data.classes))}
    reference = scores[phase.tolerance_reference]
    tqdm.write(f"threshold search: validation {task.score_name}: start model {scores['start']:.4f}, "
               f"L1 model {scores['l1']:.4f}; tolerance {phase.tolerance} below the "
               f"{TOLERANCE_REFERENCES[phase.tolerance_reference]}'s")
    if config.checks_chance:
        check_l1_model(scores["l1"], scores["start"], chance, config.min_l1_retained, task.score_name)
    groups = threshold_groups(phase.l1_method, roles.selected, roles.penalised)
    rows = sweep_thresholds(model, roles.penalised, config, score, groups)
    write_csv(sweep_csv, rows)  # written before choosing, so a failed search can be inspected
    chosen = choose_threshold(rows, reference, phase.tolerance, TOLERANCE_REFERENCES[phase.tolerance_reference])
    warning = largest_grid_warning(chosen["grid"], config.grid)
    if warning:
        tqdm.write(warning)
    write_json(chosen_json, {"t": chosen["t"], "grid": chosen["grid"], "score": chosen["score"],
                             "reference": phase.tolerance_reference, "reference_score": reference,
                             "l1_score": scores["l1"], "start_score": scores["start"],
                             "tolerance": phase.tolerance, "sparsity": chosen["sparsity"],
                             "largest_grid_value": warning is not None,
                             "compared": "weight" if groups is None else "group_rms"})


def largest_grid_warning(chosen: float, grid: Sequence[float]) -> str | None:
    """A warning when the chosen value is the grid's largest: a larger one might also have
    stayed within tolerance, so the search may have stopped too early."""
    if chosen != grid[-1]:
        return None
    wider = [*grid, grid[-1] * 2, grid[-1] * 4] if grid[-1] > 0 else [*grid, 0.5, 1.0]
    return (f"warning: threshold.grid: the chosen value {chosen} is the grid's largest, so larger thresholds "
            f"may stay within tolerance too; extend the grid, e.g. "
            f"dvc exp run -S 'threshold.grid=[{','.join(f'{v:g}' for v in wider)}]'")
