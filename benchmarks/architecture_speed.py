#!/usr/bin/env python
"""Speed of candidate student architectures: FP32 and INT8 ONNX Runtime graphs at one frame size.

What a preset's shape costs on this CPU, before anyone trains it: each candidate is a randomly
initialised student (speed does not depend on the weights) exported exactly as ``edgerestore
export`` does (the FP32 uint8-contract graph, and the calibrated INT8 QDQ graph), run through the
runtime's ONNX Runtime backend on a degraded real frame. Rounds are interleaved (every graph once
per round), so that whatever else the machine does slows them alike; FPS = 1000 / median ms.
GMAC/s = MACs/px x pixels x FPS shows how close to the convolution peak a shape runs (a SIMD
register holds 8 float32 channels with AVX2, 16 with AVX-512: widths that are not multiples of it
waste the rest).

A candidate is ``name=scale,width,blocks[,context_width,context_blocks]``; presets by name:

    python benchmarks/architecture_speed.py                                  # the shipped presets
    python benchmarks/architecture_speed.py nano s4w16b3=4,16,3 s2w16c24=2,16,0,24,1 --rounds 15
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_candidate(text):
    """``(name, StudentConfig)`` from a preset name or ``name=scale,width,blocks[,cw,cb]``."""
    from edgerestore.models.config import StudentConfig
    from edgerestore.models.presets import get_preset

    if "=" not in text:
        return text, get_preset(text).config
    name, spec = text.split("=", 1)
    values = [int(v) for v in spec.split(",")]
    if len(values) not in (3, 5):
        raise SystemExit("candidate %r: give scale,width,blocks[,context_width,context_blocks]" % text)
    keys = ("scale", "width", "blocks", "context_width", "context_blocks")
    return name, StudentConfig(**dict(zip(keys, values)))


def random_student(config, seed=0):
    import torch

    from edgerestore.models.student import StudentNet

    torch.manual_seed(seed)
    student = StudentNet(config).eval()
    with torch.no_grad():
        student.tail.weight.normal_(0, 0.02)  # not the zero-initialised tail: calibration needs a real correction range
    return student


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", nargs="*", default=["pico", "nano", "small"])
    parser.add_argument("--size", default="1080x1920", help="HxW")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-int8", action="store_true", help="time the FP32 graphs only")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)

    from edgerestore.export import calibration
    from edgerestore.export.onnx import export_onnx
    from edgerestore.export.quantize import quantize_student
    from edgerestore.models.macs import macs_per_pixel
    from edgerestore.runtime.backends import create_backend

    size = tuple(int(v) for v in args.size.split("x"))
    calib = calibration.build(size)
    frame = calib.holdout[0][0]
    load_before = os.getloadavg()
    engines, macs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for text in args.candidates:
            name, config = parse_candidate(text)
            student = random_student(config)
            macs[name] = macs_per_pixel(student, config.stride * 16, config.stride * 16)
            paths = {"fp32": export_onnx(student, Path(tmp) / (name + ".onnx"), simplify=True)}
            if not args.no_int8:
                paths["int8"] = quantize_student(student, Path(tmp) / (name + "-int8.onnx"), calib.frames)
            for precision, path in paths.items():
                engine = create_backend("onnxruntime", threads=args.threads).load(str(path))
                engine.warmup(size[0], size[1], runs=3)
                engines[(name, precision)] = engine
        times = {key: [] for key in engines}
        for _ in range(args.rounds):
            for key, engine in engines.items():
                start = time.perf_counter()
                engine.infer(frame)
                times[key].append(time.perf_counter() - start)
    pixels = size[0] * size[1]
    rows = []
    for (name, precision), samples in times.items():
        ms = 1000 * float(np.median(samples))
        rows.append({"candidate": name, "precision": precision, "macs_per_pixel": round(macs[name]),
                     "ms": round(ms, 2), "best_ms": round(1000 * min(samples), 2), "fps": round(1000 / ms, 1),
                     "gmacs_per_s": round(macs[name] * pixels / ms / 1e6, 1)})
    print("| candidate | MACs/px | precision | median ms | best ms | FPS | GMAC/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %d | %s | %.1f | %.1f | %.1f | %.1f |" % (
            r["candidate"], r["macs_per_pixel"], r["precision"], r["ms"], r["best_ms"], r["fps"], r["gmacs_per_s"]))
    load_after = os.getloadavg()
    print("\n%dx%d, ONNX Runtime %d threads, %d interleaved rounds; load average %.2f -> %.2f"
          % (size[1], size[0], args.threads, args.rounds, load_before[0], load_after[0]))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"rows": rows, "size": list(size), "threads": args.threads,
                       "load_avg": [load_before[0], load_after[0]]}, handle, indent=1)
    return rows


if __name__ == "__main__":
    main()
