"""Stage `data`: generate the embedded synthetic dataset in Pascal VOC layout."""

from pathlib import Path
from typing import Annotated

from mlprune.config import load_params, parse_section, section
from mlprune.data.synthetic import SyntheticConfig, generate_voc_dataset
from mlprune.stage_runner import ParamsFile, path_option, run_stage


def main(out: Annotated[Path, path_option("dataset root to create")],
         params: ParamsFile = Path("params.yaml")) -> None:
    p = load_params(params)
    config = parse_section(p, "synthetic", SyntheticConfig)
    generate_voc_dataset(out, section(p, "data.classes"), config.trainval, config.test,
                         config.image_size, section(p, "common.seed"))


if __name__ == "__main__":
    run_stage(main)
