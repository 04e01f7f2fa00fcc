"""The stages of one pruning phase: L1 fine-tune, threshold search, select, surgery, retrain.

Each function reads its inputs from files, writes its outputs atomically, and is what
one DVC stage (stages/<name>.py) calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mlprune.atomic import atomic_path, write_csv, write_json
from mlprune.checkpoint import load_checkpoint, save_checkpoint
from mlprune.config import require
from mlprune.data.splits import DataConfig, train_dataset, val_dataset
from mlprune.evaluation.tasks import task_for
from mlprune.models.build import freeze_before
from mlprune.pruning.phases import PhaseConfig, phase_layers
from mlprune.pruning.selection import load_selection, select_filters, selection_to_json
from mlprune.pruning.sparsity import (
    apply_threshold,
    conv_weights,
    count_nonzero,
    l1_penalty,
    l1_proximal,
    weight_histogram,
)
from mlprune.pruning.surgery import keep_sources, prune_filters
from mlprune.pruning.threshold import ThresholdConfig, choose_threshold, sweep_thresholds
from mlprune.runtime import RuntimeConfig, setup
from mlprune.train import TrainConfig, train


@dataclass(frozen=True)
class KdetConfig:
    """The `kdet` section: cut the final model (of phase `source`) to k sources, k in `ks`."""

    source: str
    ks: list[int]
    retrain: TrainConfig

    def __post_init__(self) -> None:
        require(all(k >= 1 for k in self.ks), "ks", f"needs ks >= 1, got {self.ks}")  # [] for a classifier


def l1_finetune(start: Path, phase: PhaseConfig, data: DataConfig, runtime: RuntimeConfig,
                out: Path, history_csv: Path, hist_dir: Path, work_dir: Path) -> None:
    """Fine-tune with task loss + lambda * sum |w| over the phase's penalised convs."""
    device = setup(runtime)
    model, _ = load_checkpoint(start)
    roles = phase_layers(model.spec, phase.layers)
    before = {name: w.detach().clone() for name, w in conv_weights(model, phase.hist_layers).items()}
    dataset = train_dataset(data, runtime.seed, phase.l1.augment)
    if phase.freeze_earlier:
        freeze_before(model, phase.layers[0])
    if phase.l1_method == "proximal":
        regulariser = {"after_step": l1_proximal(roles.penalised, phase.l1_strength)}
    else:
        regulariser = {"penalty": l1_penalty(roles.penalised, phase.l1_strength)}
    history = train(model, dataset, phase.l1, device=device, seed=runtime.seed, work_dir=work_dir,
                    desc="l1 fine-tune", **regulariser)
    model.cpu()
    save_checkpoint(out, model)
    write_csv(history_csv, history)
    with atomic_path(hist_dir) as tmp:
        tmp.mkdir()
        for name, after in conv_weights(model, phase.hist_layers).items():
            write_csv(tmp / f"{name}.csv", weight_histogram(before[name].flatten(), after.detach().flatten()))


def threshold_search(l1_model: Path, phase: PhaseConfig, config: ThresholdConfig, data: DataConfig,
                     runtime: RuntimeConfig, batch_size: int, sweep_csv: Path, chosen_json: Path) -> None:
    """Sweep the grid on the validation split; keep the largest t within tolerance."""
    device = setup(runtime)
    model, _ = load_checkpoint(l1_model)
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


def select(l1_model: Path, start: Path, chosen_json: Path, phase: PhaseConfig, out_json: Path,
           nonzero_csv: Path) -> None:
    """Algorithm 1 on the thresholded L1 model; also the Fig 3 non-zero counts."""
    model, _ = load_checkpoint(l1_model)
    start_model, _ = load_checkpoint(start)
    roles = phase_layers(model.spec, phase.layers)
    t = json.loads(Path(chosen_json).read_text())["t"]
    before = count_nonzero(start_model, roles.penalised)
    apply_threshold(model, roles.penalised, t)
    after = count_nonzero(model, roles.penalised)
    weights = {name: w.detach() for name, w in conv_weights(model, roles.penalised).items()}
    selection = select_filters(roles.selected, weights, roles.consumers, phase.select)
    removed = sum(len(s.removed) for s in selection.values())
    if removed == 0:
        tqdm.write(f"warning: threshold t={t:.4g} leaves no filter to remove in this phase")
    report = selection_to_json(selection, phase.select, model.spec.widths)
    report["threshold"] = t
    write_json(out_json, report)
    write_csv(nonzero_csv, [{"layer": name, "before": before[name], "after_threshold": after[name]}
                            for name in roles.penalised])


def surgery(l1_model: Path, selection_json: Path, out: Path) -> None:
    """Remove the selected filters from the un-thresholded L1 model."""
    model, _ = load_checkpoint(l1_model)
    kept = load_selection(selection_json, model.spec.widths)
    pruned = prune_filters(model, kept)
    tqdm.write(f"surgery: {sum(p.numel() for p in model.parameters()):,} -> "
               f"{sum(p.numel() for p in pruned.parameters()):,} params")
    save_checkpoint(out, pruned)


def retrain(pruned: Path, phase: PhaseConfig, data: DataConfig, runtime: RuntimeConfig, out: Path,
            history_csv: Path, work_dir: Path) -> None:
    """Retrain a pruned model with the original loss (no L1 term)."""
    model, _ = load_checkpoint(pruned)
    if phase.freeze_earlier:
        freeze_before(model, phase.layers[0])
    retrain_model(model, phase.retrain, data, runtime, out, history_csv, work_dir)


def kdet(final: Path, k: int, schedule: TrainConfig, data: DataConfig, runtime: RuntimeConfig, out: Path,
         history_csv: Path, work_dir: Path) -> None:
    """Cut the final pruned model to its first k detection sources, then retrain it."""
    model, _ = load_checkpoint(final)
    retrain_model(keep_sources(model, k), schedule, data, runtime, out, history_csv, work_dir)


def retrain_model(model, schedule: TrainConfig, data: DataConfig, runtime: RuntimeConfig, out: Path,
                  history_csv: Path, work_dir: Path) -> None:
    device = setup(runtime)
    dataset = train_dataset(data, runtime.seed, schedule.augment)
    history = train(model, dataset, schedule, device=device, seed=runtime.seed, work_dir=work_dir,
                    desc="retrain")
    save_checkpoint(out, model.cpu())
    write_csv(history_csv, history)
