"""Cross-stage tables: mAP against params over the phases, and the k-det table (Table 5)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from mlprune.errors import MlpruneError

COLUMNS = ("params", "map_voc07", "map_area", "gflops", "size_mb", "cpu_latency_ms")


def read_metrics(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MlpruneError(f"{path}: metrics file not found (has its evaluate stage run?)") from None
    except json.JSONDecodeError as err:
        raise MlpruneError(f"{path}: invalid JSON ({err})") from None


def summary_rows(metrics_files: dict[str, Path]) -> list[dict]:
    """One row per model (pretrain, phase1, ...): its params, scores and cost."""
    rows = []
    for name, path in metrics_files.items():
        metrics = read_metrics(path)
        rows.append({"model": name, **{c: metrics[c] for c in COLUMNS}})
    return rows


def kdet_rows(metrics_dir: Path, ks: Sequence[int]) -> list[dict]:
    return [{"k": k, **{c: read_metrics(metrics_dir / f"k{k}" / "eval.json")[c] for c in COLUMNS}} for k in ks]
