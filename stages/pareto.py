"""Command `pareto`: one row per finished DVC experiment (swept params, final compression and score,
the from-scratch baseline's score) and a plot of compression against score."""

from pathlib import Path
from typing import Annotated

import typer

from mlprune.pareto import check_locks, exp_show, experiment_runs, git_lock, read_exp_show, write_pareto
from mlprune.stage_runner import run_stage


def main(out: Annotated[Path, typer.Option(help="CSV to write, one row per experiment")] = Path("plots/pareto.csv"),
         plot: Annotated[Path, typer.Option(help="PNG to write")] = Path("plots/pareto.png"),
         exp_show_json: Annotated[Path | None, typer.Option(
             help="a saved `dvc exp show --json` output to read instead of asking DVC")] = None,
         repo: Annotated[Path, typer.Option(help="the DVC repository (its git history holds each run's dvc.lock)")]
         = Path(".")) -> None:
    experiments = read_exp_show(exp_show_json) if exp_show_json else exp_show(repo)
    runs = check_locks(list(experiment_runs(experiments)), git_lock(repo))
    rows = write_pareto(runs, out, plot)
    skipped = [f"{name} ({state})" for name, state, _ in runs if state != "success"]
    print(f"{out}, {plot}: {len(rows)} experiment(s)" + (f"; skipped {', '.join(skipped)}" if skipped else ""))


if __name__ == "__main__":
    run_stage(main)
