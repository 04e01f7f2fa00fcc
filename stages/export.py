"""Stage `export`: a checkpoint's network as one ONNX file, and how far onnxruntime is from torch.

Detector graph: images [N, 3, S, S] in 0-1 -> bbox_regression [N, A, 4], class_logits [N, A, C],
default_boxes [A, 4] (xyxy pixels); classifier graph: logits [N, C] (mlprune.interop.onnx_export).
Also `mlprune export CHECKPOINT --out model.onnx`.
"""

from pathlib import Path
from typing import Annotated

import typer

from mlprune.pipeline.export import export_checkpoint
from mlprune.stage_runner import path_option, run_stage


def main(checkpoint: Annotated[Path, typer.Argument(help="mlprune checkpoint to export")],
         out: Annotated[Path, path_option("ONNX file to write")],
         metrics: Annotated[Path | None, typer.Option(help="JSON to write: opset, max |onnxruntime - torch|, size")]
         = None) -> None:
    export_checkpoint(checkpoint, out, metrics)


if __name__ == "__main__":
    run_stage(main)
