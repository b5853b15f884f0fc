"""FFDNet (Zhang, Zuo, Zhang, TIP 2018), colour: the real pretrained denoiser we distil the noise part from.

Twelve 3x3 convolutions (ReLU after all but the last) on the frame folded by space-to-depth 2 in
MatConvNet's order, plus a 13th input channel holding the noise level ``sigma / 255``; the output is
the clean picture. ``ffdnet(sigma=10)`` is a ``module:`` teacher factory:

    edgerestore distill DATA --teacher module:edgerestore.models.ffdnet:ffdnet \\
        --set teacher.weights=../shared/teachers/ffdnet_color.pth --set 'teacher.kwargs={sigma: 10}'
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# MatConvNet's space-to-depth: within each colour, offsets (row, col) (0,0), (1,0), (0,1), (1,1).
OFFSETS = ((0, 0), (1, 0), (0, 1), (1, 1))


def fold(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` (H, W even) -> ``[B, 4C, H/2, W/2]``, colour-major, MatConvNet's offset order."""
    return torch.cat([x[:, c:c + 1, r::2, q::2] for c in range(x.shape[1]) for r, q in OFFSETS], dim=1)


def unfold(y: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`fold`."""
    b, c4, h, w = y.shape
    out = y.new_zeros(b, c4 // 4, 2 * h, 2 * w)
    for index in range(c4):
        r, q = OFFSETS[index % 4]
        out[:, index // 4, r::2, q::2] = y[:, index]
    return out


class FFDNet(nn.Module):
    """Colour FFDNet; input and output float RGB NCHW in ``[0, 1]`` (any size: odd sizes are padded)."""

    def __init__(self, sigma: float = 10.0, channels: int = 96, layers: int = 12):
        super().__init__()
        self.sigma = float(sigma)
        self.body = nn.Module()
        widths = [13] + [channels] * (layers - 1) + [12]
        for i in range(layers):
            setattr(self.body, "conv%d" % i, nn.Conv2d(widths[i], widths[i + 1], 3, padding=1))
        self.layers = layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        y = fold(x)
        level = torch.full_like(y[:, :1], self.sigma / 255.0)
        y = torch.cat([y, level], dim=1)
        for i in range(self.layers):
            y = getattr(self.body, "conv%d" % i)(y)
            if i < self.layers - 1:
                y = F.relu(y)
        return unfold(y)[..., :h, :w]


def ffdnet(sigma: float = 10.0) -> FFDNet:
    """The ``module:`` teacher factory (load ``teachers/ffdnet_color.pth`` with ``teacher.weights``)."""
    return FFDNet(sigma=sigma)
