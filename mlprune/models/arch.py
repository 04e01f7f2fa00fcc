"""Architecture specs: the JSON channel spec of a model, and the `model` section of params.yaml.

A model is fully described by an `ArchSpec` (layer widths by paper name, classes,
input size, number of detection sources, BatchNorm or not). Checkpoints store it as
JSON next to the state_dict, so a pruned model rebuilds from its spec alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from mlprune.errors import ConfigError
from mlprune.models.family import ModelFamily, family
from mlprune.models.layers import ConvDef


def scaled_widths(model: str, width: float, min_channels: int = 4) -> dict[str, int]:
    """Every layer's full width times `width`, floored at `min_channels`."""
    if not width > 0:
        raise ConfigError(f"model.width: must be > 0, got {width}")
    return {c.name: max(min_channels, round(c.channels * width)) for c in family(model).convs}


@dataclass(frozen=True)
class ArchSpec:
    """Everything needed to rebuild a model; JSON-serialisable.

    widths: out_channels per backbone conv, by paper name.
    num_sources: k of "k-det": the model keeps the first k detection sources and only
    the convs they need.
    classes: the dataset's class names, in label order (a detector's background not
    included); None in checkpoints written before the names were stored.
    """

    model: str
    num_classes: int  # outputs: a detector's include background
    widths: dict[str, int] = field(default_factory=dict)
    batch_norm: bool = False
    num_sources: int | None = None
    image_size: int | None = None
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        fam = family(self.model)
        if self.classes is not None:
            self._check_classes(fam)
            object.__setattr__(self, "classes", tuple(self.classes))  # JSON gives a list
        k = self.num_sources if self.num_sources is not None else len(fam.sources)
        if fam.sources and not 1 <= k <= len(fam.sources):
            raise ConfigError(f"num_sources: must be in 1..{len(fam.sources)}, got {k}")
        object.__setattr__(self, "num_sources", k)
        if self.image_size is None:
            object.__setattr__(self, "image_size", fam.image_size)
        if self.num_classes < 2:
            raise ConfigError(f"num_classes: needs at least two outputs, got {self.num_classes}")
        expected = list(self.conv_names)
        if list(self.widths) != expected:
            missing = sorted(set(expected) - set(self.widths))
            extra = sorted(set(self.widths) - set(expected))
            raise ConfigError(f"widths: layers do not match {self.model} with {k} sources "
                              f"(missing {missing}, unexpected {extra})")
        bad = {n: w for n, w in self.widths.items() if not (isinstance(w, int) and w >= 1)}
        if bad:
            raise ConfigError(f"widths: every layer needs >= 1 channel, got {bad}")

    def _check_classes(self, fam: ModelFamily) -> None:
        names = self.classes
        if (not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names)
                or len(set(names)) != len(names)):
            raise ConfigError(f"classes: expected a list of distinct class names, got {names!r}")
        if len(names) + fam.extra_classes != self.num_classes:
            raise ConfigError(f"classes: {len(names)} names for {self.num_classes} outputs "
                              f"({fam.extra_classes} of them background)")

    @property
    def family(self) -> ModelFamily:
        return family(self.model)

    @property
    def sources(self) -> tuple[str, ...]:
        return self.family.sources[: self.num_sources]

    @property
    def task(self) -> str:
        return self.family.task

    @property
    def convs(self) -> tuple[ConvDef, ...]:
        """The backbone convs (of a detector: up to the last kept detection source)."""
        if not self.sources:
            return self.family.convs
        names = [c.name for c in self.family.convs]
        return self.family.convs[: names.index(self.sources[-1]) + 1]

    @property
    def conv_names(self) -> tuple[str, ...]:
        """The backbone convs' names, in network order."""
        return tuple(c.name for c in self.convs)

    def heads_of(self, layer: str) -> list[str]:
        """The non-backbone layers that read `layer`: its loc/conf heads, or the classifier."""
        return self.family.heads_of(self, layer)

    def input_of(self, layer: str) -> str | None:
        """The backbone conv whose output channels weight layer `layer` reads (None: the image)."""
        if layer in self.widths:
            return self.producer_of(layer)
        return self.family.head_input(self, layer)

    def producer_of(self, layer: str) -> str | None:
        """The backbone conv whose output channels `layer` reads; None for the first conv."""
        position = self.conv_names.index(layer)
        return self.conv_names[position - 1] if position > 0 else None

    def consumers_of(self, layer: str) -> list[str]:
        """Every layer that reads `layer`'s output channels: the next backbone conv, then its heads."""
        position = self.conv_names.index(layer)
        return list(self.conv_names[position + 1: position + 2]) + self.heads_of(layer)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ArchSpec:
        return cls(**data)

    def replace(self, **changes) -> ArchSpec:
        return ArchSpec(**{**asdict(self), **changes})


def build_spec(model: str, num_classes: int, width: float = 1.0, batch_norm: bool = False,
               num_sources: int | None = None, widths: dict[str, int] | None = None,
               classes: Sequence[str] | None = None) -> ArchSpec:
    """Spec from a width multiplier, or from explicit per-layer widths (which win)."""
    full = scaled_widths(model, width)
    if widths:
        unknown = sorted(set(widths) - set(full))
        if unknown:
            raise ConfigError(f"model.widths: {model} has no layer(s) {unknown}")
        full.update(widths)
    sources = family(model).sources
    k = num_sources or len(sources)
    names = list(full)
    kept = names[: names.index(sources[k - 1]) + 1] if sources else names
    return ArchSpec(model=model, num_classes=num_classes, widths={n: full[n] for n in kept},
                    batch_norm=batch_norm, num_sources=k, classes=None if classes is None else tuple(classes))


@dataclass(frozen=True)
class ModelConfig:
    """The `model` section of params.yaml."""

    name: str = "ssd300"
    width: float = 1.0  # multiplies every layer's width (floor 4 channels)
    widths: dict[str, int] = field(default_factory=dict)  # explicit widths by layer; win over `width`
    batch_norm: bool = False  # BN during pretraining, folded into the convs before pruning
    init: str | None = None  # weights to start from (a file under data/init/), instead of a random init
    init_new_head: bool = False  # with `init` for another class count: start the class heads afresh

    def __post_init__(self) -> None:
        family(self.name)
        if not self.width > 0:
            raise ConfigError(f"model.width: must be > 0, got {self.width}")
        bad = {name: w for name, w in self.widths.items() if w < 1}
        if bad:
            raise ConfigError(f"model.widths: every layer needs >= 1 channel, got {bad}")

    def to_spec(self, classes: Sequence[str]) -> ArchSpec:
        """The spec of a model for the dataset classes `classes` (data.classes, in order)."""
        outputs = len(classes) + family(self.name).extra_classes
        return build_spec(self.name, outputs, self.width, self.batch_norm, widths=self.widths, classes=classes)
