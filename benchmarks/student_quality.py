"""Quality of the students on images they never trained on (issue #2's quality bar).

    python benchmarks/student_quality.py                       # the shipped presets
    python benchmarks/student_quality.py runs/nano-gt/student.pt runs/nano-kd/student.pt

For every model: PSNR and SSIM of its output against the clean image, and the gain over the
degraded input, on

* scikit-image's photos (astronaut, coffee, chelsea, rocket; public domain / CC0) with several
  seeded draws of each degradation preset: ``mild`` (the conferencing setting of the goals:
  blur <= 11 px, noise sigma <= 6, JPEG q >= 50), and, to see where the gain comes from, ``blur``
  (camera shake + defocus only), ``noise`` (sensor noise only, sigma 3-10) and ``compression``
  (JPEG or H.264 only);
* the real GoPro blur/sharp pairs (CC BY 4.0), when ../shared/data is present.

Models run through the runtime's ONNX Runtime backend (the same path as ``edgerestore restore``).
The gain is the mean over images of (output PSNR - input PSNR).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgerestore.benchmarks.evalset import SKIMAGE_PHOTOS, default_gopro_dir, load_pairs_dir  # noqa: E402
from edgerestore.benchmarks.metrics import psnr, ssim  # noqa: E402
from edgerestore.distill.degrade import degrade, get_preset  # noqa: E402
from edgerestore.models.resolve import resolve_model  # noqa: E402
from edgerestore.runtime.restore import load_backend  # noqa: E402
from edgerestore.weights import shipped_presets  # noqa: E402

SUBSETS = ("mild", "blur", "noise", "compression")
SEED = 9100  # nothing in training uses these seeds


def eval_pairs(draws):
    """{subset: [(degraded, clean)]}: the synthetic subsets and the real GoPro pairs."""
    from skimage import data

    photos = {}
    for name in SKIMAGE_PHOTOS:
        image = getattr(data, name)()
        photos[name] = np.ascontiguousarray(image[:, :, :3])
    pairs = {}
    for subset in SUBSETS:
        config = get_preset(subset)
        pairs[subset] = [
            (degrade(clean, SEED + 100 * i + d, config)[0], clean)
            for i, clean in enumerate(photos.values()) for d in range(draws)
        ]
    gopro = default_gopro_dir()
    if gopro:
        pairs["gopro (real)"] = [(p.degraded, p.clean) for p in load_pairs_dir(gopro, subset="gopro")]
    return pairs


def score(backend, pairs):
    rows = []
    for degraded, clean in pairs:
        out = backend.infer(degraded)
        rows.append((psnr(degraded, clean), psnr(out, clean), ssim(degraded, clean), ssim(out, clean)))
    rows = np.array(rows)
    return rows.mean(axis=0), (rows[:, 1] - rows[:, 0]).min()


def label(model):
    """A preset's name, or a file with its run folder (runs/nano-kd/student.pt -> nano-kd/student.pt)."""
    if not os.path.exists(model):
        return model
    parts = os.path.abspath(model).split(os.sep)
    return "/".join(parts[-2:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="presets, .pt or .onnx (default: the shipped presets)")
    parser.add_argument("--draws", type=int, default=3, help="degradation draws per photo and subset")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    models = args.models or shipped_presets()
    pairs = eval_pairs(args.draws)
    print("| model | subset | images | input PSNR | output PSNR | gain dB (worst) | input SSIM | output SSIM |")
    print("|---|---|---|---|---|---|---|---|")
    for model in models:
        backend = load_backend(str(resolve_model(model)), threads=args.threads)
        for subset, items in pairs.items():
            (p_in, p_out, s_in, s_out), worst = score(backend, items)
            print("| %s | %s | %d | %.2f | %.2f | %+.2f (%+.2f) | %.4f | %.4f |" % (
                label(model), subset, len(items), p_in, p_out, p_out - p_in, worst, s_in, s_out))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
