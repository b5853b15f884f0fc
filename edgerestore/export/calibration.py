"""Real frames for INT8 calibration and for verifying every exported artifact.

The package ships twelve real photographs (``edgerestore/calibration_data``, with their
attribution): ``calib-*`` calibrate, ``holdout-*`` verify. A model's input is a *degraded* frame,
so each photo is fitted to the export size and degraded with the ``mild`` (conferencing) setting
and a fixed seed; the photo itself is the ground truth for the verification's "PSNR vs ground
truth". ``--calib DIR`` (a folder of frames or a video) replaces the calibration frames with the
user's own camera frames, used as they are (they are already what the model will see);
verification always uses the shipped hold-out photos, so figures stay comparable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np

from edgerestore.errors import InputNotFoundError, UnsupportedInputError

CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "calibration_data"
MAX_USER_FRAMES = 16
DEGRADATION = "mild"


@dataclass
class CalibrationSet:
    """Model inputs for calibration, and (input, ground truth) pairs held out for verification."""

    frames: List[np.ndarray]
    holdout: List[Tuple[np.ndarray, np.ndarray]]
    source: str
    size: Tuple[int, int]
    names: List[str] = field(default_factory=list)

    def describe(self) -> dict:
        return {"source": self.source, "frames": len(self.frames), "holdout": len(self.holdout),
                "size": list(self.size), "degradation": DEGRADATION if self.source == "package" else None}


def fit(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to cover ``size`` = (height, width) and crop the centre (no distortion)."""
    height, width = size
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    if abs(scale - 1.0) > 1e-6:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        image = cv2.resize(image, (max(width, round(w * scale)), max(height, round(h * scale))), interpolation=interp)
    h, w = image.shape[:2]
    top, left = (h - height) // 2, (w - width) // 2
    return np.ascontiguousarray(image[top:top + height, left:left + width])


def _package_images(prefix: str) -> List[Path]:
    paths = sorted(CALIBRATION_DIR.glob(prefix + "-*.jpg"))
    if not paths:
        raise InputNotFoundError(
            "the package's calibration images are missing from %s — reinstall edgerestore or pass --calib DIR"
            % CALIBRATION_DIR)
    return paths


def _degraded_pairs(paths: List[Path], size: Tuple[int, int], seed: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    from edgerestore.distill.degrade import PRESETS, degrade
    from edgerestore.runtime.sources.images import read_image

    pairs = []
    for i, path in enumerate(paths):
        clean = fit(read_image(str(path)), size)
        pairs.append((degrade(clean, seed=seed + i, config=PRESETS[DEGRADATION])[0], clean))
    return pairs


def read_user_frames(path, size: Tuple[int, int], limit: int = MAX_USER_FRAMES) -> List[np.ndarray]:
    """Up to ``limit`` frames from a folder of images or a video, spread over it, fitted to ``size``."""
    from edgerestore.runtime.sources import open_source

    path = str(path)
    if not os.path.exists(path):
        raise InputNotFoundError("calibration input %s does not exist" % path)
    try:
        source = open_source(path)
    except UnsupportedInputError as exc:
        raise UnsupportedInputError("calibration input: %s" % exc) from exc
    try:
        frames = [frame.image for frame in source]
    finally:
        source.close()
    if not frames:
        raise UnsupportedInputError("calibration input %s holds no frames — give a folder of images or a video" % path)
    picks = np.unique(np.linspace(0, len(frames) - 1, min(limit, len(frames))).round().astype(int))
    return [fit(frames[i], size) for i in picks]


def build(size: Tuple[int, int], calib: Optional[str] = None, seed: int = 2024) -> CalibrationSet:
    """Calibration frames at ``size`` = (height, width) (the package's or ``calib``'s) and the hold-out pairs."""
    holdout = _degraded_pairs(_package_images("holdout"), size, seed + 1000)
    if calib:
        frames = read_user_frames(calib, size)
        return CalibrationSet(frames, holdout, str(calib), size)
    paths = _package_images("calib")
    frames = [degraded for degraded, _ in _degraded_pairs(paths, size, seed)]
    return CalibrationSet(frames, holdout, "package", size, [p.name for p in paths])
