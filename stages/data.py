"""Stage `data`: generate the embedded synthetic dataset (VOC layout, or CIFAR-10 layout for
classification) when `data.root` is its out; with a dataset of one's own, only a note."""

from pathlib import Path
from typing import Annotated

from mlprune.config import load_params, parse_section, section
from mlprune.data.splits import DataConfig
from mlprune.pipeline.data import prepare_data
from mlprune.stage_runner import ParamsFile, path_option, run_stage
from mlprune.synthetic.scenes import SyntheticConfig


def main(out: Annotated[Path, path_option("dataset root to create")],
         params: ParamsFile = Path("params.yaml")) -> None:
    p = load_params(params)
    prepare_data(out, parse_section(p, "data", DataConfig), parse_section(p, "synthetic", SyntheticConfig),
                 section(p, "common.seed"))


if __name__ == "__main__":
    run_stage(main)
