"""PASCAL VOC scoring: hand-worked cases with exact expected values, plus a loop-by-loop
transcription of py-faster-rcnn's voc_eval.py as an oracle for random inputs."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprune.evaluation.voc_ap import (
    Detections,
    GroundTruth,
    VOCResult,
    average_precision,
    evaluate_voc,
    write_voc_results,
)

BOX = [0.0, 0.0, 99.0, 99.0]  # 100 x 100 pixels with the devkit's +1 convention
OTHER = [200.0, 200.0, 299.0, 299.0]  # disjoint from BOX


def gt(boxes: list, labels: list, difficult: list | None = None) -> GroundTruth:
    return GroundTruth(boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                       labels=torch.tensor(labels, dtype=torch.int64),
                       difficult=torch.tensor(difficult or [False] * len(labels), dtype=torch.bool))


def det(boxes: list, scores: list, labels: list | None = None) -> Detections:
    return Detections(boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                      scores=torch.tensor(scores, dtype=torch.float32),
                      labels=torch.tensor(labels or [1] * len(scores), dtype=torch.int64))


def aps(detections: dict, ground_truth: dict, names: list | None = None) -> tuple[float, float]:
    """(11-point AP, area AP) of the first class."""
    result = evaluate_voc(detections, ground_truth, names or ["a"])
    name = (names or ["a"])[0]
    return result.ap_voc07[name], result.ap_area[name]


def test_perfect_detections_score_one() -> None:
    truth = {"i1": gt([BOX, OTHER], [1, 2]), "i2": gt([OTHER], [1])}
    dets = {"i1": det([BOX, OTHER], [0.9, 0.8], [1, 2]), "i2": det([OTHER], [0.7], [1])}
    result = evaluate_voc(dets, truth, ["a", "b"])
    assert result.ap_voc07 == {"a": 1.0, "b": 1.0} and result.ap_area == {"a": 1.0, "b": 1.0}
    assert result.map_voc07 == 1.0 and result.map_area == 1.0


def test_no_detections_score_zero() -> None:
    truth = {"i1": gt([BOX], [1]), "i2": gt([OTHER], [1])}
    assert aps({}, truth) == (0.0, 0.0)
    assert aps({"i1": det([], []), "i2": det([], [])}, truth) == (0.0, 0.0)


def test_worked_pr_curve_with_a_false_positive_in_the_middle() -> None:
    # 3 GT; ranked detections: TP (0.9), FP (0.8), TP (0.7), TP (0.6).
    # cumulative TP 1,1,2,3 / FP 0,1,1,1 -> recall 1/3,1/3,2/3,1 ; precision 1,1/2,2/3,3/4.
    # 11-point: t=0,.1,.2,.3 -> max prec over all points = 1 (4 points);
    #           t=.4..1 (7 points) -> max prec at recall>=t = max(2/3, 3/4) or 3/4 = 3/4.
    #           AP = (4 + 7*3/4) / 11 = 37/44.
    # area: envelope (right-to-left max) 1, 3/4, 3/4, 3/4 over recall steps of 1/3 each
    #       (the step at the FP has zero width): 1/3 + 1/4 + 1/4 = 5/6.
    boxes = [[0, 0, 99, 99], [300, 0, 399, 99], [0, 300, 99, 399]]
    truth = {"i1": gt(boxes, [1, 1, 1])}
    dets = {"i1": det([boxes[0], OTHER, boxes[1], boxes[2]], [0.9, 0.8, 0.7, 0.6])}
    ap07, area = aps(dets, truth)
    assert ap07 == pytest.approx(float(Fraction(37, 44)), abs=1e-12)
    assert area == pytest.approx(float(Fraction(5, 6)), abs=1e-12)


def test_detection_order_in_input_does_not_matter_only_scores() -> None:
    boxes = [[0, 0, 99, 99], [300, 0, 399, 99], [0, 300, 99, 399]]
    truth = {"i1": gt(boxes, [1, 1, 1])}
    dets = {"i1": det([boxes[2], boxes[1], OTHER, boxes[0]], [0.6, 0.7, 0.8, 0.9])}
    ap07, area = aps(dets, truth)
    assert (ap07, area) == (pytest.approx(37 / 44), pytest.approx(5 / 6))


def test_detection_on_difficult_object_is_neither_tp_nor_fp() -> None:
    # Ranked: 0.9 on the difficult object (ignored), 0.8 on the normal one (TP).
    # Counted as a FP it would make precision 1/2 (area AP 0.5); counting the difficult
    # object as a positive would cap recall at 1/2.
    truth = {"i1": gt([BOX, OTHER], [1, 1], difficult=[False, True])}
    dets = {"i1": det([OTHER, BOX], [0.9, 0.8])}
    assert aps(dets, truth) == (1.0, 1.0)


def test_duplicate_detection_of_one_object_is_a_false_positive() -> None:
    # 2 GT; ranked: TP on g1 (0.9), duplicate on g1 (0.8) = FP, TP on g2 (0.7).
    # recall 1/2,1/2,1 ; precision 1,1/2,2/3.
    # 11-point: t=0..0.5 (6 points) -> 1, t=0.6..1 (5 points) -> 2/3: (6 + 10/3)/11 = 28/33.
    # area: 1/2 * 1 + 1/2 * 2/3 = 5/6.
    truth = {"i1": gt([BOX, OTHER], [1, 1])}
    dets = {"i1": det([BOX, [1, 1, 99, 99], OTHER], [0.9, 0.8, 0.7])}
    ap07, area = aps(dets, truth)
    assert ap07 == pytest.approx(28 / 33, abs=1e-12)
    assert area == pytest.approx(5 / 6, abs=1e-12)


def test_detection_matches_only_its_best_overlap_without_fallback() -> None:
    # voc_eval compares a detection with its highest-IoU GT only: once g1 is taken, a second
    # detection overlapping g1 best (IoU 0.9) and g2 less (IoU 0.6) is a FP, not a TP on g2.
    g1, g2 = [0, 0, 99, 99], [0, 0, 99, 59]  # IoU(g1, g2) = 60/100
    truth = {"i1": gt([g1, g2], [1, 1])}
    dets = {"i1": det([g1, [0, 0, 99, 89]], [0.9, 0.8])}  # IoU with g1 0.9, with g2 60/90
    ap07, area = aps(dets, truth)
    assert area == pytest.approx(0.5)  # recall 1/2, 1/2 ; precision 1, 1/2
    assert ap07 == pytest.approx(6 / 11)


@pytest.mark.parametrize(("box", "expected"), [
    ([0, 0, 99, 49], 0.0),  # IoU = 100*50 / (100*100) = 0.5 exactly: not > 0.5, a FP
    ([0, 0, 99, 50], 1.0),  # IoU = 100*51 / 10000 = 0.51: a TP
    ([0, 0, 99, 99.5], 1.0),  # fractional coordinates are fine
])
def test_iou_threshold_is_strict(box: list, expected: float) -> None:
    assert aps({"i1": det([box], [0.5])}, {"i1": gt([BOX], [1])}) == (expected, expected)


def test_iou_uses_plus_one_pixel_convention() -> None:
    # GT [0,0,1,1] is 2x2 pixels, detection [0,0,1,2] 2x3: IoU = 4/6 > 0.5 (a TP).
    # Without +1 it would be areas 1 and 2, IoU = 1/2, not > 0.5 (a FP).
    assert aps({"i1": det([[0, 0, 1, 2]], [0.5])}, {"i1": gt([[0, 0, 1, 1]], [1])}) == (1.0, 1.0)
    # Boxes touching at x=5 share one pixel column with +1: [0,0,5,9] vs [5,0,14,9]
    # IoU = 10 / (60 + 100 - 10) = 1/15, so still a FP, but overlap is counted.
    assert aps({"i1": det([[5, 0, 14, 9]], [0.5])}, {"i1": gt([[0, 0, 5, 9]], [1])}) == (0.0, 0.0)


def test_equal_scores_keep_input_order() -> None:
    # Stable sort: with tied scores, the detection listed first ranks first.
    truth = {"i1": gt([BOX], [1])}
    tp_first = aps({"i1": det([BOX, OTHER], [0.5, 0.5])}, truth)
    fp_first = aps({"i1": det([OTHER, BOX], [0.5, 0.5])}, truth)
    assert tp_first == (1.0, 1.0)
    assert fp_first == (0.5, 0.5)  # recall 0,1 ; precision 0,1/2: every t sees precision 1/2


def test_images_missing_from_detections_have_no_detections() -> None:
    truth = {"i1": gt([BOX], [1]), "i2": gt([BOX], [1])}
    ap07, area = aps({"i1": det([BOX], [0.9])}, truth)
    assert area == 0.5  # recall 1/2 at precision 1
    assert ap07 == pytest.approx(6 / 11)  # t = 0 .. 0.5


def test_class_without_ground_truth_is_none_and_left_out_of_the_mean() -> None:
    truth = {"i1": gt([BOX, OTHER, [0, 300, 99, 399]], [1, 3, 2], difficult=[False, True, False])}
    dets = {"i1": det([BOX, OTHER, [500, 500, 600, 600]], [0.9, 0.8, 0.7], [1, 3, 4])}
    result = evaluate_voc(dets, truth, ["a", "b", "only_difficult", "absent"])
    assert result.ap_voc07 == {"a": 1.0, "b": 0.0, "only_difficult": None, "absent": None}
    assert result.ap_area == {"a": 1.0, "b": 0.0, "only_difficult": None, "absent": None}
    assert result.map_voc07 == 0.5 and result.map_area == 0.5


def test_no_class_with_ground_truth_is_an_error() -> None:
    truth = {"i1": gt([BOX], [1], difficult=[True]), "i2": gt([], [])}
    with pytest.raises(ValueError, match="non-difficult ground-truth"):
        evaluate_voc({"i1": det([BOX], [0.9])}, truth, ["a", "b"])


def test_bad_inputs_are_rejected() -> None:
    truth = {"i1": gt([BOX], [1])}
    with pytest.raises(ValueError, match="without ground truth.*'ghost'"):
        evaluate_voc({"ghost": det([BOX], [0.9])}, truth, ["a"])
    with pytest.raises(ValueError, match=r"labels must be in 1\.\.1"):
        evaluate_voc({"i1": det([BOX], [0.9], [2])}, truth, ["a"])
    with pytest.raises(ValueError, match=r"labels must be in 1\.\.1"):
        evaluate_voc({"i1": det([BOX], [0.9], [0])}, truth, ["a"])


def test_average_precision_on_a_known_curve() -> None:
    recall = np.array([1 / 3, 1 / 3, 2 / 3, 1.0])
    precision = np.array([1.0, 1 / 2, 2 / 3, 3 / 4])
    assert average_precision(recall, precision, use_07_metric=True) == pytest.approx(37 / 44, abs=1e-12)
    assert average_precision(recall, precision, use_07_metric=False) == pytest.approx(5 / 6, abs=1e-12)
    # A curve that stops at recall 0.4: 11-point gets t = 0..0.4 (5 points), area gets 0.4.
    assert average_precision(np.array([0.2, 0.4]), np.array([1.0, 0.5]), True) == pytest.approx((3 + 2 * 0.5) / 11)
    assert average_precision(np.array([0.2, 0.4]), np.array([1.0, 0.5]), False) == pytest.approx(0.2 + 0.1)
    assert average_precision(np.array([]), np.array([]), True) == 0.0
    assert average_precision(np.array([]), np.array([]), False) == 0.0


def test_eleven_point_thresholds_are_bit_identical_to_py_faster_rcnn() -> None:
    # np.arange(0., 1.1, 0.1)[3] is 0.30000000000000004 > 0.3, so a curve ending at recall
    # exactly 0.3 gets t = 0, .1, .2 only: 3/11 (exact tenths would give 4/11).
    assert average_precision(np.array([0.3]), np.array([1.0]), use_07_metric=True) == pytest.approx(3 / 11)


def test_to_metrics_rounds_and_is_json_serialisable() -> None:
    result = VOCResult(map_voc07=37 / 44, map_area=5 / 6, ap_voc07={"a": 37 / 44, "b": None},
                       ap_area={"a": 5 / 6, "b": None})
    metrics = result.to_metrics()
    assert metrics == {"map_voc07": 0.8409, "map_area": 0.8333, "ap_voc07": {"a": 0.8409, "b": None},
                       "ap_area": {"a": 0.8333, "b": None}}
    assert json.loads(json.dumps(metrics)) == metrics


def test_write_voc_results_round_trip(tmp_path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "stale.txt").write_text("from an earlier run")
    dets = {"000001": det([[1.25, 2, 30.5, 40], [5, 6, 7, 8]], [0.123456789, 0.5], [2, 1]),
            "000002": det([[10, 20, 30, 40]], [0.75], [2]),
            "000003": det([], [])}
    write_voc_results(folder, dets, ["cat", "dog", "bird"])
    assert sorted(p.name for p in folder.iterdir()) == [
        "comp4_det_test_bird.txt", "comp4_det_test_cat.txt", "comp4_det_test_dog.txt"]
    assert (folder / "comp4_det_test_bird.txt").read_text() == ""
    assert (folder / "comp4_det_test_cat.txt").read_text() == "000001 0.500000 5.0 6.0 7.0 8.0\n"
    lines = (folder / "comp4_det_test_dog.txt").read_text().splitlines()
    assert lines == ["000001 0.123457 1.2 2.0 30.5 40.0", "000002 0.750000 10.0 20.0 30.0 40.0"]
    image_id, score, *coords = lines[1].split()
    assert image_id == "000002" and float(score) == 0.75 and list(map(float, coords)) == [10, 20, 30, 40]
    assert not list(tmp_path.glob(".results*"))  # no temporary left behind


def test_write_voc_results_rejects_ids_with_whitespace(tmp_path) -> None:
    with pytest.raises(ValueError, match="whitespace"):
        write_voc_results(tmp_path / "r", {"a b": det([BOX], [0.5])}, ["a"])
    assert not (tmp_path / "r").exists()


def reference_voc_eval(dets: dict, truth: dict, label: int, use_07_metric: bool) -> float | None:
    """py-faster-rcnn voc_eval.py + voc_ap, loop by loop (argsort made stable; same for distinct scores)."""
    class_recs, npos = {}, 0
    for image_id, g in truth.items():
        mask = g.labels.numpy() == label
        difficult = g.difficult.numpy()[mask]
        npos += int(np.sum(~difficult))
        class_recs[image_id] = {"bbox": g.boxes.numpy()[mask].astype(float), "difficult": difficult,
                                "det": [False] * int(mask.sum())}
    if npos == 0:
        return None
    image_ids, confidence, boxes = [], [], []
    for image_id in truth:
        if image_id in dets:
            for box, score, lab in zip(dets[image_id].boxes.tolist(), dets[image_id].scores.tolist(),
                                       dets[image_id].labels.tolist(), strict=True):
                if lab == label:
                    image_ids.append(image_id), confidence.append(score), boxes.append(box)
    sorted_ind = np.argsort(-np.array(confidence), kind="stable")
    bb_all = np.array(boxes, dtype=float).reshape(-1, 4)[sorted_ind]
    image_ids = [image_ids[x] for x in sorted_ind]
    nd = len(image_ids)
    tp, fp = np.zeros(nd), np.zeros(nd)
    for d in range(nd):
        r, bb, ovmax, bbgt = class_recs[image_ids[d]], bb_all[d], -np.inf, class_recs[image_ids[d]]["bbox"]
        if bbgt.size > 0:
            iw = np.maximum(np.minimum(bbgt[:, 2], bb[2]) - np.maximum(bbgt[:, 0], bb[0]) + 1.0, 0.0)
            ih = np.maximum(np.minimum(bbgt[:, 3], bb[3]) - np.maximum(bbgt[:, 1], bb[1]) + 1.0, 0.0)
            inters = iw * ih
            uni = ((bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0)
                   + (bbgt[:, 2] - bbgt[:, 0] + 1.0) * (bbgt[:, 3] - bbgt[:, 1] + 1.0) - inters)
            overlaps = inters / uni
            ovmax, jmax = np.max(overlaps), np.argmax(overlaps)
        if ovmax > 0.5:
            if not r["difficult"][jmax]:
                if not r["det"][jmax]:
                    tp[d], r["det"][jmax] = 1.0, True
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec, prec = tp / float(npos), tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            ap += (0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])) / 11.0
        return ap
    mrec, mpre = np.concatenate(([0.0], rec, [1.0])), np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


# Small integer boxes on a small canvas, so overlaps near the 0.5 threshold are common.
small_box = st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 5), st.integers(0, 5)).map(
    lambda b: [b[0], b[1], b[0] + b[2], b[1] + b[3]])


@st.composite
def scenes(draw: st.DrawFn, distinct_scores: bool = False) -> tuple[dict, dict]:
    truth, dets, used = {}, {}, set()
    for i in range(draw(st.integers(1, 4))):
        m = draw(st.integers(0, 4))
        truth[f"im{i}"] = gt(draw(st.lists(small_box, min_size=m, max_size=m)),
                             draw(st.lists(st.integers(1, 2), min_size=m, max_size=m)),
                             draw(st.lists(st.booleans(), min_size=m, max_size=m)))
        n = draw(st.integers(0, 6))
        if n and draw(st.booleans()):
            score = st.integers(0, 10**6).filter(lambda s: s not in used) if distinct_scores else st.integers(0, 3)
            scores = draw(st.lists(score, min_size=n, max_size=n, unique=distinct_scores))
            used.update(scores)
            dets[f"im{i}"] = det(draw(st.lists(small_box, min_size=n, max_size=n)), [s / 10**6 for s in scores],
                                 draw(st.lists(st.integers(1, 2), min_size=n, max_size=n)))
    return dets, truth


def evaluate_or_none(dets: dict, truth: dict) -> VOCResult | None:
    try:
        return evaluate_voc(dets, truth, ["a", "b"])
    except ValueError:
        return None


@settings(max_examples=100, deadline=None)
@given(scenes())
def test_matches_reference_voc_eval(scene: tuple[dict, dict]) -> None:
    dets, truth = scene
    result = evaluate_or_none(dets, truth)
    expected = {name: [reference_voc_eval(dets, truth, label, metric) for metric in (True, False)]
                for label, name in enumerate(["a", "b"], start=1)}
    if result is None:
        assert all(v == [None, None] for v in expected.values())
        return
    for name, (ref07, ref_area) in expected.items():
        assert result.ap_voc07[name] == (None if ref07 is None else pytest.approx(ref07, abs=1e-12))
        assert result.ap_area[name] == (None if ref_area is None else pytest.approx(ref_area, abs=1e-12))
        for ap in (result.ap_voc07[name], result.ap_area[name]):
            assert ap is None or 0.0 <= ap <= 1.0


@settings(max_examples=40, deadline=None)
@given(scenes(distinct_scores=True), st.randoms(use_true_random=False))
def test_shuffling_detections_with_distinct_scores_changes_nothing(scene: tuple[dict, dict], rnd) -> None:
    dets, truth = scene
    shuffled = {}
    for image_id in rnd.sample(list(dets), len(dets)):
        perm = torch.tensor(rnd.sample(range(len(dets[image_id].scores)), len(dets[image_id].scores)),
                            dtype=torch.int64)
        shuffled[image_id] = Detections(dets[image_id].boxes[perm], dets[image_id].scores[perm],
                                        dets[image_id].labels[perm])
    before, after = evaluate_or_none(dets, truth), evaluate_or_none(shuffled, truth)
    assert (before is None) == (after is None)
    if before is not None:
        assert after.ap_voc07 == pytest.approx(before.ap_voc07, abs=1e-12)
        assert after.ap_area == pytest.approx(before.ap_area, abs=1e-12)
        assert not math.isnan(before.map_voc07) and 0.0 <= before.map_area <= 1.0
