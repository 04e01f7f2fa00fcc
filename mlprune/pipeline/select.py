"""Stage `select`: Algorithm 1 on the thresholded L1 model -> selection JSON (+ Fig 3 data)."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from mlprune.atomic import write_csv, write_json
from mlprune.checkpoint import load_weights
from mlprune.pipeline.report import read_metrics
from mlprune.pruning.phases import phase_layers
from mlprune.pruning.selection import SelectionRule, select_filters, selection_to_json
from mlprune.pruning.sparsity import apply_threshold, count_nonzero, group_dims, state_weights


def select(l1_model: Path, start: Path, chosen_json: Path, layers: list[str], rule: SelectionRule,
           out_json: Path, nonzero_csv: Path) -> None:
    """Algorithm 1 on the L1 model thresholded at the chosen t; also the Fig 3 non-zero counts."""
    spec, state = load_weights(l1_model)
    start_spec, start_state = load_weights(start)
    roles = phase_layers(spec, layers)
    chosen = read_metrics(chosen_json)
    t = chosen["t"]
    # threshold.json without `compared` (written before the group lasso existed) compared weights
    groups = group_dims(roles.selected, roles.penalised) if chosen.get("compared") == "group_rms" else None
    before = count_nonzero(state_weights(start_spec, start_state, roles.penalised))
    weights = state_weights(spec, state, roles.penalised)
    apply_threshold(weights, t, groups)
    after = count_nonzero(weights)
    selection = select_filters(roles.selected, weights, roles.consumers, rule)
    removed = sum(len(s.removed) for s in selection.values())
    if removed == 0:
        tqdm.write(f"warning: threshold t={t:.4g} leaves no filter to remove in this phase")
    report = selection_to_json(selection, rule, spec.widths)
    report["threshold"] = t
    write_json(out_json, report)
    write_csv(nonzero_csv, [{"layer": name, "before": before[name], "after_threshold": after[name]}
                            for name in roles.penalised])
