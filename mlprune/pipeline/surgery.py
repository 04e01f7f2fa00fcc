"""Stage `surgery`: remove the selected filters (and consumers' input channels) from Theta_L1."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from mlprune.checkpoint import load_checkpoint, save_checkpoint
from mlprune.models.build import count_parameters
from mlprune.pruning.selection import load_selection
from mlprune.pruning.surgery import prune_filters


def surgery(l1_model: Path, selection_json: Path, out: Path) -> None:
    """Remove the selected filters from the un-thresholded L1 model."""
    model = load_checkpoint(l1_model)
    pruned = prune_filters(model, load_selection(selection_json, model.spec.widths))
    tqdm.write(f"surgery: {count_parameters(model):,} -> {count_parameters(pruned):,} params")
    save_checkpoint(out, pruned)
