import pytest
import torch
from phase_tables import paper_phases

from mlprune.errors import ConfigError
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model
from mlprune.models.family import family
from mlprune.pipeline.phase_config import check_phase_chain, parse_phases
from mlprune.pruning.phases import phase_layers
from mlprune.pruning.selection import SelectionRule, select_filters
from mlprune.pruning.sparsity import apply_threshold, conv_weights
from mlprune.pruning.surgery import prune_filters

SPEC = build_spec("ssd300", 3, width=0.0625)


DEFAULTS = {"l1_strength": 1e-4, "l1_method": "proximal", "l1": {"epochs": 1}, "retrain": {"epochs": 1}}


def phase(layers, **extra):
    return {"start": "pretrain", "layers": layers, **extra}


@pytest.mark.parametrize("model", ["ssd300", "ssd512", "vgg16"])
def test_paper_phases_chain_covers_every_conv_once(model):
    phases = paper_phases(model)
    check_phase_chain(model, {f"phase{i}": layers for i, layers in enumerate(phases, 1)})
    joined = phases[0] + [name for layers in phases[1:] for name in layers[1:]]
    assert joined == [c.name for c in family(model).convs]


def test_a_phase_overrides_the_defaults_key_by_key():
    phases = {"p1": phase(["conv1_1", "conv1_2"], l1={"lr": 0.5}), "p2": phase(["conv1_2", "conv2_1"])}
    parsed = parse_phases(phases, {**DEFAULTS, "tolerance": 0.2}, "ssd300")
    assert parsed["p1"].l1.lr == 0.5 and parsed["p1"].l1.epochs == 1  # nested: only lr replaced
    assert parsed["p2"].l1.lr == 2e-3 and parsed["p1"].tolerance == parsed["p2"].tolerance == 0.2


def test_roles_of_phase2():
    roles = phase_layers(SPEC, paper_phases("ssd300")[1])
    assert roles.selected == ("conv4_3", "conv5_1", "conv5_2", "conv5_3", "conv6")  # conv7: next phase
    assert roles.consumers["conv4_3"] == ("conv5_1", "conv4_3_loc", "conv4_3_conf")
    assert {"conv4_3_loc", "conv4_3_conf", "conv7_loc", "conv7_conf"} <= set(roles.penalised)


def test_last_network_layer_is_selected_with_heads_as_consumers():
    roles = phase_layers(SPEC, paper_phases("ssd300")[3])
    assert roles.selected[-1] == "conv11_2"
    assert roles.consumers["conv11_2"] == ("conv11_2_loc", "conv11_2_conf")


@pytest.mark.parametrize("phases,match", [
    ({"p1": phase(["conv1_1", "conv9_9"])}, "no layer"),
    ({"p1": phase(["conv1_1", "conv2_1"])}, "consecutive"),
    ({"p1": phase(["conv1_1", "conv1_2"]), "p2": phase(["conv2_1", "conv2_2"])}, "must start with 'conv1_2'"),
    ({"p1": phase(["conv1_1", "conv1_2", "conv2_1"]), "p2": phase(["conv1_2", "conv2_1"])}, "must start with"),
    ({"p1": phase(["conv1_1", "conv1_2"], select={"gate": 2.0})}, "phases.p1.select.gate"),
    ({"p1": phase(["conv1_1", "conv1_2"], l1={"epochs": 1, "batch_size": 0})}, "phases.p1.l1.batch_size"),
    ({"p1": phase(["conv1_1", "conv1_2"], bogus=1)}, "phases.p1.bogus: unknown key"),
    ({"p1": phase(["conv1_1", "conv1_2"], l1="fast")}, "phases.p1.l1: expected a mapping"),
])
def test_bad_phases_are_named(phases, match):
    with pytest.raises(ConfigError, match=match):
        parse_phases(phases, DEFAULTS, "ssd300")


def test_a_bad_default_is_named_as_a_default():
    with pytest.raises(ConfigError, match=r"^phase_defaults.l1.batch_size: must be >= 1"):
        parse_phases({"p1": phase(["conv1_1", "conv1_2"])}, {**DEFAULTS, "l1": {"epochs": 1, "batch_size": 0}},
                     "ssd300")


def test_extreme_threshold_never_empties_a_layer():
    torch.manual_seed(0)
    model = build_model(SPEC).eval()
    roles = phase_layers(SPEC, paper_phases("ssd300")[0])
    apply_threshold(conv_weights(model, roles.penalised), 1e9)
    weights = {k: w.detach() for k, w in conv_weights(model, roles.penalised).items()}
    selection = select_filters(roles.selected, weights, roles.consumers, SelectionRule(min_keep=1))
    assert all(len(s.kept) == 1 for s in selection.values())
    pruned = prune_filters(model, {name: s.kept for name, s in selection.items()})
    assert pruned.spec.widths["conv3_3"] == 1 and pruned.spec.widths["conv4_3"] == SPEC.widths["conv4_3"]
    assert len(pruned([torch.rand(3, 300, 300)])) == 1
