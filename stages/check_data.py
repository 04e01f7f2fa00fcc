"""Stage `check-data`: validate a dataset root without training; print counts, box sizes and every problem.

Exits with code 2 when a problem was found.
"""

from pathlib import Path
from typing import Annotated

import typer

from mlprune.dataset_check import DatasetFormat, check_dataset
from mlprune.stage_runner import EXIT_USER_ERROR, path_option, run_stage


def main(root: Annotated[Path, path_option("dataset root to check")],
         dataset_format: Annotated[DatasetFormat | None, typer.Option(
             "--format", help="dataset layout; detected from the root when left out")] = None,
         classes: Annotated[str | None, typer.Option(
             help="comma-separated class names: for voc, voc-devkit and gtsdb the names to read with (default "
                  "VOC's 20, GTSDB's 4 categories); for cifar10 and gtsrb the names the data must have")] = None,
         ) -> None:
    report = check_dataset(root, dataset_format, [c.strip() for c in classes.split(",")] if classes else None)
    typer.echo(report.render())
    if report.problems:
        raise typer.Exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    run_stage(main)
