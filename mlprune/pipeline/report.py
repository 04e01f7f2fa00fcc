"""Stage `report`: mAP against params over the phases, and the k-det table (Table 5)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from mlprune.errors import MlpruneError

SCRATCH = "scratch"  # the from-scratch baseline's name in models/, metrics/ and `evaluate.models`
SCORES = ("map_voc07", "map_area", "top1")  # a detector has the first two, a classifier the last
COSTS = ("params", "gflops", "size_mb", "cpu_latency_ms")


def columns(metrics: dict) -> dict:
    """Params, the task's scores and the costs of one metrics file."""
    return {"params": metrics["params"], **{s: metrics[s] for s in SCORES if s in metrics},
            **{c: metrics[c] for c in COSTS[1:]}}


def read_metrics(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MlpruneError(f"{path}: metrics file not found (has its stage run?)") from None
    except json.JSONDecodeError as err:
        raise MlpruneError(f"{path}: invalid JSON ({err})") from None


def summary_rows(metrics_files: dict[str, Path]) -> list[dict]:
    """One row per model (pretrain, phase1, ...): its params, scores and cost."""
    rows = []
    for name, path in metrics_files.items():
        rows.append({"model": name, **columns(read_metrics(path))})
    return rows


def kdet_rows(metrics_dir: Path, ks: Sequence[int]) -> list[dict]:
    """One row per k of the k-det models, from `<metrics_dir>/kdet_k<k>/eval.json`."""
    return [{"k": k, **columns(read_metrics(metrics_dir / kdet_name(k) / "eval.json"))} for k in ks]


def kdet_name(k: int) -> str:
    """The name of the k-det model in models/, metrics/ and `evaluate.models`."""
    return f"kdet_k{k}"
