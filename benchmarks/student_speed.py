#!/usr/bin/env python
"""Median FPS and GMAC/s of every student preset with ONNX Runtime at 720p and 1080p.

The speed bar of issue #2 (pico >= 60 FPS and nano >= 30 FPS at 1080p with 2 threads on the
2-core dev machine). Each preset runs from its shipped ``edgerestore/weights/<preset>.onnx``, or,
where none is shipped (or with ``--random``), from a randomly initialised student exported with
the same uint8 contract: the speed of a convolution does not depend on its weights.

Timing is ``edgerestore bench``'s: warm-up frames, then ``--frames`` timed frames of real content
(degraded evaluation images resized to the frame size); FPS = 1000 / median ms per frame; GMAC/s =
MACs/px x pixels x FPS. Numbers from a machine that other jobs share are noisy: the load average
before and after is printed.

    python benchmarks/student_speed.py                       # pico, nano, small at 720p and 1080p
    python benchmarks/student_speed.py --presets nano --sizes 1920x1080 --frames 300 --json speed.json
"""

import argparse
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="pico,nano,small", help="comma-separated preset names")
    parser.add_argument("--sizes", default="1280x720,1920x1080", help="comma-separated WIDTHxHEIGHT")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=100, help="timed frames per preset and size")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--random", action="store_true", help="always use randomly initialised students")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    return parser.parse_args(argv)


def model_for(preset, folder, random_init):
    """``(onnx path, "shipped" | "random-init", macs per pixel)``."""
    from edgerestore.export.onnx import export_onnx
    from edgerestore.models.macs import macs_per_pixel
    from edgerestore.models.presets import get_preset
    from edgerestore.models.student import StudentNet
    from edgerestore.weights import shipped_path

    config = get_preset(preset).config
    student = StudentNet(config).eval()
    size = config.stride * 32
    macs = macs_per_pixel(student, size, size)
    shipped = shipped_path(preset, ".onnx")
    if shipped and not random_init:
        return shipped, "shipped", macs
    path = os.path.join(folder, preset + ".onnx")
    export_onnx(student, path, metadata={"preset": preset})
    return path, "random-init", macs


def main(argv=None):
    args = parse_args(argv)
    from edgerestore.benchmarks import bench
    from edgerestore.cli.bench import parse_sizes
    from edgerestore.runtime.backends import create_backend

    sizes = parse_sizes(args.sizes)
    pairs = []
    try:
        from edgerestore.benchmarks.evalset import ensure_default_evalset, load_evalset

        pairs = load_evalset(ensure_default_evalset())
    except Exception as exc:  # no scikit-image: time synthetic texture instead
        print("note: timing synthetic frames (%s)" % exc, file=sys.stderr)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
            path, weights, macs = model_for(preset, folder, args.random)
            backend = create_backend("onnxruntime", threads=args.threads).load(path)
            for width, height in sizes:
                frames = bench.timing_frames(pairs, width, height)
                timing = bench.time_frames(backend, frames, args.frames, warmup=args.warmup)
                figures = bench.speed_figures(timing, macs, width, height)
                rows.append({
                    "preset": preset, "weights": weights, "width": width, "height": height, "threads": args.threads,
                    "macs_per_pixel": macs, "gmac_per_frame": macs * width * height / 1e9, "fps": figures["fps"],
                    "ms_p50": figures["latency_ms"]["p50"], "ms_p95": figures["latency_ms"]["p95"],
                    "gmacs_per_s": figures["gmacs_per_s"], "cpu_percent": figures["cpu_percent"],
                    "frames": figures["frames"],
                })
    load_after = os.getloadavg()
    print("| preset | weights | MACs/px | size | GMAC/frame | median ms | p95 ms | FPS | GMAC/s | CPU % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %.0f | %dx%d | %.2f | %.2f | %.2f | %.1f | %.1f | %.0f |" % (
            r["preset"], r["weights"], r["macs_per_pixel"], r["width"], r["height"], r["gmac_per_frame"],
            r["ms_p50"], r["ms_p95"], r["fps"], r["gmacs_per_s"], r["cpu_percent"]))
    print("\nONNX Runtime, %d threads, %d timed frames after %d warm-up; load average %.2f -> %.2f"
          % (args.threads, args.frames, args.warmup, load_before[0], load_after[0]))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"rows": rows, "load_avg_before": load_before, "load_avg_after": load_after}, handle, indent=1)
    return rows


if __name__ == "__main__":
    main()
