"""Score student checkpoints on a run's held-out validation crops (the same crops, degraded with
the same seeds, that training validates on), so that runs can be compared fairly: e.g. a student
distilled from a teacher vs the same student trained on ground truth alone.
"""

from __future__ import annotations

from typing import Callable, List

import numpy as np
import torch

from edgerestore.distill import data as D
from edgerestore.distill.config import DistillConfig
from edgerestore.distill.teacher import fill_targets, to_batch
from edgerestore.errors import ConfigError
from edgerestore.models.checkpoint import load_student
from edgerestore.models.restormer import pad_to_multiple
from edgerestore.runtime.quality import quality


def _to_uint8(batch: torch.Tensor) -> np.ndarray:
    return (batch[0].clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _scores(pairs) -> dict:
    """Mean PSNR/SSIM/MS-SSIM over crops, or over every frame of clips (``[T, H, W, 3]``, which
    also give ``temporal``: the mean |change of the output - change of the ground truth| in levels)."""
    rows, temporal = [], []
    for restored, clean in pairs:
        if clean.ndim == 4:
            rows += [quality(r, c) for r, c in zip(restored, clean)]
            change = np.diff(restored.astype(np.float32), axis=0) - np.diff(clean.astype(np.float32), axis=0)
            temporal.append(float(np.abs(change).mean()))
        else:
            rows.append(quality(restored, clean))
    scores = {key: float(np.mean([row[key] for row in rows])) for key in ("psnr", "ssim", "ms_ssim")}
    if temporal:
        scores["temporal"] = float(np.mean(temporal))
    return scores


@torch.no_grad()
def evaluate(config: DistillConfig, checkpoints: List[str], device="cpu",
             echo: Callable[[str], None] = print) -> List[dict]:
    """Rows ``{"name", "psnr", "ssim", "ms_ssim"}``: the degraded input, the teacher (when the
    config has one whose outputs are cached or computable), then every checkpoint."""
    from edgerestore.distill.trainer import frames_batch, prepare, run_clips, val_multiple

    p = prepare(config, device, echo)
    if not p.val.items:
        raise ConfigError("no validation data: set data.val_count > 0 or pass --val DATA")
    models = [(path, load_student(path)[0].to(device)) for path in checkpoints]
    stride = max([m.stride for _, m in models] + [1])
    lookup = p.cache.get if p.cache is not None else None
    samples = D.validation_samples(p.val, config.data.val_crop, val_multiple(stride), config.train.seed, lookup)
    rows = [dict(name="input (degraded)", **_scores((s["degraded"], s["clean"]) for s in samples))]
    if p.needs_outputs:
        fill_targets(p.teacher, p.cache, samples, config.teacher.batch, device)
        teacher = [(s["teacher"], s["clean"]) for s in samples]
        rows.append(dict(name="teacher %s" % p.teacher.description, **_scores(teacher)))
    for path, model in models:
        pairs = []
        for sample in samples:
            if sample["clean"].ndim == 4:  # a clip: frame after frame (a temporal student keeps its state)
                x = frames_batch(sample["degraded"], device)
                padded, (h, w) = pad_to_multiple(x, model.stride)
                out = run_clips(model, padded, len(padded), quantize_state=True)[..., :h, :w]
                pairs.append((np.stack([_to_uint8(o[None]) for o in out]), sample["clean"]))
                continue
            x = to_batch([sample["degraded"]], device)
            padded, (h, w) = pad_to_multiple(x, model.stride)
            pairs.append((_to_uint8(model(padded)[..., :h, :w]), sample["clean"]))
        rows.append(dict(name=str(path), **_scores(pairs)))
    for row in rows:
        row["crops"] = len(samples)
    return rows
