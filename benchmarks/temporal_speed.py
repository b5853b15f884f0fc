#!/usr/bin/env python3
"""Speed of temporal (recurrent) students against the frame-by-frame students of the same budget,
through the runtime: inference-only FPS (``backend.infer`` on decoded frames in memory, with the
state kept and the scene-cut check done as in a real run) and end-to-end FPS (H.264 file ->
decode -> model -> ``null://``, the pipeline's own threads).

The bar of issue 8: the runtime's FPS with a temporal model within 10% of the frame-by-frame
model of the same budget.

    nice -n 10 python benchmarks/temporal_speed.py                         # nano vs nano-t, 1080p
    nice -n 10 python benchmarks/temporal_speed.py --pairs pico:pico-t,nano:nano-t --size 1280x720

Models are the presets' architectures exported to ONNX with random weights (speed does not depend
on the weights; this needs torch) unless ``--model NAME=FILE`` gives one. The models alternate
``--repeats`` times and medians are compared; the machine may be shared (the load average is
recorded with every run). Prints one JSON object.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from pipeline_overhead import end_to_end, inference_only, make_clip  # noqa: E402

from edgerestore.runtime.sources import open_source  # noqa: E402


def export_preset(name, path):
    import torch

    from edgerestore.export.onnx import export_onnx
    from edgerestore.models.presets import get_preset
    from edgerestore.models.student import StudentNet

    torch.manual_seed(0)
    student = StudentNet(get_preset(name).config).eval()
    with torch.no_grad():  # random weights: a zero tail or gate could let a runtime skip work
        for parameter in student.parameters():
            parameter.normal_(0, 0.02)
    export_onnx(student, path, simplify=True, metadata={"preset": name})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default="nano:nano-t", help="frame:temporal preset pairs, comma-separated")
    parser.add_argument("--model", action="append", default=[], help="NAME=FILE: use this file for preset NAME")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clip", help="a video file to use instead of the generated one")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    given = dict(m.split("=", 1) for m in args.model)
    work = tempfile.mkdtemp(prefix="edgerestore-temporal-speed-")
    try:
        models = {}
        for name in [n for pair in pairs for n in pair]:
            models[name] = given.get(name) or os.path.join(work, "%s.onnx" % name)
            if name not in given:
                export_preset(name, models[name])
        clip = args.clip
        if clip is None:
            clip = os.path.join(work, "clip_%dx%d.mp4" % (width, height))
            make_clip(clip, width, height, args.frames)
        with open_source(clip) as source:
            images = [frame.image for frame in source]
        runs = dict((name, []) for name in models)
        for _ in range(args.repeats):
            for name, path in models.items():
                infer_fps, info = inference_only(path, None, args.threads, images)
                e2e_fps, summary = end_to_end(path, None, args.threads, clip)
                runs[name].append({"inference_fps": round(infer_fps, 3), "end_to_end_fps": round(e2e_fps, 3),
                                   "inference_ms": round(info["mean_ms"], 2), "stage_ms": summary["stage_ms"],
                                   "resets": (summary["backend_info"].get("temporal") or {}).get("resets"),
                                   "loadavg_1m": os.getloadavg()[0]})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {}
    for name, rows in runs.items():
        medians[name] = {"inference_fps": round(statistics.median(r["inference_fps"] for r in rows), 3),
                         "end_to_end_fps": round(statistics.median(r["end_to_end_fps"] for r in rows), 3)}
    comparisons = []
    for frame, temporal in pairs:
        row = {"frame": frame, "temporal": temporal}
        for key in ("inference_fps", "end_to_end_fps"):
            row[key + "_ratio"] = round(medians[temporal][key] / medians[frame][key], 4)
        row["passes"] = row["end_to_end_fps_ratio"] >= 0.9
        comparisons.append(row)
    report = {
        "benchmark": "temporal_speed", "size": [width, height], "frames": len(images), "repeats": args.repeats,
        "threads": args.threads, "models": dict((k, given.get(k) or "%s preset (random weights)" % k) for k in models),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_1m": os.getloadavg()[0]},
        "medians": medians, "comparisons": comparisons, "runs": runs, "bar": 0.9,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
