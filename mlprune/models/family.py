"""Model families: everything that differs between an SSD detector and a VGG16 classifier.

A family says what its models have: the conv table (paper names, network order), how
to build one from an `ArchSpec`, which layers read which channels (detection sources and
their loc/conf heads, or the classifier's linear layer), the per-channel scale after a
layer (conv4_3's L2Norm) and where each weight layer lives in the module tree. Surgery,
selection and sparsity ask the family instead of knowing either architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from torch import nn

from mlprune.errors import ConfigError
from mlprune.models.layers import SSD300_CONVS, SSD512_CONVS, VGG16_CLASSIFIER_CONVS, ConvDef, DefaultBoxes
from mlprune.models.vgg import VGGClassifier
from mlprune.task_names import CLASSIFICATION, DETECTION

if TYPE_CHECKING:
    from mlprune.models.arch import ArchSpec


@dataclass(frozen=True)
class ModelFamily:
    """What detectors and classifiers share: a VGG trunk at `backbone.convs.<paper name>`."""

    convs: tuple[ConvDef, ...]
    image_size: int

    sources: tuple[str, ...] = ()  # detection sources, in network order

    task: ClassVar[str] = ""
    extra_classes: ClassVar[int] = 0  # outputs beyond the dataset's classes
    normalised_layer: ClassVar[str | None] = None  # rescaled per channel before its heads

    def build(self, spec: ArchSpec, **options: Any) -> nn.Module:
        raise NotImplementedError

    def inference_options(self, model: nn.Module) -> dict[str, Any]:
        """The build options of `model` that a rebuilt copy must keep."""
        return {}

    def head_paths(self, spec: ArchSpec) -> dict[str, str]:
        """Module path of every weight layer after the trunk, by name."""
        raise NotImplementedError

    def heads_of(self, spec: ArchSpec, layer: str) -> list[str]:
        """The layers after the trunk that read `layer`'s output channels."""
        raise NotImplementedError

    def head_input(self, spec: ArchSpec, head: str) -> str:
        """The trunk conv whose channels `head` reads."""
        raise NotImplementedError

    def channel_scales(self, spec: ArchSpec) -> dict[str, str]:
        """State-dict keys of per-channel vectors that go with a layer's filters, to that layer."""
        return {}

    def layer_paths(self, spec: ArchSpec) -> dict[str, str]:
        """Module path of every weight layer: trunk convs in network order, then heads."""
        return {**{name: f"backbone.convs.{name}" for name in spec.conv_names}, **self.head_paths(spec)}


@dataclass(frozen=True)
class DetectorFamily(ModelFamily):
    """VGG16-SSD: loc/conf heads on each detection source; conv4_3 is L2-normalised first."""

    boxes: DefaultBoxes | None = None

    task: ClassVar[str] = DETECTION
    extra_classes: ClassVar[int] = 1  # the background class
    normalised_layer: ClassVar[str | None] = "conv4_3"
    DETECTOR_OPTIONS: ClassVar[tuple[str, ...]] = ("score_thresh", "nms_thresh", "detections_per_img")
    HEAD_KINDS: ClassVar[dict[str, str]] = {"loc": "regression_head", "conf": "classification_head"}

    def build(self, spec: ArchSpec, **options: Any) -> nn.Module:
        # Imported here: torchvision takes ~1.2 s to import, which stages that read a spec
        # or weights without building a detector (select, surgery, report) need not pay.
        from mlprune.models.ssd import build_ssd

        return build_ssd(spec, **options)

    def inference_options(self, model: nn.Module) -> dict[str, Any]:
        return {name: getattr(model, name) for name in self.DETECTOR_OPTIONS}

    def head_paths(self, spec: ArchSpec) -> dict[str, str]:
        return {f"{source}_{kind}": f"head.{module}.module_list.{i}"
                for kind, module in self.HEAD_KINDS.items() for i, source in enumerate(spec.sources)}

    def heads_of(self, spec: ArchSpec, layer: str) -> list[str]:
        return [f"{layer}_{kind}" for kind in self.HEAD_KINDS] if layer in spec.sources else []

    def head_input(self, spec: ArchSpec, head: str) -> str:
        return head.rsplit("_", 1)[0]

    def channel_scales(self, spec: ArchSpec) -> dict[str, str]:
        return {f"backbone.{self.normalised_layer}_norm.weight": self.normalised_layer}


@dataclass(frozen=True)
class ClassifierFamily(ModelFamily):
    """VGG16 for 32x32 images: a global average pool, then one linear layer on the last conv."""

    task: ClassVar[str] = CLASSIFICATION

    def build(self, spec: ArchSpec, **options: Any) -> nn.Module:
        return VGGClassifier(spec)

    def head_paths(self, spec: ArchSpec) -> dict[str, str]:
        return {"classifier": "classifier"}

    def heads_of(self, spec: ArchSpec, layer: str) -> list[str]:
        return ["classifier"] if layer == spec.conv_names[-1] else []

    def head_input(self, spec: ArchSpec, head: str) -> str:
        return spec.conv_names[-1]


FAMILIES: dict[str, ModelFamily] = {
    "ssd300": DetectorFamily(
        convs=SSD300_CONVS,
        image_size=300,
        sources=("conv4_3", "conv7", "conv8_2", "conv9_2", "conv10_2", "conv11_2"),
        boxes=DefaultBoxes(
            aspect_ratios=((2,), (2, 3), (2, 3), (2, 3), (2,), (2,)),
            scales=(0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05),
            steps=(8, 16, 32, 64, 100, 300),
        ),
    ),
    "ssd512": DetectorFamily(
        convs=SSD512_CONVS,
        image_size=512,
        sources=("conv4_3", "conv7", "conv8_2", "conv9_2", "conv10_2", "conv11_2", "conv12_2"),
        boxes=DefaultBoxes(
            aspect_ratios=((2,), (2, 3), (2, 3), (2, 3), (2, 3), (2,), (2,)),
            scales=(0.04, 0.1, 0.26, 0.42, 0.58, 0.74, 0.9, 1.06),
            steps=(8, 16, 32, 64, 128, 256, 512),
        ),
    ),
    "vgg16": ClassifierFamily(convs=VGG16_CLASSIFIER_CONVS, image_size=32),
}


def family(model: str) -> ModelFamily:
    try:
        return FAMILIES[model]
    except KeyError:
        raise ConfigError(f"model.name: unknown model {model!r}; choose one of {sorted(FAMILIES)}") from None
