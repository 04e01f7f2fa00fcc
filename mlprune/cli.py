"""The `mlprune` command: one subcommand per pipeline stage (the same code DVC runs)."""

from __future__ import annotations

import typer

from mlprune.stage_runner import report_errors
from stages import data, evaluate, pretrain

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
for name, module in {"data": data, "pretrain": pretrain, "evaluate": evaluate}.items():
    app.command(name, help=module.__doc__)(report_errors(module.main))


def main() -> None:
    app()
