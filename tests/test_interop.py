"""Import from torchvision's layouts and our checkpoints; ONNX export against torch."""

import json
from pathlib import Path

import onnx
import pytest
import torch
import torch.nn.functional as F
from torchvision.models import vgg16, vgg16_bn
from torchvision.models.detection import ssd300_vgg16
from torchvision.models.vgg import cfgs, make_layers
from torchvision.transforms.functional import pil_to_tensor

from mlprune.checkpoint import save_checkpoint
from mlprune.data.images import open_image
from mlprune.errors import CheckpointError
from mlprune.interop.importing import import_model
from mlprune.interop.onnx_export import (
    default_boxes,
    export_onnx,
    onnx_latency_ms,
    onnx_max_difference,
    run_onnx,
)
from mlprune.interop.torchvision_weights import (
    CAFFE_INPUT,
    OUR_INPUT,
    ssd300_from_torchvision,
    trunk_from_torchvision_vgg,
)
from mlprune.models.arch import ArchSpec, build_spec
from mlprune.models.build import build_model
from mlprune.pruning.surgery import prune_filters
from mlprune.synthetic.crops import render_crops

TV_CLASSES = 7  # a class count of torchvision's SSD that no preset of ours has
VGG_LAYERS = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
              "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3")


def real_images(voc_root: Path, size: int, count: int = 2) -> torch.Tensor:
    """The first `count` images of a VOC root, in 0-1, resized to size x size."""
    files = sorted((voc_root / "JPEGImages").iterdir())[:count]
    images = []
    for file in files:
        with open_image(file) as image:
            images.append(pil_to_tensor(image.convert("RGB")).float() / 255)
    images = torch.stack(images)
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def torchvision_ssd(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    """A randomly initialised full-width torchvision ssd300_vgg16 and its state_dict on disk."""
    torch.manual_seed(0)
    model = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=TV_CLASSES).eval()
    path = tmp_path_factory.mktemp("tv") / "ssd300_vgg16.pth"
    torch.save(model.state_dict(), path)
    return model, path


def vgg_state(batch_norm: bool, finite_classifier: bool = False) -> dict[str, torch.Tensor]:
    """A torchvision vgg16(_bn) state_dict: random features and BN statistics; the classifier
    either random or NaN held in one element (files stay small; torchvision's
    IMAGENET1K_FEATURES has no valid classifier either)."""
    torch.manual_seed(1)
    features = make_layers(cfgs["D"], batch_norm=batch_norm)
    for module in features:
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    with torch.device("meta"):
        classifier = (vgg16_bn if batch_norm else vgg16)(weights=None).classifier.state_dict()
    fill = (lambda s: torch.randn(s) * 0.01) if finite_classifier else (lambda s: torch.full((1,), torch.nan).expand(s))
    return ({f"features.{k}": v for k, v in features.state_dict().items()}
            | {f"classifier.{k}": fill(v.shape) for k, v in classifier.items()})


def conv5_3_activation(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return next(a for d, a in model.backbone.layers(x) if d.name == "conv5_3")


# ---- torchvision ssd300_vgg16 ----

def test_torchvision_ssd300_gives_torchvision_raw_head_outputs(torchvision_ssd, tiny_voc):
    tv, path = torchvision_ssd
    image = real_images(tiny_voc, 300, count=1)
    with torch.no_grad():
        # Same normalised tensor into both networks: weights copied as they are.
        x = tv.transform(list(image))[0].tensors
        ours = ssd300_from_torchvision(path, torch.load(path, weights_only=True), input_norm=None).eval()
        expected = tv.head(list(tv.backbone(x).values()))
        found = ours.head(list(ours.backbone(x).values()))
        for key in ("bbox_regression", "cls_logits"):
            assert found[key].shape == expected[key].shape
            assert (found[key] - expected[key]).abs().max() < 1e-5
        # Through each model's own transform: conv1_1 absorbs torchvision's Caffe-style inputs,
        # exact except where conv1_1 reads its zero padding.
        imported = import_model(path, build_spec("ssd300", TV_CLASSES, width=0.5, batch_norm=True))
        assert imported.source == "torchvision ssd300_vgg16" and len(imported.layers) == 23 + 12
        adapted = imported.model.eval()
        v = adapted.transform(list(image))[0].tensors
        first = tv.backbone.features[0](x)
        inner = (adapted.backbone.convs["conv1_1"](v) - first)[..., 1:-1, 1:-1]
        assert inner.abs().max() < 1e-5 * first.abs().max()
        end_to_end = adapted.head(list(adapted.backbone(v).values()))
        for key in ("bbox_regression", "cls_logits"):
            assert (end_to_end[key] - expected[key]).abs().max() < 1e-3 * expected[key].abs().max()
        assert torch.equal(default_boxes(adapted), tv.anchor_generator(tv.transform(list(image))[0],
                                                                        list(tv.backbone(x).values()))[0])


def test_torchvision_ssd_class_count_must_match_unless_the_head_is_new(torchvision_ssd):
    tv, path = torchvision_ssd
    spec = build_spec("ssd300", 21)
    with pytest.raises(CheckpointError) as err:
        import_model(path, spec)
    assert str(err.value) == (f"{path}: the model has 7 class outputs but the preset needs 21 with background; "
                              "import it with a new class head to fine-tune it")
    imported = import_model(path, spec, new_class_head=True)
    model = imported.model
    assert model.head.classification_head.module_list[0].out_channels == 4 * 21
    assert torch.equal(model.head.regression_head.module_list[5].weight, tv.head.regression_head.module_list[5].weight)
    assert "conv4_3_loc" in imported.layers and "conv4_3_conf" not in imported.layers


@pytest.mark.parametrize("change,message", [
    ("drop", "missing backbone.extra.1.0.weight"),
    ("add", "unexpected backbone.extra.9.weight"),
    ("reshape", "backbone.features.0.weight is [32, 3, 3, 3] in the file but [64, 3, 3, 3] in "
                "torchvision's ssd300_vgg16"),
])
def test_torchvision_ssd_misfit_names_the_first_key(torchvision_ssd, change, message):
    tv, _ = torchvision_ssd
    state = dict(tv.state_dict())
    if change == "drop":
        del state["backbone.extra.1.0.weight"]
    elif change == "add":
        state["backbone.extra.9.weight"] = torch.zeros(1)
    else:
        state["backbone.features.0.weight"] = torch.zeros(32, 3, 3, 3)
    with pytest.raises(CheckpointError) as err:
        ssd300_from_torchvision("f.pth", state)
    assert str(err.value) == f"f.pth: does not fit torchvision's ssd300_vgg16: {message}"


def test_a_detector_file_is_refused_for_a_classifier_preset(torchvision_ssd, tmp_path):
    _, path = torchvision_ssd
    with pytest.raises(CheckpointError) as err:
        import_model(path, build_spec("vgg16", 10))
    assert str(err.value) == (f"{path}: a torchvision ssd300_vgg16 detector state_dict given for the vgg16 "
                              "preset, a classification model")
    with pytest.raises(CheckpointError) as err:
        import_model(path, build_spec("ssd512", TV_CLASSES))
    assert str(err.value) == (f"{path}: a torchvision ssd300_vgg16 state_dict fits model ssd300, "
                              "not the preset's ssd512")


# ---- torchvision vgg16 / vgg16_bn ----

@pytest.mark.parametrize("spec", [build_spec("ssd300", 21, batch_norm=True), build_spec("vgg16", 10)],
                         ids=["bn-ssd300", "plain-classifier"])
def test_vgg16_bn_initialises_the_trunk(tmp_path, spec):
    """Our conv5_3 equals torchvision's vgg16_bn features in eval mode: BN copied (its conv bias
    moved into the running mean), or folded into a model without BN."""
    path = tmp_path / "vgg16_bn.pth"
    torch.save(vgg_state(batch_norm=True), path)
    reference = make_layers(cfgs["D"], batch_norm=True).eval()
    saved = torch.load(path, weights_only=True)
    reference.load_state_dict({k.removeprefix("features."): v for k, v in saved.items() if k.startswith("features.")})
    imported = import_model(path, spec)
    assert imported.source == "torchvision vgg16_bn" and imported.layers == VGG_LAYERS
    x = torch.rand(1, 3, 64, 64)
    normalised = (x - torch.tensor(OUR_INPUT.mean).view(1, 3, 1, 1)) / torch.tensor(OUR_INPUT.std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = reference[:-1](normalised)  # up to conv5_3's ReLU
        found = conv5_3_activation(imported.model.eval(), normalised)
    assert found.shape == expected.shape
    assert (found - expected).abs().max() < 1e-4 * expected.abs().max()


def test_vgg16_features_file_initialises_a_batch_norm_model(tmp_path):
    """Plain vgg16 with no valid classifier (IMAGENET1K_FEATURES): Caffe-style inputs folded into
    conv1_1, convs copied, each conv bias into the running mean of BN left at init otherwise."""
    path = tmp_path / "vgg16_features.pth"
    state = vgg_state(batch_norm=False)
    torch.save(state, path)
    imported = import_model(path, build_spec("vgg16", 10, batch_norm=True))
    model = imported.model
    assert imported.source == "torchvision vgg16"
    scale = (torch.tensor(OUR_INPUT.std) / torch.tensor(CAFFE_INPUT.std)).view(1, 3, 1, 1)
    assert torch.allclose(model.backbone.convs["conv1_1"].weight, state["features.0.weight"] * scale)
    assert torch.equal(model.backbone.convs["conv5_3"].weight, state["features.28.weight"])
    assert torch.equal(model.backbone.norms["conv2_1"].running_mean, -state["features.5.bias"])
    assert torch.equal(model.backbone.norms["conv2_1"].weight, torch.ones(128))


def test_vgg16_fc6_fc7_are_subsampled_into_conv6_conv7():
    state = vgg_state(batch_norm=False, finite_classifier=True)
    model, layers = trunk_from_torchvision_vgg("vgg16.pth", state, build_spec("ssd300", 21))
    assert layers == (*VGG_LAYERS, "conv6", "conv7")
    conv6, conv7 = model.backbone.convs["conv6"], model.backbone.convs["conv7"]
    fc6, fc7 = state["classifier.0.weight"], state["classifier.3.weight"]
    for out, channel, i, j in [(0, 0, 0, 0), (5, 17, 1, 2), (1023, 511, 2, 2)]:
        assert conv6.weight[out, channel, i, j] == fc6[4 * out, channel * 49 + 3 * i * 7 + 3 * j]
    assert conv7.weight[7, 300, 0, 0] == fc7[28, 1200]
    assert torch.equal(conv6.bias, state["classifier.0.bias"][::4])
    assert torch.equal(model.backbone.convs["conv1_1"].weight, state["features.0.weight"])  # ImageNet inputs: ours


def test_vgg16_into_a_narrow_preset_names_the_layer(tmp_path):
    path = tmp_path / "vgg16.pth"
    torch.save(vgg_state(batch_norm=False), path)
    with pytest.raises(CheckpointError) as err:
        import_model(path, build_spec("ssd300", 6, width=0.09375))
    assert str(err.value) == (f"{path}: features.0.weight is [64, 3, 3, 3] in the file but [6, 3, 3, 3] in the "
                              "model's conv1_1: a VGG16 initialisation needs width 1.0 up to conv5_3")


# ---- our checkpoints and foreign files ----

def test_our_pruned_checkpoint_is_imported_as_it_is(tmp_path, tiny_detector):
    pruned = prune_filters(tiny_detector, {"conv4_3": [0, 2, 5], "conv7": [1, 3, 4, 8, 9]})
    path = tmp_path / "model.pt"
    save_checkpoint(path, pruned)
    imported = import_model(path, build_spec("ssd300", 6, width=0.0625))
    assert imported.model.spec == pruned.spec
    assert all(torch.equal(v, pruned.state_dict()[k]) for k, v in imported.model.state_dict().items())


def test_a_classifier_checkpoint_is_refused_for_a_detector_preset(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, build_model(build_spec("vgg16", 10, width=0.125)))
    with pytest.raises(CheckpointError) as err:
        import_model(path, build_spec("ssd300", 6))
    assert str(err.value) == f"{path}: holds a vgg16 (classification) model but the preset is ssd300 (detection)"


@pytest.mark.parametrize("content,message", [
    ({"model": torch.zeros(1)}, "not a model this import knows (first key 'model'): expected a torchvision "
                                "ssd300_vgg16 or vgg16/vgg16_bn state_dict, or an mlprune checkpoint"),
    ({"backbone.convs.conv1_1.weight": torch.zeros(1)},
     "a bare mlprune state_dict without its architecture spec; write it with mlprune's save_checkpoint"),
    ({"features.0.weight": torch.zeros(1), "epoch": 3}, "not a state_dict: 'epoch' holds a int, not a tensor"),
    (torch.nn.Conv2d(1, 1, 1), "refused by torch.load(weights_only=True): not a torch file, or one holding "
                               "pickled Python objects (a saved module?) instead of a state_dict"),
])
def test_foreign_files_get_one_line(tmp_path, content, message):
    path = tmp_path / "weights.pth"
    torch.save(content, path)
    with pytest.raises(CheckpointError) as err:
        import_model(path, build_spec("ssd300", 6))
    assert str(err.value) == f"{path}: {message}"


def test_a_text_file_is_not_a_torch_file(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_text("hello\n")
    with pytest.raises(CheckpointError) as err:
        import_model(path, build_spec("ssd300", 6))
    assert str(err.value).startswith(f"{path}: not a torch file torch.load can read (")
    assert "\n" not in str(err.value)


# ---- ONNX ----

def assert_onnx_matches_torch(model: torch.nn.Module, path: Path, images: torch.Tensor) -> None:
    export_onnx(model, path)
    assert onnx_max_difference(model, path, images) < 1e-4


def test_onnx_detector_matches_torch(tmp_path, tiny_detector, tiny_voc):
    images = real_images(tiny_voc, 300)
    assert_onnx_matches_torch(tiny_detector, tmp_path / "model.onnx", images)
    bbox, logits, boxes = run_onnx(tmp_path / "model.onnx", images[:1])
    assert bbox.shape == (1, 8732, 4) and logits.shape == (1, 8732, 6) and boxes.shape == (8732, 4)
    assert onnx_latency_ms(tmp_path / "model.onnx", 300, runs=2) > 0


def test_onnx_pruned_detector_matches_torch(tmp_path, tiny_detector, tiny_voc):
    """Uneven widths everywhere, detection sources (conv4_3 with its L2Norm) included."""
    kept = {name: [i for i in range(width) if i % 3 != 1] for name, width in tiny_detector.spec.widths.items()}
    pruned = prune_filters(tiny_detector, kept)
    assert pruned.spec.widths["conv4_3"] == 21 and pruned.spec.widths["conv1_1"] == 3
    assert_onnx_matches_torch(pruned, tmp_path / "pruned.onnx", real_images(tiny_voc, 300))


def test_onnx_classifier_matches_torch(tmp_path):
    torch.manual_seed(0)
    model = build_model(build_spec("vgg16", 10, width=0.125))
    images = render_crops(4, seed=0).images.float() / 255
    assert_onnx_matches_torch(model, tmp_path / "classifier.onnx", images)
    metadata = {p.key: p.value for p in onnx.load(tmp_path / "classifier.onnx").metadata_props}
    assert ArchSpec.from_json(json.loads(metadata["mlprune.spec"])) == model.spec
