"""Threshold search: the largest global magnitude threshold that keeps validation score.

The grid is one list (`threshold.grid`) shared by all phases. Its values are either
absolute weight magnitudes, or (`relative_to: mean_abs`) multiples of the mean |w| of
the phase's penalised weights in the L1 model, which makes one grid fit phases whose
weights have very different scales.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from torch import nn
from tqdm import tqdm

from mlprune.config import require
from mlprune.errors import MlpruneError
from mlprune.pruning.sparsity import apply_threshold, conv_weights, count_nonzero, mean_abs_weight, sparsity


@dataclass(frozen=True)
class ThresholdConfig:
    """The `threshold` section of params.yaml."""

    grid: list[float]
    relative_to: str = "mean_abs"  # mean_abs | absolute

    def __post_init__(self) -> None:
        require(len(self.grid) > 0, "grid", "is empty")
        require(all(t >= 0 for t in self.grid), "grid", f"values must be >= 0, got {self.grid}")
        require(list(self.grid) == sorted(set(self.grid)), "grid",
                f"must be strictly increasing, got {self.grid}")
        require(self.relative_to in ("mean_abs", "absolute"), "relative_to",
                f"mean_abs or absolute, got {self.relative_to!r}")


class NoThresholdWithinTolerance(MlpruneError):
    pass


def sweep_thresholds(model: nn.Module, names: Sequence[str], config: ThresholdConfig,
                     score: Callable[[nn.Module], float],
                     groups: Mapping[str, int] | None = None) -> list[dict[str, float]]:
    """Score the model thresholded at every grid value (ascending, in place: model ends
    thresholded at the largest value); `groups` as in `apply_threshold`.
    Rows: grid, t, score, sparsity, nonzero_params."""
    unit = mean_abs_weight(model, names) if config.relative_to == "mean_abs" else 1.0
    rows = []
    for value in tqdm(config.grid, desc="threshold search", leave=False):
        t = value * unit
        # zeroing is monotone in t, so ascending order needs no reset
        apply_threshold(conv_weights(model, names), t, groups)
        rows.append({"grid": value, "t": t, "score": score(model), "sparsity": round(sparsity(model, names), 5),
                     "nonzero_params": sum(count_nonzero(conv_weights(model, names)).values())})
        tqdm.write(f"  t={t:.3g}: score {rows[-1]['score']:.4f}, sparsity {rows[-1]['sparsity']:.3f}")
    return rows


def choose_threshold(rows: Sequence[dict[str, float]], reference: float, tolerance: float,
                     reference_name: str = "L1 model") -> dict[str, float]:
    """The row with the largest t whose score >= reference - tolerance (the score of `reference_name`)."""
    ok = [row for row in rows if row["score"] >= reference - tolerance]
    if not ok:
        best = max(rows, key=lambda row: row["score"])
        raise NoThresholdWithinTolerance(
            f"threshold.grid: no threshold keeps the score within {tolerance} of the {reference_name}'s "
            f"{reference:.4f}; the best was t={best['t']:.4g} (grid value {best['grid']}) with "
            f"{best['score']:.4f}: add smaller grid values or raise the phase's tolerance")
    return max(ok, key=lambda row: row["t"])
