#!/usr/bin/env python
"""What the motion deblur stage (``--deblur motion``) costs per frame, against the model alone.

A photo scaled to ``--size`` pans ``--speed`` px per frame (every tile moves: the stage's worst
case), or holds still (only the flow is computed). The shipped ``nano-codec`` runs on ONNX Runtime
with ``--threads``; each way is timed over ``--frames`` frames per round, the rounds interleaved,
and the median ms per frame is printed with the parts of the stage (flow, blur estimate, filters)
and this CPU's flags:

    python benchmarks/motion_deblur_speed.py --photo runs/kodak/kodak-eval/kodim02.png

``--baseline FILE`` also times another version of the stage, interleaved (a ``framefilter.py`` of an
earlier commit: ``git show REV:edgerestore/runtime/framefilter.py > old.py``), and says how far its
frames are from this version's.
"""

import argparse
import importlib.util
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgerestore.benchmarks.bench import panning_frames  # noqa: E402
from edgerestore.devices.detect import vector_flags  # noqa: E402
from edgerestore.runtime import framefilter  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", required=True, help="a photo to pan over (e.g. a Kodak image)")
    parser.add_argument("--model", default=None, help="ONNX model with a filter beside it (default: shipped nano-codec)")
    parser.add_argument("--size", default="1920x1080", help="frame WIDTHxHEIGHT (default: %(default)s)")
    parser.add_argument("--speed", type=float, default=6.0, help="pan, px per frame (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=8, help="frames per round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiles", type=int, nargs="+", default=[framefilter.TILE],
                        help="tile sides to time the stage at, px (default: %(default)s)")
    parser.add_argument("--baseline", default=None, metavar="FILE",
                        help="another version's edgerestore/runtime/framefilter.py to time beside this one")
    args = parser.parse_args()
    import cv2

    from edgerestore.runtime.backends import create_backend
    from edgerestore.weights import shipped_path

    try:
        size = tuple(int(v) for v in args.size.lower().split("x"))
        assert len(size) == 2 and min(size) > 0
    except (ValueError, AssertionError):
        parser.error("--size takes WIDTHxHEIGHT, e.g. 1920x1080")
    photo = cv2.imread(args.photo)
    if photo is None:
        parser.error("%s is not a readable image" % args.photo)
    model = args.model or shipped_path("nano-codec", ".onnx")
    if not framefilter.sidecar(model):
        parser.error("%s has no %s beside it" % (model, framefilter.SUFFIX))
    cv2.setNumThreads(args.threads)
    plain = create_backend("onnxruntime", threads=args.threads).load(model)
    panning = panning_frames(photo[:, :, ::-1], args.frames, args.speed, size)
    still = [panning[0]] * args.frames
    ways = [("the model alone, panning", plain, panning)]
    baseline = None
    if args.baseline:
        spec = importlib.util.spec_from_file_location("baseline_framefilter", args.baseline)
        baseline = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(baseline)
        except (OSError, SyntaxError, ImportError) as exc:
            parser.error("--baseline %s cannot be loaded: %s" % (args.baseline, exc))
    for tile in args.tiles:
        staged = create_backend("onnxruntime", threads=args.threads).load(model).set_deblur("motion")
        staged.frame_filter.tile = tile
        if baseline is not None:
            based = create_backend("onnxruntime", threads=args.threads).load(model).set_deblur("motion")
            based.frame_filter = baseline.MotionDeblur(baseline.FrameFilter.load(framefilter.sidecar(model)), tile=tile)
            ways.append(("the baseline stage, %d-px tiles, panning" % tile, based, panning))
        ways += [("with the stage, %d-px tiles, panning" % tile, staged, panning),
                 ("with the stage, %d-px tiles, still" % tile, staged, still)]
    times = dict((name, []) for name, _, _ in ways)
    outputs = dict((name, []) for name, _, _ in ways)
    for _, backend, _ in ways:
        backend.infer(panning[0])  # warm up
    for round_ in range(args.rounds):
        for name, backend, sequence in ways:
            backend.reset()
            for image in sequence:
                start = time.perf_counter()
                out = backend.infer(image)
                times[name].append(time.perf_counter() - start)
                if round_ == 0:
                    outputs[name].append(out)
    # the stage's parts, on the last panning pair, at the last tile size
    stage = ways[-1][1].frame_filter
    restored = plain.infer(panning[-1])
    parts = {"flow": [], "blur estimate": [], "one filter per tile": []}
    for _ in range(args.rounds):
        stage.reset()
        stage.motion(panning[-2], None)
        start = time.perf_counter()
        stage.motion(panning[-1], None)
        parts["flow"].append(time.perf_counter() - start)
        start = time.perf_counter()
        stage.weights.estimate(panning[-1], 0.2)
        parts["blur estimate"].append(time.perf_counter() - start)
        stage.reset()
        stage.motion(panning[-2], None)
        start = time.perf_counter()
        stage(restored, panning[-1], None, 0.2)
        parts["one filter per tile"].append(time.perf_counter() - start - parts["flow"][-1] - parts["blur estimate"][-1])
    print("%dx%d frames, pan %.3g px/frame, %s, ONNX Runtime %d threads, %d rounds x %d frames interleaved; CPU flags: %s\n"
          % (size[0], size[1], args.speed, os.path.basename(model), args.threads, args.rounds, args.frames, " ".join(vector_flags()) or "none of the vector extensions"))
    print("| way | median ms per frame | vs the model alone |\n|---|---|---|")
    base = float(np.median(times[ways[0][0]]))
    for name, _, _ in ways:
        ms = float(np.median(times[name]))
        print("| %s | %.1f | %.2fx the time |" % (name, 1000 * ms, ms / base))
    print("\n| part of the stage (panning, %d-px tiles) | median ms |\n|---|---|" % stage.tile)
    for name, values in parts.items():
        print("| %s | %.1f |" % (name, 1000 * float(np.median(values))))
    for tile in args.tiles if baseline is not None else ():
        pairs = zip(outputs["the baseline stage, %d-px tiles, panning" % tile],
                    outputs["with the stage, %d-px tiles, panning" % tile])
        worst = max(int(np.abs(a.astype(int) - b).max()) for a, b in pairs)
        print("\n%d-px tiles: the baseline's frames and this version's differ by at most %d level(s)" % (tile, worst))


if __name__ == "__main__":
    main()
