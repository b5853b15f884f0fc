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
* **Temporal students** (``config.temporal``) are recurrent. Their state is the previous output
  frame and the previous frame's low-resolution head features. Those are mixed into the new
  frame's through a 1x1 convolution (cheap: at ``1/s`` resolution), and a transposed convolution
  predicts a gate ``g`` in ``(0, 1)`` per 2x2 pixels that blends the previous output into the new
  one, ``out = r + g * (previous - r)`` with ``r`` the frame-by-frame result. Noise and codec
  artefacts change every frame; where the picture holds still the gate opens and the output stops
  flickering, where it moves the gate closes. The blend is at full resolution on purpose: a
  correction through the tail has at most ``width`` degrees of freedom per ``s x s`` patch (of
  ``3 s²`` values), so it can only cancel the part of fresh per-pixel noise that falls in that
  subspace; the gate can pass the previous output's pixels through. With ``config.agreement``
  the gate's logit also gets ``a*d + b*d²`` (two learned numbers), ``d`` the mean absolute
  difference of the frame and the previous output per ``s x s`` block: features alone cannot tell
  whether the previous output still fits the picture. What each piece costs at 1080p:
  docs/temporal.md.

The layers are plain convolutions only (no reshapes or transposes of full-resolution tensors),
because ONNX Runtime spends 10-25 ms per 1080p frame on each such rearrangement on this machine.
The network works on float RGB in ``[0, 1]``, NCHW; the uint8 NHWC contract of the runtime is
added at export time (:mod:`edgerestore.export.onnx`).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgerestore.codecinput import FIELDS as CODEC_FIELDS
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


def high_pass(size: int) -> nn.Conv2d:
    """A depthwise ``size x size`` filter per colour starting as ``delta - binomial``: the frame minus
    its blur (zero padding: the network learns what a border does)."""
    row = torch.tensor([float(math.comb(size - 1, k)) for k in range(size)])
    kernel = torch.outer(row, row) / row.sum() ** 2
    kernel = -kernel
    kernel[size // 2, size // 2] += 1.0
    conv = nn.Conv2d(3, 3, size, padding=size // 2, groups=3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(kernel.expand(3, 1, size, size))
    return conv


class FilterBasis(nn.Module):
    """``sum_i w_i * h_i(x)``: full-resolution high-pass responses ``h_i`` of the frame, weighted per
    pixel by ``w_i`` from the features (one transposed convolution each, zero at the start)."""

    def __init__(self, width: int, scale: int, count: int):
        super().__init__()
        if count not in (1, 2):
            raise ValueError("filter_bases is 0, 1 (3x3) or 2 (3x3 and 5x5), got %d" % count)
        self.filters = nn.ModuleList([high_pass(size) for size in (3, 5)[:count]])
        self.weights = nn.ModuleList([nn.ConvTranspose2d(width, 1, scale, stride=scale, bias=False)
                                      for _ in range(count)])
        for weights in self.weights:
            nn.init.zeros_(weights.weight)

    def forward(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return weighted_responses(self.filters, self.weights, x, features)


BANK_SIZE = 9
"""Side of an oriented bank's filters (``config.oriented_bank``): a 6-px line blur and its margin."""

BANK_LINE = 6.0
"""Length (px) of the line blur each oriented filter starts from."""


class OrientedBank(nn.Module):
    """``sum_i w_i * h_i(luma)`` added to every colour: full-resolution filters of the frame's luma
    starting as ``delta - line blur`` at ``count`` evenly spaced angles (one step of Van Cittert
    deconvolution along that direction), weighted per pixel by ``w_i`` from the features (one
    transposed convolution, zero at the start)."""

    def __init__(self, width: int, scale: int, count: int):
        super().__init__()
        from edgerestore.distill.degrade import linear_kernel

        self.filters = nn.Conv2d(1, count, BANK_SIZE, padding=BANK_SIZE // 2, bias=False)
        with torch.no_grad():
            for i in range(count):
                line = torch.from_numpy(linear_kernel(BANK_LINE, 180.0 * i / count))
                kernel = -line
                kernel[BANK_SIZE // 2, BANK_SIZE // 2] += 1.0
                self.filters.weight[i, 0].copy_(kernel)
        self.weights = nn.ConvTranspose2d(width, count, scale, stride=scale, bias=False)
        nn.init.zeros_(self.weights.weight)

    def forward(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        luma = x.mean(1, keepdim=True)
        return (self.weights(features) * self.filters(luma)).sum(1, keepdim=True)


def weighted_responses(filters, weights, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """``sum_i weights_i(features) * filters_i(x)`` (the student's filter bases, and the export
    graphs' versions of them in other layouts)."""
    out = None
    for filt, weight in zip(filters, weights):
        term = weight(features) * filt(x)
        out = term if out is None else out + term
    return out


Level = Union[float, torch.Tensor]
"""A ``level_input`` student's noise level: one number for the batch, or ``[B]``. The unit is 10
levels of 255 of sensor noise at mid-grey (:mod:`edgerestore.noiselevel`); 0 = a clean frame."""


def as_level(level: Level, x: torch.Tensor) -> torch.Tensor:
    """``level`` as a ``[B]`` or ``[1]`` float tensor on ``x``'s device."""
    return torch.as_tensor(level, dtype=x.dtype, device=x.device).reshape(-1)


State = Tuple[torch.Tensor, torch.Tensor]
"""A temporal student's state between frames: (previous output, hidden features)."""


AGREEMENT_UNIT = 16.0
"""Levels (of 255) per unit of a temporal student's disagreement ``d``."""


def disagreement(x: torch.Tensor, previous: torch.Tensor, scale: int) -> torch.Tensor:
    """Mean ``|x - previous|`` over each ``scale x scale`` block and the colours, in units of
    :data:`AGREEMENT_UNIT` levels: ``[B,3,H,W]`` (0..1) x2 -> ``[B,1,H/scale,W/scale]``."""
    return F.avg_pool2d((x - previous).abs().mean(1, keepdim=True), scale) * (255.0 / AGREEMENT_UNIT)


def hand_set_gate(open_: float, tau: float) -> Tuple[float, float, float]:
    """``(bias, a, b)`` such that ``sigmoid(bias + a*d + b*d²)`` is close to the hand-set gate
    ``open_ * exp(-(d*AGREEMENT_UNIT / tau)^2)`` (within 0.02 for ``open_`` 0.9): a quadratic fitted to
    its logit over ``d`` in ``[0, 2 tau]``, weighted by the sigmoid's slope (where the fit matters)."""
    if not 0.0 < open_ < 1.0 or tau <= 0.0:
        raise ValueError("the initial gate needs 0 < gate_open < 1 and gate_tau > 0 (got %g, %g)" % (open_, tau))
    d = np.linspace(0.0, 2.0 * tau / AGREEMENT_UNIT, 64)
    gate = open_ * np.exp(-((d * AGREEMENT_UNIT / tau) ** 2))
    b, a, bias = np.polyfit(d, np.log(gate / (1.0 - gate)), 2, w=gate * (1.0 - gate))
    return float(bias), float(a), float(b)


class StudentNet(nn.Module):
    """Patchify residual CNN; input and output are float RGB NCHW in ``[0, 1]``."""

    def __init__(self, config: StudentConfig):
        super().__init__()
        self.config = config
        s, c = config.scale, config.width
        self.head = nn.Conv2d(3, c, s, stride=s)
        self.act = nn.ReLU(inplace=True)
        self.body = nn.Sequential(*[ResBlock(c) for _ in range(config.blocks)])
        self.context = (
            ContextBranch(c, config.context_width, config.context_blocks)
            if config.context_width > 0
            else nn.Identity()
        )
        if config.filter_bases:
            if config.temporal:
                raise ValueError("filter_bases is for frame-by-frame students")
            self.bases = FilterBasis(c, s, config.filter_bases)
        if config.oriented_bank:
            if config.temporal:
                raise ValueError("oriented_bank is for frame-by-frame students")
            self.bank = OrientedBank(c, s, config.oriented_bank)
        # No bias: a per-channel constant correction is not worth a full-resolution add at export.
        self.tail = nn.ConvTranspose2d(c, 3, s, stride=s, bias=False)
        nn.init.zeros_(self.tail.weight)  # start as the identity
        if config.level_input:
            if config.temporal:
                raise ValueError("level_input is for frame-by-frame students")
            # The head's pre-activation gets this per-channel bias times the frame's noise level:
            # what a level plane as a fourth input channel would give the stride-scale head. Zero at
            # the start: the same network.
            self.level_head = nn.Parameter(torch.zeros(c))
        if config.codec_input:
            if config.temporal:
                raise ValueError("codec_input is for frame-by-frame students")
            # The same for the codec's two strengths (edgerestore.codecinput): zero at the start.
            self.codec_head = nn.Parameter(torch.zeros(len(CODEC_FIELDS), c))
        if config.blur_input:
            if config.temporal:
                raise ValueError("blur_input is for frame-by-frame students")
            self.blur_head = nn.Parameter(torch.zeros(3, c))  # the blur descriptor's biases: zero at the start
        if config.gate_open > 0.0 and not (config.temporal and config.agreement):
            raise ValueError("gate_open sets where the agreement gate starts: it needs temporal and agreement")
        if config.temporal:
            if s % 2:
                raise ValueError("temporal students need an even scale (their gate is per 2x2 pixels)")
            # The previous frame's features, mixed into this frame's (zero at the start: a fresh
            # temporal student's features are the frame-by-frame ones).
            self.mix = nn.Conv2d(c, c, 1, bias=False)
            nn.init.zeros_(self.mix.weight)
            # One gate per 2x2 pixels, shared by the colours; starts nearly closed (sigmoid(-2) =
            # 0.12). Finer gates cost full-resolution transposed convolutions (docs/temporal.md).
            self.gate = nn.ConvTranspose2d(c, 1, 2, stride=2, bias=False)
            self.gate_bias = nn.Parameter(torch.tensor(-2.0))
            nn.init.zeros_(self.gate.weight)
            if config.agreement:
                # logit += a*d + b*d², d in units of AGREEMENT_UNIT levels; starts as -(d/16)²
                self.agreement = nn.Parameter(torch.tensor([0.0, -1.0]))
                if config.gate_open > 0.0:  # or as the hand-set gate
                    bias, a, b = hand_set_gate(config.gate_open, config.gate_tau)
                    with torch.no_grad():
                        self.gate_bias.fill_(bias)
                        self.agreement.copy_(torch.tensor([a, b]))
                self.constrain()
            if not config.gate_learned:
                for parameter in self.gate_parameters():
                    parameter.requires_grad_(False)

    def gate_parameters(self):
        """The weights that decide the gate (none for a frame-by-frame student)."""
        if not self.config.temporal:
            return []
        return [self.gate.weight, self.gate_bias] + ([self.agreement] if self.config.agreement else [])

    def constrain(self) -> None:
        """Keep the weights where they mean what they say (the trainer calls this after every step):
        the agreement term ``a*d + b*d²`` never rises with ``d`` (``a, b <= 0``), so a previous
        output far off the frame never reopens the gate. Unconstrained, a `nano-t` started from the
        hand-set gate had learnt ``b > 0`` 1,700 steps in: shut at 37 levels apart, open again past 74,
        which the training clips hardly reach and an occlusion the flow missed does."""
        if self.config.temporal and self.config.agreement:
            with torch.no_grad():
                self.agreement.clamp_(max=0.0)

    @property
    def stride(self) -> int:
        return self.config.stride

    @property
    def temporal(self) -> bool:
        return self.config.temporal

    def features(self, x: torch.Tensor, hidden: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Low-resolution features before the tail (what feature distillation matches)."""
        return self._features(self.act(self.head(x)), hidden)

    def _features(self, head: torch.Tensor, hidden: Optional[torch.Tensor]) -> torch.Tensor:
        if hidden is not None:
            head = head + self.mix(hidden)
        return self.context(self.body(head))

    def step(self, x: torch.Tensor, state: Optional[State] = None, level: Optional[Level] = None,
             codec: Optional[torch.Tensor] = None, blur: Optional[torch.Tensor] = None
             ) -> Tuple[torch.Tensor, Optional[State]]:
        """One frame: ``(restored, new state)``. ``state`` is ``None`` for the first frame of a
        stream (or after a cut); frame-by-frame students have no state. ``level``: the frames' noise
        level (:data:`Level`) for a ``level_input`` student (others ignore it); ``None`` reads as 0.
        ``codec``: a ``codec_input`` student's ``[B, 2]`` (or ``[2]``) codec strengths
        (:mod:`edgerestore.codecinput`); ``None`` reads as an uncompressed frame. ``blur``: a
        ``blur_input`` student's ``[B, 3]`` blur descriptors; ``None`` reads as no blur.

        The hidden state is the frame's head features *before* the previous frame's were mixed in:
        one frame of memory, no feedback loop. (Feeding back the mixed features drifted: a
        ``nano-t`` trained on 5-frame clips lost 1-6 dB from frame 10 on of a 31-frame real clip;
        the output blend, a convex combination, is the only recurrence and cannot run away.)
        """
        head = self.head(x)
        if self.config.level_input and level is not None:
            head = head + as_level(level, x).view(-1, 1, 1, 1) * self.level_head.view(1, -1, 1, 1)
        if self.config.codec_input and codec is not None:
            strengths = torch.as_tensor(codec, dtype=x.dtype, device=x.device).reshape(-1, len(CODEC_FIELDS))
            head = head + (strengths @ self.codec_head)[:, :, None, None]
        if self.config.blur_input and blur is not None:
            described = torch.as_tensor(blur, dtype=x.dtype, device=x.device).reshape(-1, 3)
            head = head + (described @ self.blur_head)[:, :, None, None]
        head = self.act(head)
        if not self.config.temporal:
            features = self._features(head, None)
            out = x + self.tail(features)
            if self.config.filter_bases:
                out = out + self.bases(x, features)
            if self.config.oriented_bank:
                out = out + self.bank(x, features)
            return out, None
        previous, hidden = state if state is not None else (x, None)
        features = self._features(head, hidden)
        restored = x + self.tail(features)
        # The blend mixes pictures, as the exported graphs do (they blend the uint8 frame): clamped to
        # [0, 1], with the gradient of the unclamped values so the loss still sees an overshoot.
        restored = restored + (restored.clamp(0.0, 1.0) - restored).detach()
        logits = self.gate(features) + self.gate_bias
        if self.config.agreement:
            d = disagreement(x, previous, self.config.scale)
            logits = logits + F.interpolate(self.agreement[0] * d + self.agreement[1] * d * d, scale_factor=2)
        gate = torch.sigmoid(logits)
        gate = F.interpolate(gate, scale_factor=self.config.scale // 2, mode="nearest")
        out = restored + gate * (previous - restored)
        return out, (out, head)

    def forward(self, x: torch.Tensor, state: Optional[State] = None, level: Optional[Level] = None,
                codec: Optional[torch.Tensor] = None, blur: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Restore ``x`` (a temporal student: given its state after the previous frame, ``None``
        = first frame; a ``level_input`` student: given the noise ``level``; a ``codec_input`` one
        the ``codec`` strengths; a ``blur_input`` one the ``blur`` descriptors); :meth:`step` also
        returns the new state."""
        return self.step(x, state, level, codec, blur)[0]

    def scale_residual(self, strength: float) -> None:
        """Multiply the correction by ``strength`` (in place): the tail, the filter-basis and the
        oriented bank's weights are the only layers after the features, and the correction is linear in each, so the
        output becomes ``x + strength * (f(x) - x)`` (a temporal student's before its blend) with
        the same graph and the same speed."""
        if not 0.0 <= strength <= 1.0:
            raise ValueError("strength is between 0 (the identity) and 1 (unchanged), got %g" % strength)
        with torch.no_grad():
            self.tail.weight.mul_(strength)
            if self.config.filter_bases:
                for weights in self.bases.weights:
                    weights.weight.mul_(strength)
            if self.config.oriented_bank:
                self.bank.weights.weight.mul_(strength)
