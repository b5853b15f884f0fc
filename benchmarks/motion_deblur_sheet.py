#!/usr/bin/env python
"""A contact sheet of the motion deblur stage: what a person sees at 100 %.

Each row is one frame of a moving camera, the same draws as ``benchmarks/motion_blur.py`` (a held-out
Kodak photo moved with drift and tremor, or a real clip's frame smeared along its own motion; then
noise and H.264): the degraded frame, ``nano-codec``, ``nano-codec --deblur motion`` (the runtime's
stage, fed the previous frame first) and the sharp frame, one ``--crop``-pixel piece of each where
the picture has the most detail, with each one's PSNR against the sharp frame:

    python benchmarks/motion_deblur_sheet.py --photos runs/kodak/kodak-eval \\
        --clips ../shared/data/video_clean/set8_gopro --out docs/motion_deblur_sheet.jpg
"""

import argparse
import glob
import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from motion_blur import clip_draw, draw  # noqa: E402

from edgerestore import noiselevel  # noqa: E402
from edgerestore.runtime.quality import psnr  # noqa: E402


def detailed_crop(image, side):
    """``(top, left)`` of the ``side``-pixel square of ``image`` with the most detail (a coarse grid)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    best, where = -1.0, (0, 0)
    for top in range(0, image.shape[0] - side + 1, side // 4):
        for left in range(0, image.shape[1] - side + 1, side // 4):
            value = float(energy[top:top + side, left:left + side].mean())
            if value > best:
                best, where = value, (top, left)
    return where


def labelled(piece, text):
    out = np.ascontiguousarray(piece[:, :, ::-1])
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default=None, help="held-out photos (moving-camera draws of each)")
    parser.add_argument("--clips", default=None, help="real clips (*.mp4): a frame of each, smeared along its motion")
    parser.add_argument("--rows", type=int, default=3, help="photo rows (default: %(default)s)")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--model", default="nano-codec", help="a shipped preset or ONNX file with a filter beside it")
    parser.add_argument("--out", default="motion_deblur_sheet.jpg")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    from edgerestore import codecinput
    from edgerestore.runtime.artifacts import load_first, resolve

    if not args.photos and not args.clips:
        parser.error("give --photos, --clips or both")
    for path in (args.photos, args.clips):
        if path and not os.path.isdir(path):
            parser.error("%s is not a folder" % path)
    plain = load_first(resolve(args.model, backends=["onnxruntime"]), threads=2)[0]
    staged = load_first(resolve(args.model, backends=["onnxruntime"]), threads=2)[0].set_deblur("motion")
    rng = np.random.default_rng(args.seed)
    draws = []  # (name, previous, current, sharp, level, crf)
    if args.photos:
        names = sorted(n for n in os.listdir(args.photos) if n.lower().endswith((".png", ".jpg")))
        for name in [names[int(k)] for k in rng.choice(len(names), min(args.rows, len(names)), replace=False)]:
            photo = cv2.imread(os.path.join(args.photos, name))[:, :, ::-1].copy()
            previous, current, second, sharp, _, (_, _, _, crf) = draw(photo, rng)
            draws.append((name, previous, current, sharp, noiselevel.of_two_frames(current, second), crf))
    if args.clips:
        from edgerestore.distill.data import read_video

        for path in sorted(glob.glob(os.path.join(args.clips, "*.mp4"))):
            frames = read_video(Path(path), 1, 1000)
            previous, current, second, sharp, _, (_, _, _, crf) = clip_draw(frames, len(frames) // 2, rng)
            draws.append((os.path.basename(path), previous, current, sharp,
                           noiselevel.of_two_frames(current, second), crf))
    rows = []
    for name, previous, current, sharp, level, crf in draws:
        codec = codecinput.strengths("h264", h264_qp=float(crf))
        outs = []
        for backend in (plain, staged):
            backend.reset()
            backend.set_noise_level(level)
            backend.set_codec(codec)
            backend.infer(previous)  # the stage measures the motion from the frame before
            outs.append(backend.infer(current))
        top, left = detailed_crop(sharp, args.crop)
        window = (slice(top, top + args.crop), slice(left, left + args.crop))
        cells = [labelled(current[window], "%s degraded %.2f dB" % (name[:12], psnr(current, sharp))),
                 labelled(outs[0][window], "%s %.2f dB" % (args.model, psnr(outs[0], sharp))),
                 labelled(outs[1][window], "+ deblur motion %.2f dB" % psnr(outs[1], sharp)),
                 labelled(sharp[window], "sharp")]
        rows.append(np.concatenate(cells, 1))
        print("%s: degraded %.2f, %s %.2f, + --deblur motion %.2f dB (whole frame)"
              % (name, psnr(current, sharp), args.model, psnr(outs[0], sharp), psnr(outs[1], sharp)))
    cv2.imwrite(args.out, np.concatenate(rows, 0), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
