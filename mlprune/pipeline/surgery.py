"""Stage `surgery`: remove the selected filters (and consumers' input channels) from Theta_L1."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from mlprune.checkpoint import load_weights, save_weights
from mlprune.errors import MlpruneError
from mlprune.pruning.phases import PhaseLayers, phase_layers
from mlprune.pruning.selection import load_selection
from mlprune.pruning.surgery import prune_state


def surgery(l1_model: Path, selection_json: Path, phase: str, layers: Sequence[str], out: Path) -> None:
    """Remove the selected filters from the un-thresholded L1 model of phase `phase` (its `layers`)."""
    spec, state = load_weights(l1_model)
    kept = load_selection(selection_json, spec.widths)
    check_selection_roles(selection_json, kept, spec.widths, phase, phase_layers(spec, layers))
    pruned_spec, pruned = prune_state(spec, state, kept)
    tqdm.write(f"surgery: {count_weights(state):,} -> {count_weights(pruned):,} params")
    save_weights(out, pruned_spec, pruned)


def count_weights(state: Mapping[str, torch.Tensor]) -> int:
    """The parameters of a folded model's state_dict (it holds no buffers: no BatchNorm)."""
    return sum(value.numel() for value in state.values())


def check_selection_roles(path: Path, kept: Mapping[str, Sequence[int]], widths: Mapping[str, int], phase: str,
                          roles: PhaseLayers) -> None:
    """Only the layers the phase selects lose filters: not another phase's, and not the
    phase's last layer, which here only loses input channels (the next phase selects its
    filters). A hand-edited selection may list any layer; one that removes nothing is harmless."""
    for layer, indices in kept.items():
        if len(indices) == widths[layer] or layer in roles.selected:
            continue
        removes = f"the file removes {widths[layer] - len(indices)} of its {widths[layer]} filters"
        if layer == roles.layers[-1]:
            raise MlpruneError(f"{path}: layer {layer} is the last layer of {phase}, which only loses input "
                               f"channels (the next phase selects its filters), but {removes}")
        raise MlpruneError(f"{path}: layer {layer} is not selected in {phase} (only {', '.join(roles.selected)} "
                           f"may lose filters), but {removes}")
