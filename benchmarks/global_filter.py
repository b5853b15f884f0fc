#!/usr/bin/env python
"""Can one predicted ``S x S`` filter per frame deblur? A prototype of frame-level filter prediction.

``python benchmarks/deblur_ceiling.py --fit 5,9`` showed that the best 9x9 linear filter *per draw*
(fitted to the sharp photo: an oracle) gains about +2 dB on ``mild`` and +5 on blur-only frames,
where the students gain +0.4 / +0.0. This trains a small MLP that predicts that filter (one for the
whole crop, every colour) from what it is given, and scores it on ``student_quality.py``'s draws:

* ``told``: the draw's true blur descriptor (``degrade.blur_descriptor``: the oracle input of the
  ``blur_input`` prototype);
* ``blind``: statistics of the frame a runtime can compute for ~30 operations per pixel: the mean
  absolute luma difference at 4 directions x 6 distances (a blur along a direction lowers the
  differences along it up to its length), on a log scale, plus the frame's level of detail.

    python benchmarks/global_filter.py --mode blind --steps 3000 --photos runs/kodak/kodak-eval

Gain = output PSNR - input PSNR (clean: output against input), mean (worst).
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import student_quality as sq  # noqa: E402

from edgerestore.distill import data as D  # noqa: E402
from edgerestore.distill import degrade as deg  # noqa: E402
from edgerestore.runtime.quality import psnr  # noqa: E402

OFFSETS = [(1, 0), (1, 1), (0, 1), (-1, 1)]  # (dx, dy): 0, 45, 90, 135 degrees (a quarter turn maps them onto each other)
DISTANCES = (1, 2, 3, 4, 6, 8)
FEATURES = len(OFFSETS) * len(DISTANCES) + 1


def frame_statistics(x: torch.Tensor) -> torch.Tensor:
    """``[B,3,H,W]`` in 0..1 -> ``[B, FEATURES]``: log mean |luma(p + d*o) - luma(p)| per direction
    ``o`` and distance ``d``, less their mean, and that mean (the frame's detail)."""
    luma = x.mean(1)
    margin = max(DISTANCES)
    core = luma[:, margin:-margin, margin:-margin]
    height, width = core.shape[1:]
    values = []
    for dx, dy in OFFSETS:
        for d in DISTANCES:
            moved = luma[:, margin + d * dy:margin + d * dy + height, margin + d * dx:margin + d * dx + width]
            values.append(torch.log((moved - core).abs().mean((1, 2)) + 1e-4))
    logs = torch.stack(values, 1)
    mean = logs.mean(1, keepdim=True)
    return torch.cat([logs - mean, mean + 4.0], 1)


ANGLES = 8
LENGTHS = (3.0, 5.0, 7.0, 9.0, 11.0)
RADII = (0.75, 1.25, 1.75)
WIENER_LAMBDA = 0.01


def inverse_bank(size: int) -> torch.Tensor:
    """``[K, size, size]``: Wiener inverses (lambda 0.01) of line blurs at :data:`ANGLES` angles and
    :data:`LENGTHS` lengths and of discs of :data:`RADII`, cut to ``size x size``, less a delta (so each
    is a correction: zero on a flat picture)."""
    grid = 64
    kernels = [deg.linear_kernel(length, 180.0 * a / ANGLES) for length in LENGTHS for a in range(ANGLES)]
    kernels += [deg.defocus_kernel(r) for r in RADII]
    bank = []
    for kernel in kernels:
        psf = np.zeros((grid, grid))
        k = kernel.shape[0]
        psf[:k, :k] = kernel
        psf = np.roll(psf, (-(k // 2), -(k // 2)), axis=(0, 1))
        otf = np.fft.fft2(psf)
        inverse = np.real(np.fft.ifft2(np.conj(otf) / (np.abs(otf) ** 2 + WIENER_LAMBDA)))
        inverse = np.fft.fftshift(inverse)[grid // 2 - size // 2:grid // 2 + size // 2 + 1,
                                           grid // 2 - size // 2:grid // 2 + size // 2 + 1]
        # as a correlation (what conv2d computes) of a convolution's inverse: flipped
        inverse = inverse[::-1, ::-1] / inverse.sum()
        inverse[size // 2, size // 2] -= 1.0
        bank.append(inverse)
    return torch.tensor(np.stack(bank), dtype=torch.float32)


class FilterPredictor(torch.nn.Module):
    """inputs -> one ``size x size`` filter per frame, starting at the identity (a delta): free taps,
    or (``basis``) a weighted sum of :func:`inverse_bank`'s corrections."""

    def __init__(self, inputs: int, size: int, hidden: int = 128, basis: bool = False,
                 precondition: torch.Tensor = None):
        super().__init__()
        self.size = size
        if precondition is not None:  # the taps are this matrix times the output: whitened coordinates
            self.register_buffer("bank", precondition)
        elif basis:
            self.register_buffer("bank", inverse_bank(size).flatten(1))
        outputs = self.bank.shape[0] if basis else size * size
        self.mlp = torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, outputs))
        torch.nn.init.zeros_(self.mlp[-1].weight)
        torch.nn.init.zeros_(self.mlp[-1].bias)
        delta = torch.zeros(size * size)
        delta[size * size // 2] = 1.0
        self.register_buffer("delta", delta)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        taps = self.mlp(inputs)
        if hasattr(self, "bank"):
            taps = taps @ self.bank
        return (self.delta + taps).view(-1, self.size, self.size)


def whitening(degraded: np.ndarray, size: int, samples: int = 200000, floor: float = 1e-4) -> torch.Tensor:
    """``G^(-1/2)`` of the ``size x size`` patches of ``degraded`` (uint8 crops, every colour), with
    eigenvalues floored at ``floor`` times the largest, scaled so that its largest eigenvalue is 1: in
    these coordinates the least-squares filter problem is about equally steep in every direction, so
    gradient descent reaches the fine (deconvolving) taps as fast as the coarse ones."""
    rng = np.random.default_rng(0)
    n, h, w, _ = degraded.shape
    crops = rng.integers(n, size=samples)
    ys, xs = rng.integers(h - size, size=samples), rng.integers(w - size, size=samples)
    colours = rng.integers(3, size=samples)
    offsets = np.arange(size)
    patches = degraded[crops[:, None, None], ys[:, None, None] + offsets[None, :, None],
                       xs[:, None, None] + offsets[None, None, :], colours[:, None, None]].reshape(samples, -1) / 255.0
    gram = patches.T @ patches / samples
    values, vectors = np.linalg.eigh(gram)
    values = np.maximum(values, floor * values.max())
    matrix = vectors @ np.diag(1.0 / np.sqrt(values)) @ vectors.T
    return torch.tensor(matrix * np.sqrt(values.min()),
                        dtype=torch.float32)


def apply(x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """Each frame of ``x`` [B,3,H,W] through its own filter [B,S,S] (every colour), reflect-padded."""
    b, c, h, w = x.shape
    half = filters.shape[-1] // 2
    padded = F.pad(x.reshape(1, b * c, h, w), (half, half, half, half), mode="reflect")
    weight = filters.repeat_interleave(c, 0)[:, None]
    return F.conv2d(padded, weight, groups=b * c).view(b, c, h, w)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """The first frame of ``x`` [B,3,H,W] in 0..1 as HxWx3 uint8."""
    return (x[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)


def fit_step(model, optim, schedule, x, y, inputs, margin):
    """One step of the filter ``model`` predicts from ``inputs``, applied to ``x``, towards ``y``
    (Charbonnier, ``margin`` pixels of the border left out); the loss."""
    out = apply(x, model(inputs))
    diff = (out - y)[:, :, margin:-margin, margin:-margin]
    loss = torch.sqrt(diff * diff + 1e-6).mean()
    optim.zero_grad()
    loss.backward()
    optim.step()
    schedule.step()
    return loss


def inputs_of(mode, x, blurs, levels=None):
    parts = [] if levels is None else [levels[:, None]]
    if mode in ("blind", "both"):
        parts.append(frame_statistics(x))
    if mode in ("told", "both"):
        parts.append(blurs)
    return torch.cat(parts, 1)


DATA = ("../shared/data/train", "../shared/data/train_photos", "../shared/data/real_noise/polyu")
WEIGHTS = ()
"""Training photos and the real-noise pairs (their held-out scenes left out); no weights: every image
or pair is as likely (the pairs are ~6 % of the crops)."""


def render(paths, count, crop, seed, mix, weights=()):
    """``count`` training crops: clean, degraded, blur moments (a real pair's: none), noise level, codec
    strengths (:mod:`edgerestore.codecinput`, an H.264 crop's QP its CRF)."""
    from edgerestore.benchmarks.evalset import POLYU_EXCLUDE

    items, _ = D.load_items(paths, memory_mb=4096, exclude=POLYU_EXCLUDE)
    renderer = D.Renderer(items, {"mix": mix}, weights, blurs=True, levels=True, codecs=True)
    clean, degraded, blurs, levels, codecs = [], [], [], [], []
    for k in range(count):
        sample = renderer.sample(D.train_spec(items, k, crop, seed, renderer.sources))
        if sample["clean"].shape[:2] != (crop, crop):
            continue
        clean.append(sample["clean"])
        degraded.append(sample["degraded"])
        blurs.append(sample["blur"])
        levels.append(sample["level"])
        codecs.append(sample["codec"])
    return (np.stack(clean), np.stack(degraded), np.asarray(blurs, np.float64), np.asarray(levels, np.float32),
            codecs)


def through_student(path, degraded, levels, codecs):
    """Each uint8 crop of ``degraded`` restored by the student checkpoint at ``path``, told its level and
    codec strengths (what a filter after the student, or an estimator reading its output, sees)."""
    from codec_input import restore

    from edgerestore.models.checkpoint import load_student

    started = time.time()
    student = load_student(path)[0].eval()
    out = np.stack([restore(student, x, level, codec) for x, level, codec in zip(degraded, levels, codecs)])
    print("%s restored %d crops in %.0f s" % (os.path.basename(path), len(out), time.time() - started), flush=True)
    return out


def student_outputs(path, pairs, seeds, levels):
    """``{subset: [output]}``: the student checkpoint at ``path`` on each of :func:`student_quality.eval_pairs`'
    draws, told its level and codec (an H.264 draw's CRF) as the level and codec presets' runtime is."""
    from codec_input import restore

    from edgerestore.models.checkpoint import load_student

    student = load_student(path)[0].eval()
    codecs = sq.eval_codecs(pairs, seeds, "crf")
    return {subset: [restore(student, noisy, level, codec) for (noisy, _), level, codec
                     in zip(items, levels[subset], codecs[subset])] for subset, items in pairs.items()}


def add_data_arguments(parser):
    """The training data, its mix and the evaluation draws (this script's and blur_estimate.py's)."""
    parser.add_argument("--data", nargs="+", default=list(DATA), help="training folders (default: %(default)s)")
    parser.add_argument("--weights", nargs="*", type=float, default=list(WEIGHTS),
                        help="their shares of the crops (default: none, every image alike)")
    parser.add_argument("--mix", default="mild:0.55,blur:0.1,compression:0.15,none:0.2",
                        help="training degradations, PRESET:WEIGHT,...")
    parser.add_argument("--crops", type=int, default=4000, help="training crops rendered once")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--photos", default=None, metavar="DIR", help="as student_quality.py --photos")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-after", default=None, metavar="STUDENT",
                        help="train on this student's outputs of the crops, not on the degraded crops "
                             "(and score on its outputs of the draws)")


def check_after(parser, args):
    """``--train-after`` names a checkpoint that exists."""
    if args.train_after and not os.path.exists(args.train_after):
        parser.error("--train-after %s: no such checkpoint (a student .pt)" % args.train_after)


def training_crops(parser, args, crop):
    """:func:`render` of the arguments of :func:`add_data_arguments` (checked first)."""
    if args.weights and len(args.weights) != len(args.data):
        parser.error("--weights needs one share per --data folder (%d), got %d" % (len(args.data), len(args.weights)))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    started = time.time()
    mix = {name: float(weight) for name, weight in (part.split(":") for part in args.mix.split(","))}
    crops = render(args.data, args.crops, crop, 0, mix, args.weights)
    print("rendered %d crops in %.0f s" % (len(crops[0]), time.time() - started), flush=True)
    return crops


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("told", "blind", "both"), default="blind")
    parser.add_argument("--size", type=int, default=9, help="the filter's side (odd)")
    parser.add_argument("--basis", action="store_true",
                        help="predict weights of fixed Wiener inverses of line and disc blurs, not free taps")
    parser.add_argument("--precondition", action="store_true",
                        help="free taps in whitened coordinates of the crops' patches (well-conditioned descent)")
    parser.add_argument("--level", action="store_true",
                        help="also give it the frame's noise level (what the level presets' runtime measures)")
    parser.add_argument("--after", default=None, metavar="STUDENT",
                        help="also score this student's output through the filter (predicted from the input)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--save", default=None, help="write the trained predictor here")
    parser.add_argument("--load", default=None, help="score this saved predictor instead of training one")
    parser.add_argument("--gate", default="", metavar="L1,L2,...",
                        help="also score the filter skipped on frames whose measured noise level is above each "
                             "of these (a gate for real sensor noise); needs --level")
    parser.add_argument("--estimator", default=None,
                        help="told mode: tell it blur_estimate.py's estimate, not the true blur (in training too, "
                             "unless --load)")
    add_data_arguments(parser)
    args = parser.parse_args()
    if args.estimator and args.mode != "told":
        parser.error("--estimator replaces the true blur a --mode told predictor is given")
    try:
        gates = [float(g) for g in args.gate.split(",") if g.strip()]
    except ValueError:
        parser.error("--gate takes noise levels separated by commas, e.g. --gate 0.02,0.04")
    if gates and not args.level:
        parser.error("--gate reads the frame's noise level: add --level")
    check_after(parser, args)
    if args.train_after and args.after not in (None, args.train_after):
        parser.error("--train-after and --after name different students: the filter is scored after the one it "
                     "was trained after (drop --after)")
    args.after = args.after or args.train_after
    clean, degraded, moments, noise, crop_codecs = training_crops(parser, args, args.crop)
    restored = through_student(args.train_after, degraded, noise, crop_codecs) if args.train_after else degraded
    started = time.time()
    inputs = FEATURES * (args.mode != "told") + 3 * (args.mode != "blind") + args.level
    model = FilterPredictor(inputs, args.size, basis=args.basis,
                            precondition=whitening(restored, args.size) if args.precondition else None)
    optim = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optim, args.steps)
    estimator = None
    if args.estimator:  # trained (and scored) on what the estimator reads off each crop, not the truth
        from blur_estimate import frame_descriptor, load_estimator

        estimator, saved = load_estimator(args.estimator)
    # what the estimator reads: the frame it was trained on (blur_estimate.py --train-after: the student's output)
    reads = restored if estimator is not None and saved.get("after") else degraded
    rng = np.random.default_rng(0)
    margin = args.size // 2
    if args.load:
        model.load_state_dict(torch.load(args.load)["state_dict"])
    for step in range(1, 0 if args.load else args.steps + 1):
        picks = rng.integers(len(clean), size=args.batch)
        codes = rng.integers(8, size=args.batch)
        xs, ys, bs, es = [], [], [], []
        for n, code in zip(picks, codes):
            group = [restored[n], clean[n], reads[n]]
            if code & 4:
                group = [p[:, ::-1] for p in group]
            xs, ys, es = [v + [np.ascontiguousarray(np.rot90(p, code & 3))] for v, p in zip((xs, ys, es), group)]
            bs.append(deg.blur_descriptor(deg.augmented_moments(moments[n], int(code))))
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255.0
        y = torch.from_numpy(np.stack(ys)).permute(0, 3, 1, 2).float() / 255.0
        given = torch.from_numpy(noise[picks]) if args.level else None
        told = torch.tensor(bs, dtype=torch.float32)
        if estimator is not None:
            with torch.no_grad():
                told = estimator(torch.from_numpy(np.stack(es)).permute(0, 3, 1, 2).float() / 255.0,
                                 torch.from_numpy(noise[picks]))
        loss = fit_step(model, optim, schedule, x, y, inputs_of(args.mode, x, told, given), margin)
        if step % 500 == 0 or step == args.steps:
            print("step %d loss %.5f (%.0f s)" % (step, loss.item(), time.time() - started), flush=True)
    if args.save:
        torch.save({"mode": args.mode, "size": args.size, "after": bool(args.train_after),
                    "state_dict": model.state_dict()}, args.save)
    model.eval()
    pairs, seeds = sq.eval_pairs(args.draws, args.photos, with_seeds=True)
    blurs = {subset: [(0.0, 0.0, 0.0)] * len(items) for subset, items in pairs.items()}
    for subset, (preset, keys) in seeds.items():
        config = deg.get_preset(preset)
        blurs[subset] = [deg.blur_descriptor(deg.blur_moments(deg.blur_kernel(deg.sample_params(config, k))))
                         for k in keys]
    levels = sq.eval_levels(pairs, seeds)
    firsts = student_outputs(args.after, pairs, seeds, levels) if args.after else {}  # subset -> its outputs
    if args.estimator:
        read = firsts if saved.get("after") else {s: [noisy for noisy, _ in items] for s, items in pairs.items()}
        blurs = {subset: [frame_descriptor(estimator, frame, saved["patch"], saved["patches"], level)
                          for frame, level in zip(read[subset], levels[subset])]
                 for subset in pairs}
    name = "%s%s %dx%d%s, %s" % (
        args.mode + " (estimated)" * bool(args.estimator), " + level" * args.level, args.size, args.size,
        " basis" * args.basis + " whitened" * args.precondition,
        os.path.basename(args.load) if args.load else "%d steps" % args.steps)
    rows = [(name, None, True)]  # (label, after the --after student: True or None, through the filter: True or a gate)
    if args.after:
        rows = [(sq.label(args.after), True, False), (sq.label(args.after) + " then " + name, True, True)]
    rows += [(label + ", skipped above level %g" % gate, first, gate)
             for gate in gates for label, first, filtered in rows[-1:]]
    for subset, values in levels.items():
        print("noise level %s: %s (median %.4f)" % (subset, " ".join("%.4f" % v for v in np.percentile(
            values, (0, 25, 75, 100))), np.median(values)))
    print("| pipeline | %s |" % " | ".join(pairs))
    print("|---|%s" % ("---|" * len(pairs)))
    outputs = {}  # (student first?, subset, n, through the filter) -> uint8: each computed once, the gates share them

    def output(first, subset, n, noisy, blur, through):
        key = (first is not None, subset, n, through)
        if key not in outputs:
            x = torch.from_numpy(np.ascontiguousarray(noisy)).permute(2, 0, 1)[None].float() / 255.0
            out = x
            if first is not None:
                out = torch.from_numpy(np.ascontiguousarray(firsts[subset][n])).permute(2, 0, 1)[None].float() / 255.0
                if args.train_after:  # its statistics too are read off what it is applied to
                    x = out
            if through:  # the filter is predicted from the input frame, applied to what came before it
                given = torch.tensor([levels[subset][n]], dtype=torch.float32) if args.level else None
                with torch.no_grad():
                    out = apply(out, model(inputs_of(args.mode, x, torch.tensor([blur], dtype=torch.float32), given)))
            outputs[key] = to_uint8(out)
        return outputs[key]

    for label, first, filtered in rows:
        cells = []
        for subset, items in pairs.items():
            gains = []
            for n, ((noisy, sharp), blur) in enumerate(zip(items, blurs[subset])):
                # the gate: a threshold on the frame's measured noise level
                through = filtered if isinstance(filtered, bool) else levels[subset][n] <= filtered
                restored = output(first, subset, n, noisy, blur, through)
                gains.append(psnr(restored, sharp) if noisy is sharp else psnr(restored, sharp) - psnr(noisy, sharp))
            mean, worst = float(np.mean(gains)), float(np.min(gains))
            cells.append(("%.2f (worst %.2f)" if subset.startswith("clean") else "%+.3f (%+.2f)") % (mean, worst))
        print("| %s | %s |" % (label, " | ".join(cells)), flush=True)


if __name__ == "__main__":
    main()
