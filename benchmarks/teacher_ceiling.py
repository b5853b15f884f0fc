"""The FFDNet teacher on student_quality.py's evaluation set: the ceiling of the noise part.

    python benchmarks/teacher_ceiling.py --weights ../shared/teachers/ffdnet_color.pth --sigma 10

Same images, draws and metrics as ``benchmarks/student_quality.py``; FFDNet runs in PyTorch
(about 213k MACs per pixel, 250x ``nano``'s budget) with the noise level ``--sigma`` (0-255).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from student_quality import eval_pairs  # noqa: E402

from edgerestore.runtime.quality import psnr  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="teachers/ffdnet_color.pth")
    parser.add_argument("--sigma", type=float, default=10.0)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    from edgerestore.models.ffdnet import FFDNet

    torch.set_num_threads(args.threads)
    model = FFDNet(args.sigma)
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True), strict=True)
    model.eval()
    print("| FFDNet sigma %g | images | input PSNR | output PSNR | gain dB (worst) |" % args.sigma)
    print("|---|---|---|---|---|")
    for subset, pairs in eval_pairs(args.draws).items():
        rows = []
        for degraded, clean in pairs:
            with torch.no_grad():
                x = torch.from_numpy(np.ascontiguousarray(degraded)).permute(2, 0, 1)[None].float() / 255.0
                out = (model(x)[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
            same = degraded is clean
            rows.append((np.inf if same else psnr(degraded, clean), psnr(out, clean)))
        rows = np.array(rows)
        if np.isinf(rows[0, 0]):
            print("| %s | %d | - | %.2f | (worst %.2f) |" % (subset, len(rows), rows[:, 1].mean(), rows[:, 1].min()))
        else:
            gain = rows[:, 1] - rows[:, 0]
            print("| %s | %d | %.2f | %.2f | %+.2f (%+.2f) |" % (subset, len(rows), rows[:, 0].mean(),
                                                             rows[:, 1].mean(), gain.mean(), gain.min()))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
