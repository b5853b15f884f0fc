#!/usr/bin/env python
"""What deblurring could gain on the benchmark's draws if the blur were *known*: Wiener deconvolution
with each draw's true kernel (no network).

Every ``blur`` and ``mild`` draw of ``benchmarks/student_quality.py`` (the same photos, seeds and
degradations; ``--photos DIR`` adds that folder's draws) is deconvolved per colour with the exact
kernel ``edgerestore.distill.degrade.blur_kernel`` drew for it, in the Fourier domain with
reflect-padded borders: ``X = conj(H) Y / (|H|^2 + lam)``. Printed per subset: the input PSNR, the
gain at each fixed ``lam`` and with the best ``lam`` per draw (an oracle twice over: the kernel and
the regulariser). A student is blind (it must infer the kernel from the picture), so this bounds
what a *linear* restorer can do with the kernel given, not what a network can learn; it says how
much of each subset's loss is blur that an inverse filter can undo through the noise and the codec.
``--fit 9,15,21`` adds the best ``S x S`` linear filter for each draw, fitted by least squares to the
sharp photo (an oracle of another kind: what a filter of that support, told everything, can do;
a student's full-resolution filters are 3x3 to 9x9).

    python benchmarks/deblur_ceiling.py --draws 3 --photos runs/kodak/kodak-eval \
        --denoiser ../shared/teachers/ffdnet_color.pth
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from edgerestore.distill.degrade import blur_kernel, get_preset, sample_params  # noqa: E402
from edgerestore.runtime.quality import psnr  # noqa: E402

LAMBDAS = (3e-3, 1e-2, 2e-2, 3e-2, 5e-2)
SIGMAS = (3.0, 6.0, 10.0)


def wiener(image, kernel, lams):
    """``{lam: restored uint8}``: ``image`` deconvolved by ``kernel`` (the blur was a convolution with it)."""
    pad = kernel.shape[0]
    padded = np.pad(image.astype(np.float64), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    height, width = padded.shape[:2]
    psf = np.zeros((height, width))
    size = kernel.shape[0]
    psf[:size, :size] = kernel
    psf = np.roll(psf, (-(size // 2), -(size // 2)), axis=(0, 1))  # the kernel's centre at (0, 0)
    otf = np.fft.rfft2(psf)
    spectrum = np.fft.rfft2(padded, axes=(0, 1))
    out = {}
    for lam in lams:
        gain = np.conj(otf) / (np.abs(otf) ** 2 + lam)
        restored = np.fft.irfft2(spectrum * gain[:, :, None], s=(height, width), axes=(0, 1))
        out[lam] = np.clip(np.rint(restored[pad:-pad, pad:-pad]), 0, 255).astype(np.uint8)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=3, help="draws per photo and subset (student_quality.py's)")
    parser.add_argument("--photos", default=None, help="also this folder's draws (e.g. runs/kodak/kodak-eval)")
    parser.add_argument("--subsets", default="blur,mild", help="comma-separated subsets with blur")
    parser.add_argument("--denoiser", default=None, help="FFDNet weights (teachers/ffdnet_color.pth): also denoise first")
    parser.add_argument("--fit", default="", help="comma-separated sizes S: also the best SxS filter per draw")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    sizes = [int(v) for v in args.fit.split(",") if v]
    denoise = _ffdnet(args.denoiser, args.threads) if args.denoiser else None

    from student_quality import eval_pairs

    pairs, seeds = eval_pairs(args.draws, args.photos, with_seeds=True)
    wanted = set(args.subsets.split(","))
    print("| subset | draws | input PSNR | " + " | ".join("lam %g" % lam for lam in LAMBDAS)
          + " | best lam per draw |" + "".join(" best %dx%d filter |" % (n, n) for n in sizes))
    print("|---|---|---|" + "---|" * (len(LAMBDAS) + 1 + len(sizes)))
    for name, (preset, keys) in seeds.items():
        if preset not in wanted:
            continue
        config = get_preset(preset)
        for label, sources in (("", lambda x: [x]), (" + FFDNet", denoise)):
            if sources is None:
                continue
            inputs, gains, best = [], {lam: [] for lam in LAMBDAS}, []
            fitted = {n: [] for n in sizes}
            for (degraded, clean), seed in zip(pairs[name], keys):
                base = psnr(degraded, clean)
                inputs.append(base)
                kernel = blur_kernel(sample_params(config, seed))
                row = {lam: [] for lam in LAMBDAS}
                for source in sources(degraded):
                    restored = wiener(source, kernel.astype(np.float64), LAMBDAS) if kernel is not None else {
                        lam: source for lam in LAMBDAS}
                    for lam, out in restored.items():
                        row[lam].append(psnr(out, clean) - base)
                for lam in LAMBDAS:
                    gains[lam].append(max(row[lam]))
                best.append(max(0.0, max(max(v) for v in row.values())))
                if not label:
                    for n in sizes:
                        fitted[n].append(psnr(best_filter(degraded, clean, n), clean) - base)
            print("| %s%s | %d | %.2f | %s | %+.2f |%s" % (
                name, label, len(inputs), np.mean(inputs),
                " | ".join("%+.2f" % np.mean(gains[lam]) for lam in LAMBDAS), np.mean(best),
                "".join(" %+.2f |" % np.mean(fitted[n]) if fitted[n] else " |" for n in sizes)), flush=True)


def best_filter(degraded, clean, size, samples=20000, seed=0):
    """``degraded`` through the ``size x size`` filter (one for every colour) that brings it closest to
    ``clean`` in the least-squares sense, fitted on ``samples`` random pixels per colour."""
    import cv2

    half = size // 2
    source = degraded.astype(np.float32)
    padded = np.pad(source, ((half, half), (half, half), (0, 0)), mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(0, 1))  # H, W, 3, S, S
    rng = np.random.default_rng(seed)
    ys = rng.integers(0, source.shape[0], samples)
    xs = rng.integers(0, source.shape[1], samples)
    rows = windows[ys, xs].reshape(samples * 3, size * size)
    target = clean.astype(np.float32)[ys, xs].reshape(samples * 3)
    gram = rows.T.astype(np.float64) @ rows + 1e-3 * np.eye(size * size)
    weights = np.linalg.solve(gram, rows.T.astype(np.float64) @ target).reshape(size, size)
    out = cv2.filter2D(source, -1, weights.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _ffdnet(weights, threads):
    """``denoise(image) -> [image denoised at each of SIGMAS]`` with the pretrained FFDNet."""
    import torch

    from edgerestore.models.ffdnet import FFDNet

    torch.set_num_threads(threads)
    models = []
    for sigma in SIGMAS:
        model = FFDNet(sigma)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
        models.append(model.eval())

    def denoise(image):
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            return [(m(x)[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8) for m in models]

    return denoise


if __name__ == "__main__":
    main()
