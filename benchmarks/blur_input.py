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

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import student_quality as sq  # noqa: E402
from codec_input import parser_and_pairs, score  # noqa: E402

from edgerestore.distill import degrade as deg  # noqa: E402
from edgerestore.models.checkpoint import load_student  # noqa: E402

NONE = (0.0, 0.0, 0.0)


def eval_blurs(pairs, seeds):
    """``{subset: [descriptor]}``: each synthetic draw's true blur, none for the rest."""
    blurs = {subset: [NONE] * len(items) for subset, items in pairs.items()}
    for subset, (preset, keys) in seeds.items():
        config = deg.get_preset(preset)
        blurs[subset] = [deg.blur_descriptor(deg.blur_moments(deg.blur_kernel(deg.sample_params(config, k))))
                         for k in keys]
    return blurs


def main():
    args, pairs, seeds = parser_and_pairs(__doc__.split("\n\n")[0])
    blurs = eval_blurs(pairs, seeds)
    untold = {subset: [NONE] * len(items) for subset, items in pairs.items()}
    print("| model | told the blur | %s |" % " | ".join(pairs))
    print("|---|---|%s" % ("---|" * len(pairs)))
    for path in args.models:
        model = load_student(path)[0].eval()
        if model.config.level_input or model.config.codec_input:
            raise SystemExit("%s takes a noise level or a codec: score it with codec_input.py" % path)
        runs = [("yes", blurs), ("no", untold)] if model.config.blur_input else [("-", None)]
        for told, given in runs:
            cells = []
            for subset, items in pairs.items():
                mean, worst = score(model, items, [0.0] * len(items), [None] * len(items),
                                    None if given is None else given[subset])
                cells.append(("%.2f (worst %.2f)" if subset.startswith("clean") else "%+.3f (%+.2f)") % (mean, worst))
            print("| %s | %s | %s |" % (sq.label(path), told, " | ".join(cells)))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
