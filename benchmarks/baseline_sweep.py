#!/usr/bin/env python
"""How the OpenCV baselines' parameters were chosen: a grid on TRAINING photos, never the evaluation set.

Each setting of each baseline runs on McMaster training photos (../shared/data/train/mcmaster)
with the ``mild`` conferencing degradation (one fixed seed per photo); the mean PSNR against the
clean photo ranks the settings. The evaluation set of ``edgerestore bench`` (scikit-image photos,
GoPro pairs) is not used, so the baselines are not tuned on what they are scored on.

    python benchmarks/baseline_sweep.py [--images 8]
"""

import argparse
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

GRIDS = {
    "unsharp": [{"sigma": s, "amount": a} for s in (1.0, 1.5, 2.0) for a in (0.2, 0.5, 1.0)],
    "bilateral": [{"d": d, "sigma_color": c, "sigma_space": s} for d in (5, 7, 9) for c in (5.0, 10.0, 20.0)
                  for s in (3.0, 5.0)],
    "nlmeans": [{"h": h, "h_color": h, "template": 7, "search": 21} for h in (1.0, 1.5, 2.0, 3.0, 4.0)],
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--shared", default=os.environ.get("EDGERESTORE_SHARED", os.path.join(ROOT, "..", "shared")))
    args = parser.parse_args(argv)

    import numpy as np

    from edgerestore.benchmarks.baselines import BASELINES
    from edgerestore.benchmarks.evalset import read_rgb
    from edgerestore.distill.degrade import degrade, get_preset
    from edgerestore.runtime.quality import psnr

    paths = sorted(glob.glob(os.path.join(args.shared, "data", "train", "mcmaster", "*.tif")))[:args.images]
    if not paths:
        sys.exit("no training photos under %s/data/train/mcmaster" % args.shared)
    pairs = []
    for index, path in enumerate(paths):
        clean = read_rgb(path)
        pairs.append((degrade(clean, 500 + index, get_preset("mild"))[0], clean))
    floor = np.mean([psnr(d, c) for d, c in pairs])
    print("%d McMaster photos, mild degradation; no restoration: %.2f dB" % (len(pairs), floor))
    for name, grid in GRIDS.items():
        scored = []
        for params in grid:
            runner = BASELINES[name](**params).load()
            scored.append((np.mean([psnr(runner.infer(d), c) for d, c in pairs]), params))
        scored.sort(key=lambda item: -item[0])
        current = BASELINES[name].params
        mine = [s for s, p in scored if p == current]
        print("%-9s best %.2f dB %s; shipped setting %s: %s" % (
            name, scored[0][0], scored[0][1], current, "%.2f dB" % mine[0] if mine else "not in the grid"))


if __name__ == "__main__":
    main()
