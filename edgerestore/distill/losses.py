"""Losses of distillation: pixel distances to the ground truth and to the teacher, MS-SSIM, a
frequency-domain distance and feature matching through 1x1 adapters.

:class:`DistillLoss` combines them with the weights of ``loss.*`` in the config and returns the
total plus every weighted term (for the logs). All inputs are float NCHW in ``[0, 1]``.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from edgerestore.models.motion import warp

# Weights of the five scales of MS-SSIM (Wang, Simoncelli & Bovik, 2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def charbonnier(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean of ``sqrt((x - y)^2 + eps^2)``: L1 that is smooth at 0."""
    return torch.sqrt((x - y) ** 2 + eps * eps).mean()


def l1(x: torch.Tensor, y: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    return (x - y).abs().mean()


PIXEL_LOSSES = {"charbonnier": charbonnier, "l1": l1}


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2 * sigma * sigma))
    g = g / g.sum()
    return g.view(1, 1, 1, size).repeat(channels, 1, 1, 1)


def _blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter per channel, 'valid' borders."""
    channels = x.shape[1]
    x = F.conv2d(x, window, groups=channels)
    return F.conv2d(x, window.transpose(2, 3), groups=channels)


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(SSIM, contrast-structure) per image, averaged over channels and pixels."""
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = _blur(x, window), _blur(y, window)
    var_x = _blur(x * x, window) - mu_x**2
    var_y = _blur(y * y, window) - mu_y**2
    cov = _blur(x * y, window) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Multi-scale SSIM of images in [0, 1] (mean over the batch).

    Uses as many of the five standard scales as the images allow (a scale needs at least
    ``window_size`` pixels), with the standard weights renormalised over those scales.
    """
    levels = max(1, min(len(MS_SSIM_WEIGHTS), int(math.log2(min(x.shape[-2:]) / window_size)) + 1))
    weights = torch.tensor(MS_SSIM_WEIGHTS[:levels], device=x.device, dtype=x.dtype)
    weights = weights / weights.sum()
    window = _gaussian_window(min(window_size, *x.shape[-2:]), sigma, x.shape[1], x.device, x.dtype)
    factors = []
    for level in range(levels):
        ssim, cs = _ssim_terms(x, y, window)
        if level == levels - 1:
            factors.append(ssim.clamp(min=1e-6))
        else:
            factors.append(cs.clamp(min=1e-6))
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stacked = torch.stack(factors, dim=1)  # (N, levels)
    return torch.prod(stacked ** weights, dim=1).mean()


def frequency_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 distance of the orthonormal 2-D Fourier transforms (real and imaginary parts): it
    weighs the fine detail that pixel losses average away."""
    fx, fy = torch.fft.rfft2(x, norm="ortho"), torch.fft.rfft2(y, norm="ortho")
    return (fx - fy).abs().mean()


# The MSE floor of :func:`harm_loss` (50 dB): a clean crop returned at 45 dB counts as 6.2 dB lost.
HARM_FLOOR = 1e-5


def harm_loss(output: torch.Tensor, clean: torch.Tensor, degraded: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """Mean over the batch of ``max(0, dB lost + margin)``, where the dB lost by a crop is
    ``10 log10((mse(output, clean) + f) / (mse(degraded, clean) + f))`` with the floor ``f`` =
    :data:`HARM_FLOOR`: how much worse than its own input the output is, in the units of the bars.
    Zero for crops the output improves by more than ``margin`` dB."""
    out_mse = (output - clean).pow(2).flatten(1).mean(1)
    in_mse = (degraded - clean).pow(2).flatten(1).mean(1)
    lost = 10.0 * torch.log10((out_mse + HARM_FLOOR) / (in_mse + HARM_FLOOR))
    return F.relu(lost + margin).mean()


def feature_loss(adapted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE of adapted student features to teacher features, relative to the teacher features'
    energy (so the weight means the same for any teacher)."""
    return F.mse_loss(adapted, target) / (target.detach().pow(2).mean() + 1e-6)


def temporal_loss(output: torch.Tensor, clean: torch.Tensor, frames: int, pixel=charbonnier,
                  eps: float = 1e-3) -> torch.Tensor:
    """Distance between the frame-to-frame changes of the output and of the ground truth.

    ``output`` and ``clean`` are ``[B*T, C, H, W]`` clips of ``frames`` consecutive frames. Equal to
    the change of the error from one frame to the next, ``(out_t - gt_t) - (out_t-1 - gt_t-1)``:
    zero for a perfect output *and* for an error that stays put, so it punishes flicker (noise
    and artefacts that differ each frame) and not a steady residual blur. Not motion-compensated:
    with the small motion of training clips, an error that moves with the picture costs a little
    here, but the loss stays exact where the picture holds still, which is where flicker shows.
    """
    size = output.shape[1:]
    out = output.reshape(-1, frames, *size)
    gt = clean.reshape(-1, frames, *size)
    return pixel(out[:, 1:] - out[:, :-1], gt[:, 1:] - gt[:, :-1], eps)


def steadiness_loss(output: torch.Tensor, frames: int, flows: torch.Tensor, pixel=charbonnier,
                    eps: float = 1e-3) -> torch.Tensor:
    """How far each output frame is from the previous one moved onto it, ``d(out_t,
    moved(out_t-1))``: the motion-compensated change that the flicker metric measures, pushed
    towards zero (not towards the ground truth's change, as :func:`temporal_loss` does).

    ``flows`` ``[B*T, 2, H, W]`` are the clips' flows from frame ``t`` to ``t - 1`` (what a
    motion-compensated student's state moves by, :func:`edgerestore.distill.trainer.clip_flows`).
    A steady output costs some detail the ground truth has: this term trades PSNR for steadiness.
    """
    size = output.shape[1:]
    out = output.reshape(-1, frames, *size)
    steps = flows.reshape(-1, frames, *flows.shape[1:])
    moved = warp(out[:, :-1].reshape(-1, *size), steps[:, 1:].reshape(-1, *flows.shape[1:]))
    current = out[:, 1:].reshape(-1, *size)
    return pixel(current, moved, eps)


class FeatureAdapter(nn.Module):
    """A 1x1 convolution from the student's feature channels to the teacher's; zero at the start,
    so the (relative) feature loss starts at exactly 1 instead of a random value."""

    def __init__(self, student_channels: int, teacher_channels: int):
        super().__init__()
        self.proj = nn.Conv2d(student_channels, teacher_channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)


class DistillLoss:
    """Weighted sum of the configured terms; ``terms`` are the weighted values, for the logs."""

    def __init__(self, section, with_teacher: bool):
        self.section = section
        self.pixel = PIXEL_LOSSES[section.pixel]
        self.with_teacher = with_teacher
        self.weights = {
            "gt": section.gt,
            "teacher": section.teacher if with_teacher else 0.0,
            "ms_ssim": section.ms_ssim,
            "freq": section.freq,
            "feature": section.feature if with_teacher else 0.0,
            "temporal": getattr(section, "temporal", 0.0),
            "steady": getattr(section, "steady", 0.0),
            "harm": getattr(section, "harm", 0.0),
        }

    @property
    def active(self):
        """Names of the terms with a non-zero weight (the log's columns)."""
        return [name for name, weight in self.weights.items() if weight > 0]

    def __call__(self, output: torch.Tensor, clean: torch.Tensor, teacher: Optional[torch.Tensor] = None,
                 adapted: Optional[torch.Tensor] = None, teacher_features: Optional[torch.Tensor] = None,
                 frames: int = 0, flows: Optional[torch.Tensor] = None,
                 degraded: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Dict[str, float]]:
        """``frames`` > 1: the batch holds clips of that many consecutive frames, ``[B*T, 3, H, W]``
        in clip-major order; the temporal term compares their frame-to-frame changes, the steady
        term their changes once moved by the clips' ``flows``. ``degraded`` is the student's input
        (the harm term compares with it)."""
        w, eps = self.weights, self.section.eps
        terms: Dict[str, torch.Tensor] = {}
        if w["gt"] > 0:
            terms["gt"] = w["gt"] * self.pixel(output, clean, eps)
        if w["teacher"] > 0:
            terms["teacher"] = w["teacher"] * self.pixel(output, teacher, eps)
        target = teacher if (self.section.target == "teacher" and teacher is not None) else clean
        if w["ms_ssim"] > 0:
            terms["ms_ssim"] = w["ms_ssim"] * (1.0 - ms_ssim(output.clamp(0, 1), target))
        if w["freq"] > 0:
            terms["freq"] = w["freq"] * frequency_loss(output, target)
        if w["feature"] > 0 and adapted is not None:
            terms["feature"] = w["feature"] * feature_loss(adapted, teacher_features)
        if w["temporal"] > 0 and frames > 1:
            terms["temporal"] = w["temporal"] * temporal_loss(output, clean, frames, self.pixel, eps)
        if w["steady"] > 0 and frames > 1:
            if flows is None:
                raise ValueError("the steady term needs the clips' flows (trainer.clip_flows)")
            terms["steady"] = w["steady"] * steadiness_loss(output, frames, flows, self.pixel, eps)
        if w["harm"] > 0:
            if degraded is None:
                raise ValueError("the harm term needs the student's input (degraded=)")
            terms["harm"] = w["harm"] * harm_loss(output, clean, degraded, self.section.harm_margin)
        total = sum(terms.values())
        return total, {name: float(value.detach()) for name, value in terms.items()}
