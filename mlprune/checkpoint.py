"""Checkpoints: a JSON architecture spec + a state_dict, never a pickled module.

Layout of a checkpoint file (one `torch.save` of plain containers, so it loads with
`weights_only=True`):
    {"format": "mlprune-checkpoint-v1", "spec": "<ArchSpec JSON>", "state_dict": {...}}
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
from mlprune.models.build import build_model

FORMAT = "mlprune-checkpoint-v1"


def save_checkpoint(path: str | Path, model: nn.Module) -> None:
    """Atomically write `model.spec` + its weights to `path`."""
    payload = {"format": FORMAT, "spec": json.dumps(model.spec.to_json()), "state_dict": model.state_dict()}
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
        detail = (str(err).splitlines() or [type(err).__name__])[0]  # an empty file gives a bare EOFError
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({detail})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an mlprune checkpoint (missing format {FORMAT!r})")
    return payload


def load_checkpoint(path: str | Path) -> nn.Module:
    """Rebuild the model from the stored spec, then load its weights strictly."""
    payload = read_checkpoint(path)
    try:
        spec = ArchSpec.from_json(json.loads(payload.get("spec")))
    except (TypeError, ValueError, ConfigError) as err:
        raise CheckpointError(f"{path}: bad architecture spec ({err})") from None
    model = build_model(spec)
    check_state_dict(path, payload.get("state_dict"), model.state_dict())
    model.load_state_dict(payload["state_dict"])
    return model


def check_state_dict(path: str | Path, found: Any, expected: dict[str, torch.Tensor]) -> None:
    """The stored weights have exactly the keys and shapes the spec builds; else one line
    naming the first difference."""
    if not isinstance(found, dict):
        raise CheckpointError(f"{path}: state_dict does not match its spec: no state_dict mapping")
    problems = [f"missing {key}" for key in expected if key not in found]
    problems += [f"unexpected {key}" for key in found if key not in expected]
    for key, tensor in expected.items():
        value = found.get(key, tensor)
        if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
            shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            problems.append(f"{key} is {shape} in the file but {list(tensor.shape)} by the spec")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CheckpointError(f"{path}: state_dict does not match its spec: {problems[0]}{more}")
