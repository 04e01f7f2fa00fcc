"""End to end on one's own data (issue 17): each paper preset, the image-folder preset and the
`voc` format pointed at a folder of one's own, each given a tiny dataset in its exact on-disk
layout and shrunk in sizes only (shrunk_preset: a few images, 1/16 width, one epoch, the first
k-det cut), run their whole stage graph, phases as the preset has them, to the report.

Each runs the commands of DVC's own plan for it, in its order, in this process: the same
stage scripts and arguments, without an interpreter and DVC start per stage (about 30-40
stages each, ~5 s apiece under `dvc repro`). `dvc repro` itself runs in
test_pipeline_smoke (detection) and test_pipeline_classification; that `dvc.lock` tracks
the real root follows from the plan's deps, checked below.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from dataset_writers import (
    CIFAR10_LABEL_NAMES,
    IMAGE_FOLDER_CLASSES,
    SHAPES,
    relabel_objects,
    write_cifar,
    write_gtsdb,
    write_gtsrb,
    write_image_folder,
)
from pipeline_helpers import (
    ROOT,
    PlannedStage,
    make_dvc_project,
    repro_plan,
    run_in_process,
    shrunk_preset,
)

from mlprune.data.gtsdb import GTSDB_CATEGORIES
from mlprune.pipeline.data import NOTE
from mlprune.presets import resolve_preset
from mlprune.synthetic.scenes import generate_voc_dataset

WIDTH = 0.0625  # 4 channels in conv1_1, for SSD and VGG alike
VOC_CLASSES = resolve_preset("ssd300_voc", ROOT / "configs")["data"]["classes"]
EMBEDDED_ROOT = "data/synthetic"

# GTSDB: five training images (00000-00004), one test image (00600), one sign each, of each
# category in turn; 40x30 images (dataset_writers.GTSDB_SIZE).
GTSDB_IDS = [GTSDB_CATEGORIES[name][0] for name in ("prohibitory", "danger", "mandatory", "other")]
GTSDB_NAMES = (*(f"{i:05d}" for i in range(5)), "00600")
GTSDB_SIGNS = [f"{name}.ppm;{2 + i};3;{20 + i};25;{GTSDB_IDS[i % 4]}" for i, name in enumerate(GTSDB_NAMES)]


@pytest.fixture(scope="session")
def voc_devkit(tmp_path_factory) -> Path:
    """VOCdevkit/VOC2007 (3 trainval, 1 test) and VOC2012 (2 trainval, 1 test), 64x64 images whose
    shapes are named as the first five Pascal VOC classes, none difficult (val and test are one image)."""
    devkit = tmp_path_factory.mktemp("real") / "VOCdevkit"
    for year, n_trainval, seed in (("VOC2007", 3, 1), ("VOC2012", 2, 2)):
        generate_voc_dataset(devkit / year, SHAPES, n_trainval=n_trainval, n_test=1, image_size=64, seed=seed)
        relabel_objects(devkit / year, dict(zip(SHAPES, VOC_CLASSES, strict=False)), difficult=False)
    return devkit


@pytest.fixture(scope="session")
def voc_folder(tmp_path_factory) -> Path:
    """One Pascal VOC layout folder of one's own (5 trainval, 1 test, none difficult), not data/synthetic."""
    root = tmp_path_factory.mktemp("real") / "my_voc"
    generate_voc_dataset(root, SHAPES, n_trainval=5, n_test=1, image_size=64, seed=4)
    relabel_objects(root, difficult=False)
    return root


@pytest.fixture(scope="session")
def gtsdb(tmp_path_factory) -> Path:
    return write_gtsdb(tmp_path_factory.mktemp("real") / "FullIJCNN2013", GTSDB_SIGNS, GTSDB_NAMES)


@pytest.fixture(scope="session")
def cifar10(tmp_path_factory) -> Path:
    """cifar-10-batches-py with CIFAR-10's own label names: 10 train images, 4 test."""
    root = tmp_path_factory.mktemp("real") / "cifar10"
    write_cifar(root, n_train=10, n_test=4, classes=CIFAR10_LABEL_NAMES)
    return root


@pytest.fixture(scope="session")
def gtsrb(tmp_path_factory) -> Path:
    return write_gtsrb(tmp_path_factory.mktemp("real") / "gtsrb_root")


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("real") / "my_images")


@pytest.mark.parametrize(("preset", "dataset", "n_stages"), [
    # validate, data, pretrain, 4 phases x 6, kdet@1, scratch, 7 evaluate, export, report
    ("ssd300_voc", "voc_devkit", 1 + 1 + 1 + 4 * 6 + 1 + 1 + 7 + 1 + 1),
    # no k-det for a classifier: 6 evaluate
    ("vgg16_cifar10", "cifar10", 1 + 1 + 1 + 4 * 6 + 1 + 6 + 1 + 1),
])
def test_pretrain_tracks_the_real_root_and_not_the_data_stage(tmp_path, request, preset, dataset, n_stages):
    root = request.getfixturevalue(dataset)
    plan = repro_plan(make_dvc_project(tmp_path / "repo", shrunk_preset(preset, root, WIDTH)))
    pretrain = next(stage for stage in plan if stage.name.endswith(":pretrain"))
    assert str(root) in pretrain.deps and EMBEDDED_ROOT not in pretrain.deps
    assert not any(EMBEDDED_ROOT in stage.deps for stage in plan)  # nothing reads the data stage's note
    assert len(plan) == n_stages


def assert_ran_to_the_report(repo: Path, params: dict, plan: list[PlannedStage], classes: list[str]) -> None:
    """Every out of every stage is there, the data stage generated nothing, every model was scored
    on the dataset's classes and the report lists every model."""
    missing = [f"{stage.name}: {out}" for stage in plan for out in stage.outs if not (repo / out).exists()]
    assert not missing
    assert [path.name for path in (repo / EMBEDDED_ROOT).iterdir()] == [NOTE]
    assert f"data.root is {params['data']['root']}" in (repo / EMBEDDED_ROOT / NOTE).read_text()
    models = params["evaluate"]["models"]
    detection = params["data"]["format"] in ("voc", "voc-devkit", "gtsdb")
    for model in models:
        metrics = json.loads((repo / f"metrics/{model}/eval.json").read_text())
        score, per_class = ("map_voc07", "ap_voc07") if detection else ("top1", "acc_per_class")
        assert 0 <= metrics[score] <= 1 and list(metrics[per_class]) == classes, model
        assert "onnx_cpu_latency_ms" not in metrics  # evaluate.onnx_latency: false
    summary = read_csv(repo / "plots/map_vs_params.csv")
    assert [row["model"] for row in summary] == ["pretrain", *params["phases"], "scratch"]
    assert [int(row["k"]) for row in read_csv(repo / "plots/kdet.csv")] == params["kdet"]["ks"]
    assert (repo / "report/README.md").is_file()


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as table:
        return list(csv.DictReader(table))


@pytest.mark.slow
@pytest.mark.parametrize(("preset", "dataset", "classes"), [
    ("ssd300_voc", "voc_devkit", VOC_CLASSES),
    ("vgg16_cifar10", "cifar10", CIFAR10_LABEL_NAMES),
    ("ssd512_voc", "voc_devkit", VOC_CLASSES),
    ("ssd512_gtsdb", "gtsdb", list(GTSDB_CATEGORIES)),
    ("vgg16_gtsrb", "gtsrb", [str(i) for i in range(43)]),
    ("vgg16_imagefolder", "image_folder", IMAGE_FOLDER_CLASSES),
    ("detection", "voc_folder", SHAPES),
])
def test_every_stage_of_the_preset_runs_on_its_dataset(tmp_path, request, preset, dataset, classes):
    params = shrunk_preset(preset, request.getfixturevalue(dataset), WIDTH)
    repo = make_dvc_project(tmp_path / "repo", params)
    plan = repro_plan(repo)
    run_in_process(repo, plan)
    assert_ran_to_the_report(repo, params, plan, classes)
