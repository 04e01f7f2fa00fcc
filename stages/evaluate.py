"""Stage `evaluate`: VOC07 mAP on the test split plus params, GFLOPs, size and latency."""

from pathlib import Path
from typing import Annotated

import typer

from mlprune.config import load_params, parse_section
from mlprune.data.splits import DataConfig
from mlprune.evaluation.report import EvalConfig, evaluate_checkpoint
from mlprune.runtime import RuntimeConfig
from mlprune.stage_runner import ParamsFile, path_option, run_stage


def main(checkpoint: Annotated[Path, path_option("model to evaluate")],
         metrics: Annotated[Path, path_option("metrics JSON to write")],
         results: Annotated[Path, path_option("folder for the comp4_det_test_<class>.txt files")],
         baseline: Annotated[Path | None, typer.Option(help="pretrained metrics JSON, for compression_x")] = None,
         params: ParamsFile = Path("params.yaml")) -> None:
    p = load_params(params)
    evaluate_checkpoint(checkpoint, data=parse_section(p, "data", DataConfig),
                        config=parse_section(p, "evaluate", EvalConfig),
                        runtime=parse_section(p, "common", RuntimeConfig),
                        metrics_out=metrics, results_dir=results, baseline=baseline)


if __name__ == "__main__":
    run_stage(main)
