"""PASCAL VOC detection scoring with the semantics of the devkit / py-faster-rcnn `voc_eval.py`.

Reproduced exactly, so numbers compare with published VOC results:
- IoU uses the devkit's inclusive pixel convention (width = x2 - x1 + 1);
- a class's detections are ranked by descending score (stable sort: ties keep image order,
  then detection order within an image);
- each detection is compared with its best-overlapping GT of the same class only (no fall
  back to the second best); it is a TP if IoU > threshold (strict) and that GT is not yet
  matched, a FP if the GT is already matched or IoU <= threshold, and neither if the GT is
  `difficult`;
- difficult GT objects do not count in a class's positives (npos).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlprune.atomic import atomic_path

# Bit-identical to py-faster-rcnn's `np.arange(0., 1.1, 0.1)`: its t=0.3 is really
# 0.30000000000000004 (likewise 0.6, 0.7), so a recall of exactly 0.3 scores as it does there.
_VOC07_THRESHOLDS = np.arange(0.0, 1.1, 0.1)
_EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class GroundTruth:
    """One image's annotated objects."""

    boxes: torch.Tensor  # (M, 4) xyxy pixels
    labels: torch.Tensor  # (M,) int64 in 1..C
    difficult: torch.Tensor  # (M,) bool


@dataclass(frozen=True)
class Detections:
    """One image's detector output."""

    boxes: torch.Tensor  # (N, 4) xyxy pixels
    scores: torch.Tensor  # (N,)
    labels: torch.Tensor  # (N,) int64 in 1..C


@dataclass
class VOCResult:
    """Per-class APs (None: class has no non-difficult GT) and their means over the other classes."""

    map_voc07: float
    map_area: float
    ap_voc07: dict[str, float | None]
    ap_area: dict[str, float | None]

    def to_metrics(self) -> dict[str, Any]:
        """JSON-serialisable, rounded to 4 decimals; a missing AP stays None (JSON null)."""
        return {"map_voc07": _round(self.map_voc07), "map_area": _round(self.map_area),
                "ap_voc07": {name: _round(ap) for name, ap in self.ap_voc07.items()},
                "ap_area": {name: _round(ap) for name, ap in self.ap_area.items()}}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def average_precision(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool) -> float:
    """AP of one ranked PR curve (points in ranking order).

    VOC2007: 11-point interpolation, mean over t in 0, 0.1, .., 1 of the max precision at
    recall >= t (0 where recall never reaches t). Otherwise (VOC2010+): area under the
    monotone (right-to-left running max) precision envelope.
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if use_07_metric:
        reached = recall[None, :] >= _VOC07_THRESHOLDS[:, None]
        best = np.where(reached, precision[None, :], 0.0).max(axis=1, initial=0.0)
        return float(np.sum(best / 11.0))
    mrec = np.concatenate(([0.0], recall, [1.0]))
    envelope = np.maximum.accumulate(np.concatenate(([0.0], precision, [0.0]))[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * envelope[steps + 1]))


def evaluate_voc(detections: Mapping[str, Detections], ground_truth: Mapping[str, GroundTruth],
                 class_names: Sequence[str], iou_threshold: float = 0.5) -> VOCResult:
    """Score `detections` against `ground_truth` (both keyed by image id) per class.

    class_names[i] names label i + 1. An image of `ground_truth` missing from `detections`
    has no detections; a detection on an image absent from `ground_truth` is an error.
    """
    unknown = [image_id for image_id in detections if image_id not in ground_truth]
    if unknown:
        raise ValueError(f"detections for {len(unknown)} image(s) without ground truth, e.g. {unknown[0]!r}")
    num_classes = len(class_names)
    scores, labels, tp, fp = _match_all(detections, ground_truth, num_classes, iou_threshold)
    npos = _count_positives(ground_truth, num_classes)
    ap_voc07: dict[str, float | None] = {}
    ap_area: dict[str, float | None] = {}
    for label, name in enumerate(class_names, start=1):
        curve = _pr_curve(scores, tp, fp, labels == label, npos[label])
        ap_voc07[name] = None if curve is None else average_precision(*curve, use_07_metric=True)
        ap_area[name] = None if curve is None else average_precision(*curve, use_07_metric=False)
    scored = [ap for ap in ap_voc07.values() if ap is not None]
    if not scored:
        raise ValueError(f"no class of {list(class_names)} has a non-difficult ground-truth object: "
                         "mAP is undefined")
    return VOCResult(map_voc07=float(np.mean(scored)),
                     map_area=float(np.mean([ap for ap in ap_area.values() if ap is not None])),
                     ap_voc07=ap_voc07, ap_area=ap_area)


def _numpy(tensor: torch.Tensor, dtype: type) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(dtype, copy=False)


def _check_labels(labels: np.ndarray, num_classes: int, what: str) -> None:
    if labels.size and (labels.min() < 1 or labels.max() > num_classes):
        raise ValueError(f"{what}: labels must be in 1..{num_classes}, got {labels.min()}..{labels.max()}")


def _count_positives(ground_truth: Mapping[str, GroundTruth], num_classes: int) -> np.ndarray:
    """Non-difficult GT objects per label (index 0 unused)."""
    npos = np.zeros(num_classes + 1, dtype=np.int64)
    for gt in ground_truth.values():
        labels = _numpy(gt.labels, np.int64)
        npos += np.bincount(labels[~_numpy(gt.difficult, bool)], minlength=num_classes + 1)
    return npos


def _match_all(detections: Mapping[str, Detections], ground_truth: Mapping[str, GroundTruth],
               num_classes: int, iou_threshold: float) -> tuple[np.ndarray, ...]:
    """(scores, labels, tp, fp) of every detection, in ground_truth's image order.

    Matching is per image: a class's global ranking restricted to one image is that image's
    own stable ranking, so matching image by image gives the same TP/FP as voc_eval.
    """
    parts = []
    for image_id, gt in ground_truth.items():
        det = detections.get(image_id)
        if det is None or len(det.scores) == 0:
            continue
        scores, labels = _numpy(det.scores, np.float64), _numpy(det.labels, np.int64)
        gt_labels = _numpy(gt.labels, np.int64)
        _check_labels(labels, num_classes, f"detections of image {image_id!r}")
        _check_labels(gt_labels, num_classes, f"ground truth of image {image_id!r}")
        tp, fp = _match_image(_numpy(det.boxes, np.float64).reshape(-1, 4), scores, labels,
                              _numpy(gt.boxes, np.float64).reshape(-1, 4), gt_labels,
                              _numpy(gt.difficult, bool), iou_threshold)
        parts.append((scores, labels, tp, fp))
    if not parts:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool)
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def _match_image(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, gt_boxes: np.ndarray,
                 gt_labels: np.ndarray, gt_difficult: np.ndarray,
                 iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-detection TP and FP flags, in the detections' given order."""
    order = np.argsort(-scores, kind="stable")
    iou = _pairwise_iou(boxes[order], gt_boxes)
    iou[labels[order][:, None] != gt_labels[None, :]] = -np.inf
    iou = np.concatenate([iou, np.full((len(order), 1), -np.inf)], axis=1)  # a column for no-GT rows
    best = iou.argmax(axis=1)
    hit = iou[np.arange(len(order)), best] > iou_threshold
    counted = hit & ~np.append(gt_difficult, False)[best]
    first_of_gt = np.zeros(len(order), dtype=bool)
    candidates = np.flatnonzero(counted)
    first_of_gt[candidates[np.unique(best[candidates], return_index=True)[1]]] = True
    tp, fp = np.empty_like(first_of_gt), np.empty_like(first_of_gt)
    tp[order] = first_of_gt
    fp[order] = ~hit | (counted & ~first_of_gt)
    return tp, fp


def _pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU with the devkit's +1 pixel convention; areas are not clamped, as there."""
    iw = np.maximum(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1.0, 0.0)
    ih = np.maximum(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1.0, 0.0)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0] + 1.0) * (a[:, 3] - a[:, 1] + 1.0)
    area_b = (b[:, 2] - b[:, 0] + 1.0) * (b[:, 3] - b[:, 1] + 1.0)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _pr_curve(scores: np.ndarray, tp: np.ndarray, fp: np.ndarray, mine: np.ndarray,
              npos: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(recall, precision) of one class's ranked detections; None when it has no positives."""
    if npos == 0:
        return None
    order = np.argsort(-scores[mine], kind="stable")
    tp_cum = np.cumsum(tp[mine][order], dtype=np.float64)
    fp_cum = np.cumsum(fp[mine][order], dtype=np.float64)
    return tp_cum / npos, tp_cum / np.maximum(tp_cum + fp_cum, _EPS)


def write_voc_results(folder: Path, detections: Mapping[str, Detections], class_names: Sequence[str]) -> None:
    """Write the devkit results format: `comp4_det_test_<class>.txt` per class (empty if none).

    Each line is `image_id score xmin ymin xmax ymax` (score %.6f, coords %.1f, boxes as given),
    in image then detection order. The whole folder is replaced atomically.
    """
    rows: list[list[str]] = [[] for _ in class_names]
    for image_id, det in detections.items():
        if not image_id or any(char.isspace() for char in image_id):
            raise ValueError(f"image id {image_id!r} cannot be written to a whitespace-separated results file")
        labels = _numpy(det.labels, np.int64)
        _check_labels(labels, len(class_names), f"detections of image {image_id!r}")
        rows_in = zip(det.boxes.tolist(), det.scores.tolist(), labels.tolist(), strict=True)
        for (x1, y1, x2, y2), score, label in rows_in:
            rows[label - 1].append(f"{image_id} {score:.6f} {x1:.1f} {y1:.1f} {x2:.1f} {y2:.1f}\n")
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        for name, lines in zip(class_names, rows, strict=True):
            (tmp / f"comp4_det_test_{name}.txt").write_text("".join(lines))
