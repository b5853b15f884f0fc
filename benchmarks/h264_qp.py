"""The QP x264 gives each frame at a CRF, as a decoder reads it back (edgerestore.codecinput).

    python benchmarks/h264_qp.py --crf 18 24 30 36

Encodes a crop of scikit-image's ``astronaut`` (or ``--image``), shifted 2 px per frame, as the
training degradation does (``degrade.h264_roundtrip``: libx264, 4:2:0, veryfast, zerolatency) and
prints each frame's mean QP: the frame's QP plus its blocks' adaptive-quantisation deltas, weighted
by area.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgerestore.distill.degrade import h264_roundtrip  # noqa: E402


def qps(image, crf, frames):
    out = []
    h264_roundtrip([np.ascontiguousarray(np.roll(image, 2 * k, axis=1)) for k in range(frames)], crf, qps=out)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crf", type=int, nargs="+", default=[18, 24, 30, 36])
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--image", default=None, help="an image file (default: astronaut's top-left 256 px)")
    args = parser.parse_args()
    if args.image:
        import cv2

        image = cv2.imread(args.image)
        if image is None:
            raise SystemExit("%s: not an image OpenCV can read" % args.image)
        image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2, ::-1]
    else:
        from skimage import data

        image = data.astronaut()[:256, :256]
    for crf in args.crf:
        print("CRF %d: mean QP per frame %s" % (crf, " ".join("%.1f" % q for q in qps(np.ascontiguousarray(image), crf,
                                                                                        args.frames))))


if __name__ == "__main__":
    main()
