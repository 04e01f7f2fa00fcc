"""`import_model`: start the pipeline from a model trained elsewhere, read from a local file.

Three kinds of file, told apart by their keys, each read with torch.load(weights_only=True)
(never a download):
- a torchvision `ssd300_vgg16` state_dict, any class count: our full-width SSD300 (no
  BatchNorm, whatever the preset says), conv1_1 adapted to our input normalisation;
- a torchvision `vgg16` / `vgg16_bn` ImageNet state_dict: the preset's own model with
  conv1_1..conv5_3 (and conv6/conv7 from fc6/fc7, when they fit) initialised from it, the
  SSD paper's starting point;
- one of our checkpoints, validated by `load_checkpoint` (pruned widths are kept).
Every mismatch is one line naming the file and the first key or field that does not fit.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mlprune.checkpoint import FORMAT, load_checkpoint
from mlprune.errors import CheckpointError
from mlprune.interop.torchvision_weights import ssd300_from_torchvision, trunk_from_torchvision_vgg
from mlprune.models.arch import ArchSpec
from mlprune.models.build import named_convs, rebuild
from mlprune.task_names import DETECTION

CLASS_HEADS = ("head.classification_head.", "classifier.")  # a detector's conf convs, a classifier's linear


@dataclass(frozen=True)
class Imported:
    """The model, what the file was, and which of its layers (by `named_convs` name) came from it."""

    model: nn.Module
    source: str
    layers: tuple[str, ...]


def load_weights_file(path: str | Path) -> object:
    """torch.load(weights_only=True) of a local file; any failure is one CheckpointError line.

    torch.load fails on foreign files in many ways (KeyError on text, IndexError on random
    bytes, an unpickling refusal on JSON or a pickled module), hence the broad except.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path}: refused by torch.load(weights_only=True): not a torch file, or one "
                              "holding pickled Python objects (a saved module?) instead of a state_dict") from None
    except Exception as err:  # see the docstring
        detail = (str(err).splitlines() or [""])[0]
        raise CheckpointError(f"{path}: not a torch file torch.load can read "
                              f"({type(err).__name__}: {detail})") from None


def import_model(path: str | Path, spec: ArchSpec, new_class_head: bool = False) -> Imported:
    """One of our models from `path`, checked against the preset's `spec` (its model and class count).

    A file whose class count differs from the preset's is refused, unless `new_class_head`:
    then the class head (conf convs, or the classifier's linear) starts afresh, to fine-tune
    on the preset's dataset.
    """
    payload = load_weights_file(path)
    if isinstance(payload, dict) and "format" in payload:
        return _checked(path, _our_checkpoint(path, payload), spec, new_class_head)
    state = _state_dict(path, payload)
    kind = _kind(path, state)
    if kind == "vgg":
        model, layers = trunk_from_torchvision_vgg(path, state, spec)
        norm = "vgg16_bn" if any(key.endswith("running_mean") for key in state) else "vgg16"
        return Imported(model, f"torchvision {norm}", layers)
    if spec.task != DETECTION:
        raise CheckpointError(f"{path}: a torchvision ssd300_vgg16 detector state_dict given for the "
                              f"{spec.model} preset, a {spec.task} model")
    if spec.model != "ssd300":
        raise CheckpointError(f"{path}: a torchvision ssd300_vgg16 state_dict fits model ssd300, "
                              f"not the preset's {spec.model}")
    model = ssd300_from_torchvision(path, state)
    imported = Imported(model, "torchvision ssd300_vgg16", tuple(named_convs(model)))
    return _checked(path, imported, spec, new_class_head)


def _our_checkpoint(path: str | Path, payload: dict) -> Imported:
    if payload["format"] != FORMAT:
        raise CheckpointError(f"{path}: not an mlprune checkpoint (format {payload['format']!r}, expected {FORMAT!r})")
    model = load_checkpoint(path)
    return Imported(model, "mlprune checkpoint", tuple(named_convs(model)))


def _state_dict(path: str | Path, payload: object) -> dict[str, torch.Tensor]:
    if not isinstance(payload, dict) or not payload:
        raise CheckpointError(f"{path}: holds {type(payload).__name__ if payload else 'nothing'}, not a state_dict")
    for key, value in payload.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: not a state_dict: {key!r} holds a {type(value).__name__}, not a tensor")
    return payload


def _kind(path: str | Path, state: dict[str, torch.Tensor]) -> str:
    """'ssd' or 'vgg', by torchvision's key layout."""
    if any(key.startswith(("backbone.features.", "backbone.extra.")) for key in state):
        return "ssd"
    if any(key.startswith("features.") for key in state):
        return "vgg"
    if any(key.startswith("backbone.convs.") for key in state):
        raise CheckpointError(f"{path}: a bare mlprune state_dict without its architecture spec; "
                              "write it with mlprune's save_checkpoint")
    raise CheckpointError(f"{path}: not a model this import knows (first key {next(iter(state))!r}): expected a "
                          "torchvision ssd300_vgg16 or vgg16/vgg16_bn state_dict, or an mlprune checkpoint")


def _checked(path: str | Path, imported: Imported, spec: ArchSpec, new_class_head: bool) -> Imported:
    """The imported model is of the preset's architecture and class count (or gets a new class head)."""
    found = imported.model.spec
    if found.model != spec.model:
        raise CheckpointError(f"{path}: holds a {found.model} ({found.task}) model but the preset is "
                              f"{spec.model} ({spec.task})")
    if found.num_classes == spec.num_classes:
        return imported
    if not new_class_head:
        background = " with background" if spec.task == DETECTION else ""
        raise CheckpointError(f"{path}: the model has {found.num_classes} class outputs but the preset needs "
                              f"{spec.num_classes}{background}; import it with a new class head to fine-tune it")
    model = _with_new_class_head(imported.model, spec.num_classes)
    kept = tuple(layer for layer in imported.layers if not layer.endswith("_conf") and layer != "classifier")
    return Imported(model, imported.source, kept)


def _with_new_class_head(model: nn.Module, num_classes: int) -> nn.Module:
    """`model` with a freshly initialised class head of `num_classes` outputs; the rest kept."""
    fresh = rebuild(model, model.spec.replace(num_classes=num_classes))
    state = fresh.state_dict()
    state.update({key: value for key, value in model.state_dict().items() if not key.startswith(CLASS_HEADS)})
    fresh.load_state_dict(state)
    return fresh
