"""The `phase_defaults` and `phases` sections of params.yaml.

A phase states only what differs from `phase_defaults` (at least its `start` and
`layers`); the two are merged key by key, nested schedules included, so
`dvc exp run -S phase_defaults.l1_strength=0.3` changes every phase at once and
`-S phases.phase2.tolerance=0.05` one phase.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlprune.config import merge_params, parse, require, section
from mlprune.errors import ConfigError
from mlprune.pruning.phases import check_phase_layers
from mlprune.pruning.selection import SelectionRule
from mlprune.train import TrainConfig

PRETRAIN = "pretrain"  # the stage whose model the first phase starts from
PHASE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
L1_METHODS = ("proximal", "penalty", "group_lasso")
TOLERANCE_REFERENCES = {"l1": "L1 model", "start": "start model"}  # value -> the model's name in messages


# What a phase is (its place in the chain and its layers), as opposed to how it is trained.
PHASE_STRUCTURE = ("start", "layers", "hist_layers")


@dataclass(frozen=True)
class PhaseConfig:
    """One phase: an entry of `phases` merged over `phase_defaults`."""

    start: str  # the stage whose model this phase starts from: pretrain or the previous phase
    layers: list[str]
    l1_strength: float  # lambda of the L1 term
    # proximal: soft-threshold after each step (exact zeros); penalty: add it to the loss;
    # group_lasso: the proximal step of a group lasso on whole filters (a structured option)
    l1_method: str
    l1: TrainConfig
    retrain: TrainConfig
    # The first fraction of the L1 fine-tune over which lambda rises linearly from 0 (proximal
    # and group_lasso; 0: full strength from the first step).
    l1_ramp: float = 0.0
    select: SelectionRule = field(default_factory=SelectionRule)
    tolerance: float = 0.01  # allowed drop of validation mAP when thresholding
    # The model the tolerance is measured from: `l1` (the paper's Algorithm step 1: the L1
    # model) or `start` (the phase's start model, so the L1 fine-tune's own loss counts too).
    tolerance_reference: str = "l1"
    max_pruned_drop: float | None = None  # refuse a pruned model this far below the thresholded one (null: report)
    hist_layers: list[str] = field(default_factory=list)  # layers drawn in the Fig 2 histograms
    freeze_earlier: bool = True  # L1 fine-tune and retrain leave the layers before the phase fixed
    # Retrain the pruned model with BatchNorm after each trained conv (set to start as the
    # identity, folded into the convs after): the paper's retraining is BN-free.
    retrain_batch_norm: bool = False

    def __post_init__(self) -> None:
        require(self.l1_strength >= 0, "l1_strength", f"must be >= 0, got {self.l1_strength}")
        require(self.l1_method in L1_METHODS, "l1_method",
                f"one of {', '.join(L1_METHODS)}, got {self.l1_method!r}")
        require(0 <= self.l1_ramp <= 1, "l1_ramp", f"must be in [0, 1], got {self.l1_ramp}")
        require(self.l1_ramp == 0 or self.l1_method != "penalty", "l1_ramp",
                "ramps the proximal step, so needs l1_method proximal or group_lasso (got penalty)")
        require(0 <= self.tolerance <= 1, "tolerance", f"must be in [0, 1], got {self.tolerance}")
        require(self.tolerance_reference in TOLERANCE_REFERENCES, "tolerance_reference",
                f"l1 or start, got {self.tolerance_reference!r}")
        require(self.max_pruned_drop is None or self.max_pruned_drop >= 0, "max_pruned_drop",
                f"must be >= 0 or null, got {self.max_pruned_drop}")
        unknown = sorted(set(self.hist_layers) - set(self.layers))
        require(not unknown, "hist_layers", f"{unknown} are not layers of this phase")


def parse_phases(phases: Any, defaults: Any, model: str) -> dict[str, PhaseConfig]:
    """Every phase merged over the defaults and parsed, and the chain of layers checked."""
    if not isinstance(phases, dict) or not phases:
        raise ConfigError("phases: expected a non-empty mapping of phase name -> settings")
    if not isinstance(defaults, dict):
        raise ConfigError("phase_defaults: expected a mapping of settings shared by every phase")
    parsed = {}
    for name, value in phases.items():
        require(isinstance(name, str) and PHASE_NAME.fullmatch(name) is not None, f"phases.{name}",
                "a phase name must be a letter followed by letters, digits, '_' or '-' (it names folders "
                "under models/ and metrics/)")
        if not isinstance(value, dict):
            raise ConfigError(f"phases.{name}: expected a mapping, got {type(value).__name__}")
        parsed[name] = _parse_merged(name, defaults, value)
    check_phase_starts({name: phase.start for name, phase in parsed.items()})
    check_phase_chain(model, {name: phase.layers for name, phase in parsed.items()})
    return parsed


def check_phase_starts(starts: dict[str, str]) -> None:
    """A phase starts from the pretrained model or an earlier phase's: DVC would only say
    that some models/<start>/model.pt is missing."""
    earlier = [PRETRAIN]
    for name, start in starts.items():
        require(start in earlier, f"phases.{name}.start",
                f"must be pretrain or an earlier phase ({', '.join(earlier)}), got {start!r}")
        earlier.append(name)


def _parse_merged(name: str, defaults: dict[str, Any], phase: dict[str, Any]) -> PhaseConfig:
    """Phase `name` over the defaults; an error names the section the bad value came from."""
    try:
        return parse(PhaseConfig, merge_params(defaults, phase), f"phases.{name}")
    except ConfigError as err:
        where, _, rest = str(err).partition(":")
        path = where.removeprefix(f"phases.{name}.").split(".")
        if where.startswith(f"phases.{name}.") and not _has_path(phase, path) and _has_path(defaults, path):
            raise ConfigError(f"phase_defaults.{'.'.join(path)}:{rest}") from None
        raise


def _has_path(mapping: Any, path: list[str]) -> bool:
    for part in path:
        if not isinstance(mapping, dict) or part.split("[")[0] not in mapping:
            return False
        mapping = mapping[part.split("[")[0]]
    return True


def parse_phase(phases: Any, defaults: Any, model: str, name: str) -> PhaseConfig:
    """One phase, after checking the whole chain."""
    parsed = parse_phases(phases, defaults, model)
    if name not in parsed:
        raise ConfigError(f"phases: no phase named {name!r} (have {list(parsed)})")
    return parsed[name]


def check_phase_chain(model: str, phases: dict[str, Sequence[str]]) -> None:
    """Each phase starts where the previous one ended: no overlap beyond that, no gap."""
    previous_name, previous = None, None
    for name, layers in phases.items():
        check_phase_layers(model, layers, f"phases.{name}.layers")
        if previous is not None and layers[0] != previous[-1]:
            raise ConfigError(f"phases.{name}.layers: must start with {previous[-1]!r}, the last layer of "
                              f"{previous_name} (got {layers[0]!r}); phases may not skip or overlap layers")
        previous_name, previous = name, layers


def phase_from_params(params: dict[str, Any], name: str) -> PhaseConfig:
    """Phase `name` of a whole params file (its `phases`, `phase_defaults` and `model.name`)."""
    return parse_phase(section(params, "phases"), section(params, "phase_defaults"), section(params, "model.name"),
                       name)


def phase_chain(phases: dict[str, PhaseConfig], last: str, where: str) -> list[str]:
    """The phases the model of phase `last` went through, first to last, following each
    phase's `start` back to `pretrain` (parse_phases checked that each starts from an earlier
    one). `where` names the params field that asked for `last`."""
    if last not in phases:
        raise ConfigError(f"{where}: no phase named {last!r} (have {list(phases)})")
    chain = [last]
    while phases[chain[-1]].start != PRETRAIN:
        chain.append(phases[chain[-1]].start)
    return chain[::-1]
