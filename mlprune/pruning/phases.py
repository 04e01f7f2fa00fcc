"""Pruning phases: which layers a phase penalises, selects and slices.

A phase is a run of consecutive backbone convs (paper names). Its first layer is shared
with the previous phase. Within a phase:
- penalised / thresholded: the convs of the phase and their heads: the loc/conf heads
  of every detection source in it, or a classifier's linear layer after its last conv;
- selected: every layer but the last (which only loses input channels, and has its own
  filters selected in the next phase), except the network's last conv, whose only
  consumers are its heads;
- consumers of a layer: the next backbone conv plus its heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlprune.errors import ConfigError
from mlprune.models.arch import ArchSpec
from mlprune.models.family import family


@dataclass(frozen=True)
class PhaseLayers:
    """The layer roles of one phase on one architecture."""

    layers: tuple[str, ...]
    selected: tuple[str, ...]
    penalised: tuple[str, ...]
    consumers: dict[str, tuple[str, ...]]


def check_phase_layers(model: str, layers: Sequence[str], where: str) -> None:
    """Layers must exist in `model` and be consecutive, in network order."""
    order = [c.name for c in family(model).convs]
    unknown = [name for name in layers if name not in order]
    if unknown:
        raise ConfigError(f"{where}: {model} has no layer(s) {unknown}")
    if len(layers) < 2:
        raise ConfigError(f"{where}: a phase needs at least two consecutive layers, got {list(layers)}")
    start = order.index(layers[0])
    if list(layers) != order[start: start + len(layers)]:
        raise ConfigError(f"{where}: layers must be consecutive in network order, "
                          f"expected {order[start: start + len(layers)]}")


def phase_layers(spec: ArchSpec, layers: Sequence[str]) -> PhaseLayers:
    """Roles of `layers` in the model described by `spec` (which may be a k-det model)."""
    order = spec.conv_names
    missing = [name for name in layers if name not in order]
    if missing:
        raise ConfigError(f"phase layers {missing} are not in the model (it ends at {order[-1]})")
    last_conv = order[-1]
    selected = list(layers[:-1]) + ([layers[-1]] if layers[-1] == last_conv else [])
    consumers = {name: tuple(spec.consumers_of(name)) for name in layers}
    heads = [h for name in layers for h in spec.heads_of(name)]
    return PhaseLayers(layers=tuple(layers), selected=tuple(selected), penalised=tuple(layers) + tuple(heads),
                       consumers=consumers)
