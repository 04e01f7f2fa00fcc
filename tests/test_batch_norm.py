"""The channels-last BatchNorm2d matches nn.BatchNorm2d: outputs, gradients, running stats."""

import pytest
import torch
from torch import nn

from mlprune.models.batch_norm import FEW_CHANNELS, BatchNorm2d


def _pair(channels: int, momentum: float | None) -> tuple[nn.BatchNorm2d, BatchNorm2d]:
    reference = nn.BatchNorm2d(channels, momentum=momentum)
    with torch.no_grad():
        reference.weight.uniform_(0.5, 2.0)
        reference.bias.normal_()
    ours = BatchNorm2d(channels, momentum=momentum)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def _step(norm: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_()
    y = norm(x)
    return (y, *torch.autograd.grad(y, (x, norm.weight, norm.bias), grad))


@pytest.mark.parametrize("shape", [(4, 6, 10, 10), (2, 12, 7, 9), (3, 3, 5, 5), (2, 24, 1, 3)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_channels_last_training_matches_batchnorm2d(shape, momentum):
    torch.manual_seed(0)
    reference, ours = _pair(shape[1], momentum)
    for _ in range(3):  # running stats over several batches; a large mean must not cancel the variance
        x = (torch.randn(shape) * 3 + 50).to(memory_format=torch.channels_last)
        grad = torch.randn(shape)
        expected, got = _step(reference, x, grad), _step(ours, x, grad)
        for e, g in zip(expected, got, strict=True):
            torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)
    assert got[0].is_contiguous(memory_format=torch.channels_last)
    for name, buffer in reference.named_buffers():
        torch.testing.assert_close(dict(ours.named_buffers())[name], buffer)


def test_the_fast_path_is_taken_only_where_it_applies():
    norm = BatchNorm2d(6)
    nhwc = torch.randn(2, 6, 8, 8).to(memory_format=torch.channels_last)
    assert norm._fast_path(nhwc)
    assert not norm._fast_path(nhwc.contiguous())
    assert not norm._fast_path(nhwc.bfloat16())
    wide = torch.randn(2, FEW_CHANNELS, 8, 8).to(memory_format=torch.channels_last)
    assert not BatchNorm2d(FEW_CHANNELS)._fast_path(wide)
    assert not norm.eval()._fast_path(nhwc)
