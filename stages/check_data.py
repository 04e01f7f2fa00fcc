"""Stage `check-data`: validate a dataset root without training; print counts, box sizes and every problem.

`mlprune check-data PATH` (or `--root PATH`; without either, params.yaml's data.root). The format is
the root's layout, else params.yaml's data.format; the classes are --classes, else params.yaml's
data.classes when the format is params.yaml's, else the format's own (VOC's 20, GTSDB's 4
categories, what a classification set holds). Without a params file, only the layout and the
formats' own classes count. Exits with code 2 when a problem was found.
"""

from pathlib import Path
from typing import Annotated

import typer

from mlprune.config import load_params, parse_section
from mlprune.data.splits import DataConfig
from mlprune.dataset_check import DatasetFormat, check_dataset, choose_format
from mlprune.errors import ConfigError
from mlprune.stage_runner import EXIT_USER_ERROR, ParamsFile, run_stage


def main(path: Annotated[Path | None, typer.Argument(
             help="dataset root to check (default: params.yaml's data.root)", show_default=False)] = None,
         root: Annotated[Path | None, typer.Option(help="the same as PATH", show_default=False)] = None,
         dataset_format: Annotated[DatasetFormat | None, typer.Option(
             "--format", help="dataset layout; default: the root's layout, else params.yaml's data.format",
             show_default=False)] = None,
         classes: Annotated[str | None, typer.Option(
             help="comma-separated class names: for voc, voc-devkit and gtsdb the names to read with, for the "
                  "classification formats the names the data must have; default: params.yaml's data.classes "
                  "when the format is params.yaml's, else VOC's 20, GTSDB's 4 categories or the data's own",
             show_default=False)] = None,
         params: ParamsFile = Path("params.yaml")) -> None:
    data = parse_section(load_params(params), "data", DataConfig) if params.is_file() else None
    root = _dataset_root(path, root, data)
    dataset_format = dataset_format or choose_format(root, data.format if data else None)
    defaults = data if data is not None and data.format == dataset_format else None
    class_list = [c.strip() for c in classes.split(",")] if classes else (defaults.classes if defaults else None)
    report = check_dataset(root, dataset_format, class_list or None,
                           **({"image_size": defaults.image_size} if defaults else {}))
    typer.echo(report.render())
    if report.problems:
        raise typer.Exit(EXIT_USER_ERROR)


def _dataset_root(path: Path | None, root: Path | None, data: DataConfig | None) -> Path:
    if path is not None and root is not None and path != root:
        raise ConfigError(f"check-data: two dataset roots given, {path} and --root {root}; give one")
    chosen = path or root or (Path(data.root) if data else None)
    if chosen is None:
        raise ConfigError("check-data: no dataset root: give PATH (or --root), or run it next to a params.yaml")
    return chosen


if __name__ == "__main__":
    run_stage(main)
