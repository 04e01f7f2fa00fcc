from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mlprune.errors import ConfigError
from mlprune.evaluation.tasks import TASKS
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model
from mlprune.pruning.sparsity import apply_threshold, conv_weights, count_nonzero, sparsity
from mlprune.pruning.threshold import (
    L1ModelBroken,
    NoThresholdWithinTolerance,
    ThresholdConfig,
    check_l1_model,
    choose_threshold,
    sweep_thresholds,
)
from mlprune.task_names import CLASSIFICATION, DETECTION

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


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_min_l1_retained_is_a_fraction(value):
    with pytest.raises(ConfigError, match=r"min_l1_retained: must be in \[0, 1\]"):
        ThresholdConfig(grid=[1.0], min_l1_retained=value)


def test_an_l1_model_is_judged_by_its_margin_over_chance():
    # 5 classes, chance 0.2: the start model's margin is 0.8, half of it is 0.4
    check_l1_model(0.61, 1.0, 0.2, 0.5, "top1")
    with pytest.raises(L1ModelBroken, match=r"scores 0\.5900 top1 .* keeping 49% of its margin over chance, below 50%"):
        check_l1_model(0.59, 1.0, 0.2, 0.5, "top1")
    check_l1_model(0.2, 1.0, 0.2, 0.0, "top1")  # 0 turns the check off
    check_l1_model(0.0, 0.0, 0.0, 0.5, "map_voc07")  # a start model at chance has no margin to keep


def test_chance_is_the_majority_class_share_or_no_detections():
    labels = SimpleNamespace(labels=np.array([0, 0, 0, 1, 2, 2]))
    assert TASKS[CLASSIFICATION].chance_score(labels) == 0.5
    assert TASKS[DETECTION].chance_score(labels) == 0.0


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
