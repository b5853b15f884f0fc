"""Exact multiply-accumulate counts, read off the layers while a frame passes through.

The budgets of the presets are in MACs per output pixel (MACs/px): a 1080p frame at 250 MACs/px
costs 0.52 GMAC. Only the layers that do the work are counted (convolutions, transposed
convolutions and linear layers); bias adds, activations, reshapes and the global
residual are a few operations per pixel and are left out, as every MAC counter does.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_macs(module: nn.Conv2d, output: torch.Tensor) -> int:
    kh, kw = module.kernel_size
    return output.numel() * (module.in_channels // module.groups) * kh * kw


def _conv_transpose_macs(module: nn.ConvTranspose2d, inputs: torch.Tensor) -> int:
    kh, kw = module.kernel_size
    return inputs.numel() * (module.out_channels // module.groups) * kh * kw


def count_macs(model: nn.Module, height: int = 256, width: int = 256, **forward_kwargs) -> int:
    """Total MACs of one forward pass on a ``1x3xHxW`` frame."""
    total = 0

    def on_forward(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += _conv_macs(module, output)
        elif isinstance(module, nn.ConvTranspose2d):
            total += _conv_transpose_macs(module, inputs[0])
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    device = next(model.parameters()).device
    x = torch.zeros(1, 3, height, width, device=device)
    if getattr(model, "temporal", False) and "state" not in forward_kwargs:
        # a recurrent student's steady state: the frame after a first one (the first skips the
        # mixing of the previous features)
        with torch.no_grad():
            forward_kwargs = dict(forward_kwargs, state=model.step(x)[1])
    handles = [m.register_forward_hook(on_forward) for m in model.modules()]
    try:
        with torch.no_grad():
            model(x, **forward_kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return total


def macs_per_pixel(model: nn.Module, height: int = 256, width: int = 256) -> float:
    """MACs per output pixel, measured at ``height x width`` (a multiple of the model's stride)."""
    return count_macs(model, height, width) / float(height * width)
