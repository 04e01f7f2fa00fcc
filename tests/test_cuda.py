"""The `device: auto`/`cuda` path: bf16 training and evaluation on a GPU (skipped without one)."""

import json

import pytest
import torch
from conftest import CLASSES

from mlprune.checkpoint import save_checkpoint
from mlprune.data.classification import ClassificationDataset
from mlprune.data.dataset import DetectionDataset
from mlprune.data.labeled import LabeledImages
from mlprune.data.splits import DataConfig
from mlprune.data.transforms import build_train_transform
from mlprune.data.voc import read_split
from mlprune.evaluation.config import EvalConfig
from mlprune.evaluation.predict import predict
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model
from mlprune.pipeline.evaluate import evaluate_checkpoint
from mlprune.runtime import RuntimeConfig
from mlprune.train import TrainConfig, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def tiny_model():
    torch.manual_seed(0)
    return build_model(build_spec("ssd300", len(CLASSES) + 1, width=0.0625, batch_norm=True))


def test_training_on_cuda_uses_bf16_and_moves_weights(tiny_voc, tmp_path):
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dataset = DetectionDataset(read_split(tiny_voc, "trainval", CLASSES), build_train_transform(["flip"]))
    dtypes = set()
    model.backbone.convs["conv1_1"].register_forward_hook(lambda module, args, out: dtypes.add(out.dtype))
    history = train(model, dataset, TrainConfig(epochs=1, batch_size=4, warmup_iters=0), device=torch.device("cuda"),
                    seed=0, work_dir=tmp_path / "work")
    assert dtypes == {torch.bfloat16}  # autocast ran the convs in bf16
    assert next(model.parameters()).dtype == torch.float32  # fp32 master weights
    assert torch.isfinite(torch.tensor(history[-1]["loss"]))
    assert next(model.parameters()).device.type == "cuda"
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v.cpu(), before[k])]
    assert changed


def test_evaluate_on_cuda_reports_cpu_costs(tiny_voc, tmp_path):
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, tiny_model())
    metrics = evaluate_checkpoint(checkpoint, checkpoint, DataConfig(root=str(tiny_voc), classes=CLASSES),
                                  EvalConfig(models=["pretrain"], batch_size=4, latency_runs=2),
                                  RuntimeConfig(device="cuda"),
                                  tmp_path / "eval.json", tmp_path / "results")
    assert json.loads((tmp_path / "eval.json").read_text())["params"] == metrics["params"] > 0
    assert metrics["cpu_latency_ms"] > 0 and metrics["gflops"] > 0


def test_classifier_trains_on_cuda(tmp_path):
    torch.manual_seed(0)
    data = LabeledImages(torch.randint(0, 255, (16, 3, 32, 32), dtype=torch.uint8), torch.arange(16) % 5,
                         ["a", "b", "c", "d", "e"])
    model = build_model(build_spec("vgg16", 5, width=0.0625, batch_norm=True))
    history = train(model, ClassificationDataset(data, augment=["crop", "flip"]),
                    TrainConfig(epochs=1, batch_size=8, warmup_iters=0), device=torch.device("cuda"), seed=0,
                    work_dir=tmp_path / "work")
    assert torch.isfinite(torch.tensor(history[-1]["loss"]))


def test_precision_param_selects_bf16_or_fp32_on_cuda(tiny_voc, tmp_path):
    dataset = DetectionDataset(read_split(tiny_voc, "trainval", CLASSES), build_train_transform(["flip"]))
    config = TrainConfig(epochs=1, batch_size=4, warmup_iters=0)
    weights = {}
    for precision in ("fp32", "bf16"):
        model = tiny_model()
        train(model, dataset, config, device=torch.device("cuda"), seed=0, work_dir=tmp_path / precision,
              precision=precision)
        assert all(p.dtype == torch.float32 for p in model.parameters())
        weights[precision] = model.state_dict()["backbone.convs.conv1_1.weight"]
    assert not torch.equal(weights["fp32"], weights["bf16"])


def test_evaluation_runs_in_fp32_on_cuda(tiny_voc):
    dataset = DetectionDataset(read_split(tiny_voc, "test", CLASSES))
    detections = predict(tiny_model(), dataset, torch.device("cuda"))
    assert all(d.scores.dtype == torch.float32 and d.boxes.dtype == torch.float32 for d in detections.values())
