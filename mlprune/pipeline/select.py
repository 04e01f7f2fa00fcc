"""Stage `select`: Algorithm 1 on the thresholded L1 model -> selection JSON (+ Fig 3 data)."""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from mlprune.atomic import write_csv, write_json
from mlprune.checkpoint import load_checkpoint
from mlprune.pruning.phases import phase_layers
from mlprune.pruning.selection import SelectionRule, select_filters, selection_to_json
from mlprune.pruning.sparsity import apply_threshold, conv_weights, count_nonzero


def select(l1_model: Path, start: Path, chosen_json: Path, layers: list[str], rule: SelectionRule,
           out_json: Path, nonzero_csv: Path) -> None:
    """Algorithm 1 on the L1 model thresholded at the chosen t; also the Fig 3 non-zero counts."""
    model = load_checkpoint(l1_model)
    start_model = load_checkpoint(start)
    roles = phase_layers(model.spec, layers)
    t = json.loads(Path(chosen_json).read_text())["t"]
    before = count_nonzero(start_model, roles.penalised)
    apply_threshold(model, roles.penalised, t)
    after = count_nonzero(model, roles.penalised)
    weights = {name: w.detach() for name, w in conv_weights(model, roles.penalised).items()}
    selection = select_filters(roles.selected, weights, roles.consumers, rule)
    removed = sum(len(s.removed) for s in selection.values())
    if removed == 0:
        tqdm.write(f"warning: threshold t={t:.4g} leaves no filter to remove in this phase")
    report = selection_to_json(selection, rule, model.spec.widths)
    report["threshold"] = t
    write_json(out_json, report)
    write_csv(nonzero_csv, [{"layer": name, "before": before[name], "after_threshold": after[name]}
                            for name in roles.penalised])
