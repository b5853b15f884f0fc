"""Can one picture tell its own camera noise? A classical blind estimate against the level measured
from the pair, on student_quality.py's images.

    python benchmarks/blind_noise_estimate.py

The estimate: per colour, the fine part of the picture (:func:`edgerestore.noiselevel.fine`) in
8x8 blocks away from black and white, the 10th percentile of the blocks' RMS (the flattest
blocks hold mostly noise), in the level's unit. The pair's level is
:func:`edgerestore.noiselevel.of_pair` (for the clean photos: 0). If the estimate separated clean
photos from noisy ones, a student could read its level from the picture alone.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from student_quality import eval_pairs  # noqa: E402

from edgerestore import noiselevel  # noqa: E402


def blind_level(image, block=8, quantile=10):
    values = []
    for channel in range(3):
        plane = image[:, :, channel].astype(np.float32)
        fine = noiselevel.fine(plane)
        h, w = (plane.shape[0] // block) * block, (plane.shape[1] // block) * block
        rms = np.sqrt((fine[:h, :w].reshape(h // block, block, w // block, block) ** 2).mean(axis=(1, 3)))
        mean = plane[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))
        usable = rms[(mean > 24) & (mean < 232)]
        values.append(np.percentile(usable, quantile) if usable.size > 20 else 0.0)
    return float(np.mean(values)) / noiselevel.UNIT


def main():
    print("| subset | images | pair level (mean, min-max) | blind estimate (mean, min-max) |")
    print("|---|---|---|---|")
    for subset, items in eval_pairs(1).items():
        pair = [0.0 if d is c else noiselevel.of_pair(d, c) for d, c in items]
        blind = [blind_level(d) for d, _ in items]
        print("| %s | %d | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) |" % (
            subset, len(items), np.mean(pair), min(pair), max(pair), np.mean(blind), min(blind), max(blind)))


if __name__ == "__main__":
    main()
