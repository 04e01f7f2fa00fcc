"""ONNX export of a model's network, and its latency in onnxruntime.

Both graphs take `images`: [N, 3, S, S] float32 RGB in 0-1 at the model's input size S (resize
before; the graph normalises with the model's own mean/std, so callers need not know it).
- Detector: `bbox_regression` [N, A, 4] (offsets against the default boxes, torchvision's
  SSD box coding with weights 10, 10, 5, 5), `class_logits` [N, A, C] (class 0 is background)
  and `default_boxes` [A, 4] (xyxy pixels at S x S, a constant). Decoding and NMS stay outside
  the graph: their cost depends on the image, as in `Task.network_forward`.
- Classifier: `logits` [N, C].
The batch dimension is dynamic. The model's ArchSpec goes into the file's metadata.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import nn
from torchvision.models.detection.image_list import ImageList

from mlprune.atomic import atomic_path
from mlprune.evaluation.profile import latency_image, median_ms
from mlprune.task_names import DETECTION

OPSET = 20  # torch 2.14's default ONNX opset
DETECTOR_OUTPUTS = ("bbox_regression", "class_logits", "default_boxes")
CLASSIFIER_OUTPUTS = ("logits",)


class DetectorNetwork(nn.Module):
    """An SSD's network as one graph: normalise, backbone, heads; its default boxes as a constant."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.backbone, self.head = model.backbone, model.head
        self.register_buffer("mean", torch.tensor(model.transform.image_mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(model.transform.image_std).view(1, -1, 1, 1))
        self.register_buffer("anchors", default_boxes(model))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outputs = self.head(list(self.backbone((images - self.mean) / self.std).values()))
        # A copy: an initializer that is also a graph output makes the exporter's optimiser warn.
        return outputs["bbox_regression"], outputs["cls_logits"], self.anchors.clone()


@torch.no_grad()
def default_boxes(model: nn.Module) -> torch.Tensor:
    """A detector's default boxes at its input size: [A, 4] xyxy in pixels, as its forward makes them."""
    size = model.spec.image_size
    images = torch.zeros(1, 3, size, size)
    features = list(model.backbone(images).values())
    return model.anchor_generator(ImageList(images, [(size, size)]), features)[0]


def exported_network(model: nn.Module) -> nn.Module:
    """The module `export_onnx` exports: what the ONNX graph computes, in torch. Puts `model`
    in eval mode on the CPU."""
    model = model.cpu().eval()
    return DetectorNetwork(model).eval() if model.spec.task == DETECTION else model


def output_names(model: nn.Module) -> tuple[str, ...]:
    return DETECTOR_OUTPUTS if model.spec.task == DETECTION else CLASSIFIER_OUTPUTS


def export_onnx(model: nn.Module, path: str | Path, opset: int = OPSET) -> None:
    """Atomically write `model`'s network (see the module docstring) to `path` as one ONNX file.

    torch's dynamo exporter, not the deprecated TorchScript one (which warns on every call).
    """
    was_training = model.training
    network = exported_network(model)
    size = model.spec.image_size
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))  # 2: keeps N dynamic
    try:
        program = torch.onnx.export(network, (example,), dynamo=True, opset_version=opset, verbose=False,
                                    input_names=["images"], output_names=list(output_names(model)),
                                    dynamic_shapes={"images": {0: torch.export.Dim("batch")}})
    finally:
        model.train(was_training)
    program.model.metadata_props["mlprune.spec"] = json.dumps(model.spec.to_json())
    program.model.metadata_props["mlprune.input"] = f"images: float32 [N, 3, {size}, {size}] RGB in 0-1"
    with atomic_path(path) as tmp:
        program.save(tmp, external_data=False)


def onnx_session(path: str | Path, threads: int = 2) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session using `threads` threads for each operator."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(path: str | Path, images: torch.Tensor, threads: int = 2) -> list[np.ndarray]:
    """The ONNX file's outputs for `images` [N, 3, S, S] in 0-1."""
    return onnx_session(path, threads).run(None, {"images": images.numpy()})


@torch.no_grad()
def onnx_max_difference(model: nn.Module, path: str | Path, images: torch.Tensor) -> float:
    """The largest |onnxruntime - torch| over every output of the exported network on `images`."""
    expected = exported_network(model)(images)
    expected = expected if isinstance(expected, tuple) else (expected,)
    found = run_onnx(path, images)
    if [a.shape for a in found] != [tuple(e.shape) for e in expected]:
        raise ValueError(f"{path}: output shapes {[a.shape for a in found]} differ from torch's "
                         f"{[tuple(e.shape) for e in expected]}")
    return max(float(np.abs(a - e.numpy()).max()) for a, e in zip(found, expected, strict=True))


def onnx_latency_ms(path: str | Path, image_size: int, threads: int = 2, warmup: int = 3, runs: int = 20) -> float:
    """Median wall time of one run of the ONNX file in onnxruntime at batch 1, on the image and
    with the warmup, runs and threads of `cpu_latency_ms`."""
    session = onnx_session(path, threads)
    feed = {"images": latency_image(image_size)[None].numpy()}
    return median_ms(lambda: session.run(None, feed), warmup, runs)


def onnx_cpu_latency_ms(model: nn.Module, image_size: int, threads: int = 2, runs: int = 20) -> float:
    """`onnx_latency_ms` of `model` exported to a temporary file: the evaluate stage's metric."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(model, path)
        return onnx_latency_ms(path, image_size, threads, runs=runs)
