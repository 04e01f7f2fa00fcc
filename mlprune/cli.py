"""The `mlprune` command: one subcommand per pipeline stage (the code DVC runs), plus check-data, preset
and pareto."""

from __future__ import annotations

import typer

from mlprune.stage_runner import report_errors
from stages import (
    check_data,
    check_pruned,
    data,
    evaluate,
    export,
    kdet,
    l1_finetune,
    pareto,
    preset,
    pretrain,
    report,
    retrain,
    scratch,
    select_filters,
    surgery,
    threshold_search,
    validate,
)

STAGES = {
    "data": data, "pretrain": pretrain, "evaluate": evaluate, "export": export, "l1-finetune": l1_finetune,
    "threshold-search": threshold_search, "select": select_filters, "surgery": surgery,
    "check-pruned": check_pruned, "retrain": retrain, "kdet": kdet, "scratch": scratch, "report": report,
    "check-data": check_data, "preset": preset, "pareto": pareto, "validate": validate,
}

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
for name, module in STAGES.items():
    app.command(name, help=module.__doc__)(report_errors(module.main))


def main() -> None:
    app()
