"""Stage `pretrain`: train the detector from scratch; save it with BatchNorm folded."""

from pathlib import Path
from typing import Annotated

from mlprune.config import load_params, parse_section
from mlprune.data.splits import data_from_params
from mlprune.models.arch import ModelConfig
from mlprune.pipeline.pretrain import pretrain
from mlprune.runtime import RuntimeConfig
from mlprune.stage_runner import ParamsFile, path_option, run_stage
from mlprune.train import TrainConfig


def main(out: Annotated[Path, path_option("checkpoint to write")],
         history: Annotated[Path, path_option("per-epoch training CSV")],
         work_dir: Annotated[Path, path_option("resume state, kept only while training")],
         params: ParamsFile = Path("params.yaml")) -> None:
    p = load_params(params)
    pretrain(data=data_from_params(p),
             model_config=parse_section(p, "model", ModelConfig),
             schedule=parse_section(p, "pretrain", TrainConfig),
             runtime=parse_section(p, "common", RuntimeConfig),
             out=out, history_csv=history, work_dir=work_dir)


if __name__ == "__main__":
    run_stage(main)
