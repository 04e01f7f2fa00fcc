import pytest
import torch
from torch import nn

from mlprune.evaluation.profile import count_gflops, latency_image, median_ms
from mlprune.evaluation.tasks import TASKS
from mlprune.models.arch import build_spec
from mlprune.models.build import build_model
from mlprune.task_names import CLASSIFICATION, DETECTION


def test_conv_flops_are_two_per_multiply_accumulate() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)  # 4 out x 3 in x 3x3 taps at 8x8 outputs
    assert count_gflops(conv, 8) * 1e9 == pytest.approx(2 * 4 * 3 * 9 * 8 * 8)


def test_classifier_counts_the_whole_forward() -> None:
    model = build_model(build_spec("vgg16", 5, width=0.125))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    sizes = [32] * 2 + [16] * 2 + [8] * 3 + [4] * 3 + [2] * 3  # each conv's output side: pools halve it
    conv_flops = sum(2 * c.weight.numel() * s * s for c, s in zip(convs, sizes, strict=True))
    linear = 2 * model.classifier.weight.numel()
    gflops = count_gflops(model, 32, TASKS[CLASSIFICATION].network_forward)
    assert gflops * 1e9 == pytest.approx(conv_flops + linear, rel=1e-3)


def test_detector_counts_every_conv_of_backbone_and_heads(tiny_detector: nn.Module) -> None:
    """Measured independently with hooks: 2 * weights * output positions per conv, nothing else."""
    expected = []

    def record(conv, _inputs, output):
        expected.append(2 * conv.weight.numel() * output.shape[-2] * output.shape[-1])

    convs = [m for m in tiny_detector.modules() if isinstance(m, nn.Conv2d)]
    hooks = [conv.register_forward_hook(record) for conv in convs]
    with torch.no_grad():
        TASKS[DETECTION].network_forward(tiny_detector.eval(), torch.zeros(1, 3, 300, 300))
    for hook in hooks:
        hook.remove()
    assert len(expected) == len(convs)
    assert count_gflops(tiny_detector, 300, TASKS[DETECTION].network_forward) * 1e9 == pytest.approx(sum(expected))



def test_median_ms_times_only_the_runs_after_warmup() -> None:
    calls = []
    assert median_ms(lambda: calls.append(1), warmup=3, runs=5) >= 0
    assert len(calls) == 8


def test_latency_image_is_the_same_every_time() -> None:
    assert torch.equal(latency_image(8), latency_image(8)) and latency_image(8).shape == (3, 8, 8)
