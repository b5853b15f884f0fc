"""Tune a trained student's strength: the largest ``s`` for which ``x + s * (f(x) - x)`` leaves
compression-only and clean frames no worse (measured on images of your choice, never the benchmark's);
folded into the weights by :meth:`StudentNet.scale_residual`, so the graph and its speed are unchanged."""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from edgerestore import noiselevel
from edgerestore.distill import degrade as deg
from edgerestore.errors import InputNotFoundError
from edgerestore.runtime.quality import psnr

SUBSETS = ("mild", "blur", "noise", "compression", "clean")
STRENGTHS = tuple(round(1.0 - 0.05 * k, 2) for k in range(11))  # 1.0, 0.95, ..., 0.5
SEED = 7300  # the quality benchmark's photos use 9100; training draws its own
MAX_SIDE = 512
CLEAN_BAR = 45.0


@dataclass
class Frame:
    subset: str
    degraded: np.ndarray  # float32 HxWx3, 0..255 (a multiple of the stride)
    clean: np.ndarray  # uint8
    residual: np.ndarray  # float32 f(x) - x, 0..255 units


def read_images(folder) -> Dict[str, np.ndarray]:
    """Every image of ``folder`` (centre crops of at most :data:`MAX_SIDE` pixels)."""
    from edgerestore.distill.data import IMAGE_SUFFIXES, read_image

    root = Path(folder)
    if not root.is_dir():
        raise InputNotFoundError("%s is not a folder of images; give held-out photos the student never "
                                 "trained on (not the benchmark's)" % folder)
    images = {}
    for path in sorted(root.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            image = read_image(path)
            h, w = image.shape[:2]
            top, left = max(0, (h - MAX_SIDE) // 2), max(0, (w - MAX_SIDE) // 2)
            images[path.name] = np.ascontiguousarray(image[top:top + MAX_SIDE, left:left + MAX_SIDE])
    if not images:
        raise InputNotFoundError("%s holds no images (%s)" % (folder, " ".join(IMAGE_SUFFIXES)))
    return images


def residuals(model, images: Dict[str, np.ndarray], draws: int,
              progress: Optional[Callable[[int, int], None]] = None) -> List[Frame]:
    """Each image degraded ``draws`` times by each subset (and once as it is), with the student's
    correction at full strength. A noise-level student is given the level its runtime meter would
    read (a second draw of the same degradation), as the quality benchmark does."""
    stride = model.stride
    frames, total = [], len(images) * (4 * draws + 1)
    with torch.no_grad():
        for i, clean in enumerate(images.values()):
            h, w = clean.shape[:2]
            clean = clean[:h - h % stride, :w - w % stride]
            jobs = [("clean", clean, 0.0)]
            for subset in SUBSETS[:-1]:
                config = deg.get_preset(subset)
                for d in range(draws):
                    seed = SEED + 100 * i + d
                    degraded, params = deg.degrade(clean, seed, config)
                    level = 0.0
                    if model.config.level_input and (params.gaussian_sigma or params.poisson_peak):
                        level = noiselevel.of_two_frames(degraded, deg.degrade(clean, seed, config, noise_draw=1)[0])
                    jobs.append((subset, degraded, level))
            for subset, degraded, level in jobs:
                x = torch.from_numpy(np.ascontiguousarray(degraded.transpose(2, 0, 1)))[None].float() / 255.0
                out = model(x, level=level if model.config.level_input else None)
                residual = ((out - x)[0].permute(1, 2, 0).numpy() * 255.0).astype(np.float32)
                frames.append(Frame(subset, degraded.astype(np.float32), clean, residual))
                if progress:
                    progress(len(frames), total)
    return frames


def sweep(frames: Sequence[Frame], strengths: Sequence[float] = STRENGTHS) -> List[dict]:
    """Per strength: the mean gain (dB over the input) of each degraded subset, and ``clean``: the
    mean output PSNR against an untouched frame. Outputs are rounded to uint8, as every runtime does."""
    rows = []
    for strength in strengths:
        values: Dict[str, List[float]] = {name: [] for name in SUBSETS}
        for frame in frames:
            out = np.clip(np.rint(frame.degraded + strength * frame.residual), 0, 255).astype(np.uint8)
            if frame.subset == "clean":
                values["clean"].append(psnr(out, frame.clean))
            else:
                values[frame.subset].append(psnr(out, frame.clean) - psnr(frame.degraded.astype(np.uint8), frame.clean))
        rows.append(dict({name: float(np.mean(v)) for name, v in values.items()}, strength=strength))
    return rows


def pick(rows: Sequence[dict], clean_bar: float = CLEAN_BAR) -> Optional[dict]:
    """The row of the largest strength whose compression-only gain is >= 0 and whose clean frames
    stay >= ``clean_bar`` dB (``None``: no strength of the sweep does no harm)."""
    safe = [r for r in rows if r["compression"] >= 0.0 and r["clean"] >= clean_bar]
    return max(safe, key=lambda r: r["strength"]) if safe else None
