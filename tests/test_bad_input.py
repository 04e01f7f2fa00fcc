"""The bad-input matrix of issue 6, through the `mlprune` CLI (in process).

Every case checks three things: stderr ends with the exact one-line error, the exit code
is 2 (a user error), and the output folder, which holds the results of an earlier run,
is left byte for byte as it was: nothing created, nothing changed. An expected message
ending in `...)` leaves the rest of its final parentheses to the library that reported
the problem (torch's wording is not ours to pin).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from phase_tables import paper_phases

from mlprune.checkpoint import save_checkpoint
from mlprune.models.family import FAMILIES
from mlprune.pruning.phases import phase_layers
from mlprune.pruning.selection import SelectionRule, select_filters, selection_to_json
from mlprune.pruning.sparsity import conv_weights

# --- annotations (read by pretrain) ----------------------------------------------------

@dataclass(frozen=True)
class VocFiles:
    """The files of the last trainval image, the one a case damages."""

    xml: Path
    jpg: Path
    split: Path

    @classmethod
    def of(cls, voc: Path) -> VocFiles:
        split = voc / "ImageSets" / "Main" / "trainval.txt"
        image_id = split.read_text().split()[-1]
        return cls(voc / "Annotations" / f"{image_id}.xml", voc / "JPEGImages" / f"{image_id}.jpg", split)

    def edit_xml(self, edit) -> None:
        tree = ET.parse(self.xml)
        edit(tree.getroot())
        tree.write(self.xml)

    def set_first_box(self, *coordinates: float) -> None:
        def edit(root: ET.Element) -> None:
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), coordinates, strict=True):
                root.find(f"object/bndbox/{tag}").text = str(value)

        self.edit_xml(edit)


def malformed_xml(f: VocFiles) -> str:
    f.xml.write_text("<annotation><size><width>96</width></annotation>")
    return f"{f.xml}: malformed XML (mismatched tag: line 1, column 37)"


def missing_size(f: VocFiles) -> str:
    f.edit_xml(lambda root: root.remove(root.find("size")))
    return f"{f.xml}: missing <size>"


# How an invalid box's refusal ends (mlprune.data.invalid_boxes); data.invalid_boxes: skip would train.
SKIP_HINT = " (1 invalid box found reading split trainval: set data.invalid_boxes: skip to train without it)"


def negative_box(f: VocFiles) -> str:
    f.set_first_box(-3, 10, 30, 40)
    return f"{f.xml}: object 0 <bndbox> has a negative coordinate (-3, 10, 30, 40)" + SKIP_HINT


def reversed_box(f: VocFiles) -> str:
    f.set_first_box(30, 10, 20, 40)
    return f"{f.xml}: object 0 <bndbox> has zero or negative area (xmin=30, ymin=10, xmax=20, ymax=40)" + SKIP_HINT


def zero_area_box(f: VocFiles) -> str:
    f.set_first_box(10, 40, 30, 40)
    return f"{f.xml}: object 0 <bndbox> has zero or negative area (xmin=10, ymin=40, xmax=30, ymax=40)" + SKIP_HINT


def box_outside_image(f: VocFiles) -> str:
    f.set_first_box(10, 10, 97, 40)
    return f"{f.xml}: object 0 <bndbox> lies outside the 96x96 image (xmax=97, ymax=40)" + SKIP_HINT


def unknown_class(f: VocFiles) -> str:
    f.edit_xml(lambda root: setattr(root.find("object/name"), "text", "hexagon"))
    return f"{f.xml}: unknown class 'hexagon' (allowed: circle, square, triangle, cross, ring)"


def listed_image_missing(f: VocFiles) -> str:
    f.jpg.unlink()
    return f"{f.jpg}: image not found (annotated in {f.xml})"


def listed_annotation_missing(f: VocFiles) -> str:
    f.xml.unlink()
    return f"{f.xml}: annotation file not found"


def unreadable_jpeg(f: VocFiles) -> str:
    f.jpg.write_bytes(b"not a JPEG")
    return f"{f.jpg}: cannot decode image (cannot identify image file '{f.jpg}')"


def truncated_jpeg(f: VocFiles) -> str:
    f.jpg.write_bytes(f.jpg.read_bytes()[:300])
    return f"{f.jpg}: cannot decode image (Truncated File Read)"


def empty_split(f: VocFiles) -> str:
    f.split.write_text("\n")
    return f"{f.split}: split file is empty (expected one image id per line)"


@pytest.mark.parametrize("damage", [
    malformed_xml, missing_size, negative_box, reversed_box, zero_area_box, box_outside_image, unknown_class,
    listed_image_missing, listed_annotation_missing, unreadable_jpeg, truncated_jpeg, empty_split,
], ids=lambda damage: damage.__name__)
def test_bad_annotations(ws, damage):
    message = damage(VocFiles.of(ws.voc))
    ws.assert_refused("pretrain", message)


# --- params: each refused before any work, so the missing input files never matter ------

@pytest.mark.parametrize("stage,key,value,message", [
    ("pretrain", "model.name", "yolo", f"model.name: unknown model 'yolo'; choose one of {sorted(FAMILIES)}"),
    ("pretrain", "model.width", 0, "model.width: must be > 0, got 0.0"),
    ("pretrain", "model.width", -0.5, "model.width: must be > 0, got -0.5"),
    ("pretrain", "pretrain.batch_size", 0, "pretrain.batch_size: must be >= 1, got 0"),
    ("l1-finetune", "phases.phase1.l1.batch_size", 0, "phases.phase1.l1.batch_size: must be >= 1, got 0"),
    ("evaluate", "evaluate.batch_size", 0, "evaluate.batch_size: must be >= 1, got 0"),
    ("select", "phases.phase4.layers", paper_phases("ssd512")[3],
     "phases.phase4.layers: ssd300 has no layer(s) ['conv12_1', 'conv12_2']"),
    ("select", "phases.phase2.layers", ["conv4_2", *paper_phases("ssd300")[1]],
     "phases.phase2.layers: must start with 'conv4_3', the last layer of phase1 (got 'conv4_2'); "
     "phases may not skip or overlap layers"),
    ("select", "phases.phase3.layers", paper_phases("ssd300")[2][1:],
     "phases.phase3.layers: must start with 'conv7', the last layer of phase2 (got 'conv8_1'); "
     "phases may not skip or overlap layers"),
    ("select", "phases.phase1.select.gate", 1.5, "phases.phase1.select.gate: must be in [0, 1], got 1.5"),
    ("select", "phases.phase1.select.filter_sparsity", -0.1,
     "phases.phase1.select.filter_sparsity: must be in [0, 1], got -0.1"),
    ("select", "phases.phase1.select.consumer_sparsity", 2,
     "phases.phase1.select.consumer_sparsity: must be in [0, 1], got 2.0"),
    ("threshold-search", "threshold.grid", [], "threshold.grid: is empty"),
    ("threshold-search", "threshold.grid", [1.0, 0.5], "threshold.grid: must be strictly increasing, got [1.0, 0.5]"),
    ("threshold-search", "threshold.grid", [-0.5, 1.0], "threshold.grid: values must be >= 0, got [-0.5, 1.0]"),
    ("threshold-search", "threshold.grid", [0.5, "big"], "threshold.grid[1]: expected a number, got 'big'"),
    ("threshold-search", "phase_defaults.tolerance_reference", "pretrain",
     "phase_defaults.tolerance_reference: l1 or start, got 'pretrain'"),
    ("check-pruned", "phases.phase1.max_pruned_drop", -0.1,
     "phases.phase1.max_pruned_drop: must be >= 0 or null, got -0.1"),
    ("scratch", "scratch.source", "phase9",
     "scratch.source: no phase named 'phase9' (have ['phase1', 'phase2', 'phase3', 'phase4'])"),
    ("scratch", "phases.phase2.start", "phase3",
     "phases.phase2.start: must be pretrain or an earlier phase (pretrain, phase1), got 'phase3'"),
])
def test_bad_params(ws, stage, key, value, message):
    ws.set_param(key, value)
    ws.assert_refused(stage, message)


@pytest.mark.parametrize("dataset_format,split,message", [
    ("cifar10", "tset", "data.test_split: cifar10 splits are train, test, got 'tset'"),
    ("gtsrb", "val", "data.test_split: gtsrb splits are train, test, got 'val'"),
    ("gtsdb", "trainval", "data.test_split: gtsdb splits are train, test, all, got 'trainval'"),
])
def test_split_unknown_to_the_format(ws, dataset_format, split, message):
    ws.set_param("data.format", dataset_format)
    ws.set_param("data.train_split", "train")
    ws.set_param("data.test_split", split)
    ws.assert_refused("evaluate", message)


def test_cuda_requested_without_cuda(ws, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ws.set_param("common.device", "cuda")
    ws.assert_refused("pretrain", "common.device: 'cuda' requested but no CUDA device is available; "
                                  "set it to 'auto' or 'cpu'")


# --- checkpoints and selection JSON (read by surgery) ----------------------------------

def truncated_checkpoint(path: Path, model) -> str:
    save_checkpoint(path, model)
    path.write_bytes(path.read_bytes()[:2000])
    return f"{path}: not an mlprune checkpoint (truncated or corrupt: ...)"


def empty_checkpoint(path: Path, model) -> str:
    path.write_bytes(b"")
    return f"{path}: not an mlprune checkpoint (an empty file)"


def spec_not_matching_weights(path: Path, model) -> str:
    save_checkpoint(path, model)
    payload = torch.load(path, weights_only=True)
    spec = json.loads(payload["spec"])
    spec["widths"]["conv5_1"] += 1
    payload["spec"] = json.dumps(spec)
    torch.save(payload, path)
    return (f"{path}: state_dict does not match its spec: backbone.convs.conv5_1.weight is [32, 32, 3, 3] "
            "in the file but [33, 32, 3, 3] by the spec (and 1 more)")  # surgery checks weights only


def pickled_module(path: Path, model) -> str:
    torch.save(model, path)
    return (f"{path}: refused by torch.load(weights_only=True): it holds pickled Python objects (a saved "
            "module?), not a state_dict + JSON spec; re-save it with mlprune's save_checkpoint")


@pytest.mark.parametrize("corrupt", [truncated_checkpoint, empty_checkpoint, spec_not_matching_weights,
                                     pickled_module], ids=lambda corrupt: corrupt.__name__)
def test_bad_checkpoints(ws, tiny_detector, corrupt):
    message = corrupt(ws.inputs / "l1.pt", tiny_detector)
    ws.assert_refused("surgery", message)


def write_selection(model, path: Path) -> dict:
    """The selection JSON that `select` writes for phase 1 of `model`."""
    roles = phase_layers(model.spec, paper_phases("ssd300")[0])
    weights = {name: w.detach() for name, w in conv_weights(model, roles.penalised).items()}
    rule = SelectionRule()
    document = selection_to_json(select_filters(roles.selected, weights, roles.consumers, rule), rule,
                                 model.spec.widths)
    path.write_text(json.dumps(document))
    return document


@pytest.mark.parametrize("edit,message", [
    ({"removed": [0, 1, 2, 3], "kept": []}, "{path}: would empty layer conv1_2 (no kept filter)"),
    ({"removed": [], "kept": [0, 1, 2, 3, 4]}, "{path}: layer conv1_2: kept index 4 out of range [0, 4)"),
    ({"removed": [-1], "kept": [0, 1, 2, 3]}, "{path}: layer conv1_2: removed index -1 out of range [0, 4)"),
], ids=["every_filter_removed", "kept_index_too_large", "negative_removed_index"])
def test_selection_json_edited_by_hand(ws, tiny_detector, edit, message):
    save_checkpoint(ws.inputs / "l1.pt", tiny_detector)
    path = ws.inputs / "selection.json"
    document = write_selection(tiny_detector, path)
    document["layers"]["conv1_2"].update(edit)
    path.write_text(json.dumps(document, indent=2))
    ws.assert_refused("surgery", message.format(path=path))
