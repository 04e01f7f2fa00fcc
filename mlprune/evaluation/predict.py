"""Run a detector over a dataset and collect its detections per image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from tqdm import tqdm

from mlprune.data.dataset import DetectionDataset
from mlprune.evaluation.voc_ap import Detections, GroundTruth


@torch.no_grad()
def predict(model: nn.Module, dataset: DetectionDataset, device: torch.device,
            batch_size: int = 16, desc: str = "evaluate") -> dict[str, Detections]:
    """Detections by image id, boxes in the image's own pixel coordinates.

    Always in fp32, whatever precision trained the model: metrics then compare across runs.
    """
    model.to(device).eval()
    results: dict[str, Detections] = {}
    ids = [a.image_id for a in dataset.annotations]
    for start in tqdm(range(0, len(dataset), batch_size), desc=desc, leave=False, mininterval=1.0):
        indices = range(start, min(start + batch_size, len(dataset)))
        images = [dataset[i][0].to(device) for i in indices]
        outputs = model(images)
        for i, out in zip(indices, outputs, strict=False):
            results[ids[i]] = Detections(boxes=out["boxes"].cpu(), scores=out["scores"].cpu(),
                                         labels=out["labels"].cpu())
    return results


def ground_truth(annotations: Sequence) -> dict[str, GroundTruth]:
    return {a.image_id: GroundTruth(boxes=a.boxes, labels=a.labels, difficult=a.difficult) for a in annotations}
