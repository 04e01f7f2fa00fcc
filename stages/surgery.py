"""Stage `surgery`: remove the selected filters (and consumers' input channels) from Theta_L1."""

from pathlib import Path
from typing import Annotated

from mlprune.pipeline.surgery import surgery
from mlprune.stage_runner import path_option, run_stage


def main(model: Annotated[Path, path_option("L1 fine-tuned (un-thresholded) checkpoint")],
         selection: Annotated[Path, path_option("selection JSON")],
         out: Annotated[Path, path_option("pruned checkpoint to write")]) -> None:
    surgery(model, selection, out)


if __name__ == "__main__":
    run_stage(main)
