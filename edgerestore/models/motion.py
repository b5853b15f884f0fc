"""Motion compensation in PyTorch: the warps the runtime does with OpenCV
(:mod:`edgerestore.runtime.motion`), differentiable, for training on clips.

``flow`` tensors are ``[N, 2, H, W]`` displacements in pixels of the tensor they move (x then y),
from the current frame to the previous one: ``out(p) = previous(p + flow(p))``, bilinear with
replicated borders, like ``cv2.remap(..., INTER_LINEAR, BORDER_REPLICATE)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``x`` ``[N, C, H, W]`` moved by ``flow`` ``[N, 2, H, W]``."""
    n, _, height, width = x.shape
    if flow.shape[-2:] != (height, width):
        raise ValueError("flow %s does not cover a tensor of %s" % (tuple(flow.shape), tuple(x.shape)))
    ys = torch.arange(height, dtype=x.dtype, device=x.device)
    xs = torch.arange(width, dtype=x.dtype, device=x.device)
    gx = (xs[None, None, :] + flow[:, 0]) * (2.0 / max(width - 1, 1)) - 1.0
    gy = (ys[None, :, None] + flow[:, 1]) * (2.0 / max(height - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def flow_at_stride(flow: torch.Tensor, stride: int) -> torch.Tensor:
    """A full-resolution flow as a flow of the grid at ``stride`` (its pixels are ``stride`` wide):
    the mean over each cell, in cell units (what the runtime's area resize of the map gives)."""
    if stride == 1:
        return flow
    return F.avg_pool2d(flow, stride) / stride
