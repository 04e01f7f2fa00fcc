"""`mlprune pareto`: compression against accuracy over every finished DVC experiment.

A sweep is a set of experiments queued with `dvc exp run --queue -S ...` (a comma list
queues one experiment per value, `-S` flags combine into a grid) and run with `dvc queue
start`. This module reads what `dvc exp show --json` reports for the current commit and
its experiments and makes one row per experiment that finished: the params that differ
between them, the final phase's compression and test score, and the from-scratch
baseline's score on the same architecture, plus a plot of them.

Only runs that reproduced the whole pipeline count. DVC shows a failed or still queued
experiment with its baseline's metrics, and an experiment run for one target (`dvc exp
run -S ... evaluate@phase1`) keeps the baseline's results for every stage it did not
reach: either would put a point on the plot that no run of its params produced. A run's
dvc.lock tells the second kind apart: a stage it did not reach still records the old params,
or deps that the stages it re-ran no longer produce.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from mlprune.atomic import atomic_path, write_csv
from mlprune.errors import MlpruneError
from mlprune.pipeline.report import SCORES, SCRATCH, read_metrics

PARAMS_FILE = "params.yaml"
PRETRAIN = "pretrain"
MISSING = object()  # a params key absent from a run's params.yaml


def exp_show(repo: Path) -> list[dict]:
    """`dvc exp show --json` of the repository at `repo`: HEAD and its experiments."""
    return json.loads(dvc_output(repo, "exp", "show", "--json"))


def dvc_output(repo: Path, *args: str) -> str:
    """stdout of `dvc <args>` run in `repo`; a failure is one line with DVC's last word."""
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise MlpruneError(f"{repo}: dvc {' '.join(args[:2])} failed ({detail})")
    return proc.stdout


def read_exp_show(path: Path) -> list[dict]:
    """A saved `dvc exp show --json` output."""
    data = read_metrics(path, "save it with `dvc exp show --json > FILE`")
    if not isinstance(data, list):
        raise MlpruneError(f"{path}: expected the list `dvc exp show --json` prints")
    return data


def experiment_runs(exp_show_json: list[dict]) -> Iterator[tuple[str, str, dict]]:
    """(name, state, data) of every commit and experiment: state is `success` or what DVC's
    executor says (failed, queued, running). The workspace is skipped: it repeats HEAD, or
    holds results that no commit or experiment records."""
    for commit in exp_show_json:
        if commit.get("rev") == "workspace":
            continue
        yield (commit.get("name") or commit["rev"][:7], "success" if commit.get("error") is None else "failed",
               commit.get("data") or {})
        for experiment in commit.get("experiments") or []:
            last = experiment["revs"][0]
            state = (experiment.get("executor") or {}).get("state", "success")
            yield (experiment.get("name") or last["rev"][:7], "failed" if last.get("error") else state,
                   last.get("data") or {})


def check_locks(runs: Sequence[tuple[str, str, dict]],
                lock_of: Callable[[str], dict | None]) -> list[tuple[str, str, dict]]:
    """`runs`, where a successful run whose dvc.lock (`lock_of(rev)`) records other params
    for some stages is marked `stale`; a run whose lock is unavailable (None) stays unchecked."""
    checked = []
    for name, state, data in runs:
        lock = lock_of(data["rev"]) if state == "success" and data.get("rev") else None
        params = (data.get("params") or {}).get(PARAMS_FILE, {}).get("data") or {}
        stale = stale_stages(lock, params) if lock is not None else []
        checked.append((name, f"stale: {', '.join(stale)} not re-run" if stale else state, data))
    return checked


def stale_stages(lock: dict, params: dict) -> list[str]:
    """The stages of a dvc.lock whose recorded params differ from `params`, or whose recorded
    deps differ from what the lock's own stages produced: a run for a target (`dvc exp run
    -S phases.phase3.tolerance=0.2 evaluate@phase4`) leaves the scratch baseline's entry as
    the baseline ran it, with no phase param in it but the baseline's final model as its dep."""
    stages = {stage: entry or {} for stage, entry in (lock.get("stages") or {}).items()}
    produced = {out["path"]: out.get("md5") for entry in stages.values() for out in entry.get("outs") or []}
    stale = []
    for stage, entry in stages.items():
        recorded = (entry.get("params") or {}).get(PARAMS_FILE) or {}
        other_params = any(lookup(params, key) != value for key, value in recorded.items())
        other_deps = any(dep["path"] in produced and dep.get("md5") != produced[dep["path"]]
                         for dep in entry.get("deps") or [])
        if other_params or other_deps:
            stale.append(stage)
    return stale


def lookup(params: dict, dotted: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def git_lock(repo: Path) -> Callable[[str], dict | None]:
    """dvc.lock as committed at a revision of the git repository `repo` (None if it has none),
    without the stages the pipeline no longer has."""
    stages = pipeline_stages(repo)

    def lock_of(rev: str) -> dict | None:
        proc = subprocess.run(["git", "show", f"{rev}:dvc.lock"], cwd=repo, capture_output=True, text=True)
        return drop_removed_stages(yaml.safe_load(proc.stdout), stages) if proc.returncode == 0 else None
    return lock_of


def pipeline_stages(repo: Path) -> set[str]:
    """The stage names of `repo`'s dvc.yaml, foreach stages expanded (`retrain@phase1`)."""
    return set(dvc_output(repo, "stage", "list", "--name-only").split())


def drop_removed_stages(lock: dict, stages: set[str]) -> dict:
    """`lock` with only the entries of `stages`: DVC keeps the entry of a stage removed from
    dvc.yaml, whose params no run updates, so it would mark every later run stale."""
    return {**lock, "stages": {name: entry for name, entry in (lock.get("stages") or {}).items() if name in stages}}


def flatten(params: dict, prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys (`phase_defaults.l1_strength`), lists kept whole."""
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def metric_file(data: dict, model: str) -> dict | None:
    entry = (data.get("metrics") or {}).get(f"metrics/{model}/eval.json")
    return entry.get("data") if entry else None


def task_score(metrics: dict | None) -> tuple[str, float] | None:
    """(name, value) of the task score in an eval.json: mAP for a detector, top-1 for a classifier."""
    for name in SCORES:
        if metrics and name in metrics:
            return name, metrics[name]
    return None


def sweep_point(name: str, data: dict) -> dict | None:
    """One experiment's point, or None when its final model was never evaluated."""
    params = (data.get("params") or {}).get(PARAMS_FILE, {}).get("data") or {}
    final = list(params.get("phases") or {})[-1:] or [None]
    metrics = metric_file(data, final[0]) if final[0] else None
    score = task_score(metrics)
    if score is None:
        return None
    scratch, pretrain = metric_file(data, SCRATCH), metric_file(data, PRETRAIN)
    return {"experiment": name, "params": flatten(params), "final": final[0], "score_name": score[0],
            "compression_x": metrics.get("compression_x"), "score": score[1],
            "scratch_compression_x": (scratch or {}).get("compression_x"),
            "scratch_score": (task_score(scratch) or (None, None))[1],
            "pretrain_score": (task_score(pretrain) or (None, None))[1]}


def swept_params(points: Sequence[dict]) -> list[str]:
    """The params whose values differ between the points, in params.yaml order."""
    keys = list(dict.fromkeys(key for point in points for key in point["params"]))
    return [key for key in keys
            if len({json.dumps(point["params"].get(key), sort_keys=True) for point in points}) > 1]


def on_front(point: dict, points: Sequence[dict]) -> bool:
    """No other point is at least as small and as accurate, and strictly better in one."""
    def dominates(other: dict) -> bool:
        return (other["compression_x"] >= point["compression_x"] and other["score"] >= point["score"]
                and (other["compression_x"], other["score"]) != (point["compression_x"], point["score"]))
    return not any(dominates(other) for other in points)


def pareto_rows(runs: Sequence[tuple[str, str, dict]]) -> list[dict]:
    """One row per successful run (`experiment_runs`, `check_locks`) with a final evaluation: its
    name, the swept params, compression_x and score of the final model and of the scratch
    baseline, the pretrained score."""
    points = [point for name, state, data in runs
              if state == "success" and (point := sweep_point(name, data)) is not None]
    if not points:
        raise MlpruneError("dvc exp show: no finished experiment has a final evaluation "
                           "(queue some with `dvc exp run --queue -S ...`, then `dvc queue start`)")
    keys = swept_params(points)
    return [{"experiment": p["experiment"], **{key: cell(p["params"].get(key)) for key in keys},
             "final": p["final"], "score_name": p["score_name"], "compression_x": p["compression_x"],
             "score": p["score"], "scratch_compression_x": p["scratch_compression_x"],
             "scratch_score": p["scratch_score"], "pretrain_score": p["pretrain_score"],
             "on_front": on_front(p, points)} for p in points]


def cell(value: Any) -> Any:
    """A CSV cell: lists and mappings as JSON."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def plot_pareto(rows: Sequence[dict], png: Path) -> None:
    """Score against compression_x: each experiment's final model, its scratch baseline
    (same architecture: the two share their compression), the pretrained score and 1 point under it."""
    import matplotlib  # imported here: only this command needs it, and it is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([r["compression_x"] for r in rows], [r["score"] for r in rows], marker="o", label="pruned")
    for r in rows:
        ax.annotate(r["experiment"], (r["compression_x"], r["score"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    scratch = [r for r in rows if r["scratch_score"] is not None]
    ax.scatter([r["scratch_compression_x"] for r in scratch], [r["scratch_score"] for r in scratch], marker="x",
               color="tab:red", label="same architecture from scratch")
    for score in sorted({r["pretrain_score"] for r in rows if r["pretrain_score"] is not None}):
        ax.axhline(score, color="gray", linestyle="--", linewidth=1, label=f"pretrained ({score:.4f})")
        ax.axhline(score - 0.01, color="gray", linestyle=":", linewidth=1, label="1 point below pretrained")
    ax.set_xlabel("compression (pretrained params / params)")
    ax.set_ylabel(f"test {rows[0]['score_name']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_pareto(runs: Sequence[tuple[str, str, dict]], csv_out: Path, png_out: Path) -> list[dict]:
    rows = pareto_rows(runs)
    write_csv(csv_out, rows)
    plot_pareto(rows, png_out)
    return rows
