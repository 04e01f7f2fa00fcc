"""Stage `threshold_search`: the largest grid threshold whose validation score stays in tolerance."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from mlprune.atomic import write_csv, write_json
from mlprune.checkpoint import load_checkpoint
from mlprune.data.splits import DataConfig, val_dataset
from mlprune.evaluation.tasks import task_for
from mlprune.pipeline.phase_config import PhaseConfig
from mlprune.pruning.phases import phase_layers
from mlprune.pruning.threshold import ThresholdConfig, choose_threshold, sweep_thresholds
from mlprune.runtime import RuntimeConfig, setup


def threshold_search(l1_model: Path, phase: PhaseConfig, config: ThresholdConfig, data: DataConfig,
                     runtime: RuntimeConfig, batch_size: int, sweep_csv: Path, chosen_json: Path) -> None:
    """Sweep the grid on the validation split; keep the largest t within tolerance."""
    device = setup(runtime)
    model = load_checkpoint(l1_model, data.classes)
    roles = phase_layers(model.spec, phase.layers)
    dataset = val_dataset(data, runtime.seed)
    task = task_for(data, model.spec)

    def score(m):
        return task.validation_score(m, dataset, data.classes, device, batch_size)

    reference = score(model)
    tqdm.write(f"threshold search: L1 model validation {task.score_name} {reference:.4f}")
    rows = sweep_thresholds(model, roles.penalised, config, score)
    write_csv(sweep_csv, rows)  # written before choosing, so a failed search can be inspected
    chosen = choose_threshold(rows, reference, phase.tolerance)
    write_json(chosen_json, {"t": chosen["t"], "grid": chosen["grid"], "score": chosen["score"],
                             "reference_score": reference, "tolerance": phase.tolerance,
                             "sparsity": chosen["sparsity"]})
