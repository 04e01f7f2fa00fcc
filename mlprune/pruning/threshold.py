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
    # The share of the start model's margin over chance the L1 model must keep (`check_l1_model`).
    min_l1_retained: float = 0.5

    def __post_init__(self) -> None:
        require(len(self.grid) > 0, "grid", "is empty")
        require(all(t >= 0 for t in self.grid), "grid", f"values must be >= 0, got {self.grid}")
        require(list(self.grid) == sorted(set(self.grid)), "grid",
                f"must be strictly increasing, got {self.grid}")
        require(self.relative_to in ("mean_abs", "absolute"), "relative_to",
                f"mean_abs or absolute, got {self.relative_to!r}")
        require(0 <= self.min_l1_retained <= 1, "min_l1_retained", f"must be in [0, 1], got {self.min_l1_retained}")

    @property
    def checks_chance(self) -> bool:
        """Whether models are refused for scoring at chance: the L1 model here, the retrained
        one in `retrain`. `min_l1_retained: 0` turns both off, for models that score near
        chance by design (the smoke preset's few-step runs)."""
        return self.min_l1_retained > 0


class NoThresholdWithinTolerance(MlpruneError):
    pass


class L1ModelBroken(MlpruneError):
    pass


def check_l1_model(l1_score: float, start_score: float, chance: float, min_retained: float,
                   score_name: str) -> None:
    """Refuse an L1 model that kept less than `min_retained` of the start model's margin over chance.

    With the paper's tolerance, measured from the L1 model, an L1 fine-tune that broke the
    model goes unseen: every threshold of a model at chance scores within tolerance of it,
    so the search takes the largest, selection empties the layers, and the phase ends with a
    model that predicts nothing. A start model at chance itself (a test-sized model) has no
    margin to keep."""
    margin = start_score - chance
    if margin <= 0 or l1_score - chance >= min_retained * margin:
        return
    raise L1ModelBroken(
        f"threshold.min_l1_retained: the L1 model scores {l1_score:.4f} {score_name} on validation against "
        f"the start model's {start_score:.4f} (chance {chance:.4f}), keeping {(l1_score - chance) / margin:.0%} "
        f"of its margin over chance, below {min_retained:.0%}: the L1 fine-tune broke the model; lower the "
        f"phase's l1_strength or lengthen l1_ramp")


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
