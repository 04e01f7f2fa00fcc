"""Architecture specs: the paper's VGG16-SSD and VGG16 layer tables and the JSON channel spec.

A model is fully described by an `ArchSpec` (layer widths by paper name, classes,
input size, number of detection sources, BatchNorm or not). Checkpoints store it as
JSON next to the state_dict, so a pruned model rebuilds from its spec alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mlprune.errors import ConfigError


@dataclass(frozen=True)
class ConvDef:
    """One backbone conv: paper name, full-width output channels and geometry.

    `pool_after` is the max-pool that follows the conv's ReLU (kernel, stride, padding,
    ceil_mode), or None.
    """

    name: str
    channels: int
    kernel: int = 3
    stride: int = 1
    padding: int = 1
    dilation: int = 1
    pool_after: tuple[int, int, int, bool] | None = None


@dataclass(frozen=True)
class DefaultBoxes:
    """SSD default-box settings, one entry per detection source (scales has one more)."""

    aspect_ratios: tuple[tuple[int, ...], ...]
    scales: tuple[float, ...]
    steps: tuple[int, ...]


_POOL = (2, 2, 0, False)
_VGG = (
    ConvDef("conv1_1", 64),
    ConvDef("conv1_2", 64, pool_after=_POOL),
    ConvDef("conv2_1", 128),
    ConvDef("conv2_2", 128, pool_after=_POOL),
    ConvDef("conv3_1", 256),
    ConvDef("conv3_2", 256),
    ConvDef("conv3_3", 256, pool_after=(2, 2, 0, True)),  # ceil: 75 -> 38 at input 300
    ConvDef("conv4_1", 512),
    ConvDef("conv4_2", 512),
    ConvDef("conv4_3", 512, pool_after=_POOL),
    ConvDef("conv5_1", 512),
    ConvDef("conv5_2", 512),
    ConvDef("conv5_3", 512, pool_after=(3, 1, 1, False)),
    ConvDef("conv6", 1024, padding=6, dilation=6),  # fc6, atrous
    ConvDef("conv7", 1024, kernel=1, padding=0),  # fc7
    ConvDef("conv8_1", 256, kernel=1, padding=0),
    ConvDef("conv8_2", 512, stride=2),
    ConvDef("conv9_1", 128, kernel=1, padding=0),
    ConvDef("conv9_2", 256, stride=2),
    ConvDef("conv10_1", 128, kernel=1, padding=0),
)

SSD300_CONVS = _VGG + (
    ConvDef("conv10_2", 256, padding=0),
    ConvDef("conv11_1", 128, kernel=1, padding=0),
    ConvDef("conv11_2", 256, padding=0),
)

SSD512_CONVS = _VGG + (
    ConvDef("conv10_2", 256, stride=2),
    ConvDef("conv11_1", 128, kernel=1, padding=0),
    ConvDef("conv11_2", 256, stride=2),
    ConvDef("conv12_1", 128, kernel=1, padding=0),
    ConvDef("conv12_2", 256, kernel=4, padding=1),
)


# VGG16 for 32x32 classification (CIFAR-10, GTSRB): the 13 convs with BN, a max-pool after
# blocks 1-4 (32 -> 2), a global average pool, then one linear classifier: the variant
# pruning papers use (network slimming, Liu et al. 2017).
VGG16_CLASSIFIER_CONVS = tuple(
    ConvDef(c.name, c.channels, pool_after=_POOL if c.name in ("conv1_2", "conv2_2", "conv3_3", "conv4_3") else None)
    for c in _VGG[:13]
)

DETECTION, CLASSIFICATION = "detection", "classification"


@dataclass(frozen=True)
class ModelFamily:
    """The constants of one architecture: an SSD variant (from the original SSD) or VGG16."""

    convs: tuple[ConvDef, ...]
    image_size: int
    task: str = DETECTION
    sources: tuple[str, ...] = ()  # detection sources, in order
    boxes: DefaultBoxes | None = None

    @property
    def extra_classes(self) -> int:
        """Outputs beyond the dataset's classes: the detector's background class."""
        return 1 if self.task == DETECTION else 0


FAMILIES: dict[str, ModelFamily] = {
    "ssd300": ModelFamily(
        convs=SSD300_CONVS,
        sources=("conv4_3", "conv7", "conv8_2", "conv9_2", "conv10_2", "conv11_2"),
        boxes=DefaultBoxes(
            aspect_ratios=((2,), (2, 3), (2, 3), (2, 3), (2,), (2,)),
            scales=(0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05),
            steps=(8, 16, 32, 64, 100, 300),
        ),
        image_size=300,
    ),
    "ssd512": ModelFamily(
        convs=SSD512_CONVS,
        sources=("conv4_3", "conv7", "conv8_2", "conv9_2", "conv10_2", "conv11_2", "conv12_2"),
        boxes=DefaultBoxes(
            aspect_ratios=((2,), (2, 3), (2, 3), (2, 3), (2, 3), (2,), (2,)),
            scales=(0.04, 0.1, 0.26, 0.42, 0.58, 0.74, 0.9, 1.06),
            steps=(8, 16, 32, 64, 128, 256, 512),
        ),
        image_size=512,
    ),
    "vgg16": ModelFamily(convs=VGG16_CLASSIFIER_CONVS, image_size=32, task=CLASSIFICATION),
}


def family(model: str) -> ModelFamily:
    try:
        return FAMILIES[model]
    except KeyError:
        raise ConfigError(f"model.name: unknown model {model!r}; choose one of {sorted(FAMILIES)}") from None


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
    """

    model: str
    num_classes: int  # outputs: a detector's include background
    widths: dict[str, int] = field(default_factory=dict)
    batch_norm: bool = False
    num_sources: int | None = None
    image_size: int | None = None

    def __post_init__(self) -> None:
        fam = family(self.model)
        k = self.num_sources if self.num_sources is not None else len(fam.sources)
        if fam.task == DETECTION and not 1 <= k <= len(fam.sources):
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
        if layer in self.sources:
            return [f"{layer}_loc", f"{layer}_conf"]
        if self.task == CLASSIFICATION and layer == self.convs[-1].name:
            return ["classifier"]
        return []

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
               num_sources: int | None = None, widths: dict[str, int] | None = None) -> ArchSpec:
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
                    batch_norm=batch_norm, num_sources=k)


@dataclass(frozen=True)
class ModelConfig:
    """The `model` section of params.yaml."""

    name: str = "ssd300"
    width: float = 1.0  # multiplies every layer's width (floor 4 channels)
    widths: dict[str, int] = field(default_factory=dict)  # explicit widths by layer; win over `width`
    batch_norm: bool = False  # BN during pretraining, folded into the convs before pruning

    def __post_init__(self) -> None:
        family(self.name)
        if not self.width > 0:
            raise ConfigError(f"model.width: must be > 0, got {self.width}")

    def to_spec(self, dataset_classes: int) -> ArchSpec:
        outputs = dataset_classes + family(self.name).extra_classes
        return build_spec(self.name, outputs, self.width, self.batch_norm, widths=self.widths)
