"""Stage `l1_finetune`: task loss + L1 on the phase's layers, giving Theta_L1 (+ Fig 2 data)."""

from __future__ import annotations

from pathlib import Path

from mlprune.atomic import atomic_path, write_csv
from mlprune.checkpoint import load_checkpoint, save_checkpoint
from mlprune.data.splits import DataConfig
from mlprune.models.build import freeze_before
from mlprune.pipeline.phase_config import PhaseConfig
from mlprune.pipeline.training import training_set
from mlprune.pruning.phases import phase_layers
from mlprune.pruning.sparsity import (
    conv_weights,
    group_dims,
    group_lasso_proximal,
    l1_penalty,
    l1_proximal,
    weight_histogram,
)
from mlprune.runtime import RuntimeConfig, setup
from mlprune.train import train


def l1_finetune(start: Path, phase: PhaseConfig, data: DataConfig, runtime: RuntimeConfig,
                out: Path, history_csv: Path, hist_dir: Path, work_dir: Path, schedule_key: str) -> None:
    """Fine-tune with task loss + lambda * sum |w| over the phase's penalised convs (or, with
    `l1_method: group_lasso`, lambda times the group lasso of `group_lasso_proximal`).

    `schedule_key` names `phase.l1` in params.yaml (phases.<phase>.l1) for error messages.
    """
    device = setup(runtime, trains=True)
    model = load_checkpoint(start, data.classes)
    roles = phase_layers(model.spec, phase.layers)
    before = {name: w.detach().clone() for name, w in conv_weights(model, phase.hist_layers).items()}
    dataset = training_set(data, phase.l1, runtime.seed, schedule_key)
    if phase.freeze_earlier:
        freeze_before(model, phase.layers[0])
    if phase.l1_method == "proximal":
        regulariser = {"after_step": l1_proximal(roles.penalised, phase.l1_strength, phase.l1_ramp)}
    elif phase.l1_method == "group_lasso":
        groups = group_dims(roles.selected, roles.penalised)
        regulariser = {"after_step": group_lasso_proximal(groups, phase.l1_strength, phase.l1_ramp)}
    else:
        regulariser = {"penalty": l1_penalty(roles.penalised, phase.l1_strength)}
    history = train(model, dataset, phase.l1, device=device, seed=runtime.seed, work_dir=work_dir,
                    desc="l1 fine-tune", precision=runtime.precision, channels_last=runtime.channels_last,
                    **regulariser)
    model.cpu()
    save_checkpoint(out, model)
    write_csv(history_csv, history)
    with atomic_path(hist_dir) as tmp:
        tmp.mkdir()
        for name, after in conv_weights(model, phase.hist_layers).items():
            write_csv(tmp / f"{name}.csv", weight_histogram(before[name].flatten(), after.detach().flatten()))
