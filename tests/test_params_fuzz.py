"""Random params files: every stage either runs or fails with one `error:` line, never a traceback.

Each case mutates the smoke params (seeded): a value of another type, a number out of
range (negative, zero, huge, NaN, inf), a list emptied or reversed, a key deleted or an
unknown key added, at any depth. `validate` (which DVC runs before every other stage)
checks them all; a few go through stages that read params and run in a second.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from pipeline_helpers import tiny_params
from typer.testing import CliRunner

from mlprune.checkpoint import save_checkpoint
from mlprune.cli import app

JUNK = [None, True, False, "", "abc", "phase1", 0, 1, -1, 7, 2**40, -0.5, 0.5, 1.5, 1e300, float("nan"), float("inf"),
        -float("inf"), [], [0], [1, "a"], ["flip", "rotate"], {}, {"x": 1}]
VALIDATE_CASES = 200
STAGE_CASES = 20


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and list indices) to a value in `node`, the root excluded."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found.append((*prefix, key))
        found.extend(paths(value, (*prefix, key)))
    return found


def parent_of(params: dict, path: tuple) -> Any:
    node = params
    for key in path[:-1]:
        node = node[key]
    return node


def mutate_number(value: Any, rng: random.Random) -> Any:
    return rng.choice([-value, 0, value * 10**rng.randint(1, 12), value + 0.5, -1, float("nan")])


def mutate_once(params: dict, rng: random.Random, sections: tuple[str, ...]) -> None:
    path = rng.choice([path for path in paths(params) if not sections or path[0] in sections])
    parent, key = parent_of(params, path), path[-1]
    value = parent[key]
    kind = rng.choice(["junk", "number", "list", "delete", "unknown_key"])
    if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        parent[key] = mutate_number(value, rng)
    elif kind == "list" and isinstance(value, list):
        parent[key] = rng.choice([[], value[::-1], value + value[-1:], value[:1]])
    elif kind == "delete" and isinstance(parent, dict):
        del parent[key]
    elif kind == "unknown_key" and isinstance(value, dict):
        value[rng.choice(["zz_unknown", "Pretrain", "phase9", 3])] = rng.choice(JUNK)
    else:
        parent[key] = copy.deepcopy(rng.choice(JUNK))


def mutated_params(seed: int, sections: tuple[str, ...] = ()) -> dict:
    """The smoke params with 1-3 random mutations (within `sections` only, when given)."""
    rng = random.Random(seed)
    params = tiny_params()
    for _ in range(rng.randint(1, 3)):
        mutate_once(params, rng, sections)
    return params


def assert_runs_or_one_error_line(result) -> None:
    if result.exit_code == 0:
        return
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (result.exception, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output


def write_params(tmp_path: Path, seed: int, sections: tuple[str, ...] = ()) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(mutated_params(seed, sections), sort_keys=False))
    return path


def test_validate_never_raises_a_traceback(tmp_path):
    outcomes = {0: 0, 2: 0}
    for seed in range(VALIDATE_CASES):
        params = write_params(tmp_path, seed)
        result = CliRunner().invoke(app, ["validate", "--params", str(params)])
        assert_runs_or_one_error_line(result)
        outcomes[result.exit_code] += 1
    assert outcomes[2] > VALIDATE_CASES / 2 and outcomes[0] > 0  # the mutations reach both outcomes


@pytest.fixture
def stage_inputs(tmp_path, tiny_detector) -> Path:
    """What select, surgery and report read besides params: a model, a threshold, a selection,
    and the metrics of every model the smoke params name."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    save_checkpoint(inputs / "l1.pt", tiny_detector)
    (inputs / "threshold.json").write_text(json.dumps({"t": 0.01}))
    (inputs / "selection.json").write_text(json.dumps({"layers": {"conv1_1": {"removed": [0], "kept": [1, 2, 3]}}}))
    metrics = {"params": 1000, "map_voc07": 0.5, "gflops": 0.1, "size_mb": 0.01, "cpu_latency_ms": 1.0}
    for name in tiny_params()["evaluate"]["models"]:
        (inputs / "metrics" / name).mkdir(parents=True)
        (inputs / "metrics" / name / "eval.json").write_text(json.dumps(metrics))
    return inputs


# Each stage's arguments, and the params sections it reads (which the mutations aim at).
STAGE_ARGS = {
    "select": ("--phase phase1 --model {i}/l1.pt --start {i}/l1.pt --threshold {i}/threshold.json "
               "--out {o}/selection.json --nonzero {o}/nonzero.csv", ("model", "phases", "phase_defaults")),
    "surgery": ("--phase phase1 --model {i}/l1.pt --selection {i}/selection.json --out {o}/pruned.pt",
                ("model", "phases", "phase_defaults")),
    "report": ("--metrics-dir {i}/metrics --summary {o}/summary.csv --kdet-table {o}/kdet.csv --report-dir {o}/report",
               ("phases", "kdet")),
}


@pytest.mark.parametrize("stage", sorted(STAGE_ARGS))
def test_stages_never_raise_a_traceback(tmp_path, stage_inputs, stage):
    template, sections = STAGE_ARGS[stage]
    for seed in range(STAGE_CASES):
        params = write_params(tmp_path, 10_000 + seed, sections)
        args = template.format(i=stage_inputs, o=tmp_path / f"out{seed}").split()
        assert_runs_or_one_error_line(CliRunner().invoke(app, [stage, *args, "--params", str(params)]))
