import pytest
import torch

from mlprune.errors import ConfigError
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model
from mlprune.pruning.sparsity import apply_threshold, conv_weights, count_nonzero, sparsity
from mlprune.pruning.threshold import (
    NoThresholdWithinTolerance,
    ThresholdConfig,
    choose_threshold,
    sweep_thresholds,
)

SWEEP = [
    {"grid": 0.5, "t": 0.01, "score": 0.90},
    {"grid": 1.0, "t": 0.02, "score": 0.89},
    {"grid": 1.5, "t": 0.03, "score": 0.86},  # within 0.05 of 0.90...
    {"grid": 2.0, "t": 0.04, "score": 0.70},
    {"grid": 2.5, "t": 0.05, "score": 0.88},  # ...and so is this non-monotone bump: largest t wins
    {"grid": 3.0, "t": 0.06, "score": 0.20},
]


def test_largest_t_within_tolerance_is_chosen():
    assert choose_threshold(SWEEP, reference=0.90, tolerance=0.05)["t"] == 0.05
    assert choose_threshold(SWEEP, reference=0.90, tolerance=0.015)["t"] == 0.02
    assert choose_threshold(SWEEP, reference=0.90, tolerance=0.0)["t"] == 0.01


def test_no_threshold_within_tolerance_names_the_best():
    with pytest.raises(NoThresholdWithinTolerance, match=r"best was t=0\.01 .*0\.9000"):
        choose_threshold(SWEEP, reference=0.99, tolerance=0.01)


@pytest.mark.parametrize("grid,match", [
    ([], "empty"), ([0.2, 0.1], "increasing"), ([-1.0, 1.0], ">= 0"), ([0.1, 0.1], "increasing"),
])
def test_bad_grids(grid, match):
    with pytest.raises(ConfigError, match=match):
        ThresholdConfig(grid=grid)


def test_sweep_is_monotone_in_sparsity_and_ends_thresholded():
    torch.manual_seed(0)
    model = build_model(build_spec("ssd300", 3, width=0.0625))
    names = ["conv1_1", "conv1_2"]
    rows = sweep_thresholds(model, names, ThresholdConfig(grid=[0.5, 1.0, 2.0]), lambda m: 0.5)
    assert [r["sparsity"] for r in rows] == sorted(r["sparsity"] for r in rows)
    nonzero = sum(count_nonzero(conv_weights(model, names)).values())
    assert rows[0]["sparsity"] > 0 and rows[-1]["nonzero_params"] == nonzero


def test_extreme_threshold_zeroes_everything():
    model = build_model(build_spec("ssd300", 3, width=0.0625))
    apply_threshold(conv_weights(model, ["conv1_1"]), 1e9)
    assert sparsity(model, ["conv1_1"]) == 1.0
