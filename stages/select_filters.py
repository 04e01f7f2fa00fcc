"""Stage `select`: Algorithm 1 on the thresholded L1 model -> selection JSON (+ Fig 3 data)."""

from pathlib import Path
from typing import Annotated

from mlprune.config import load_params
from mlprune.pipeline.phase_config import phase_from_params
from mlprune.pipeline.select import select
from mlprune.stage_runner import ParamsFile, path_option, run_stage


def main(phase: Annotated[str, path_option("phase name in params.yaml `phases`")],
         model: Annotated[Path, path_option("L1 fine-tuned checkpoint")],
         start: Annotated[Path, path_option("model the phase started from (for Fig 3's 'before')")],
         threshold: Annotated[Path, path_option("chosen threshold JSON")],
         out: Annotated[Path, path_option("selection JSON to write")],
         nonzero: Annotated[Path, path_option("non-zero weights per layer CSV to write")],
         params: ParamsFile = Path("params.yaml")) -> None:
    config = phase_from_params(load_params(params), phase)
    select(model, start, threshold, config.layers, config.select, out_json=out, nonzero_csv=nonzero)


if __name__ == "__main__":
    run_stage(main)
