"""The training speed-ups change no number: a few steps give bit-identical weights.

The reference is the code path before them: torchvision's own SSD transform (which
resizes a 300x300 image to 300x300) and default-box generator, the optimizer's
per-tensor loop, out-of-place ReLUs, and new memory filled with NaN under deterministic mode.
"""

import functools

import pytest
import torch
from conftest import CLASSES

from mlprune import train as train_module
from mlprune.data.classification import ClassificationDataset
from mlprune.data.dataset import DetectionDataset
from mlprune.data.labeled import LabeledImages
from mlprune.data.transforms import AUGMENTATIONS, build_eval_transform, build_train_transform
from mlprune.data.voc import read_split
from mlprune.evaluation.predict import predict
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model
from mlprune.models.ssd import use_torchvision_parts
from mlprune.runtime import autocast, deterministic_mode, memory_layout, resolve_precision
from mlprune.synthetic.scenes import generate_voc_dataset
from mlprune.train import TrainConfig, build_optimizer, fingerprint, train

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def voc300(tmp_path_factory):
    """6 trainval + 2 test images at the model's input size, 300x300."""
    root = tmp_path_factory.mktemp("voc300") / "voc"
    generate_voc_dataset(root, CLASSES, n_trainval=6, n_test=2, image_size=300, seed=5)
    return root


@pytest.fixture
def nan_fill_restored():
    yield
    deterministic_mode()


def fresh_model(batch_norm=True):
    torch.manual_seed(0)
    return build_model(build_spec("ssd300", len(CLASSES) + 1, width=0.0625, batch_norm=batch_norm))


def run_steps(dataset, config, tmp_path, precision="auto", channels_last=False):
    model = fresh_model()
    train(model, dataset, config, device=CPU, seed=1, work_dir=tmp_path, precision=precision,
          channels_last=channels_last)
    return model, torch.get_rng_state()


def run_steps_previous_path(dataset, config, tmp_path, monkeypatch):
    deterministic_mode(fill_new_memory=True)
    monkeypatch.setattr(train_module, "build_optimizer", functools.partial(build_optimizer, foreach=None))
    monkeypatch.setattr(torch.nn.functional, "relu", lambda x, inplace=False: torch.relu(x))
    model = use_torchvision_parts(fresh_model())
    train(model, dataset, config, device=CPU, seed=1, work_dir=tmp_path)
    monkeypatch.undo()
    deterministic_mode()
    return model, torch.get_rng_state()


def assert_same_weights(a, b):
    state = b.state_dict()
    for key, value in a.state_dict().items():
        assert torch.equal(value, state[key]), key


# flip keeps every image at 300x300 (the resize is skipped); the full SSD set changes sizes (it runs)
@pytest.mark.parametrize(("augment", "optimizer"), [(["flip"], "adamw"), (list(AUGMENTATIONS), "sgd")])
def test_three_steps_bit_identical_to_previous_path(voc300, tmp_path, monkeypatch, nan_fill_restored, augment,
                                                    optimizer):
    dataset = DetectionDataset(read_split(voc300, "trainval", CLASSES), build_train_transform(augment))
    config = TrainConfig(epochs=1, batch_size=2, warmup_iters=1, optimizer=optimizer)
    fast, fast_rng = run_steps(dataset, config, tmp_path / "fast")
    reference, reference_rng = run_steps_previous_path(dataset, config, tmp_path / "ref", monkeypatch)
    assert_same_weights(fast, reference)
    assert torch.equal(fast_rng, reference_rng)  # the skipped resize still drew its number


def test_predictions_identical_to_torchvision_parts(voc300):
    dataset = DetectionDataset(read_split(voc300, "test", CLASSES), build_eval_transform())
    model = fresh_model(batch_norm=False)
    fast = predict(model, dataset, CPU)
    reference = predict(use_torchvision_parts(model), dataset, CPU)
    for image_id, detections in fast.items():
        assert len(detections.boxes) > 0
        assert torch.equal(detections.boxes, reference[image_id].boxes)
        assert torch.equal(detections.scores, reference[image_id].scores)


def test_default_boxes_built_once_per_geometry():
    model = fresh_model(batch_norm=False).eval()
    with torch.no_grad():
        model([torch.rand(3, 300, 300)] * 2)
        model([torch.rand(3, 200, 300)])  # resized to 300x300: same geometry
    assert len(model.anchor_generator._boxes) == 1


def test_bf16_training_repeatable_and_keeps_fp32_weights(voc300, tmp_path):
    dataset = DetectionDataset(read_split(voc300, "trainval", CLASSES), build_train_transform(["flip"]))
    config = TrainConfig(epochs=1, batch_size=2, warmup_iters=1, epoch_images=4)
    a, _ = run_steps(dataset, config, tmp_path / "a", precision="bf16")
    b, _ = run_steps(dataset, config, tmp_path / "b", precision="bf16")
    fp32, _ = run_steps(dataset, config, tmp_path / "fp32", precision="fp32")
    assert_same_weights(a, b)
    assert all(p.dtype == torch.float32 for p in a.parameters())
    conv = "backbone.convs.conv1_1.weight"
    assert not torch.equal(a.state_dict()[conv], fp32.state_dict()[conv])  # autocast did run in bf16


def test_channels_last_detector_repeatable_and_back_in_usual_layout(voc300, tmp_path):
    dataset = DetectionDataset(read_split(voc300, "trainval", CLASSES), build_train_transform(["flip"]))
    config = TrainConfig(epochs=1, batch_size=2, warmup_iters=1, epoch_images=4)
    a, _ = run_steps(dataset, config, tmp_path / "a", channels_last=True)
    b, _ = run_steps(dataset, config, tmp_path / "b", channels_last=True)
    assert_same_weights(a, b)
    assert all(p.is_contiguous() for p in a.parameters())


def test_channels_last_changes_only_rounding(tmp_path):
    """On the classifier: SSD's hard-negative mining turns rounding differences into other
    near-tied negatives (detector gradients then differ by ~2 %), which would hide a real error."""
    generator = torch.Generator().manual_seed(0)
    data = LabeledImages(torch.randint(0, 255, (12, 3, 32, 32), dtype=torch.uint8, generator=generator),
                         torch.arange(12) % 5, ["a", "b", "c", "d", "e"])
    config = TrainConfig(epochs=1, batch_size=4, warmup_iters=1, optimizer="sgd")
    models = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        model = build_model(build_spec("vgg16", 5, width=0.0625, batch_norm=True))
        train(model, ClassificationDataset(data, augment=["flip"]), config, device=CPU, seed=0,
              work_dir=tmp_path / str(channels_last), channels_last=channels_last)
        models.append(model.state_dict())
    default, nhwc = models
    assert not all(torch.equal(v, nhwc[k]) for k, v in default.items())
    for key, value in default.items():
        torch.testing.assert_close(nhwc[key], value, rtol=1e-4, atol=1e-6, msg=key)


def test_resume_state_of_another_precision_is_not_continued(tiny_detector):
    config = TrainConfig(epochs=1)
    default = fingerprint(tiny_detector, config, 0, 8)
    assert fingerprint(tiny_detector, config, 0, 8, ("fp32", False)) == default
    assert fingerprint(tiny_detector, config, 0, 8, ("bf16", False)) != default
    assert fingerprint(tiny_detector, config, 0, 8, ("fp32", True)) != default


def test_auto_precision_is_fp32_on_cpu_and_bf16_on_cuda():
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    with autocast(CPU):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float32
    with autocast(CPU, "bf16"):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16


def test_channels_last_scoring_matches_and_gives_the_model_back_in_usual_layout(voc300):
    """Scoring in NHWC (`common.channels_last` in threshold search, check_pruned, evaluate)
    finds the same detections up to rounding, and leaves the weights as it found them."""
    dataset = DetectionDataset(read_split(voc300, "test", CLASSES), build_eval_transform())
    model = fresh_model(batch_norm=False).eval()
    nchw = predict(model, dataset, CPU, batch_size=2)
    with memory_layout(model, channels_last=True):
        assert model.backbone.convs.conv1_1.weight.is_contiguous(memory_format=torch.channels_last)
        nhwc = predict(model, dataset, CPU, batch_size=2)
    assert all(p.is_contiguous() for p in model.parameters())
    for image_id, detections in nchw.items():
        torch.testing.assert_close(nhwc[image_id].scores, detections.scores, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(nhwc[image_id].boxes, detections.boxes, rtol=1e-4, atol=1e-3)
