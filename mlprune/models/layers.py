"""The paper's layer tables: VGG16-SSD300/512 and the VGG16 classifier, by paper name."""

from __future__ import annotations

from dataclasses import dataclass


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
