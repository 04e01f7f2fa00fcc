"""A stage's workspace for the bad-input tests: a params file over a private copy of the
tiny dataset, an input folder, and an output folder holding the results of an earlier run,
which a refused run must leave byte for byte as it was."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from typer.testing import CliRunner

from mlprune.cli import app

EARLIER_RESULT = b"the result of an earlier run\n"

# Arguments of each stage: {inp}/... are inputs, {out}/... the outputs it may write.
STAGES = {
    "pretrain": "--out {out}/model.pt --history {out}/train.csv --work-dir {out}/work",
    "l1-finetune": "--phase phase1 --start {inp}/start.pt --out {out}/l1.pt --history {out}/l1.csv "
                   "--histograms {out}/hist --work-dir {out}/work",
    "threshold-search": "--phase phase1 --model {inp}/l1.pt --start {inp}/start.pt --sweep {out}/sweep.csv "
                        "--chosen {out}/threshold.json",
    "select": "--phase phase1 --model {inp}/l1.pt --start {inp}/start.pt --threshold {inp}/threshold.json "
              "--out {out}/selection.json --nonzero {out}/nonzero.csv",
    "surgery": "--phase phase1 --model {inp}/l1.pt --selection {inp}/selection.json --out {out}/pruned.pt",
    "check-pruned": "--phase phase1 --model {inp}/pruned.pt --l1-model {inp}/l1.pt --threshold {inp}/threshold.json "
                    "--metrics {out}/pruned.json",
    "scratch": "--final {inp}/model.pt --out {out}/model.pt --history {out}/train.csv --budget {out}/budget.json "
               "--work-dir {out}/work",
    "evaluate": "--checkpoint {inp}/model.pt --baseline {inp}/model.pt --metrics {out}/eval.json "
                "--results {out}/results",
    "retrain": "--phase phase1 --model {inp}/pruned.pt --threshold {inp}/threshold.json --out {out}/model.pt "
               "--history {out}/retrain.csv --work-dir {out}/work",
    "kdet": "--k 2 --model {inp}/model.pt --out {out}/kdet.pt --history {out}/kdet.csv --work-dir {out}/work",
    "validate": "--out {out}/params_valid.txt",
}


@dataclass(frozen=True)
class Workspace:
    """A params file over a private copy of the tiny dataset, an input folder and an
    output folder that holds every output file of an earlier run."""

    params: Path
    voc: Path
    inputs: Path
    out: Path

    def set_param(self, dotted_key: str, value) -> None:
        params = yaml.safe_load(self.params.read_text())
        *parents, key = dotted_key.split(".")
        node = params
        for name in parents:
            node = node.setdefault(name, {})
        node[key] = value
        self.params.write_text(yaml.safe_dump(params))

    def assert_refused(self, stage: str, message: str) -> None:
        for name in stage_outputs(stage):
            if Path(name).suffix:
                (self.out / name).write_bytes(EARLIER_RESULT)
        before = snapshot(self.out)
        result = CliRunner().invoke(app, self.cli_args(stage))
        assert result.exit_code == 2, result.output
        assert_error_line(result.stderr.splitlines()[-1], f"error: {message}")
        assert snapshot(self.out) == before

    def cli_args(self, stage: str) -> list[str]:
        args = [token.format(inp=self.inputs, out=self.out) for token in STAGES[stage].split()]
        return [stage, *args, "--params", str(self.params)]


def assert_error_line(line: str, expected: str) -> None:
    if expected.endswith("...)"):
        assert line.startswith(expected.removesuffix("...)")) and line.endswith(")"), line
    else:
        assert line == expected


def stage_outputs(stage: str) -> list[str]:
    return [token.removeprefix("{out}/") for token in STAGES[stage].split() if token.startswith("{out}/")]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file's bytes (None for a folder) under `folder`, temporaries included."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}
