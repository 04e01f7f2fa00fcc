import shutil
from pathlib import Path

import pytest
import torch
import yaml
from pipeline_helpers import commit, dvc, make_repo, run, tiny_params
from stage_workspace import Workspace

from mlprune.models.arch import build_spec
from mlprune.models.build import build_model
from mlprune.synthetic.scenes import generate_voc_dataset

CLASSES = ["circle", "square", "triangle", "cross", "ring"]


def masked(model, kept):
    """A copy of `model` whose removed filters output exactly zero."""
    copy = build_model(model.spec).eval()
    copy.load_state_dict(model.state_dict())
    with torch.no_grad():
        for layer, indices in kept.items():
            conv = copy.backbone.convs[layer]
            drop = sorted(set(range(conv.out_channels)) - set(indices))
            conv.weight[drop] = 0
            conv.bias[drop] = 0
    return copy


@pytest.fixture(scope="session")
def tiny_voc(tmp_path_factory) -> Path:
    """A 12-image synthetic VOC root (8 trainval, 4 test) at 96x96."""
    root = tmp_path_factory.mktemp("tiny") / "voc"
    generate_voc_dataset(root, CLASSES, n_trainval=8, n_test=4, image_size=96, seed=3)
    return root


@pytest.fixture
def ws(tmp_path, tiny_voc) -> Workspace:
    """The smoke params over a private copy of tiny_voc, with empty input and output folders."""
    voc = shutil.copytree(tiny_voc, tmp_path / "voc")
    params = tiny_params()
    params["data"]["root"] = str(voc)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for folder in ("inputs", "out"):
        (tmp_path / folder).mkdir()
    return Workspace(tmp_path / "params.yaml", voc, tmp_path / "inputs", tmp_path / "out")


@pytest.fixture
def tiny_detector() -> torch.nn.Module:
    """A randomly initialised SSD300 at 1/16 width for the classes of tiny_voc."""
    torch.manual_seed(0)
    return build_model(build_spec("ssd300", len(CLASSES) + 1, width=0.0625, classes=CLASSES))


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> Path:
    """A git repository where `dvc repro` of the tiny pipeline ran once, from an empty
    cache and uninterrupted; its results are in the last commit (tests may change the
    workspace afterwards)."""
    repo = make_repo(tmp_path_factory.mktemp("pipeline"))
    run(dvc("repro"), repo)
    commit(repo, "tiny pipeline, uninterrupted")
    return repo


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the group markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test` runs `-n 2 --dist loadgroup`), every test that reads
    the session-wide `tiny_pipeline` runs in one worker, so the pipeline runs only once."""
    for item in items:
        if "tiny_pipeline" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("tiny_pipeline"))
