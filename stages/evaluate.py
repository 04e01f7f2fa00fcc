"""Stage `evaluate`: test-split score (VOC07 mAP or top-1) plus params, GFLOPs, size and latency."""

from pathlib import Path
from typing import Annotated

from mlprune.config import load_params, parse_section
from mlprune.data.splits import data_from_params
from mlprune.evaluation.config import EvalConfig
from mlprune.pipeline.evaluate import evaluate_checkpoint
from mlprune.runtime import RuntimeConfig
from mlprune.stage_runner import ParamsFile, path_option, run_stage


def main(checkpoint: Annotated[Path, path_option("model to evaluate")],
         baseline: Annotated[Path, path_option("pretrained checkpoint, for compression_x and the speed-ups")],
         metrics: Annotated[Path, path_option("metrics JSON to write")],
         results: Annotated[Path, path_option("folder for the raw test results")],
         params: ParamsFile = Path("params.yaml")) -> None:
    p = load_params(params)
    evaluate_checkpoint(checkpoint, baseline, data=data_from_params(p),
                        config=parse_section(p, "evaluate", EvalConfig),
                        runtime=parse_section(p, "common", RuntimeConfig),
                        metrics_out=metrics, results_dir=results)


if __name__ == "__main__":
    run_stage(main)
