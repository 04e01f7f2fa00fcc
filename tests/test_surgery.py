"""Surgery equals masking: the pruned model computes what the unpruned one computes
when the removed filters' outputs are forced to zero."""

import pytest
import torch
from conftest import masked
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprune.errors import MlpruneError
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model, count_parameters
from mlprune.pruning.surgery import keep_sources, prune_filters

SIZE = 300


def tiny_model(name="ssd300"):
    torch.manual_seed(0)
    model = build_model(build_spec(name, 3, width=0.0625)).eval()
    with torch.no_grad():  # non-zero biases make "removed" and "masked" differ unless handled right;
        for conv in model.backbone.convs.values():  # negative: relu(b) = 0, nothing to fold
            conv.bias.uniform_(-0.1, -0.01)
        model.backbone.conv4_3_norm.weight.uniform_(5, 25)
    return model


def head_outputs(model, x):
    with torch.no_grad():
        return model.head(list(model.backbone(x).values()))


@st.composite
def selections(draw, widths):
    kept = {}
    for layer in draw(st.lists(st.sampled_from(sorted(widths)), unique=True, min_size=1, max_size=8)):
        width = widths[layer]
        size = draw(st.integers(1, width))  # keep-one-filter included
        kept[layer] = sorted(draw(st.permutations(range(width)))[:size])
    return kept


MODEL = tiny_model()
X = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


@settings(max_examples=15, deadline=None)
@given(selections(MODEL.spec.widths))
def test_pruned_model_equals_masked_model(kept):
    pruned = prune_filters(MODEL, kept)
    expected, actual = head_outputs(masked(MODEL, kept), X), head_outputs(pruned, X)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-4, atol=1e-5)
    assert all(pruned.spec.widths[layer] == len(idx) for layer, idx in kept.items())


# Layers whose only consumer is linear in the constant a removed filter still outputs (1x1 or
# unpadded convs): there, folding relu(bias) into the consumer is exact, whatever the bias sign.
EXACTLY_FOLDED = ("conv6", "conv10_1", "conv11_1")


def weights_zeroed(model, kept):
    """A copy whose removed filters keep their bias: each outputs the constant relu(bias)."""
    copy = build_model(model.spec).eval()
    copy.load_state_dict(model.state_dict())
    with torch.no_grad():
        for layer, indices in kept.items():
            conv = copy.backbone.convs[layer]
            conv.weight[sorted(set(range(conv.out_channels)) - set(indices))] = 0
    return copy


MIXED_BIAS_MODEL = tiny_model()
with torch.no_grad():
    for conv in MIXED_BIAS_MODEL.backbone.convs.values():
        conv.bias.uniform_(-0.2, 0.2)


@settings(max_examples=10, deadline=None)
@given(selections({name: MIXED_BIAS_MODEL.spec.widths[name] for name in EXACTLY_FOLDED}))
def test_pruned_model_keeps_the_constant_output_of_removed_filters(kept):
    reference = weights_zeroed(MIXED_BIAS_MODEL, kept)
    assert any(float(reference.backbone.convs[layer].bias.max()) > 0 for layer in kept)  # folding has work to do
    pruned = prune_filters(reference, kept)
    expected, actual = head_outputs(reference, X), head_outputs(pruned, X)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-4, atol=1e-5)


def test_l2norm_scale_and_heads_are_sliced_with_conv4_3():
    kept = {"conv4_3": [0, 2, 5]}
    pruned = prune_filters(MODEL, kept)
    assert torch.equal(pruned.backbone.conv4_3_norm.weight, MODEL.backbone.conv4_3_norm.weight[[0, 2, 5]])
    assert pruned.head.regression_head.module_list[0].in_channels == 3
    assert pruned.backbone.convs["conv5_1"].in_channels == 3


def test_last_layer_feeds_only_its_heads():
    pruned = prune_filters(MODEL, {"conv11_2": [1]})
    assert pruned.head.classification_head.module_list[5].in_channels == 1
    assert count_parameters(pruned) < count_parameters(MODEL)


@pytest.mark.parametrize("kept,match", [
    ({"conv5_1": []}, "every filter"),
    ({"conv5_1": [0, 999]}, "indices"),
    ({"conv99": [0]}, "no layer"),
])
def test_bad_selections_are_refused(kept, match):
    with pytest.raises(MlpruneError, match=match):
        prune_filters(MODEL, kept)


def test_keep_sources_cuts_later_layers_and_heads():
    cut = keep_sources(MODEL, 3)
    assert list(cut.backbone.convs)[-1] == "conv8_2"
    assert len(cut.head.regression_head.module_list) == 3
    expected = head_outputs(MODEL, X)
    actual = head_outputs(cut, X)
    # the first 3 sources' predictions are a prefix of the full model's
    n = actual["cls_logits"].shape[1]
    torch.testing.assert_close(actual["cls_logits"], expected["cls_logits"][:, :n])


def test_constant_output_of_a_zeroed_filter_moves_into_its_consumer():
    model = tiny_model()
    with torch.no_grad():  # conv10_1 filters 0 and 2 output relu(0.5) everywhere
        conv = model.backbone.convs["conv10_1"]
        conv.weight[[0, 2]] = 0
        conv.bias[[0, 2]] = 0.5
    kept = [i for i in range(conv.out_channels) if i not in (0, 2)]
    pruned = prune_filters(model, {"conv10_1": kept})  # conv10_2 (3x3, no padding) absorbs it exactly
    expected, actual = head_outputs(model, X), head_outputs(pruned, X)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-4, atol=1e-5)
