#!/usr/bin/env python
"""Estimate a frame's blur descriptor from a few of its patches (a prototype).

A camera's shake blurs the whole frame alike, so its blur can be read off a few full-resolution
patches: a small CNN looks at ``--patch``-pixel crops and regresses the descriptor the
``blur_input`` prototype is told (``edgerestore.distill.degrade.blur_descriptor``: the kernel's
size and elongations); a frame's estimate is the mean over ``--patches`` of its most detailed
patches. Trained on rendered crops of the training photos (the same mix as
``benchmarks/global_filter.py``), scored on ``student_quality.py``'s draws against the true
descriptors, and saved for ``global_filter.py --estimator`` (``--train-after STUDENT``: read that student's outputs instead):

    python benchmarks/blur_estimate.py --steps 4000 --save runs/blur-estimator.pt
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import global_filter as gf  # noqa: E402
import student_quality as sq  # noqa: E402

from edgerestore.distill import degrade as deg  # noqa: E402
from edgerestore.runtime.framefilter import detailed_tiles  # noqa: E402


class Estimator(torch.nn.Module):
    """``[B,3,P,P]`` in 0..1 (and with ``level``, the frames' noise levels ``[B]``) -> ``[B,3]`` blur
    descriptors."""

    def __init__(self, width: int = 32, level: bool = False):
        super().__init__()
        self.level = level
        layers, channels = [], 3
        for out, stride in ((16, 1), (width, 2), (width, 2), (2 * width, 2), (2 * width, 1)):
            layers += [torch.nn.Conv2d(channels, out, 3, stride=stride, padding=1), torch.nn.ReLU()]
            channels = out
        self.body = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(channels + level, 3)

    def forward(self, x: torch.Tensor, level: torch.Tensor = None) -> torch.Tensor:
        pooled = self.body(x - x.mean((1, 2, 3), keepdim=True)).mean((2, 3))
        if self.level:
            pooled = torch.cat([pooled, level.reshape(-1, 1).expand(len(pooled), 1)], 1)
        return self.head(pooled)


def load_estimator(path: str):
    """A ``--save`` file as ``(estimator in eval mode, the saved dict)`` (its ``patch`` and ``patches``)."""
    saved = torch.load(path)
    model = Estimator(level=saved.get("level", False))
    model.load_state_dict(saved["state_dict"])
    return model.eval(), saved


def frame_descriptor(model: Estimator, image: np.ndarray, patch: int = 64, patches: int = 16,
                     level: float = 0.0) -> tuple:
    """The mean estimate over the ``patches`` most detailed ``patch``-pixel tiles of ``image`` (uint8
    HWC); ``level``: the frame's noise level, for an estimator told it."""
    x = torch.from_numpy(detailed_tiles(image, patch, patches)).permute(0, 3, 1, 2)
    with torch.no_grad():
        return tuple(float(v) for v in model(x, torch.tensor([level], dtype=torch.float32)).mean(0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--patches", type=int, default=16, help="tiles per frame at evaluation")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--level", action="store_true", help="also tell it the frame's noise level")
    parser.add_argument("--save", default=None)
    gf.add_data_arguments(parser)
    args = parser.parse_args()
    gf.check_after(parser, args)
    _, degraded, moments, noise, codecs = gf.training_crops(parser, args, 128)
    if args.train_after:  # it reads the student's output: real noise mostly gone, the blur still there
        degraded = gf.through_student(args.train_after, degraded, noise, codecs)
    started = time.time()
    model = Estimator(level=args.level)
    optim = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optim, args.steps)
    rng = np.random.default_rng(0)
    p = args.patch
    for step in range(1, args.steps + 1):
        picks = rng.integers(len(degraded), size=args.batch)
        codes = rng.integers(8, size=args.batch)
        xs, ys = [], []
        for n, code in zip(picks, codes):
            top, left = rng.integers(128 - p + 1, size=2)
            tile = degraded[n, top:top + p, left:left + p]
            if code & 4:
                tile = tile[:, ::-1]
            xs.append(np.ascontiguousarray(np.rot90(tile, code & 3)))
            ys.append(deg.blur_descriptor(deg.augmented_moments(moments[n], int(code))))
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255.0
        estimate = model(x, torch.from_numpy(noise[picks]))
        loss = torch.nn.functional.mse_loss(estimate, torch.tensor(ys, dtype=torch.float32))
        optim.zero_grad()
        loss.backward()
        optim.step()
        schedule.step()
        if step % 500 == 0 or step == args.steps:
            print("step %d loss %.4f (%.0f s)" % (step, loss.item(), time.time() - started), flush=True)
    model.eval()
    if args.save:
        torch.save({"patch": p, "patches": args.patches, "level": args.level, "after": bool(args.train_after),
                    "state_dict": model.state_dict()}, args.save)
    pairs, seeds = sq.eval_pairs(args.draws, args.photos, with_seeds=True)
    levels = sq.eval_levels(pairs, seeds)
    frames = {subset: [noisy for noisy, _ in items] for subset, items in pairs.items()}
    if args.train_after:
        frames = gf.student_outputs(args.train_after, pairs, seeds, levels)
    print("| subset | draws | descriptor error (RMS), estimated | told zero |")
    print("|---|---|---|---|")
    for subset, (preset, keys) in seeds.items():
        config = deg.get_preset(preset)
        truth = np.array([deg.blur_descriptor(deg.blur_moments(deg.blur_kernel(deg.sample_params(config, k))))
                          for k in keys])
        guess = np.array([frame_descriptor(model, d, p, args.patches, level)
                          for d, level in zip(frames[subset], levels[subset])])
        print("| %s | %d | %.3f | %.3f |" % (subset, len(keys), np.sqrt(((guess - truth) ** 2).mean()),
                                             np.sqrt((truth ** 2).mean())), flush=True)


if __name__ == "__main__":
    main()
