"""The L1 and group-lasso proximal steps."""

import pytest
import torch

from mlprune.errors import ConfigError
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model
from mlprune.pipeline.phase_config import parse_phases
from mlprune.pruning.phases import phase_layers
from mlprune.pruning.sparsity import (
    apply_threshold,
    conv_weights,
    group_dims,
    group_lasso_proximal,
    l1_proximal,
    ramped,
    threshold_groups,
)

SPEC = build_spec("ssd300", 3, width=0.0625)
PHASE2 = ["conv4_3", "conv5_1", "conv5_2", "conv5_3", "conv6", "conv7"]


def test_group_dims_are_filters_of_selected_layers_and_input_slices_of_the_rest():
    roles = phase_layers(SPEC, PHASE2)
    dims = group_dims(roles.selected, roles.penalised)
    assert set(dims) == set(roles.penalised)
    assert all(dims[name] == 0 for name in roles.selected)
    assert dims["conv7"] == 1 and all(dims[head] == 1 for head in SPEC.heads_of("conv4_3"))


def test_group_lasso_zeroes_weak_groups_whole_and_shrinks_the_others_by_the_step():
    torch.manual_seed(0)
    model = build_model(SPEC)
    names = ["conv5_1", "conv7"]
    weights = conv_weights(model, names)
    with torch.no_grad():
        weights["conv5_1"][0].mul_(1e-3)  # a weak filter
        weights["conv7"][:, 1].mul_(1e-3)  # a weak input slice
    before = {name: w.detach().clone() for name, w in weights.items()}
    lr, strength = 1e-2, 0.05
    group_lasso_proximal({"conv5_1": 0, "conv7": 1}, strength)(model, lr, 0.5)

    filters = weights["conv5_1"].flatten(1)
    assert torch.count_nonzero(filters[0]) == 0 and torch.count_nonzero(filters[1:].norm(dim=1)) == len(filters) - 1
    step = lr * strength * filters.shape[1] ** 0.5
    old = before["conv5_1"].flatten(1)
    torch.testing.assert_close(filters[1:].norm(dim=1), old[1:].norm(dim=1) - step)
    torch.testing.assert_close(filters[1:] / filters[1:].norm(dim=1, keepdim=True),
                               old[1:] / old[1:].norm(dim=1, keepdim=True))  # direction kept
    slices = weights["conv7"].transpose(0, 1).flatten(1)
    assert torch.count_nonzero(slices[1]) == 0 and bool((slices.norm(dim=1) > 0).sum() == len(slices) - 1)


def test_l1_proximal_soft_thresholds_every_weight():
    torch.manual_seed(0)
    model = build_model(SPEC)
    weight = conv_weights(model, ["conv5_1"])["conv5_1"]
    before = weight.detach().clone()
    l1_proximal(["conv5_1"], 0.5)(model, 1e-3, 0.5)
    torch.testing.assert_close(weight, before.sign() * (before.abs() - 5e-4).clamp_min(0))


def test_a_ramp_raises_lambda_linearly_then_holds_it():
    assert [ramped(0.8, 0.5, p) for p in (0.0, 0.25, 0.5, 0.9)] == [0.0, 0.4, 0.8, 0.8]
    assert ramped(0.8, 0.0, 0.0) == 0.8  # no ramp: full strength from the first step


def test_a_ramped_proximal_step_shrinks_by_the_ramped_lambda():
    torch.manual_seed(0)
    model = build_model(SPEC)
    weight = conv_weights(model, ["conv5_1"])["conv5_1"]
    before = weight.detach().clone()
    l1_proximal(["conv5_1"], 0.5, ramp=0.5)(model, 1e-3, 0.1)  # a fifth of the way up the ramp
    torch.testing.assert_close(weight, before.sign() * (before.abs() - 1e-4).clamp_min(0))


def test_l1_ramp_is_checked():
    defaults = {"l1_strength": 0.1, "l1": {"epochs": 1}, "retrain": {"epochs": 1}}
    phases = {"p1": {"start": "pretrain", "layers": ["conv1_1", "conv1_2"]}}
    assert parse_phases(phases, {**defaults, "l1_method": "proximal", "l1_ramp": 0.5}, "ssd300")["p1"].l1_ramp == 0.5
    with pytest.raises(ConfigError, match=r"phase_defaults.l1_ramp: must be in \[0, 1\], got 1.5"):
        parse_phases(phases, {**defaults, "l1_method": "proximal", "l1_ramp": 1.5}, "ssd300")
    with pytest.raises(ConfigError, match="phase_defaults.l1_ramp: .*needs l1_method proximal or group_lasso"):
        parse_phases(phases, {**defaults, "l1_method": "penalty", "l1_ramp": 0.5}, "ssd300")


def test_l1_method_is_checked():
    defaults = {"l1_strength": 0.1, "l1": {"epochs": 1}, "retrain": {"epochs": 1}}
    phases = {"p1": {"start": "pretrain", "layers": ["conv1_1", "conv1_2"]}}
    assert parse_phases(phases, {**defaults, "l1_method": "group_lasso"}, "ssd300")["p1"].l1_method == "group_lasso"
    with pytest.raises(ConfigError, match="l1_method.*proximal, penalty, group_lasso.*'lasso'"):
        parse_phases(phases, {**defaults, "l1_method": "lasso"}, "ssd300")


def test_a_group_threshold_zeroes_groups_whole_by_their_rms():
    weight = torch.tensor([[[[0.1, -0.1]]], [[[0.3, 0.0]]], [[[2.0, -0.05]]]])  # 3 filters, RMS 0.1, 0.21, 1.4
    by_weight, by_group = {"c": weight.clone()}, {"c": weight.clone()}
    apply_threshold(by_weight, 0.2)
    apply_threshold(by_group, 0.2, groups={"c": 0})
    assert by_weight["c"].flatten().tolist() == pytest.approx([0, 0, 0.3, 0, 2.0, 0])
    assert by_group["c"].flatten().tolist() == pytest.approx([0, 0, 0.3, 0, 2.0, -0.05])


def test_threshold_groups_only_for_the_group_lasso():
    roles = phase_layers(SPEC, PHASE2)
    assert threshold_groups("proximal", roles.selected, roles.penalised) is None
    assert threshold_groups("penalty", roles.selected, roles.penalised) is None
    assert threshold_groups("group_lasso", roles.selected, roles.penalised) == group_dims(roles.selected,
                                                                                         roles.penalised)
