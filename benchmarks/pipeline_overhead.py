#!/usr/bin/env python3
"""Pipeline overhead: end-to-end FPS (video file -> decode -> model -> null://) against
inference-only FPS (the same model and backend on frames already in memory).

The runtime's bar (issue 5): end-to-end >= 90% of inference-only at 1080p — decoding and the
sinks must overlap with inference on their own threads, not add to it.

    python benchmarks/pipeline_overhead.py                      # nano preset (random weights), 1080p
    python benchmarks/pipeline_overhead.py --model weights.onnx --size 1280x720 --repeats 5

Without ``--model`` the preset's architecture is exported with random weights (speed does not
depend on the weights; this needs torch). The clip is made from real 720p GoPro frames
(../shared/data) upscaled to the requested size, or pass ``--clip``. Both measurements are
wall-clock: frames / seconds from the first frame in to the last frame out; they alternate
``--repeats`` times and the medians are compared (the machine may be shared: say so when
reporting: on a busy machine the scheduler gives the pipeline's several busy threads a larger
share of the CPU than the single-threaded loop, which flatters the ratio; ``stage_ms.infer``
against ``inference_only_ms`` shows it, and ``loadavg_1m`` is recorded with every run).
Prints one JSON object.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from edgerestore.runtime.frames import Frame  # noqa: E402
from edgerestore.runtime.runner import open_backend, run  # noqa: E402
from edgerestore.runtime.sinks.video import VideoFileSink  # noqa: E402
from edgerestore.runtime.sources import open_source  # noqa: E402
from edgerestore.runtime.uri import parse_uri  # noqa: E402

SHARED = os.environ.get("EDGERESTORE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
GOPRO = os.path.join(SHARED, "data", "real_blur", "gopro_blurry_only")


def make_clip(path, width, height, frames, fps=30.0):
    """An H.264 clip of real frames (GoPro, 1280x720) scaled to ``width x height``, gently panning."""
    import cv2

    names = sorted(n for n in os.listdir(GOPRO) if n.endswith(".png")) if os.path.isdir(GOPRO) else []
    if not names:
        raise SystemExit("no real frames in %s; pass --clip" % GOPRO)
    pictures = [cv2.imread(os.path.join(GOPRO, n))[:, :, ::-1] for n in names]
    sink = VideoFileSink(parse_uri(path), fps=fps)
    try:
        for index in range(frames):
            picture = pictures[(index // 10) % len(pictures)]
            shift = (index % 10) * 8  # a pan, so consecutive frames differ like video does
            crop = picture[:, shift:picture.shape[1] - 80 + shift]
            sink.write(Frame(cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR), index))
    finally:
        sink.close()


def export_preset(name, path):
    from edgerestore.export.onnx import export_onnx
    from edgerestore.models.presets import get_preset
    from edgerestore.models.student import StudentNet

    export_onnx(StudentNet(get_preset(name).config), path)


def inference_only(model, backend, threads, images):
    engine = open_backend(model, backend, threads)
    engine.warmup(images[0].shape[0], images[0].shape[1])
    start = time.perf_counter()
    for image in images:
        engine.infer(image)
    fps = len(images) / (time.perf_counter() - start)
    info = engine.info()
    engine.close()
    return fps, info


def end_to_end(model, backend, threads, clip):
    summary = run(clip, ["null://"], model=model, backend=backend, threads=threads, stats_interval=3600)
    # elapsed_s runs from the pipeline's start (after loading and warming the model up, as for
    # inference_only) to the last frame written and the sinks closed.
    return summary["frames"] / summary["elapsed_s"], summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="an .onnx/.tflite model (default: the --preset architecture)")
    parser.add_argument("--preset", default="nano")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clip", help="a video file to use instead of the generated one")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    work = tempfile.mkdtemp(prefix="edgerestore-overhead-")
    try:
        report = measure(args, width, height, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0


def measure(args, width, height, work):
    model = args.model
    if model is None:
        model = os.path.join(work, "%s.onnx" % args.preset)
        export_preset(args.preset, model)
    clip = args.clip
    if clip is None:
        clip = os.path.join(work, "clip_%dx%d.mp4" % (width, height))
        make_clip(clip, width, height, args.frames)
    with open_source(clip) as source:
        images = [frame.image for frame in source]
    runs = []
    for _ in range(args.repeats):
        infer_fps, info = inference_only(model, args.backend, args.threads, images)
        e2e_fps, summary = end_to_end(model, args.backend, args.threads, clip)
        runs.append({"inference_fps": round(infer_fps, 3), "end_to_end_fps": round(e2e_fps, 3),
                     "inference_only_ms": round(info["mean_ms"], 2), "stage_ms": summary["stage_ms"],
                     "latency_ms_p50": summary["latency_ms_p50"], "loadavg_1m": os.getloadavg()[0]})
    infer_median = statistics.median(r["inference_fps"] for r in runs)
    e2e_median = statistics.median(r["end_to_end_fps"] for r in runs)
    report = {
        "benchmark": "pipeline_overhead",
        "model": args.model or "%s preset (random weights)" % args.preset,
        "backend": info["backend"], "providers": info.get("providers"), "threads": info["threads"],
        "size": [width, height], "frames": len(images), "repeats": args.repeats,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_1m": os.getloadavg()[0]},
        "runs": runs,
        "inference_fps_median": round(infer_median, 3),
        "end_to_end_fps_median": round(e2e_median, 3),
        "ratio": round(e2e_median / infer_median, 4),
        "ratio_per_run": [round(r["end_to_end_fps"] / r["inference_fps"], 3) for r in runs],
        "bar": 0.9,
    }
    report["passes"] = report["ratio"] >= report["bar"]
    return report


if __name__ == "__main__":
    sys.exit(main())
