"""Checkpoints: a JSON architecture spec + a state_dict, never a pickled module.

Layout of a checkpoint file (one `torch.save` of plain containers, so it loads with
`weights_only=True`):
    {"format": "mlprune-checkpoint-v1", "spec": "<ArchSpec JSON>", "state_dict": {...}}
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from mlprune.atomic import atomic_path
from mlprune.errors import CheckpointError, ConfigError
from mlprune.models.arch import ArchSpec
from mlprune.models.build import build_model

FORMAT = "mlprune-checkpoint-v1"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


def save_checkpoint(path: str | Path, model: nn.Module) -> None:
    """Atomically write `model.spec` + its weights to `path`; weights that are not finite are
    refused before anything is written."""
    save_weights(path, model.spec, model.state_dict())


def save_weights(path: str | Path, spec: ArchSpec, state: dict[str, torch.Tensor]) -> None:
    """`save_checkpoint` of a model given as its spec and state_dict (surgery's result)."""
    check_finite(f"{path}: refusing to save", state)
    payload = {"format": FORMAT, "spec": json.dumps(spec.to_json()), "state_dict": state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw payload, validated; every failure is a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    with path.open("rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:  # text, random bytes, an empty file: torch.load would raise almost anything
        what = "an empty file" if not head else "not the zip archive torch.save writes"
        raise CheckpointError(f"{path}: not an mlprune checkpoint ({what})")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path}: refused by torch.load(weights_only=True): it holds pickled "
                              "Python objects (a saved module?), not a state_dict + JSON spec; "
                              "re-save it with mlprune's save_checkpoint") from None
    except Exception as err:  # a damaged archive: RuntimeError from the zip reader, or worse
        detail = (str(err).splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{path}: not an mlprune checkpoint (truncated or corrupt: {detail})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an mlprune checkpoint (missing format {FORMAT!r})")
    return payload


def load_checkpoint(path: str | Path, classes: Sequence[str] | None = None) -> nn.Module:
    """Rebuild the model from the stored spec, then load its weights strictly.

    With `classes` (a stage's data.classes), the model must have been built for exactly
    those class names, in that order.
    """
    payload = read_checkpoint(path)
    spec = _spec_of(path, payload)
    if classes is not None:
        check_classes(path, spec, classes)
    model = build_model(spec)
    check_state_dict(path, payload.get("state_dict"), model.state_dict())
    check_finite(str(path), payload["state_dict"])
    model.load_state_dict(payload["state_dict"])
    return model


def load_weights(path: str | Path) -> tuple[ArchSpec, dict[str, torch.Tensor]]:
    """The spec and the weights of every layer (`layer_paths`' keys), without building the model.

    For the stages that only read and slice weights (select, surgery): building a detector
    imports torchvision, ~1.2 s of every start. Every layer's weight must be there with the
    filters and input channels its spec gives it; the next stage loads the result with
    `load_checkpoint`, which checks every key and shape.
    """
    payload = read_checkpoint(path)
    spec = _spec_of(path, payload)
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: state_dict does not match its spec: no state_dict mapping")
    problems = [problem for name, layer_path in spec.family.layer_paths(spec).items()
                if (problem := _channel_problem(spec, name, f"{layer_path}.weight", state.get(f"{layer_path}.weight")))]
    if problems:
        raise _spec_mismatch(path, problems)
    check_finite(str(path), state)
    return spec, state


def _channel_problem(spec: ArchSpec, name: str, key: str, weight: Any) -> str | None:
    """What is wrong with layer `name`'s weight: missing, or filters (dim 0; heads keep theirs)
    or input channels (dim 1) other than the spec's widths."""
    if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
        return f"missing {key}"
    source = spec.input_of(name)
    expected = [spec.widths.get(name, weight.shape[0]), spec.widths.get(source, weight.shape[1]), *weight.shape[2:]]
    if list(weight.shape) == expected:
        return None
    return f"{key} is {list(weight.shape)} in the file but {expected} by the spec"


def _spec_of(path: str | Path, payload: dict[str, Any]) -> ArchSpec:
    try:
        return ArchSpec.from_json(json.loads(payload.get("spec")))
    except (TypeError, ValueError, AttributeError, ConfigError) as err:
        raise CheckpointError(f"{path}: bad architecture spec ({err})") from None


def check_classes(path: str | Path, spec: ArchSpec, classes: Sequence[str]) -> None:
    """The model predicts `classes`: same names, same order (label i is classes[i]). A model
    built for other classes would score 0 on those it cannot predict, or fail on a label
    beyond its outputs. A checkpoint from before the names were stored is checked by count."""
    if spec.classes is None:
        if spec.num_classes != len(classes) + spec.family.extra_classes:
            raise CheckpointError(f"{path}: built for {spec.num_classes - spec.family.extra_classes} classes, "
                                  f"data.classes lists {len(classes)}: {list(classes)}")
        tqdm.write(f"warning: {path} predates stored class names; only their number was checked against "
                   "data.classes (re-run the stage that wrote it to store them)")
    elif list(spec.classes) != list(classes):
        raise CheckpointError(f"{path}: built for classes {list(spec.classes)}, data.classes lists {list(classes)}")


def check_finite(where: str, state: dict[str, Any]) -> None:
    """No NaN or infinite value in a floating-point tensor: a diverged model would evaluate to
    a score of 0 with a clean exit."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"{where}: {key} holds {bad} non-finite value(s) (NaN or inf): the training "
                                  "that wrote it diverged")


def _spec_mismatch(path: str | Path, problems: list[str]) -> CheckpointError:
    """One line for every way the stored weights differ from their spec: the first, and how many more."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return CheckpointError(f"{path}: state_dict does not match its spec: {problems[0]}{more}")


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
        raise _spec_mismatch(path, problems)
