"""Checkpoints: a JSON architecture spec + a state_dict, never a pickled module.

Layout of a checkpoint file (one `torch.save` of plain containers, so it loads with
`weights_only=True`):
    {"format": "mlprune-checkpoint-v1", "spec": "<ArchSpec JSON>", "state_dict": {...},
     "extra": {...}}
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlprune.atomic import atomic_path
from mlprune.errors import CheckpointError, ConfigError
from mlprune.models.arch import ArchSpec
from mlprune.models.ssd import build_model

FORMAT = "mlprune-checkpoint-v1"


def save_checkpoint(path: str | Path, model: nn.Module, extra: dict[str, Any] | None = None) -> None:
    """Atomically write `model.spec` + its weights (+ small `extra` tensors/ints) to `path`."""
    payload = {"format": FORMAT, "spec": json.dumps(model.spec.to_json()),
               "state_dict": model.state_dict(), "extra": extra or {}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw payload, validated; every failure is a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path}: refused by torch.load(weights_only=True): it holds pickled "
                              "Python objects (a saved module?), not a state_dict + JSON spec; "
                              "re-save it with mlprune's save_checkpoint") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({str(err).splitlines()[0]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an mlprune checkpoint (missing format {FORMAT!r})")
    return payload


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from the stored spec, then load its weights strictly."""
    payload = read_checkpoint(path)
    try:
        spec = ArchSpec.from_json(json.loads(payload["spec"]))
    except (TypeError, ValueError, ConfigError) as err:
        raise CheckpointError(f"{path}: bad architecture spec ({err})") from None
    model = build_model(spec)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        first = " ".join(str(err).split())[:300]
        raise CheckpointError(f"{path}: state_dict does not match its spec ({first})") from None
    return model, payload["extra"]
