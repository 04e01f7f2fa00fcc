"""Stage `threshold_search`: the largest grid threshold whose validation score stays in tolerance."""

from pathlib import Path
from typing import Annotated

from mlprune.config import load_params, parse_section
from mlprune.data.splits import data_from_params
from mlprune.evaluation.config import EvalConfig
from mlprune.pipeline.phase_config import phase_from_params
from mlprune.pipeline.threshold_search import threshold_search
from mlprune.pruning.threshold import ThresholdConfig
from mlprune.runtime import RuntimeConfig
from mlprune.stage_runner import ParamsFile, path_option, run_stage


def main(phase: Annotated[str, path_option("phase name in params.yaml `phases`")],
         model: Annotated[Path, path_option("L1 fine-tuned checkpoint")],
         start: Annotated[Path, path_option("the phase's start checkpoint (tolerance_reference: start)")],
         sweep: Annotated[Path, path_option("threshold sweep CSV to write")],
         chosen: Annotated[Path, path_option("chosen threshold JSON to write")],
         params: ParamsFile = Path("params.yaml")) -> None:
    p = load_params(params)
    threshold_search(model, start, phase_from_params(p, phase),
                     config=parse_section(p, "threshold", ThresholdConfig),
                     data=data_from_params(p),
                     runtime=parse_section(p, "common", RuntimeConfig),
                     batch_size=parse_section(p, "evaluate", EvalConfig).batch_size,
                     sweep_csv=sweep, chosen_json=chosen)


if __name__ == "__main__":
    run_stage(main)
