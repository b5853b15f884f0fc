"""The student network: cheap enough for a Raspberry Pi, shaped for what real-time restoration needs.

Design (the measurements behind each choice are in README, "Student design"):

* **Patchify first.** The first layer is a ``s x s`` convolution with stride ``s`` (the same as
  space-to-depth followed by a 1x1 convolution), so every later convolution runs on ``1/s**2`` of
  the pixels. That keeps the multiply-accumulates per output pixel (MACs/px) low while the layers
  stay wide enough for CPU/GPU kernels to run near their peak, and each 3x3 convolution sees a
  ``3s x 3s`` window of the frame, which deblurring needs.
* **A few 3x3 convolutions with ReLU** (ReLU quantizes well to INT8 and every backend fuses it),
  grouped as residual blocks of two convolutions.
* **An optional context branch** at twice the stride that widens the receptive field for
  camera-shake blur at a quarter of the cost per channel.
* **Un-patchify and a global residual**: a transposed convolution with kernel = stride ``s`` (the
  same as a 1x1 convolution followed by depth-to-space) predicts the correction to the input frame,
  so an untrained student is the identity and a weak one degrades gracefully towards it.
* **Temporal students** (``config.temporal``) are recurrent: the patchify head also sees the
  student's own previous output (3 more input channels), and a second transposed convolution
  predicts a per-pixel (and per-colour) gate ``g`` in ``(0, 1)`` that blends that previous output into the new one,
  ``out = r + g * (previous - r)`` with ``r`` the frame-by-frame result. Noise and codec artefacts
  change every frame; where the picture holds still the gate opens and the output stops
  flickering, where it moves the gate closes. The blend is at full resolution on purpose: a
  correction through the tail has at most ``width`` degrees of freedom per ``s x s`` patch and
  cannot average away per-pixel noise (measured in docs/temporal.md). The previous output is
  the whole state (uint8 at export): no hidden tensors to carry, reset = feed the current frame.

The layers are plain convolutions only (no reshapes or transposes of full-resolution tensors),
because ONNX Runtime spends 10-25 ms per 1080p frame on each such rearrangement on this machine.
The network works on float RGB in ``[0, 1]``, NCHW; the uint8 NHWC contract of the runtime is
added at export time (:mod:`edgerestore.export.onnx`).
"""

from __future__ import annotations

import torch
from torch import nn

from edgerestore.models.config import StudentConfig


class ResBlock(nn.Module):
    """conv3x3 -> ReLU -> conv3x3, plus the input."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class ContextBranch(nn.Module):
    """Features at half the resolution of the body, added back: a wider receptive field."""

    def __init__(self, width: int, context_width: int, blocks: int):
        super().__init__()
        self.down = nn.Conv2d(width, context_width, 2, stride=2)
        self.act = nn.ReLU(inplace=True)
        self.body = nn.Sequential(*[ResBlock(context_width) for _ in range(blocks)])
        self.up = nn.ConvTranspose2d(context_width, width, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.body(self.act(self.down(x))))


class StudentNet(nn.Module):
    """Patchify residual CNN; input and output are float RGB NCHW in ``[0, 1]``."""

    def __init__(self, config: StudentConfig):
        super().__init__()
        self.config = config
        s, c = config.scale, config.width
        in_channels = 6 if config.temporal else 3
        self.head = nn.Conv2d(in_channels, c, s, stride=s)
        if config.temporal:
            # One gate per pixel and colour (a gate shared by the colours would need a broadcast
            # multiply at full resolution: 26 ms per 1080p frame in ONNX Runtime here, more than
            # the per-colour gate's extra MACs). Starts nearly closed (sigmoid(-2) = 0.12): a fresh
            # temporal student is the frame-by-frame one plus a little smoothing.
            # One bias for all colours: the exported graphs write the three colours of a pixel
            # side by side in one channel, which has one bias.
            self.gate = nn.ConvTranspose2d(c, 3, s, stride=s, bias=False)
            self.gate_bias = nn.Parameter(torch.tensor(-2.0))
            nn.init.zeros_(self.gate.weight)
        self.act = nn.ReLU(inplace=True)
        self.body = nn.Sequential(*[ResBlock(c) for _ in range(config.blocks)])
        self.context = (
            ContextBranch(c, config.context_width, config.context_blocks)
            if config.context_width > 0
            else nn.Identity()
        )
        # No bias: a per-channel constant correction is not worth a full-resolution add at export.
        self.tail = nn.ConvTranspose2d(c, 3, s, stride=s, bias=False)
        nn.init.zeros_(self.tail.weight)  # start as the identity

    @property
    def stride(self) -> int:
        return self.config.stride

    @property
    def temporal(self) -> bool:
        return self.config.temporal

    def features(self, x: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        """Low-resolution features before the tail (what feature distillation matches)."""
        if self.config.temporal:
            x = torch.cat([x, x if previous is None else previous], dim=1)
        return self.context(self.body(self.act(self.head(x))))

    def forward(self, x: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        """Restore ``x``; a temporal student also takes its previous output (``None``: the first
        frame of a stream or after a cut, which is the same as passing ``x``)."""
        features = self.features(x, previous)
        restored = x + self.tail(features)
        if not self.config.temporal:
            return restored
        previous = x if previous is None else previous
        gate = torch.sigmoid(self.gate(features) + self.gate_bias)
        return restored + gate * (previous - restored)
