"""The trainer: deterministic on CPU, and a resumed run ends where an uninterrupted one does."""

from dataclasses import asdict

import pytest
import torch
from conftest import CLASSES

from mlprune.data.dataset import DetectionDataset
from mlprune.data.transforms import build_train_transform
from mlprune.data.voc import read_split
from mlprune.errors import ConfigError
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model
from mlprune.train import TrainConfig, TrainingDiverged, lr_factor, train

CONFIG = TrainConfig(epochs=2, batch_size=4, warmup_iters=1, lr=1e-3)


@pytest.fixture(scope="module")
def dataset(tiny_voc):
    return DetectionDataset(read_split(tiny_voc, "trainval", CLASSES), build_train_transform(["flip"]))


def fresh_model():
    torch.manual_seed(0)
    return build_model(build_spec("ssd300", len(CLASSES) + 1, width=0.0625, batch_norm=True))


def run(dataset, work_dir, penalty=None):
    model = fresh_model()
    history = train(model, dataset, CONFIG, device=torch.device("cpu"), seed=1, work_dir=work_dir, penalty=penalty)
    return model, history


def assert_same_weights(a, b):
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_a_batch_larger_than_the_epoch_is_refused(dataset, tmp_path):
    """8 training images in batches of 9 would give zero steps: a model that never trained."""
    config = TrainConfig(epochs=1, batch_size=9)
    with pytest.raises(ConfigError) as info:
        train(fresh_model(), dataset, config, device=torch.device("cpu"), seed=1, work_dir=tmp_path, desc="retrain")
    assert str(info.value) == ("retrain: batch_size 9 is more than the 8 training images of an epoch, so not one "
                               "step would train; lower batch_size")


def test_same_seed_same_weights(dataset, tmp_path):
    a, history = run(dataset, tmp_path / "a")
    b, _ = run(dataset, tmp_path / "b")
    assert_same_weights(a, b)
    assert [row["epoch"] for row in history] == [1, 2] and history[0]["loss"] > 0
    assert not (tmp_path / "a").exists()  # resume state is removed once training ends


def test_resume_after_interruption_matches_uninterrupted(dataset, tmp_path):
    calls = {"n": 0}

    def crash_in_second_epoch(model):
        calls["n"] += 1
        if calls["n"] > 2:  # 2 steps per epoch: dies on the first step of epoch 2
            raise KeyboardInterrupt
        return torch.zeros(())

    with pytest.raises(KeyboardInterrupt):
        run(dataset, tmp_path / "work", penalty=crash_in_second_epoch)
    assert (tmp_path / "work" / "resume.pt").is_file()

    def zero(model):
        return torch.zeros(())

    resumed, history = run(dataset, tmp_path / "work", penalty=zero)
    reference, _ = run(dataset, tmp_path / "ref", penalty=zero)
    assert_same_weights(resumed, reference)
    assert [row["epoch"] for row in history] == [1, 2]


def test_warmup_then_cosine():
    config = TrainConfig(epochs=1, warmup_iters=10)
    assert lr_factor(0, 100, config) == pytest.approx(0.1)
    assert lr_factor(10, 100, config) == pytest.approx(1.0)
    assert lr_factor(100, 100, config) == pytest.approx(0.0)
    step = TrainConfig(epochs=1, warmup_iters=0, schedule="step", lr_steps=[0.5])
    assert lr_factor(60, 100, step) == pytest.approx(0.1)


def test_a_non_finite_loss_stops_training_and_keeps_the_last_epochs_resume_state(dataset, tmp_path):
    calls = {"n": 0}

    def nan_in_second_epoch(model):
        calls["n"] += 1
        return torch.tensor(float("nan") if calls["n"] == 4 else 0.0)  # 2 steps per epoch: epoch 2, step 2

    with pytest.raises(TrainingDiverged, match=r"^train: epoch 2/2, step 2: the loss is nan; training stopped"):
        run(dataset, tmp_path / "work", penalty=nan_in_second_epoch)
    state = torch.load(tmp_path / "work" / "resume.pt", weights_only=True)
    assert state["epoch"] == 1


@pytest.mark.parametrize("changes,message", [
    ({"grad_clip": 0.0}, "grad_clip: must be > 0, got 0.0"),
    ({"epoch_images": 3}, r"epoch_images: must be 0 \(the whole set\) or at least batch_size \(4\), got 3"),
    ({"lr_steps": [0.5, 0.5]}, r"lr_steps: fractions of training in \(0, 1\), strictly increasing"),
    ({"lr_steps": [0.5, 1.0]}, r"lr_steps: fractions of training in \(0, 1\), strictly increasing"),
])
def test_schedules_that_cannot_mean_anything(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{**asdict(CONFIG), **changes})
