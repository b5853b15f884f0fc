"""Blur kernels drawn from a path, and the moments a blur is described by. numpy only, Python 3.6-safe:
the trainer's degradations (:mod:`edgerestore.distill.degrade`) and the runtime's motion deblur stage
(:mod:`edgerestore.runtime.framefilter`) describe a smear the same way."""

import math
from typing import Optional, Sequence, Tuple

import numpy as np


def splat(points: np.ndarray, size: int) -> np.ndarray:
    """Bilinear splatting of sub-pixel points onto a ``size x size`` grid centred at the middle."""
    kernel = np.zeros((size, size), np.float64)
    shifted = points + (size - 1) / 2.0
    base = np.floor(shifted).astype(np.int64)
    frac = shifted - base
    for dx in (0, 1):
        for dy in (0, 1):
            weight = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1])
            xi, yi = base[:, 0] + dx, base[:, 1] + dy
            inside = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
            np.add.at(kernel, (yi[inside], xi[inside]), weight[inside])
    return kernel


def kernel_size(extent: float) -> int:
    size = int(math.ceil(extent)) + 3
    return size + 1 - size % 2  # odd, so the kernel has a centre pixel


def linear_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A straight motion-blur kernel ``length`` pixels long at ``angle_deg`` (anti-aliased)."""
    steps = max(2, int(length * 8))
    t = np.linspace(-0.5, 0.5, steps) * length
    theta = math.radians(angle_deg)
    points = np.stack([t * math.cos(theta), t * math.sin(theta)], axis=1)
    kernel = splat(points, kernel_size(length))
    return (kernel / kernel.sum()).astype(np.float32)


BLUR_UNIT = 10.0
"""Pixels² per unit of :func:`blur_descriptor` (a straight 11-pixel shake has a variance of about 10)."""


def blur_moments(kernel: Optional[np.ndarray]) -> Tuple[float, float, float]:
    """``(cxx, cyy, cxy)``: the second central moments of a blur kernel in pixels² (``x`` across,
    ``y`` down; ``(0, 0, 0)`` for ``None``): its extent and direction, whatever its shape."""
    if kernel is None:
        return 0.0, 0.0, 0.0
    k = kernel.astype(np.float64) / float(kernel.sum())
    ys, xs = np.mgrid[:k.shape[0], :k.shape[1]]
    mx, my = float((k * xs).sum()), float((k * ys).sum())
    return (float((k * (xs - mx) ** 2).sum()), float((k * (ys - my) ** 2).sum()),
            float((k * (xs - mx) * (ys - my)).sum()))


def blur_descriptor(moments: Sequence[float]) -> Tuple[float, float, float]:
    """What a ``blur_input`` student is told of a blur: ``(cxx + cyy, cxx - cyy, 2 cxy) / BLUR_UNIT``
    (its size, and its elongation along x/y and along the diagonals; 0 = no blur)."""
    cxx, cyy, cxy = (float(v) for v in moments)
    return (cxx + cyy) / BLUR_UNIT, (cxx - cyy) / BLUR_UNIT, 2.0 * cxy / BLUR_UNIT
