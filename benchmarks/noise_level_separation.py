"""Can one number per frame tell a clean frame from a noisy one? (issue 19's next lever, measured)

Fine-tuning ``nano`` toward real camera noise bought PolyU gain with clean-frame PSNR
(docs/distill.md): the student cannot tell the two apart from its receptive field. This scores a
classic global noise estimate on student_quality.py's images: sigma = median(|HH|) / 0.6745 of the
finest Haar band of the grey frame (Donoho's estimator), and how well a threshold on it separates
the frames a student should leave alone (clean, compression-only) from the noisy ones (``noise``,
``mild``, the held-out PolyU scenes): per subset the spread, and the AUC of each pair, including
the PolyU scenes against their own clean versions (the same content).

    python benchmarks/noise_level_separation.py --draws 3
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from student_quality import eval_pairs  # noqa: E402

LEAVE_ALONE = ("clean", "compression", "polyu clean")
NOISY = ("noise", "mild", "polyu (real noise)")


def noise_sigma(frame: np.ndarray) -> float:
    """Donoho's estimate of the noise's standard deviation (0..255 levels) of an RGB uint8 frame."""
    grey = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    h, w = (grey.shape[0] // 2) * 2, (grey.shape[1] // 2) * 2
    g = grey[:h, :w]
    hh = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2.0
    return float(np.median(np.abs(hh)) / 0.6745)


def auc(low: list, high: list) -> float:
    """P(a frame of ``high`` scores above one of ``low``), ties counted half."""
    low, high = np.asarray(low)[:, None], np.asarray(high)[None, :]
    return float(np.mean((high > low) + 0.5 * (high == low)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=3, help="degradation draws per photo and subset")
    args = parser.parse_args()
    pairs = eval_pairs(args.draws)
    sigmas = {subset: [noise_sigma(degraded) for degraded, _ in items] for subset, items in pairs.items()}
    if "polyu (real noise)" in pairs:  # the same scenes without their noise (mean of many shots)
        sigmas["polyu clean"] = [noise_sigma(clean) for _, clean in pairs["polyu (real noise)"]]
    print("| subset | images | sigma min | median | max |")
    print("|---|---|---|---|---|")
    for subset, values in sigmas.items():
        print("| %s | %d | %.2f | %.2f | %.2f |" % (subset, len(values), min(values), float(np.median(values)),
                                                 max(values)))
    print()
    print("| leave alone | noisy | AUC |")
    print("|---|---|---|")
    for quiet in LEAVE_ALONE:
        for noisy in NOISY:
            if quiet in sigmas and noisy in sigmas:
                print("| %s | %s | %.3f |" % (quiet, noisy, auc(sigmas[quiet], sigmas[noisy])))


if __name__ == "__main__":
    main()
