"""Run a stage's entry point: a user error becomes one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from mlprune.errors import MlpruneError

EXIT_USER_ERROR = 2


def report_errors(main: Callable) -> Callable:
    """Wrap `main` so an MlpruneError prints `error: <message>` instead of a traceback."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except MlpruneError as err:
            message = str(err)
        # Printed once the exception is gone: its traceback kept the failed loop's progress
        # bar open, and that bar clears its line only when released, so the error gets its own line.
        print(f"error: {message}", file=sys.stderr)
        raise typer.Exit(EXIT_USER_ERROR)

    return wrapped


def run_stage(main: Callable) -> None:
    typer.run(report_errors(main))


ParamsFile = Annotated[Path, typer.Option(help="params file (params.yaml)")]


def path_option(help_text: str) -> Any:
    """A required path option, for `Annotated[Path, path_option("...")]`."""
    return typer.Option(..., help=help_text)
