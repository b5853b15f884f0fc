"""Score ``blur_input`` students told each draw's true blur and told none, on student_quality.py's images.

    python benchmarks/blur_input.py runs/nano-blur/student.pt runs/nano-blur-control/student.pt \
        --photos runs/kodak/kodak-eval

``blur_input`` is a prototype that measures what knowing the blur is worth (docs/distill.md, "Told
the blur"): no runtime source knows a frame's blur kernel, so the "told" rows are an oracle. Each
model runs in PyTorch (output rounded to 8 bits) on the same draws and held-out pairs as
``student_quality.py``; a synthetic draw is told the second moments of the exact kernel it was
blurred with (``edgerestore.distill.degrade.blur_descriptor``), a real pair or a clean photo none.
Other students are scored once. Gain = output PSNR - input PSNR (clean: output PSNR against the
input), mean (worst).
"""

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import student_quality as sq  # noqa: E402

from edgerestore.distill import degrade as deg  # noqa: E402
from edgerestore.models.checkpoint import load_student  # noqa: E402
from edgerestore.runtime.quality import psnr  # noqa: E402

NONE = (0.0, 0.0, 0.0)


def restore(model, image, blur):
    """``image`` restored by the PyTorch student told ``blur`` (uint8 in and out), padded to the stride."""
    h, w = image.shape[:2]
    pad_h, pad_w = (-h) % model.stride, (-w) % model.stride
    padded = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    x = torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        told = torch.tensor([blur], dtype=torch.float32) if model.config.blur_input else None
        y = model(x, blur=told) * 255.0
    return torch.clamp(y + 0.5, 0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()[:h, :w]


def eval_blurs(pairs, seeds):
    """``{subset: [descriptor]}``: each synthetic draw's true blur, none for the rest."""
    blurs = {subset: [NONE] * len(items) for subset, items in pairs.items()}
    for subset, (preset, keys) in seeds.items():
        config = deg.get_preset(preset)
        blurs[subset] = [deg.blur_descriptor(deg.blur_moments(deg.blur_kernel(deg.sample_params(config, k))))
                         for k in keys]
    return blurs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="student checkpoints (.pt)")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--photos", default=None, metavar="DIR", help="as student_quality.py --photos")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for path in args.models:
        if not os.path.isfile(path):
            raise SystemExit("%s: no such checkpoint; give a student .pt" % path)
    pairs, seeds = sq.eval_pairs(args.draws, args.photos, with_seeds=True)
    blurs = eval_blurs(pairs, seeds)
    untold = {subset: [NONE] * len(items) for subset, items in pairs.items()}
    print("| model | told the blur | %s |" % " | ".join(pairs))
    print("|---|---|%s" % ("---|" * len(pairs)))
    for path in args.models:
        model = load_student(path)[0].eval()
        if model.config.level_input or model.config.codec_input:
            raise SystemExit("%s takes a noise level or a codec: score it with codec_input.py" % path)
        runs = [("yes", blurs), ("no", untold)] if model.config.blur_input else [("-", untold)]
        for told, given in runs:
            cells = []
            for subset, items in pairs.items():
                gains = []
                for (degraded, clean), blur in zip(items, given[subset]):
                    out = restore(model, degraded, blur)
                    gains.append(psnr(out, clean) if degraded is clean else psnr(out, clean) - psnr(degraded, clean))
                fmt = "%.2f (worst %.2f)" if subset.startswith("clean") else "%+.3f (%+.2f)"
                cells.append(fmt % (np.mean(gains), np.min(gains)))
            print("| %s | %s | %s |" % (sq.label(path), told, " | ".join(cells)))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
