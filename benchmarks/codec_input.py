"""Score students with a codec input told their codec and told nothing, on student_quality.py's images.

    python benchmarks/codec_input.py runs/nano-codec/student.pt edgerestore/weights/nano-level.pt \
        --photos kodak/kodak-eval

Each model runs in PyTorch (output rounded to 8 bits, as the exported graphs give it) on the same
draws, noise levels and held-out pairs as ``student_quality.py``. A ``codec_input`` student is scored
twice: told each draw's codec (the JPEG quality or the H.264 CRF of its degradation, which a decoder
knows: edgerestore.codecinput) and told nothing (every frame read as uncompressed). Gain = output
PSNR - input PSNR (clean: output PSNR against the input), mean (worst).
"""

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import student_quality as sq  # noqa: E402

from edgerestore import codecinput  # noqa: E402
from edgerestore.export.onnx import reference_uint8  # noqa: E402
from edgerestore.models.checkpoint import load_student  # noqa: E402
from edgerestore.runtime.quality import psnr  # noqa: E402


def restore(model, image, level, codec):
    """``image`` restored as the exported graph would (uint8 in and out), padded to the stride."""
    h, w = image.shape[:2]
    pad_h, pad_w = (-h) % model.stride, (-w) % model.stride
    padded = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    out = reference_uint8(model, torch.from_numpy(padded)[None], level=level, codec=torch.tensor(codec))
    return out[0, :h, :w].numpy()


def score(model, items, levels, codecs):
    gains = []
    for (degraded, clean), level, codec in zip(items, levels, codecs):
        out = restore(model, degraded, level, codec)
        gains.append(psnr(out, clean) if degraded is clean else psnr(out, clean) - psnr(degraded, clean))
    return float(np.mean(gains)), float(np.min(gains))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="student checkpoints (.pt)")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--photos", default=None, metavar="DIR", help="as student_quality.py --photos")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--qp", choices=("crf", "decoded"), default="crf",
                        help="an H.264 draw's QP: its CRF, or what its decoder reads back (as the student was trained: "
                             "data.codec_qp)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for path in args.models:
        if not os.path.isfile(path):
            raise SystemExit("%s: no such checkpoint; give a student .pt" % path)
    pairs, seeds = sq.eval_pairs(args.draws, args.photos, with_seeds=True)
    levels = sq.eval_levels(pairs, seeds)
    codecs = sq.eval_codecs(pairs, seeds, args.qp)
    untouched = {subset: [codecinput.strengths()] * len(items) for subset, items in pairs.items()}
    print("| model | told the codec | %s |" % " | ".join(pairs))
    print("|---|---|%s" % ("---|" * len(pairs)))
    for path in args.models:
        model = load_student(path)[0].eval()
        runs = [("yes", codecs), ("no", untouched)] if model.config.codec_input else [("-", untouched)]
        for told, given in runs:
            cells = []
            for subset, items in pairs.items():
                mean, worst = score(model, items, levels[subset], given[subset])
                cells.append(("%.2f (worst %.2f)" if subset.startswith("clean") else "%+.3f (%+.2f)") % (mean, worst))
            print("| %s | %s | %s |" % (sq.label(path), told, " | ".join(cells)))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
