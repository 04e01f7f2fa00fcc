import pytest
import torch

from mlprune.checkpoint import load_checkpoint, save_checkpoint
from mlprune.errors import CheckpointError
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(build_spec("ssd300", 4, widths={"conv5_1": 7}, width=0.0625))


def test_round_trip_restores_spec_and_weights(tmp_path, model):
    path = tmp_path / "m.pt"
    save_checkpoint(path, model)
    loaded = load_checkpoint(path)
    assert loaded.spec == model.spec
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_truncated_checkpoint(tmp_path, model):
    path = tmp_path / "m.pt"
    save_checkpoint(path, model)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_pickled_module_is_refused(tmp_path, model):
    path = tmp_path / "m.pt"
    torch.save(model, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)


def test_spec_that_does_not_match_weights(tmp_path, model):
    path = tmp_path / "m.pt"
    save_checkpoint(path, model)
    payload = torch.load(path, weights_only=True)
    payload["spec"] = payload["spec"].replace('"conv5_1": 7', '"conv5_1": 9')
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="does not match its spec"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_failed_save_leaves_no_file(tmp_path, model, monkeypatch):
    path = tmp_path / "m.pt"

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, model)
    assert list(tmp_path.iterdir()) == []


def test_class_names_are_stored_and_checked(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, build_model(build_spec("ssd300", 3, width=0.0625, classes=["cat", "dog"])))
    assert load_checkpoint(path, ["cat", "dog"]).spec.classes == ("cat", "dog")
    with pytest.raises(CheckpointError, match=r"built for classes \['cat', 'dog'\], data.classes lists \['dog', 'ca"):
        load_checkpoint(path, ["dog", "cat"])


def test_a_checkpoint_without_class_names_is_checked_by_count_with_a_warning(tmp_path, model, capsys):
    path = tmp_path / "m.pt"
    save_checkpoint(path, model)  # 4 outputs: 3 classes + background, no names
    assert load_checkpoint(path, ["a", "b", "c"]).spec.classes is None
    assert capsys.readouterr().out == (f"warning: {path} predates stored class names; only their number was checked "
                                       "against data.classes (re-run the stage that wrote it to store them)\n")
    with pytest.raises(CheckpointError, match=r"built for 3 classes, data.classes lists 2: \['a', 'b'\]"):
        load_checkpoint(path, ["a", "b"])


def test_non_finite_weights_are_never_saved(tmp_path, model):
    with torch.no_grad():
        model.backbone.convs["conv2_1"].bias[3] = float("inf")
    with pytest.raises(CheckpointError, match=r"m.pt: refusing to save: backbone.convs.conv2_1.bias holds 1 "
                                              r"non-finite value\(s\)"):
        save_checkpoint(tmp_path / "m.pt", model)
    assert list(tmp_path.iterdir()) == []
