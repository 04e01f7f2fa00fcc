"""Filter selection: Algorithm 1 of Singh et al. (WACV 2019).

A filter passes the gate only when it is itself sparse; it is then removed when it is
(almost) empty or when (almost) nothing downstream reads its output channel. Removals
are applied layer by layer, so each later layer is judged on its already reduced
inputs. Weights are the thresholded ones: small weights are already exactly zero.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from mlprune.errors import ConfigError, MlpruneError

EMPTY_FILTER = "empty_filter"
UNREAD_BY_CONSUMERS = "unread_by_consumers"
MIN_KEEP = "min_keep"


@dataclass(frozen=True)
class SelectionRule:
    """Thresholds of Algorithm 1: s'_F (gate), s_F, s_G, and the never-empty floor: at least
    `min_keep` filters and `min_keep_fraction` of a layer's width stay (the densest ones)."""

    gate: float = 0.8
    filter_sparsity: float = 0.95
    consumer_sparsity: float = 0.95
    min_keep: int = 1
    # One global threshold can leave a layer whose weights are small everywhere almost empty
    # (the phase-2 probe cut conv5_3 from 128 filters to 1); a fraction caps any layer's cut.
    min_keep_fraction: float = 0.0

    def floor(self, width: int) -> int:
        """Filters a layer of `width` keeps at least."""
        return min(max(self.min_keep, math.ceil(self.min_keep_fraction * width)), width)

    def __post_init__(self) -> None:
        for name in ("gate", "filter_sparsity", "consumer_sparsity", "min_keep_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(f"{name}: must be in [0, 1], got {value!r}")
        if isinstance(self.min_keep, bool) or not isinstance(self.min_keep, int) or self.min_keep < 1:
            raise ConfigError(f"min_keep: must be an integer >= 1, got {self.min_keep!r}")


@dataclass
class LayerSelection:
    """Outcome for one layer; every index is an original channel index of the layer."""

    layer: str
    removed: list[int]
    kept: list[int]
    filter_sparsity: list[float]
    consumer_sparsity: list[float]
    reasons: dict[int, str]


def select_filters(
    layers: Sequence[str],
    weights: Mapping[str, torch.Tensor],
    consumers: Mapping[str, Sequence[str]],
    rule: SelectionRule,
) -> dict[str, LayerSelection]:
    """Run Algorithm 1 over `layers` in order; `weights` is left untouched.

    `consumers[l]` names every weight that reads l's output channels in dim 1 (next
    conv, detection heads, a classifier's linear layer).
    """
    check_inputs(layers, weights, consumers)
    work = {name: w.detach() for name, w in weights.items()}
    result = {}
    for layer in layers:
        names = list(consumers.get(layer, ()))
        result[layer] = select_layer(layer, work, names, rule)
        remove_channels(layer, result[layer].kept, work, names)
    return result


def check_inputs(
    layers: Sequence[str],
    weights: Mapping[str, torch.Tensor],
    consumers: Mapping[str, Sequence[str]],
) -> None:
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers listed more than once: {sorted({n for n in layers if layers.count(n) > 1})}")
    for layer in layers:
        if layer not in weights:
            raise ValueError(f"layer {layer}: no weight given")
        if weights[layer].dim() < 2:
            raise ValueError(f"layer {layer}: weight must have at least 2 dims, got {tuple(weights[layer].shape)}")
        for name in consumers.get(layer, ()):
            if name not in weights:
                raise ValueError(f"layer {layer}: no weight given for consumer {name}")


def channel_view(weight: torch.Tensor, channels: int, layer: str, consumer: str) -> torch.Tensor:
    """Consumer weight as (out, channels, rest): channel i owns view[:, i]."""
    inputs = weight.shape[1] if weight.dim() >= 2 else None
    if inputs != channels:
        raise ValueError(f"layer {layer}: consumer {consumer} has {inputs} inputs in dim 1, expected {channels}")
    return weight.reshape(weight.shape[0], channels, -1)


def select_layer(
    layer: str,
    work: Mapping[str, torch.Tensor],
    names: Sequence[str],
    rule: SelectionRule,
) -> LayerSelection:
    flat = work[layer].reshape(work[layer].shape[0], -1)
    width, per_filter = flat.shape
    nonzero = (flat != 0).sum(dim=1).tolist()
    s_f = [(per_filter - n) / per_filter for n in nonzero]
    s_g = measure_consumer_sparsity(layer, width, work, names)
    reasons = decide_removals(s_f, s_g, nonzero, rule)
    removed = sorted(i for i, why in reasons.items() if why != MIN_KEEP)
    return LayerSelection(
        layer=layer,
        removed=removed,
        kept=sorted(set(range(width)) - set(removed)),
        filter_sparsity=[round(s, 4) for s in s_f],
        consumer_sparsity=[round(s, 4) for s in s_g],
        reasons=dict(sorted(reasons.items())),
    )


def measure_consumer_sparsity(
    layer: str,
    width: int,
    work: Mapping[str, torch.Tensor],
    names: Sequence[str],
) -> list[float]:
    """sparsity(G_i): zeros over all consumers' slices for channel i, pooled."""
    if not names:
        return [0.0] * width
    views = [channel_view(work[n], width, layer, n) for n in names]
    zeros = sum((v == 0).sum(dim=(0, 2)) for v in views).tolist()
    total = sum(v.shape[0] * v.shape[2] for v in views)
    return [z / total for z in zeros]


def decide_removals(
    s_f: Sequence[float], s_g: Sequence[float], nonzero: Sequence[int], rule: SelectionRule
) -> dict[int, str]:
    """Reasons per filter index: removals, plus the densest ones rescued by min_keep.

    Rescuing the densest removal candidates equals keeping the `rule.floor` densest
    filters overall: a filter kept by the rule is below the gate, so it is denser.
    """
    reasons = {}
    for i, (f, g) in enumerate(zip(s_f, s_g, strict=True)):
        if f < rule.gate:
            continue
        if f >= rule.filter_sparsity:
            reasons[i] = EMPTY_FILTER
        elif g >= rule.consumer_sparsity:
            reasons[i] = UNREAD_BY_CONSUMERS
    excess = len(reasons) - (len(s_f) - rule.floor(len(s_f)))
    for i in sorted(reasons, key=lambda i: (-nonzero[i], i))[: max(excess, 0)]:
        reasons[i] = MIN_KEEP
    return reasons


def remove_channels(
    layer: str,
    kept: Sequence[int],
    work: dict[str, torch.Tensor],
    names: Sequence[str],
) -> None:
    """Drop the removed filters of `layer` and the consumer slices that read them."""
    width = work[layer].shape[0]
    index = torch.tensor(kept, dtype=torch.long)
    work[layer] = work[layer].index_select(0, index)
    for name in names:
        weight = work[name]
        view = channel_view(weight, width, layer, name).index_select(1, index)
        work[name] = view.reshape(weight.shape[0], len(kept), *weight.shape[2:])


def selection_to_json(
    selection: Mapping[str, LayerSelection], rule: SelectionRule, widths_before: Mapping[str, int]
) -> dict[str, Any]:
    """The selection as a readable, hand-editable document (see `load_selection`)."""
    return {
        "rule": asdict(rule),
        "layers": {name: layer_to_json(sel, widths_before[name]) for name, sel in selection.items()},
        "summary": {
            "removed": sum(len(sel.removed) for sel in selection.values()),
            "kept": sum(len(sel.kept) for sel in selection.values()),
        },
    }


def layer_to_json(sel: LayerSelection, width: int) -> dict[str, Any]:
    if len(sel.removed) + len(sel.kept) != width:
        raise ValueError(
            f"layer {sel.layer}: width_before {width} != {len(sel.removed)} removed + {len(sel.kept)} kept"
        )
    return {
        "width_before": width,
        "width_after": len(sel.kept),
        "removed": list(sel.removed),
        "kept": list(sel.kept),
        "reasons": {str(i): why for i, why in sorted(sel.reasons.items())},
        "filter_sparsity": list(sel.filter_sparsity),
        "consumer_sparsity": list(sel.consumer_sparsity),
    }


def load_selection(path: Path, widths: Mapping[str, int]) -> dict[str, list[int]]:
    """Kept indices (sorted) for each layer in the file, after checking a hand edit.

    Only `removed` and `kept` are authoritative; `width_before` is checked against
    `widths` when present; `width_after`, `reasons` and sparsities are ignored.
    Layers absent from the file are not in the result.
    """
    path = Path(path)
    data = read_json(path)
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, dict):
        raise MlpruneError(f"{path}: expected a JSON object with a 'layers' mapping")
    return {name: load_layer(path, name, entry, widths) for name, entry in layers.items()}


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as err:
        raise MlpruneError(f"{path}: cannot read selection file ({err.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MlpruneError(f"{path}: invalid JSON ({err})") from None


def load_layer(path: Path, name: str, entry: Any, widths: Mapping[str, int]) -> list[int]:
    if name not in widths:
        raise MlpruneError(f"{path}: unknown layer {name!r} (model layers: {', '.join(widths)})")
    where = f"{path}: layer {name}"
    if not isinstance(entry, dict):
        raise MlpruneError(f"{where}: expected an object, got {type(entry).__name__}")
    width = widths[name]
    if "width_before" in entry and entry["width_before"] != width:
        raise MlpruneError(f"{where}: width_before is {entry['width_before']!r}, but the model has {width}")
    removed = read_indices(entry, "removed", where, width)
    kept = read_indices(entry, "kept", where, width)
    if not kept:
        raise MlpruneError(f"{path}: would empty layer {name} (no kept filter)")
    both = sorted(set(removed) & set(kept))
    if both:
        raise MlpruneError(f"{where}: indices {both} are both removed and kept")
    neither = sorted(set(range(width)) - set(removed) - set(kept))
    if neither:
        raise MlpruneError(f"{where}: indices {neither} are neither removed nor kept")
    return sorted(kept)


def read_indices(entry: Mapping[str, Any], key: str, where: str, width: int) -> list[int]:
    values = entry.get(key)
    if not isinstance(values, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise MlpruneError(f"{where}: {key!r} must be a list of integer indices")
    bad = [v for v in values if not 0 <= v < width]
    if bad:
        raise MlpruneError(f"{where}: {key} index {bad[0]} out of range [0, {width})")
    if len(set(values)) != len(values):
        dup = sorted({v for v in values if values.count(v) > 1})
        raise MlpruneError(f"{where}: {key} lists indices {dup} more than once")
    return values
