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
from edgerestore.models.checkpoint import load_student  # noqa: E402
from edgerestore.runtime.quality import psnr  # noqa: E402


def restore(model, image, level=0.0, codec=None, blur=None):
    """``image`` restored as the exported graph would (uint8 in and out, as
    :func:`edgerestore.export.onnx.reference_uint8`), padded to the stride; ``blur``: a
    ``blur_input`` prototype's descriptor (benchmarks/blur_input.py)."""
    h, w = image.shape[:2]
    pad_h, pad_w = (-h) % model.stride, (-w) % model.stride
    padded = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    x = torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        y = model(x, level=level, codec=codec, blur=None if blur is None else torch.tensor([blur])) * 255.0
    return torch.clamp(y + 0.5, 0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()[:h, :w]


def score(model, items, levels, codecs, blurs=None):
    """Gain over the input (a clean photo: output PSNR against it), mean and worst."""
    gains = []
    for n, ((degraded, clean), level, codec) in enumerate(zip(items, levels, codecs)):
        out = restore(model, degraded, level, codec, None if blurs is None else blurs[n])
        gains.append(psnr(out, clean) if degraded is clean else psnr(out, clean) - psnr(degraded, clean))
    return float(np.mean(gains)), float(np.min(gains))


def parser_and_pairs(description, more=()):
    """The arguments these benchmarks share (``more``: ``(args, kwargs)`` of their own) and
    ``(args, pairs, seeds)``: student_quality.py's draws, every model checked to exist first."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("models", nargs="+", help="student checkpoints (.pt)")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--photos", default=None, metavar="DIR", help="as student_quality.py --photos")
    parser.add_argument("--threads", type=int, default=2)
    for names, kwargs in more:
        parser.add_argument(*names, **kwargs)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for path in args.models:
        if not os.path.isfile(path):
            raise SystemExit("%s: no such checkpoint; give a student .pt" % path)
    pairs, seeds = sq.eval_pairs(args.draws, args.photos, with_seeds=True)
    return args, pairs, seeds


def main():
    args, pairs, seeds = parser_and_pairs(__doc__.split("\n\n")[0], [(("--qp",), dict(
        choices=("crf", "decoded"), default="crf",
        help="an H.264 draw's QP: its CRF, or what its decoder reads back (as the student was trained: data.codec_qp)"))])
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
