"""student_quality.py's images for a ``level_input`` prototype student, given each frame's
sensor-noise level (an oracle: what a level from outside the picture, such as the sensor's gain,
could at best supply): a synthetic frame's from its degradation parameters, a real pair's from
its fine error, 0 for a clean frame.

    python benchmarks/level_oracle_quality.py runs/nano-level/student.pt runs/nano-polyu55/student.pt

Runs in PyTorch; a student without ``level_input`` ignores the level (its row is its own quality).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from student_quality import SEED, SKIMAGE_PHOTOS, SUBSETS, eval_pairs  # noqa: E402

from edgerestore.runtime.quality import psnr  # noqa: E402


def tensor(image, stride):
    """uint8 HWC -> float NCHW in [0, 1], edge-padded to a multiple of ``stride``."""
    import torch

    h, w = image.shape[:2]
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    return torch.nn.functional.pad(t, (0, -w % stride, 0, -h % stride), mode="replicate")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    from edgerestore.distill.data import noise_level_of_pair, noise_level_of_params
    from edgerestore.distill.degrade import get_preset, sample_params
    from edgerestore.models.checkpoint import load_student

    torch.set_num_threads(args.threads)
    pairs = eval_pairs(args.draws)
    print("| checkpoint | subset | images | mean level | gain dB (worst); clean: output vs input |")
    print("|---|---|---|---|---|")
    for path in args.checkpoints:
        model, _ = load_student(path)
        for subset, items in pairs.items():
            gains, levels = [], []
            if subset in SUBSETS:
                known = [noise_level_of_params(sample_params(get_preset(subset), SEED + 100 * i + d))
                         for i in range(len(SKIMAGE_PHOTOS)) for d in range(args.draws)]
            for n, (degraded, clean) in enumerate(items):
                h, w = degraded.shape[:2]
                x = tensor(degraded, model.stride)
                if subset in SUBSETS:
                    level = known[n]
                else:
                    level = 0.0 if degraded is clean else noise_level_of_pair(degraded, clean)
                levels.append(level)
                model.level = torch.tensor([level])
                with torch.no_grad():
                    out = model(x)[0, :, :h, :w].clamp(0, 1)
                out = (out.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
                same = degraded is clean
                gains.append(psnr(out, clean) if same else psnr(out, clean) - psnr(degraded, clean))
            print("| %s | %s | %d | %.2f | %s |" % (
                "/".join(path.split(os.sep)[-2:]), subset, len(items), np.mean(levels),
                ("%.2f (worst %.2f)" if subset == "clean" else "%+.2f (%+.2f)") % (np.mean(gains), min(gains))))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
