"""The VGG16 classifier: its shape, its phases, and surgery across the conv-to-linear boundary."""

import torch
from conftest import masked
from hypothesis import given, settings
from hypothesis import strategies as st
from phase_tables import paper_phases

from mlprune.models.arch import build_spec
from mlprune.models.build import build_model, count_parameters, fold_batch_norm, named_convs
from mlprune.pruning.phases import phase_layers
from mlprune.pruning.surgery import prune_filters

X = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def tiny_classifier(batch_norm=False):
    torch.manual_seed(0)
    model = build_model(build_spec("vgg16", 10, width=0.0625, batch_norm=batch_norm)).eval()
    if not batch_norm:
        with torch.no_grad():  # negative biases: a removed filter outputs relu(b) = 0, like a masked one
            for conv in model.backbone.convs.values():
                conv.bias.uniform_(-0.1, -0.01)
    return model


def test_full_width_vgg16_has_the_cifar_parameter_count():
    # 13 3x3 convs with bias: 1,792 + 36,928 + 73,856 + 147,584 + 295,168 + 2 x 590,080
    # + 1,180,160 + 5 x 2,359,808 = 14,714,688; Linear(512, 10): 5,130
    assert count_parameters(build_model(build_spec("vgg16", 10))) == 14_714_688 + 5_130


def test_training_mode_returns_the_loss_and_eval_mode_logits():
    model = tiny_classifier(batch_norm=True).train()
    loss = model(list(X), [{"labels": torch.tensor(i)} for i in range(4)])
    assert set(loss) == {"classification"} and loss["classification"] > 0
    assert model.eval()(X).shape == (4, 10)


def test_folding_batch_norm_keeps_outputs():
    model = tiny_classifier(batch_norm=True)
    model.train()
    for _ in range(3):  # give BN non-trivial running statistics
        model(X)
    model.eval()
    torch.testing.assert_close(fold_batch_norm(model)(X), model(X), rtol=1e-4, atol=1e-5)


def test_the_last_conv_feeds_the_classifier():
    spec = tiny_classifier().spec
    roles = phase_layers(spec, paper_phases("vgg16")[-1])
    assert roles.consumers["conv5_3"] == ("classifier",)
    assert "conv5_3" in roles.selected and "classifier" in roles.penalised
    assert set(named_convs(tiny_classifier())) >= {"conv1_1", "conv5_3", "classifier"}


MODEL = tiny_classifier()


@st.composite
def selections(draw):
    widths = MODEL.spec.widths
    layers = draw(st.lists(st.sampled_from(sorted(widths)), unique=True, min_size=1, max_size=6))
    kept = {layer: sorted(draw(st.permutations(range(widths[layer])))[: draw(st.integers(1, widths[layer]))])
            for layer in layers}
    if draw(st.booleans()):  # the conv-to-linear boundary, keep-one included
        kept["conv5_3"] = sorted(draw(st.permutations(range(widths["conv5_3"])))[: draw(st.integers(1, 4))])
    return kept


@settings(max_examples=25, deadline=None)
@given(selections())
def test_pruned_classifier_equals_masked_classifier(kept):
    pruned = prune_filters(MODEL, kept)
    with torch.no_grad():
        torch.testing.assert_close(pruned(X), masked(MODEL, kept)(X), rtol=1e-4, atol=1e-5)
    if "conv5_3" in kept:
        assert pruned.classifier.in_features == len(kept["conv5_3"])


def test_zeroed_filters_of_the_last_conv_are_removed_without_changing_outputs():
    model = tiny_classifier()
    with torch.no_grad():  # two conv5_3 filters output the constant relu(0.3): the classifier's bias takes it
        model.backbone.convs["conv5_3"].weight[[1, 3]] = 0
        model.backbone.convs["conv5_3"].bias[[1, 3]] = 0.3
    kept = [i for i in range(model.spec.widths["conv5_3"]) if i not in (1, 3)]
    pruned = prune_filters(model, {"conv5_3": kept})
    with torch.no_grad():
        torch.testing.assert_close(pruned(X), model(X), rtol=1e-4, atol=1e-5)
