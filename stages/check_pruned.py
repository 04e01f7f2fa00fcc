"""Stage `check_pruned`: the pruned model's validation score before retraining, beside the thresholded one's."""

from pathlib import Path
from typing import Annotated

from mlprune.config import load_params, parse_section
from mlprune.data.splits import data_from_params
from mlprune.evaluation.config import EvalConfig
from mlprune.pipeline.check_pruned import check_pruned
from mlprune.pipeline.phase_config import phase_from_params
from mlprune.runtime import RuntimeConfig
from mlprune.stage_runner import ParamsFile, path_option, run_stage


def main(phase: Annotated[str, path_option("phase name in params.yaml `phases`")],
         model: Annotated[Path, path_option("pruned checkpoint (before retraining)")],
         l1_model: Annotated[Path, path_option("L1 fine-tuned checkpoint surgery started from")],
         threshold: Annotated[Path, path_option("threshold search's chosen threshold JSON")],
         metrics: Annotated[Path, path_option("metrics JSON to write")],
         params: ParamsFile = Path("params.yaml")) -> None:
    p = load_params(params)
    check_pruned(model, l1_model, threshold, phase, phase_from_params(p, phase).max_pruned_drop,
                 data=data_from_params(p), runtime=parse_section(p, "common", RuntimeConfig),
                 batch_size=parse_section(p, "evaluate", EvalConfig).batch_size, metrics_out=metrics)


if __name__ == "__main__":
    run_stage(main)
