"""Strict, typed views of params.yaml sections.

Every section is a dataclass; unknown keys, missing keys and wrong types fail with a
ConfigError naming the field (`pretrain.lr: expected a number, got 'fast'`). No number
of any section may be NaN or infinite (YAML's `.nan`, `.inf`).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mlprune.errors import ConfigError

T = TypeVar("T")


def load_params(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def section(params: dict[str, Any], name: str) -> Any:
    """params['a']['b'] for name 'a.b', with a clear error when absent."""
    node: Any = params
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"params: missing section {name!r}")
        node = node[part]
    return node


def parse_section(params: dict[str, Any], name: str, cls: type[T]) -> T:
    """The section `name` (dotted) of params, parsed into dataclass `cls`."""
    return parse(cls, section(params, name), name)


def parse(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from a params mapping, checking keys and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}.{name}: missing")
            continue
        values[name] = check_type(data[name], hints[name], f"{where}.{name}")
    try:
        return cls(**values)
    except ConfigError as err:  # field checks in __post_init__ name the field, not the section
        message = str(err)
        raise ConfigError(message if message.startswith(where) else f"{where}.{message}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


def check_type(value: Any, hint: Any, where: str) -> Any:
    """`value` checked against the type `hint` (numbers finite, dataclasses parsed); `where` names it."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return check_type(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {hint}, got {value!r}")
    if hint is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint) or (Any,)
        return [check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key, item = typing.get_args(hint) or (Any, Any)
        return {check_type(k, key, f"{where}.{k}"): check_type(v, item, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return parse(hint, value, where)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _finite(value, where)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint in (int, str, bool):
        if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
            return value
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def _finite(value: int | float, where: str) -> float:
    """`value` as a float; NaN, an infinity or an int beyond float range is refused: one would
    train to NaN weights (`lr: .inf`) or compare false with everything."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return number


def merge_params(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A new mapping: `base` with `update`'s keys replacing its own, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        both_mappings = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = merge_params(merged[key], value) if both_mappings else value
    return merged


def require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{where}: {message}")
