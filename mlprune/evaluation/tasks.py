"""The task interface: what the pipeline's stages need to know about detection vs classification.

Every stage is written once against `Task`: it asks the task for the score that
threshold search compares on the validation split, and for the test metrics the
evaluate stage writes. Datasets come from `mlprune.data.splits`, by `data.format`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from mlprune.atomic import atomic_path
from mlprune.data.splits import DataConfig, val_dataset
from mlprune.evaluation.accuracy import per_class_accuracy, predict_labels, top1
from mlprune.evaluation.predict import ground_truth, predict
from mlprune.evaluation.voc_ap import evaluate_voc, write_voc_results
from mlprune.models.arch import ArchSpec
from mlprune.runtime import RuntimeConfig, memory_layout, setup
from mlprune.task_names import CLASSIFICATION, DETECTION

Dataset = torch.utils.data.Dataset


@dataclass(frozen=True)
class Task:
    name: str
    score_name: str  # the metric threshold search and the summaries compare
    validation_score: Callable[[nn.Module, Dataset, list[str], torch.device, int], float]
    test_metrics: Callable[[nn.Module, Dataset, list[str], torch.device, int, Path], dict]
    # The part of a forward pass whose cost does not depend on the image's content (FLOPs count it).
    network_forward: Callable[[nn.Module, torch.Tensor], object]
    # The score of a model that has learnt nothing about the images (threshold search's floor).
    chance_score: Callable[[Dataset], float]


def _map_score(model, dataset, classes, device, batch_size) -> float:
    detections = predict(model, dataset, device, batch_size, desc="validate")
    return evaluate_voc(detections, ground_truth(dataset.annotations), classes).map_voc07


def _detection_metrics(model, dataset, classes, device, batch_size, results_dir) -> dict:
    """VOC07 11-point mAP, area mAP and per-class APs; comp4 result files in `results_dir`."""
    detections = predict(model, dataset, device, batch_size)
    scores = evaluate_voc(detections, ground_truth(dataset.annotations), classes).to_metrics()
    write_voc_results(results_dir, detections, classes)
    scores["skipped_boxes"] = dataset.skipped_boxes  # test boxes dropped by data.invalid_boxes: skip
    return scores


def _top1_score(model, dataset, classes, device, batch_size) -> float:
    return top1(predict_labels(model, dataset, device, batch_size, desc="validate"), dataset.labels)


def _classification_metrics(model, dataset, classes, device, batch_size, results_dir) -> dict:
    """Top-1 and per-class accuracy; every test prediction in `results_dir`/predictions.csv."""
    predicted = predict_labels(model, dataset, device, batch_size)
    with atomic_path(results_dir) as tmp:
        tmp.mkdir()
        with open(tmp / "predictions.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["index", "label", "predicted"])
            writer.writerows(zip(range(len(predicted)), dataset.labels.tolist(), predicted.tolist(), strict=True))
    return {"top1": top1(predicted, dataset.labels),
            "acc_per_class": per_class_accuracy(predicted, dataset.labels, classes)}


def _no_detections(dataset) -> float:
    """A detector that finds nothing, or boxes at random, scores (close to) 0 mAP."""
    return 0.0


def _majority_fraction(dataset) -> float:
    """The top-1 of always predicting the split's most frequent class."""
    labels = torch.as_tensor(dataset.labels)
    return float(torch.bincount(labels).max()) / len(labels) if len(labels) else 0.0


def _backbone_and_heads(model, images):
    """A detector without box decoding and NMS, whose cost depends on how many boxes score high."""
    return model.head(list(model.backbone(images).values()))


TASKS = {
    DETECTION: Task(DETECTION, "map_voc07", _map_score, _detection_metrics, _backbone_and_heads, _no_detections),
    CLASSIFICATION: Task(CLASSIFICATION, "top1", _top1_score, _classification_metrics, nn.Module.__call__,
                         _majority_fraction),
}


def task_for(data: DataConfig, spec: ArchSpec | None = None) -> Task:
    """The task of `data.format`, checked against the model's when one is given."""
    if spec is not None:
        data.check_model_task(spec.task, spec.model)
    return TASKS[data.task]


class ValidationScorer(NamedTuple):
    """What threshold search and check_pruned need of the validation split, loaded once."""
    task: Task
    score: Callable[[nn.Module], float]  # the model's `task.score_name` on the split
    chance: float  # `task.chance_score` of the split: what a model that learnt nothing scores


def validation_scorer(spec: ArchSpec, data: DataConfig, runtime: RuntimeConfig, batch_size: int) -> ValidationScorer:
    """The task of `spec`, a function scoring a model on the validation split (the score
    threshold search compares and check_pruned reports, computed the same way by both) and
    the split's chance score."""
    device = setup(runtime)
    dataset = val_dataset(data, runtime.seed)
    task = task_for(data, spec)

    def score(model: nn.Module) -> float:
        with memory_layout(model, runtime.channels_last):
            return task.validation_score(model, dataset, data.classes, device, batch_size)

    return ValidationScorer(task, score, task.chance_score(dataset))
