"""Stage `surgery`: remove the selected filters (and consumers' input channels) from Theta_L1."""

from pathlib import Path
from typing import Annotated

from mlprune.config import load_params
from mlprune.pipeline.phase_config import phase_from_params
from mlprune.pipeline.surgery import surgery
from mlprune.stage_runner import ParamsFile, path_option, run_stage


def main(phase: Annotated[str, path_option("phase name in params.yaml `phases`")],
         model: Annotated[Path, path_option("L1 fine-tuned (un-thresholded) checkpoint")],
         selection: Annotated[Path, path_option("selection JSON")],
         out: Annotated[Path, path_option("pruned checkpoint to write")],
         params: ParamsFile = Path("params.yaml")) -> None:
    surgery(model, selection, phase, phase_from_params(load_params(params), phase).layers, out)


if __name__ == "__main__":
    run_stage(main)
