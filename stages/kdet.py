"""Stage `kdet`: keep the final model's first k detection sources, retrain (paper's Table 5)."""

from pathlib import Path
from typing import Annotated

import typer

from mlprune.config import load_params, parse_section
from mlprune.data.splits import data_from_params
from mlprune.pipeline.kdet import KdetConfig, kdet
from mlprune.runtime import RuntimeConfig
from mlprune.stage_runner import ParamsFile, path_option, run_stage


def main(k: Annotated[int, typer.Option(help="detection sources to keep")],
         model: Annotated[Path, path_option("final pruned checkpoint")],
         out: Annotated[Path, path_option("k-det checkpoint to write")],
         history: Annotated[Path, path_option("per-epoch training CSV")],
         work_dir: Annotated[Path, path_option("resume state, kept only while training")],
         params: ParamsFile = Path("params.yaml")) -> None:
    p = load_params(params)
    kdet(model, k, parse_section(p, "kdet", KdetConfig).retrain, data=data_from_params(p),
         runtime=parse_section(p, "common", RuntimeConfig), out=out, history_csv=history, work_dir=work_dir)


if __name__ == "__main__":
    run_stage(main)
