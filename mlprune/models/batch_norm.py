"""BatchNorm2d with a fast CPU training path for channels-last activations of few channels.

ATen's CPU batch norm vectorises an NHWC tensor along its channels. At 6-24 channels (the
first VGG blocks of the narrow defaults) most vector lanes are idle, and its forward plus
backward takes 3-4x as long as on the same tensor in NCHW: a third of a channels-last
training step. The NHWC memory of N*H*W rows of C channels is contiguous, so it can be
read as rows of k*C values (k rows side by side, k*C >= 64) and reduced over those rows
at full vector width, each channel then summing its k lanes.
"""

from __future__ import annotations

import torch
from torch import nn

FEW_CHANNELS = 32  # at 48 channels ATen's own NHWC path is as fast as NCHW (2 cores, fp32)
LANE_WIDTH = 64  # values per row of the reshaped view


def _lanes(channels: int, positions: int) -> int:
    """How many NHWC rows to lay side by side: up to LANE_WIDTH values, dividing `positions`."""
    k = 1
    while k * channels < LANE_WIDTH and positions % (2 * k) == 0:
        k *= 2
    return k


def _rows(x: torch.Tensor, k: int) -> torch.Tensor:
    """The channels-last memory of `x` as a [N*H*W/k, k*C] matrix (a view, no copy)."""
    return x.permute(0, 2, 3, 1).reshape(-1, k * x.shape[1])


def _values_per_channel(x: torch.Tensor) -> int:
    return x.numel() // x.shape[1]


def _channel_sums(rows: torch.Tensor, k: int) -> torch.Tensor:
    return rows.sum(0).view(k, -1).sum(0)


def _as_nhwc(rows: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    n, c, h, w = shape
    return rows.view(n, h, w, c).permute(0, 3, 1, 2)


class _ChannelsLastBatchNorm(torch.autograd.Function):
    """Training-mode batch norm of an NHWC float32 tensor; returns (y, mean, biased var).

    Two passes (mean, then the centred squares) like ATen's, not E[x^2] - E[x]^2, so a
    large mean does not cancel the variance away."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float):
        count = _values_per_channel(x)
        k = _lanes(x.shape[1], count)
        rows = _rows(x, k)
        mean = _channel_sums(rows, k) / count
        centred = rows - mean.repeat(k)
        var = _channel_sums(centred * centred, k) / count
        invstd = torch.rsqrt(var + eps)
        y = torch.empty_like(x)  # channels-last like x; written through its row view
        torch.addcmul(bias.repeat(k), centred, (weight * invstd).repeat(k), out=_rows(y, k))
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.mark_non_differentiable(mean, var)
        ctx.k = k
        return y, mean, var

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor, _grad_mean, _grad_var):
        x, weight, mean, invstd = ctx.saved_tensors
        k = ctx.k
        rows = _rows(x, k)
        grad = grad_y.permute(0, 2, 3, 1).reshape(rows.shape)
        count = _values_per_channel(x)
        centred = rows - mean.repeat(k)
        grad_bias = _channel_sums(grad, k)
        grad_weight = _channel_sums(grad * centred, k) * invstd  # sum of grad * x_hat
        # dx = w * invstd * (grad - mean(grad) - x_hat * mean(grad * x_hat))
        scale = weight * invstd
        per_centred = -scale * invstd * grad_weight / count
        grad_x = torch.addcmul((-scale * grad_bias / count).repeat(k), centred, per_centred.repeat(k))
        grad_x.addcmul_(grad, scale.repeat(k))
        return _as_nhwc(grad_x, x.shape), grad_weight, grad_bias, None


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d (same parameters, buffers and state_dict keys) that trains channels-last
    float32 CPU activations of fewer than FEW_CHANNELS channels through the row view above.
    Everything else (eval mode, NCHW, bf16, CUDA, no affine) is nn.BatchNorm2d's own path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._fast_path(x):
            return super().forward(x)
        y, mean, var = _ChannelsLastBatchNorm.apply(x, self.weight, self.bias, self.eps)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), count=_values_per_channel(x))
        return y

    def _fast_path(self, x: torch.Tensor) -> bool:
        return (self.training and self.affine and x.device.type == "cpu" and x.dtype == torch.float32
                and x.dim() == 4 and x.shape[1] < FEW_CHANNELS and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last))

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        """nn.BatchNorm2d's update: momentum, or a cumulative average when momentum is None;
        the running variance is the unbiased one."""
        self.num_batches_tracked.add_(1)
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(var * (count / max(count - 1, 1)), factor)
