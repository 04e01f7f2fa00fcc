"""Light stages import only what they use: importing torch costs ~1.3 s of CPU, torchvision
(which pulls in torch._dynamo) ~1.2 s more, on every stage start."""

import subprocess
import sys

import pytest


def modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize(("module", "absent"), [
    ("mlprune.dataset_check", "torchvision"),  # check-data decodes images with PIL
    ("mlprune.schedule", "torch"),  # training schedules are parsed by stages that never train
    ("mlprune.pipeline.report", "torch"),
])
def test_light_module_does_not_import(module, absent):
    loaded = modules_after_import(module)
    assert module in loaded
    assert absent not in loaded
