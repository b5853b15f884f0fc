#!/usr/bin/env python
"""How much flicker a blend with the previous output can remove from a real clip, with and without
motion compensation: no network, a hand-set gate.

Each clip (the ground truth) is degraded like a call (``--degradation``, ``--seeds`` draws, as in
``temporal_quality.py``) and filtered frame after frame by

    out_t = x_t + g * (moved(out_t-1) - x_t),   g = k * exp(-(d / tau)^2)

with ``d`` the locally averaged |x_t - moved(out_t-1)| (a gate that opens where the two agree) and
``moved`` one of: nothing (the previous output where it was), the runtime's motion compensation
(DIS flow between the *degraded* frames, :mod:`edgerestore.runtime.motion`), or the ground truth's
Farneback flow (what the flicker metric aligns frames with; an upper bound). Printed per setting:
PSNR, flicker (motion-compensated temporal MAD / the ground truth's) and temporal error, as
``temporal_quality.py`` scores a model.

    python benchmarks/motion_ceiling.py --clip ../shared/data/video/tram_640x360 --seeds 3
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from edgerestore.runtime import motion  # noqa: E402
from edgerestore.runtime import quality as metrics  # noqa: E402


def gated_filter(degraded, move, k, tau):
    """The filter above over one degraded clip; ``move(image, t)`` aligns frame t-1's output with t."""
    import cv2

    out = [degraded[0].astype(np.float32)]
    for t in range(1, len(degraded)):
        x = degraded[t].astype(np.float32)
        moved = move(out[-1], t)
        d = cv2.GaussianBlur(np.abs(x - moved).mean(axis=2), (0, 0), 2.0)
        g = k * np.exp(-(d / tau) ** 2)
        out.append(x + g[..., None] * (moved - x))
    return [np.clip(np.rint(o), 0, 255).astype(np.uint8) for o in out]


def movers(clean, degraded, reference):
    """``{name: move}`` for the three kinds of alignment."""
    estimator = motion.FlowEstimator()
    pictures = [estimator.prepare(frame) for frame in degraded]
    flows = [None] + [estimator.flow(pictures[t], pictures[t - 1], degraded[t].shape) for t in range(1, len(degraded))]

    def runtime(image, t):
        return image if flows[t] is None else motion.warp(image, flows[t])

    return {
        "no motion compensation": lambda image, t: image,
        "runtime flow (DIS, degraded frames)": runtime,
        "ground-truth flow (upper bound)": lambda image, t: metrics.warp(image, reference.flows[t - 1]),
    }


def main(argv=None):
    from temporal_quality import read_clip

    from edgerestore.distill.degrade import degrade_sequence, get_preset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", required=True, help="folder of frames or a video (the ground truth)")
    parser.add_argument("--degradation", default="mild")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=7200)
    parser.add_argument("--max-frames", type=int, default=60)
    parser.add_argument("--gates", default="0.5:8,0.7:8,0.9:8,0.5:12,0.7:12,0.9:12",
                        help="k:tau pairs of the hand-set gate")
    args = parser.parse_args(argv)
    gates = [tuple(float(v) for v in pair.split(":")) for pair in args.gates.split(",")]
    clean = read_clip(args.clip, args.max_frames)
    reference = metrics.TemporalReference(clean)
    rows = {}

    def add(name, outputs):
        scores = reference.score(outputs)
        psnr = float(np.mean([metrics.psnr(o, c) for o, c in zip(outputs, clean)]))
        rows.setdefault(name, []).append((psnr, scores["flicker"], scores["temporal_error"]))

    for seed in range(args.first_seed, args.first_seed + args.seeds):
        degraded, _ = degrade_sequence(clean, seed, get_preset(args.degradation))
        add("input (degraded)", degraded)
        for kind, move in movers(clean, degraded, reference).items():
            for k, tau in gates:
                add("%s, k=%.1f tau=%g" % (kind, k, tau), gated_filter(degraded, move, k, tau))
    print("%s: %d frames x %d draw(s) of '%s'; flicker relative to the ground truth's %.2f levels" % (
        args.clip, len(clean), args.seeds, args.degradation, reference.reference_mad))
    print("%-56s %8s %8s %8s" % ("filter", "PSNR dB", "flicker", "t-error"))
    for name, values in rows.items():
        psnr, flicker, error = np.mean(values, axis=0)
        print("%-56s %8.2f %8.3f %8.2f" % (name, psnr, flicker, error))
    return rows


if __name__ == "__main__":
    main()
