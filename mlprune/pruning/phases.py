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
from dataclasses import dataclass, field

from mlprune.config import parse, require
from mlprune.errors import ConfigError
from mlprune.models.arch import ArchSpec, family
from mlprune.pruning.selection import SelectionRule
from mlprune.train import TrainConfig

# The paper's four SSD phases (SPEC, "SSD phases").
PAPER_PHASES: dict[str, list[list[str]]] = {
    "ssd300": [
        ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv4_1", "conv4_2",
         "conv4_3"],
        ["conv4_3", "conv5_1", "conv5_2", "conv5_3", "conv6", "conv7"],
        ["conv7", "conv8_1", "conv8_2"],
        ["conv8_2", "conv9_1", "conv9_2", "conv10_1", "conv10_2", "conv11_1", "conv11_2"],
    ],
}
PAPER_PHASES["ssd512"] = PAPER_PHASES["ssd300"][:3] + [PAPER_PHASES["ssd300"][3] + ["conv12_1", "conv12_2"]]
# The paper gives no VGG16 phases; ours follow its blocks, four phases like SSD's.
PAPER_PHASES["vgg16"] = [
    ["conv1_1", "conv1_2", "conv2_1", "conv2_2"],
    ["conv2_2", "conv3_1", "conv3_2", "conv3_3"],
    ["conv3_3", "conv4_1", "conv4_2", "conv4_3"],
    ["conv4_3", "conv5_1", "conv5_2", "conv5_3"],
]


@dataclass(frozen=True)
class PhaseConfig:
    """One entry of `phases` in params.yaml."""

    start: str  # the stage whose model this phase starts from: pretrain or the previous phase
    layers: list[str]
    l1_strength: float  # lambda of the L1 term
    l1_method: str  # proximal: soft-threshold after each step (exact zeros); penalty: add it to the loss
    l1: TrainConfig
    retrain: TrainConfig
    select: SelectionRule = field(default_factory=SelectionRule)
    tolerance: float = 0.01  # allowed drop of validation mAP when thresholding
    hist_layers: list[str] = field(default_factory=list)  # layers drawn in the Fig 2 histograms
    freeze_earlier: bool = True  # L1 fine-tune and retrain leave the layers before the phase fixed

    def __post_init__(self) -> None:
        require(self.l1_strength >= 0, "l1_strength", f"must be >= 0, got {self.l1_strength}")
        require(self.l1_method in ("proximal", "penalty"), "l1_method",
                f"proximal or penalty, got {self.l1_method!r}")
        require(0 <= self.tolerance <= 1, "tolerance", f"must be in [0, 1], got {self.tolerance}")
        unknown = sorted(set(self.hist_layers) - set(self.layers))
        require(not unknown, "hist_layers", f"{unknown} are not layers of this phase")


def parse_phases(data: dict, model: str) -> dict[str, PhaseConfig]:
    """The `phases` section: every phase parsed, and the chain of layers checked."""
    if not isinstance(data, dict) or not data:
        raise ConfigError("phases: expected a non-empty mapping of phase name -> settings")
    phases = {name: parse(PhaseConfig, value, f"phases.{name}") for name, value in data.items()}
    check_phase_chain(model, {name: phase.layers for name, phase in phases.items()})
    return phases


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


def check_phase_chain(model: str, phases: dict[str, Sequence[str]]) -> None:
    """Each phase starts where the previous one ended: no overlap beyond that, no gap."""
    previous_name, previous = None, None
    for name, layers in phases.items():
        check_phase_layers(model, layers, f"phases.{name}.layers")
        if previous is not None and layers[0] != previous[-1]:
            raise ConfigError(f"phases.{name}.layers: must start with {previous[-1]!r}, the last layer of "
                              f"{previous_name} (got {layers[0]!r}); phases may not skip or overlap layers")
        previous_name, previous = name, layers


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


def parse_phase(data: dict, model: str, name: str) -> PhaseConfig:
    """One phase from the `phases` section, after checking the whole chain."""
    phases = parse_phases(data, model)
    if name not in phases:
        raise ConfigError(f"phases: no phase named {name!r} (have {list(phases)})")
    return phases[name]
