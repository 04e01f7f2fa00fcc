"""Command `preset`: make configs/<name>.yaml the params.yaml that every stage reads."""

from pathlib import Path
from typing import Annotated

import typer

from mlprune.presets import apply_preset, preset_names
from mlprune.stage_runner import ParamsFile, run_stage


def main(name: Annotated[str, typer.Argument(help="preset name: a file configs/<name>.yaml")] = "",
         params: ParamsFile = Path("params.yaml")) -> None:
    if not name:
        print("\n".join(preset_names()))
        return
    source = apply_preset(name, params)
    print(f"{params} <- {source}; now `dvc repro` (commit params.yaml to keep the switch)")


if __name__ == "__main__":
    run_stage(main)
