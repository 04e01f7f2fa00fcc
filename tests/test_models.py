"""Layer names and exact parameter counts against the paper's Table 1."""

import pytest
import torch

from mlprune.errors import ConfigError
from mlprune.models.arch import build_spec
from mlprune.models.build import (
    build_model,
    count_parameters,
    fold_batch_norm,
    freeze_before,
    insert_batch_norm,
    named_convs,
    trainable_convs,
)
from mlprune.models.family import FAMILIES

# Table 1 of the paper: SSD300 pruned "6det" widths.
SSD300_6DET = {
    "conv1_1": 64, "conv1_2": 56, "conv2_1": 107, "conv2_2": 121, "conv3_1": 193, "conv3_2": 158,
    "conv3_3": 195, "conv4_1": 263, "conv4_2": 181, "conv4_3": 331, "conv5_1": 98, "conv5_2": 108,
    "conv5_3": 78, "conv6": 146, "conv7": 106, "conv8_1": 34, "conv8_2": 198, "conv9_1": 12,
    "conv9_2": 36, "conv10_1": 22, "conv10_2": 41, "conv11_1": 22, "conv11_2": 66,
}


def test_ssd300_full_width_matches_paper():
    assert count_parameters(build_model(build_spec("ssd300", 21))) == 26_285_486


def test_ssd300_6det_widths_match_paper():
    assert count_parameters(build_model(build_spec("ssd300", 21, widths=SSD300_6DET))) == 3_926_774


def test_ssd300_3det_drops_later_layers_and_heads():
    model = build_model(build_spec("ssd300", 21, widths=SSD300_6DET, num_sources=3))
    assert count_parameters(model) == 3_752_181
    assert list(model.backbone.convs)[-1] == "conv8_2"


def test_consumers_are_the_next_conv_then_the_heads():
    ssd = build_spec("ssd300", 21)
    assert ssd.consumers_of("conv4_2") == ["conv4_3"]
    assert ssd.consumers_of("conv4_3") == ["conv5_1", "conv4_3_loc", "conv4_3_conf"]
    assert ssd.consumers_of("conv11_2") == ["conv11_2_loc", "conv11_2_conf"]
    assert build_spec("ssd300", 21, num_sources=3).consumers_of("conv8_2") == ["conv8_2_loc", "conv8_2_conf"]
    assert build_spec("vgg16", 10).consumers_of("conv5_3") == ["classifier"]


def test_producer_is_the_previous_conv():
    ssd = build_spec("ssd300", 21)
    assert ssd.producer_of("conv1_1") is None
    assert ssd.producer_of("conv5_1") == "conv4_3"
    assert ssd.producer_of("conv8_1") == "conv7"
    for layer in ssd.conv_names[:-1]:
        assert ssd.producer_of(ssd.consumers_of(layer)[0]) == layer


def test_ssd512_is_about_27_2m():
    assert round(count_parameters(build_model(build_spec("ssd512", 21))) / 1e6, 1) == 27.2


@pytest.mark.parametrize("name", ["ssd300", "ssd512"])
def test_layer_names_follow_the_paper(name):
    model = build_model(build_spec(name, 6, width=0.125))
    convs = list(model.backbone.convs)
    last = "conv12_2" if name == "ssd512" else "conv11_2"
    assert convs[:3] == ["conv1_1", "conv1_2", "conv2_1"] and convs[-1] == last
    assert {"conv6", "conv7", "conv4_3"} <= set(convs)
    assert "conv4_3_loc" in named_convs(model) and f"{last}_conf" in named_convs(model)
    assert model.backbone.conv4_3_norm.weight.shape == (model.spec.widths["conv4_3"],)


@pytest.mark.parametrize("name,size,maps", [
    ("ssd300", 300, [38, 19, 10, 5, 3, 1]),
    ("ssd512", 512, [64, 32, 16, 8, 4, 2, 1]),
])
def test_feature_map_sizes_are_the_original_ssd(name, size, maps):
    model = build_model(build_spec(name, 3, width=0.0625))
    features = model.backbone(torch.zeros(1, 3, size, size))
    assert [f.shape[-1] for f in features.values()] == maps
    assert list(features) == list(FAMILIES[name].sources)


def test_width_multiplier_scales_with_floor():
    spec = build_spec("ssd300", 6, width=0.125)
    assert spec.widths["conv1_1"] == 8 and spec.widths["conv7"] == 128 and spec.widths["conv9_1"] == 16
    assert min(build_spec("ssd300", 6, width=0.01).widths.values()) == 4


def test_bad_specs_are_config_errors():
    with pytest.raises(ConfigError, match="model.name"):
        build_spec("yolo", 21)
    with pytest.raises(ConfigError, match="model.width"):
        build_spec("ssd300", 21, width=0)
    with pytest.raises(ConfigError, match="conv99"):
        build_spec("ssd300", 21, widths={"conv99": 3})


def test_fold_batch_norm_keeps_outputs_and_paper_structure():
    torch.manual_seed(0)
    model = build_model(build_spec("ssd300", 4, width=0.0625, batch_norm=True))
    model.train()
    for _ in range(2):  # give BN non-trivial running statistics
        model.backbone(torch.rand(2, 3, 300, 300))
    model.eval()
    folded = fold_batch_norm(model)
    x = torch.rand(1, 3, 300, 300)
    before, after = model.backbone(x), folded.backbone(x)
    for name in before:
        torch.testing.assert_close(after[name], before[name], rtol=1e-4, atol=1e-4)
    assert len(folded.backbone.norms) == 0
    assert count_parameters(folded) == count_parameters(build_model(build_spec("ssd300", 4, width=0.0625)))


def test_batch_norm_calibration_stops_at_the_last_calibrated_conv():
    """A detector's calibration runs its backbone up to the last calibrated conv only: the
    layers after it, the heads and NMS would cost time and change no statistic."""
    torch.manual_seed(0)
    model = build_model(build_spec("ssd300", 4, width=0.0625))
    ran = []
    for name in ("conv5_1", "conv7"):
        model.backbone.convs[name].register_forward_hook(lambda *_, name=name: ran.append(name))
    model.head.register_forward_hook(lambda *_: ran.append("head"))
    insert_batch_norm(model, ["conv4_2", "conv4_3"], [[torch.rand(3, 300, 300)]])
    assert ran == [] and list(model.backbone.norms) == ["conv4_2", "conv4_3"]


def test_batch_norm_inserted_for_retraining_starts_as_the_identity_and_folds_away():
    """The retrained layers get a BN whose statistics are their outputs' on the calibration
    images: eval mode, and train mode on exactly those images, compute the folded model's
    function, and folding after training gives the paper's structure back."""
    torch.manual_seed(0)
    model = build_model(build_spec("vgg16", 5, width=0.0625))
    images = [torch.rand(3, 32, 32) for _ in range(8)]
    before = model.eval()(images).detach()
    freeze_before(model, "conv4_1")
    layers = trainable_convs(model)
    assert layers == ["conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]
    insert_batch_norm(model, layers, [images[:4], images[4:]])
    assert list(model.backbone.norms) == layers
    torch.testing.assert_close(model.eval()(images).detach(), before, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model.train()(images).detach(), before, rtol=1e-4, atol=1e-4)  # batch = calibration
    model.backbone.norms["conv5_1"].bias.data += 1.0  # as if trained: the fold must carry it
    trained = model.eval()(images).detach()
    folded = fold_batch_norm(model)
    assert len(folded.backbone.norms) == 0 and not folded.spec.batch_norm
    assert count_parameters(folded) == count_parameters(build_model(build_spec("vgg16", 5, width=0.0625)))
    torch.testing.assert_close(folded(images).detach(), trained, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(trained, before, atol=1e-3)
