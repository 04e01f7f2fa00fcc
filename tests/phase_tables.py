"""The paper's phase tables, as the presets in configs/ state them."""

from pipeline_helpers import ROOT

from mlprune.presets import resolve_preset

PRESET_OF = {"ssd300": "ssd300_voc", "ssd512": "ssd512_voc", "vgg16": "vgg16_cifar10"}


def paper_phases(model: str) -> list[list[str]]:
    """The layers of each phase of the paper preset for `model`, in order."""
    params = resolve_preset(PRESET_OF[model], ROOT / "configs")
    return [phase["layers"] for phase in params["phases"].values()]
