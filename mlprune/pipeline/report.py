"""Stage `report`: mAP against params over the phases, and the k-det table (Table 5)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlprune.config import check_type, require, section
from mlprune.errors import MlpruneError

SCRATCH = "scratch"  # the from-scratch baseline's name in models/, metrics/ and `evaluate.models`
SCORES = ("map_voc07", "map_area", "top1")  # a detector has the first two, a classifier the last
COSTS = ("params", "gflops", "size_mb", "cpu_latency_ms")


def reported_models(params: dict[str, Any]) -> tuple[list[str], list[int]]:
    """The names of the phases and the ks of the k-det models: all of params that report reads."""
    phases = check_type(section(params, "phases"), dict[str, Any], "phases")
    require(bool(phases), "phases", "expected a non-empty mapping of phase name -> settings")
    return list(phases), check_type(section(params, "kdet.ks"), list[int], "kdet.ks")


def read_metrics(path: Path, missing_hint: str = "has its stage run?") -> Any:
    """A JSON file another stage wrote; one line if it is missing or unreadable."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MlpruneError(f"{path}: not found ({missing_hint})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MlpruneError(f"{path}: invalid JSON ({err})") from None


def read_columns(path: Path) -> dict:
    """Params, the task's scores and the costs from one evaluate stage's metrics file."""
    metrics = read_metrics(path)
    missing = [key for key in COSTS if not isinstance(metrics, dict) or key not in metrics]
    if missing:
        raise MlpruneError(f"{path}: not an evaluate stage's metrics (no {missing[0]!r}); run that stage again")
    return {"params": metrics["params"], **{s: metrics[s] for s in SCORES if s in metrics},
            **{c: metrics[c] for c in COSTS[1:]}}


def summary_rows(metrics_files: dict[str, Path]) -> list[dict]:
    """One row per model (pretrain, phase1, ...): its params, scores and cost."""
    return [{"model": name, **read_columns(path)} for name, path in metrics_files.items()]


def kdet_rows(metrics_dir: Path, ks: Sequence[int]) -> list[dict]:
    """One row per k of the k-det models, from `<metrics_dir>/kdet_k<k>/eval.json`."""
    return [{"k": k, **read_columns(metrics_dir / kdet_name(k) / "eval.json")} for k in ks]


def kdet_name(k: int) -> str:
    """The name of the k-det model in models/, metrics/ and `evaluate.models`."""
    return f"kdet_k{k}"
