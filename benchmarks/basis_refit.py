#!/usr/bin/env python
"""Is a student's filter basis where training left it for a reason? Refit it by least squares.

A basis student's output is ``x + tail(f) + w(f) * (h * x)``: a full-resolution filter ``h`` (one
per colour, its ``bases.filters``) of the frame ``x``, weighted per pixel by ``w``. With the
features ``f`` (so ``w``) held, the output is linear in ``h``: this fits, for each colour, the ``h``
that brings the student's outputs of ``--crops`` training crops (the usual mix, rendered as
``global_filter.py`` renders them, told their level and codec) closest to the clean crops in the
least-squares sense, puts it in the student, and scores both on ``student_quality.py``'s draws (the
four photos, the real pairs, ``--photos``). If the refit were better everywhere, the basis would be
stuck where gradient descent started it (the ill-conditioning ``global_filter.py --precondition``
measures for a frame filter), and whitening its taps a lever:

    python benchmarks/basis_refit.py --student edgerestore/weights/nano-codec.pt --photos runs/kodak/kodak-eval
"""

import argparse
import copy
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import global_filter as gf  # noqa: E402
import student_quality as sq  # noqa: E402
from codec_input import score  # noqa: E402

from edgerestore.models.checkpoint import load_student  # noqa: E402

MARGIN = 8  # border pixels of each crop left out of the fit


def refit(student, clean, degraded, levels, codecs):
    """``[3, k, k]``: each colour's least-squares basis filter, the per-pixel weights held."""
    captured = {}
    hook = student.bases.register_forward_hook(lambda module, inputs, output: captured.update(
        x=inputs[0], features=inputs[1], term=output))
    size = student.bases.filters[0].kernel_size[0]
    taps = size * size
    normal, target = np.zeros((3, taps, taps)), np.zeros((3, taps))
    try:
        with torch.no_grad():
            for k in range(len(clean)):
                x = torch.from_numpy(degraded[k]).permute(2, 0, 1)[None].float() / 255.0
                y = torch.from_numpy(clean[k]).permute(2, 0, 1)[None].float() / 255.0
                out = student(x, level=float(levels[k]), codec=codecs[k])
                rest = (y - (out - captured["term"]))[0, :, MARGIN:-MARGIN, MARGIN:-MARGIN].reshape(3, -1)
                weight = student.bases.weights[0](captured["features"])[0, 0, MARGIN:-MARGIN, MARGIN:-MARGIN]
                patches = F.unfold(F.pad(x, (size // 2,) * 4), size).view(3, taps, *x.shape[2:])
                design = (patches[:, :, MARGIN:-MARGIN, MARGIN:-MARGIN].reshape(3, taps, -1)
                          * weight.reshape(1, 1, -1)).double()
                normal += torch.einsum("cij,ckj->cik", design, design).numpy()
                target += torch.einsum("cij,cj->ci", design, rest.double()).numpy()
    finally:
        hook.remove()
    return np.stack([np.linalg.solve(normal[c] + 1e-9 * np.eye(taps), target[c]) for c in range(3)]).reshape(
        3, size, size)


def scores(model, pairs, levels, codecs):
    """``{subset: mean gain}`` (:func:`codec_input.score`; a clean subset: output PSNR against the input)."""
    return {subset: score(model, items, levels[subset], codecs[subset])[0] for subset, items in pairs.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", required=True, help="a filter-basis student checkpoint (.pt)")
    parser.add_argument("--crops", type=int, default=1200, help="training crops to fit on (default: %(default)s)")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--mix", default="mild:0.55,blur:0.1,compression:0.15,none:0.2")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--photos", default=None, metavar="DIR", help="as student_quality.py --photos")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not os.path.exists(args.student):
        parser.error("--student %s: no such checkpoint" % args.student)
    torch.set_num_threads(args.threads)
    student = load_student(args.student)[0].eval()
    if not student.config.filter_bases:
        parser.error("%s has no filter basis to refit" % args.student)
    started = time.time()
    mix = {name: float(weight) for name, weight in (part.split(":") for part in args.mix.split(","))}
    clean, degraded, _, levels, codecs = gf.render(list(gf.DATA), args.crops, args.crop, 0, mix)
    fitted = refit(student, clean, degraded, levels, codecs)
    print("fitted on %d crops in %.0f s" % (len(clean), time.time() - started), flush=True)
    print("learnt (first colour):\n%s\nleast squares:\n%s" % (
        np.array2string(student.bases.filters[0].weight[0, 0].detach().numpy(), precision=3),
        np.array2string(fitted[0], precision=3)))
    refitted = copy.deepcopy(student)
    with torch.no_grad():
        refitted.bases.filters[0].weight.copy_(torch.from_numpy(fitted).float()[:, None])
    pairs, seeds = sq.eval_pairs(args.draws, args.photos, with_seeds=True)
    levels_of, codecs_of = sq.eval_levels(pairs, seeds), sq.eval_codecs(pairs, seeds, "crf")
    before, after = scores(student, pairs, levels_of, codecs_of), scores(refitted, pairs, levels_of, codecs_of)
    print("\n| subset | learnt | least squares |\n|---|---|---|")
    for subset in before:
        print("| %s | %+.3f | %+.3f |" % (subset, before[subset], after[subset]))


if __name__ == "__main__":
    main()
