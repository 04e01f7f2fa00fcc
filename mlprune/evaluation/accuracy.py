"""Classification scores: top-1 accuracy overall and per class."""

from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from mlprune.data.classification import ClassificationDataset


@torch.no_grad()
def predict_labels(model: nn.Module, dataset: ClassificationDataset, device: torch.device,
                   batch_size: int = 256, desc: str = "evaluate") -> torch.Tensor:
    """The predicted class index of every item, in dataset order."""
    model.to(device).eval()
    predicted = []
    for start in tqdm(range(0, len(dataset), batch_size), desc=desc, leave=False, mininterval=1.0):
        images = torch.stack([dataset[i][0] for i in range(start, min(start + batch_size, len(dataset)))])
        predicted.append(model(images.to(device)).argmax(dim=1).cpu())  # fp32: evaluation never autocasts
    return torch.cat(predicted) if predicted else torch.zeros(0, dtype=torch.long)


def top1(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    return round(float((predicted == labels).float().mean()), 4) if len(labels) else 0.0


def per_class_accuracy(predicted: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict[str, float | None]:
    """Accuracy on each class's test images; None for a class with none (never a fake 0)."""
    scores: dict[str, float | None] = {}
    for index, name in enumerate(classes):
        mine = labels == index
        scores[name] = round(float((predicted[mine] == index).float().mean()), 4) if mine.any() else None
    return scores
