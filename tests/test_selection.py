"""Algorithm 1 filter selection on hand-built weights with known answers."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprune.atomic import write_json
from mlprune.errors import ConfigError, MlpruneError
from mlprune.pruning.selection import (
    LayerSelection,
    SelectionRule,
    load_selection,
    select_filters,
    selection_to_json,
)

RULE = SelectionRule()


def with_zeros(shape: tuple[int, ...], zeros: int) -> torch.Tensor:
    """Ones with the first `zeros` entries (row-major) set to exactly 0."""
    flat = torch.ones(shape).flatten()
    flat[:zeros] = 0
    return flat.reshape(shape)


def chain_weights() -> dict[str, torch.Tensor]:
    """conv1 (4 filters) -> conv2 (5) -> conv3 (3), 3x3 kernels, one case per branch.

    conv1: f0 dense, f1 all zero, f2 and f3 fairly sparse (24/27 zeros). conv2 reads
    conv1 channels 0 and 2 with all-zero weights, channel 3 densely. conv2's f0 only
    has non-zeros on channels 1 and 2, which conv1 removes.
    """
    conv1 = torch.ones(4, 3, 3, 3)
    conv1[1] = 0
    conv1[2] = with_zeros((3, 3, 3), 24)
    conv1[3] = with_zeros((3, 3, 3), 24)
    conv2 = torch.ones(5, 4, 3, 3)
    conv2[:, 0] = 0
    conv2[:, 2] = 0
    conv2[0, 3] = 0
    conv3 = torch.ones(3, 5, 3, 3)
    conv3[2] = 0
    return {"conv1": conv1, "conv2": conv2, "conv3": conv3}


CHAIN = ["conv1", "conv2", "conv3"]
CHAIN_CONSUMERS = {"conv1": ["conv2"], "conv2": ["conv3"]}


@pytest.fixture
def chain() -> dict[str, LayerSelection]:
    return select_filters(CHAIN, chain_weights(), CHAIN_CONSUMERS, RULE)


def test_dense_filter_is_kept_even_when_nobody_reads_it(chain):
    conv1 = chain["conv1"]
    assert conv1.filter_sparsity[0] == 0.0
    assert conv1.consumer_sparsity[0] == 1.0
    assert 0 in conv1.kept
    assert 0 not in conv1.reasons


def test_empty_filter_is_removed(chain):
    assert chain["conv1"].filter_sparsity[1] == 1.0
    assert chain["conv1"].reasons[1] == "empty_filter"


def test_fairly_sparse_filter_is_removed_only_when_unread(chain):
    conv1 = chain["conv1"]
    assert conv1.filter_sparsity[2] == conv1.filter_sparsity[3] == round(24 / 27, 4)
    assert conv1.consumer_sparsity[2] == 1.0
    assert conv1.consumer_sparsity[3] == 0.2  # conv2 f0 ignores channel 3: 9 of 45
    assert conv1.reasons == {1: "empty_filter", 2: "unread_by_consumers"}
    assert conv1.removed == [1, 2]
    assert conv1.kept == [0, 3]


def test_last_layer_without_consumers_loses_only_empty_filters(chain):
    conv3 = chain["conv3"]
    assert conv3.consumer_sparsity == [0.0, 0.0, 0.0]
    assert conv3.removed == [2]
    assert conv3.reasons == {2: "empty_filter"}


def test_later_layer_is_measured_on_reduced_inputs(chain):
    conv2 = chain["conv2"]
    # Inputs 0 and 3 remain: f0 is zero on both, the others are zero on input 0 only.
    assert conv2.filter_sparsity == [1.0, 0.5, 0.5, 0.5, 0.5]
    assert conv2.removed == [0]
    assert conv2.reasons == {0: "empty_filter"}
    # On the full inputs f0 is 27/36 zero, below the gate, so it would be kept.
    alone = select_filters(["conv2"], chain_weights(), {"conv2": ["conv3"]}, RULE)["conv2"]
    assert alone.filter_sparsity[0] == 0.75
    assert alone.removed == []


def test_reduced_inputs_can_open_the_gate_for_unread_filters():
    weights = chain_weights()
    weights["conv2"][1, 3] = with_zeros((3, 3), 8)  # full inputs: 26/36 zero, below the gate
    weights["conv3"][:, 1] = 0  # nobody reads conv2 channel 1
    result = select_filters(CHAIN, weights, CHAIN_CONSUMERS, RULE)["conv2"]
    assert result.filter_sparsity[1] == round(17 / 18, 4)
    assert result.consumer_sparsity[1] == 1.0
    assert result.reasons == {0: "empty_filter", 1: "unread_by_consumers"}
    alone = select_filters(["conv2"], weights, {"conv2": ["conv3"]}, RULE)["conv2"]
    assert alone.filter_sparsity[1] == round(26 / 36, 4)
    assert alone.removed == []


def test_gate_and_thresholds_are_inclusive():
    layer = torch.stack([with_zeros((20, 1, 1), 16), with_zeros((20, 1, 1), 19), torch.ones(20, 1, 1)])
    consumer = torch.ones(2, 3, 1, 1)
    consumer[:, 0] = 0
    result = select_filters(["a"], {"a": layer, "b": consumer}, {"a": ["b"]}, RULE)["a"]
    assert result.filter_sparsity[:2] == [0.8, 0.95]
    assert result.reasons == {0: "unread_by_consumers", 1: "empty_filter"}


def test_consumers_are_pooled():
    src = torch.stack([with_zeros((1, 3, 3), 8)] * 3)  # all three pass the gate, none empty
    nxt = torch.ones(2, 3, 3, 3)
    nxt[:, :2] = 0  # channels 0 and 1 unread by the next conv
    head = torch.ones(4, 3, 3, 3)
    head[:, 0] = 0
    head[:, 1] = with_zeros((4, 3, 3), 32)  # 4 of 36 head weights read channel 1
    head[:, 2] = 0  # channel 2 unread by the head only
    weights = {"src": src, "next": nxt, "head": head}
    pooled = select_filters(["src"], weights, {"src": ["next", "head"]}, RULE)["src"]
    assert pooled.consumer_sparsity == [1.0, round(50 / 54, 4), round(36 / 54, 4)]
    assert pooled.removed == [0]
    next_only = select_filters(["src"], weights, {"src": ["next"]}, RULE)["src"]
    assert next_only.removed == [0, 1]


def test_mismatched_consumer_raises_naming_the_layer():
    weights = {"a": torch.ones(3, 1, 3, 3), "b": torch.ones(2, 4, 3, 3)}
    with pytest.raises(ValueError, match="layer a: consumer b"):
        select_filters(["a"], weights, {"a": ["b"]}, RULE)
    with pytest.raises(ValueError, match="layer a: consumer b"):
        select_filters(["a"], {"a": torch.ones(3, 1), "b": torch.ones(2, 9)}, {"a": ["b"]}, RULE)


def test_missing_weight_and_duplicate_layer_raise():
    with pytest.raises(ValueError, match="consumer b"):
        select_filters(["a"], {"a": torch.ones(2, 1, 1, 1)}, {"a": ["b"]}, RULE)
    with pytest.raises(ValueError, match="more than once"):
        select_filters(["a", "a"], {"a": torch.ones(2, 1, 1, 1)}, {}, RULE)


@pytest.mark.parametrize(("min_keep", "kept"), [(1, [0]), (2, [0, 1]), (5, [0, 1, 2, 3])])
def test_all_zero_layer_keeps_min_keep_lowest_indices(min_keep, kept):
    weights = {"a": torch.zeros(4, 2, 3, 3)}
    result = select_filters(["a"], weights, {}, SelectionRule(min_keep=min_keep))["a"]
    assert result.kept == kept
    assert all(result.reasons[i] == "min_keep" for i in kept)
    assert all(result.reasons[i] == "empty_filter" for i in result.removed)
    assert sorted(result.reasons) == [0, 1, 2, 3]


@pytest.mark.parametrize(("min_keep", "kept"), [(1, [2]), (2, [1, 2]), (3, [1, 2, 3])])
def test_min_keep_rescues_the_densest_filters(min_keep, kept):
    # 72 weights a filter: non-zeros 0, 1, 3, 1 are all >= 0.95 zero.
    layer = torch.stack([with_zeros((8, 3, 3), 72 - n) for n in (0, 1, 3, 1)])
    result = select_filters(["a"], {"a": layer}, {}, SelectionRule(min_keep=min_keep))["a"]
    assert result.kept == kept
    assert {i for i, why in result.reasons.items() if why == "min_keep"} == set(kept)


@pytest.mark.parametrize(("fraction", "kept"), [(0.0, [2]), (0.5, [1, 2]), (0.6, [1, 2, 3])])
def test_min_keep_fraction_caps_the_cut_of_a_layer(fraction, kept):
    layer = torch.stack([with_zeros((8, 3, 3), 72 - n) for n in (0, 1, 3, 1)])  # as above: all four removable
    result = select_filters(["a"], {"a": layer}, {}, SelectionRule(min_keep_fraction=fraction))["a"]
    assert result.kept == kept  # ceil(fraction * 4) of them, the densest, and never fewer than min_keep (1)


def test_min_keep_tops_up_filters_kept_by_the_rule():
    layer = torch.stack([torch.ones(9), with_zeros((9,), 9), with_zeros((9,), 8)])
    unread = torch.zeros(1, 3)
    result = select_filters(["a"], {"a": layer, "b": unread}, {"a": ["b"]}, SelectionRule(min_keep=2))["a"]
    assert result.kept == [0, 2]
    assert result.reasons == {1: "empty_filter", 2: "min_keep"}


def test_inputs_are_not_mutated():
    weights = chain_weights()
    before = {name: w.clone() for name, w in weights.items()}
    consumers = {name: list(c) for name, c in CHAIN_CONSUMERS.items()}
    select_filters(CHAIN, weights, consumers, RULE)
    assert list(weights) == list(before)
    assert all(torch.equal(weights[name], before[name]) for name in before)
    assert consumers == CHAIN_CONSUMERS


@pytest.mark.parametrize(
    ("field", "value"),
    [("gate", 1.5), ("filter_sparsity", -0.1), ("consumer_sparsity", float("nan")), ("gate", True),
     ("min_keep_fraction", 1.2)],
)
def test_rule_rejects_bad_fractions(field, value):
    with pytest.raises(ConfigError, match=rf"^{field}: must be in \[0, 1\], got"):
        SelectionRule(**{field: value})


@pytest.mark.parametrize("value", [0, -1, 1.0])
def test_rule_rejects_bad_min_keep(value):
    with pytest.raises(ConfigError, match="min_keep"):
        SelectionRule(min_keep=value)


def test_rule_error_message_shows_value():
    with pytest.raises(ConfigError, match=r"^gate: must be in \[0, 1\], got 1\.5$"):
        SelectionRule(gate=1.5)


WIDTHS = {"conv1": 4, "conv2": 5, "conv3": 3}


def test_json_document_is_readable(chain):
    doc = selection_to_json(chain, RULE, WIDTHS)
    assert doc["rule"] == {"gate": 0.8, "filter_sparsity": 0.95, "consumer_sparsity": 0.95, "min_keep": 1,
                           "min_keep_fraction": 0.0}
    assert doc["layers"]["conv1"]["reasons"] == {"1": "empty_filter", "2": "unread_by_consumers"}
    assert doc["layers"]["conv1"]["width_before"] == 4
    assert doc["layers"]["conv1"]["width_after"] == 2
    assert doc["summary"] == {"removed": 4, "kept": 8}
    assert json.loads(json.dumps(doc)) == doc


def test_json_rejects_inconsistent_width(chain):
    with pytest.raises(ValueError, match="conv2"):
        selection_to_json(chain, RULE, {**WIDTHS, "conv2": 6})


def test_round_trip(chain, tmp_path):
    path = tmp_path / "selection.json"
    write_json(path, selection_to_json(chain, RULE, WIDTHS))
    assert load_selection(path, WIDTHS) == {"conv1": [0, 3], "conv2": [1, 2, 3, 4], "conv3": [0, 1]}


def test_hand_edit_moving_a_filter_back_is_accepted(chain, tmp_path):
    doc = selection_to_json(chain, RULE, WIDTHS)
    doc["layers"]["conv1"]["removed"] = [1]
    doc["layers"]["conv1"]["kept"] = [3, 2, 0]
    path = tmp_path / "selection.json"
    write_json(path, doc)
    assert load_selection(path, WIDTHS)["conv1"] == [0, 2, 3]


def edit_all_removed(doc):
    doc["layers"]["conv3"].update(removed=[0, 1, 2], kept=[])


def edit_out_of_range(doc):
    doc["layers"]["conv2"]["kept"].append(5)


def edit_unknown_layer(doc):
    doc["layers"]["conv9"] = doc["layers"].pop("conv2")


def edit_duplicate(doc):
    doc["layers"]["conv2"]["kept"].append(1)


def edit_both_lists(doc):
    doc["layers"]["conv2"]["kept"].append(0)


def edit_forgotten_index(doc):
    doc["layers"]["conv2"]["removed"] = []


def edit_width(doc):
    doc["layers"]["conv2"]["width_before"] = 6


def edit_not_a_list(doc):
    doc["layers"]["conv2"]["kept"] = "1,2,3,4"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (edit_all_removed, "would empty layer conv3"),
        (edit_out_of_range, "layer conv2: kept index 5 out of range [0, 5)"),
        (edit_unknown_layer, "unknown layer 'conv9'"),
        (edit_duplicate, "layer conv2: kept lists indices [1] more than once"),
        (edit_both_lists, "layer conv2: indices [0] are both removed and kept"),
        (edit_forgotten_index, "layer conv2: indices [0] are neither removed nor kept"),
        (edit_width, "layer conv2: width_before is 6, but the model has 5"),
        (edit_not_a_list, "layer conv2: 'kept' must be a list"),
    ],
)
def test_bad_hand_edits_are_rejected(chain, tmp_path, edit, message):
    doc = selection_to_json(chain, RULE, WIDTHS)
    edit(doc)
    path = tmp_path / "selection.json"
    write_json(path, doc)
    with pytest.raises(MlpruneError) as err:
        load_selection(path, WIDTHS)
    text = str(err.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize("content", ['{"layers": {"conv1": ', "[1, 2]", b"\xff\xfe"])
def test_unreadable_selection_files_are_rejected(tmp_path, content):
    path = tmp_path / "selection.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(MlpruneError, match=rf"^{path}: ") as err:
        load_selection(path, WIDTHS)
    assert "\n" not in str(err.value)


def test_missing_selection_file_is_rejected(tmp_path):
    with pytest.raises(MlpruneError, match="cannot read selection file"):
        load_selection(tmp_path / "absent.json", WIDTHS)


@st.composite
def sparse_chains(draw):
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    density = draw(st.floats(0.0, 0.5))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    names = [f"conv{i}" for i in range(len(widths))]
    weights, inputs = {}, 2
    for name, width in zip(names, widths, strict=True):
        shape = (width, inputs, 3, 3)
        weights[name] = torch.randn(shape, generator=gen) * (torch.rand(shape, generator=gen) < density)
        inputs = width
    weights["head"] = torch.randn(2, widths[-1], 3, 3, generator=gen) * (torch.rand(2, widths[-1], 3, 3) < density)
    consumers = {a: [b] for a, b in zip(names, names[1:], strict=False)}
    consumers[names[-1]] = ["head"]
    rule = SelectionRule(
        gate=draw(st.sampled_from([0.0, 0.5, 0.8])),
        filter_sparsity=draw(st.sampled_from([0.5, 0.95, 1.0])),
        consumer_sparsity=draw(st.sampled_from([0.5, 0.95, 1.0])),
        min_keep=draw(st.integers(1, 3)),
    )
    return names, widths, weights, consumers, rule


@settings(max_examples=60, deadline=None)
@given(sparse_chains())
def test_selection_partitions_every_layer(case):
    names, widths, weights, consumers, rule = case
    result = select_filters(names, weights, consumers, rule)
    for name, width in zip(names, widths, strict=True):
        sel = result[name]
        assert sorted(sel.removed + sel.kept) == list(range(width))
        assert not set(sel.removed) & set(sel.kept)
        assert len(sel.kept) >= min(rule.min_keep, width)
        assert len(sel.filter_sparsity) == len(sel.consumer_sparsity) == width
        assert set(sel.removed) <= set(sel.reasons)
        assert all(0.0 <= s <= 1.0 for s in sel.filter_sparsity + sel.consumer_sparsity)
