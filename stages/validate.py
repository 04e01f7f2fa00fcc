"""Stage `validate`: check the whole params file before any other stage runs.

DVC deletes a stage's outputs before it runs the stage, so a bad value found inside a
stage would cost that stage's committed metrics. Every stage depends on this one's
output, whose content never changes: a bad params file stops `dvc repro` here with
nothing deleted, and a good edit re-runs only the stages that track the edited keys.
"""

from pathlib import Path
from typing import Annotated

import typer

from mlprune.atomic import write_text
from mlprune.config import load_params
from mlprune.presets import check_params
from mlprune.stage_runner import ParamsFile, run_stage


def main(out: Annotated[Path | None, typer.Option(help="file to write once the params pass (the stage's output)")]
         = None, params: ParamsFile = Path("params.yaml")) -> None:
    check_params(load_params(params))
    if out is not None:
        write_text(out, f"{params} passed every check of stages/validate.py\n")
    print(f"{params}: valid")


if __name__ == "__main__":
    run_stage(main)
