"""Stage `export`: the final model as ONNX, checked against torch on real-size inputs."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from mlprune.atomic import write_json
from mlprune.checkpoint import load_checkpoint
from mlprune.interop.onnx_export import OPSET, export_onnx, onnx_max_difference


def export_checkpoint(checkpoint: Path, out: Path, metrics: Path | None = None) -> None:
    """Write `checkpoint`'s network to `out`; with `metrics`, how far onnxruntime is from torch."""
    model = load_checkpoint(checkpoint)
    export_onnx(model, out, OPSET)
    if metrics is None:
        return
    size = model.spec.image_size
    images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    difference = onnx_max_difference(model, out, images)
    write_json(metrics, {"opset": OPSET, "max_abs_diff": difference, "size_mb": round(out.stat().st_size / 1e6, 3)})
    tqdm.write(f"export: {out} (opset {OPSET}), max |onnxruntime - torch| {difference:.3g}")
