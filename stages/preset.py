"""Command `preset`: make configs/<name>.yaml the params.yaml that every stage reads, or, with
--dir, a pipeline of its own in a folder next to the root's (the committed `classification/`)."""

from pathlib import Path
from typing import Annotated

import typer

from mlprune.presets import apply_preset, preset_names, write_nested_pipeline
from mlprune.stage_runner import ParamsFile, run_stage


def main(name: Annotated[str, typer.Argument(help="preset name: a file configs/<name>.yaml")] = "",
         params: ParamsFile = Path("params.yaml"),
         folder: Annotated[Path | None, typer.Option("--dir", metavar="<path>", help=(
             "write the preset as its own pipeline here (params.yaml, dvc.yaml, data/init/), "
             "beside the root's"))] = None) -> None:
    if not name:
        print("\n".join(preset_names()))
        return
    if folder is not None:
        source = write_nested_pipeline(name, folder)
        print(f"{folder}/params.yaml <- {source}, {folder}/dvc.yaml <- dvc.yaml; now `cd {folder} && dvc repro`")
        return
    source = apply_preset(name, params)
    print(f"{params} <- {source}; now `dvc repro` (commit params.yaml to keep the switch)")


if __name__ == "__main__":
    run_stage(main)
