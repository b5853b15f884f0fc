"""Speed of the exported artifacts here: INT8 vs FP32 per preset, ONNX Runtime and TFLite/XNNPACK.

For each preset: the FP32 and INT8 ONNX graphs (ONNX Runtime) and the FP32 and INT8 TFLite
graphs (ai-edge-litert + XNNPACK), all run through the runtime's own backends on a degraded real
1080p frame with 2 threads. Rounds are interleaved (every artifact once per round) so that other
work on the machine slows them alike; the median and best wall-clock times over rounds are
reported, with the load average. On a shared machine wall-clock time mostly measures the other
jobs, so the process CPU time per frame is reported too, and "FPS idle~" = threads / CPU time:
what the same work would give if this process had its threads' cores to itself (an estimate that
assumes the threads run in parallel without waiting; ONNX Runtime's workers do not spin here).
Weights: the shipped ``edgerestore/weights/<preset>.pt`` when present, else a random student of
the preset's architecture (speed does not depend on the weights; the parity column then only
checks the graphs).

    nice -n 10 python benchmarks/export_speed.py                # pico, nano, small at 1080p
    nice -n 10 python benchmarks/export_speed.py --presets nano --rounds 30 --json nano.json
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


def student_for(preset):
    import torch

    from edgerestore.models.checkpoint import load_student
    from edgerestore.models.presets import get_preset
    from edgerestore.models.student import StudentNet
    from edgerestore.weights import shipped_path

    if preset.endswith(".pt") and os.path.exists(preset):  # a checkpoint, e.g. an earlier shipped weight file
        return load_student(preset)[0], "file"
    path = shipped_path(preset, ".pt")
    if path:
        return load_student(path, expect=get_preset(preset).config)[0], "shipped"
    torch.manual_seed(0)
    student = StudentNet(get_preset(preset).config).eval()
    with torch.no_grad():
        student.tail.weight.normal_(0, 0.02)
    return student, "random"


def build(preset, size, work, calib_frames):
    from edgerestore.export.onnx import export_onnx
    from edgerestore.export.quantize import quantize_student
    from edgerestore.export.tflite import convert_fp32, convert_int8

    student, weights = student_for(preset)
    height, width = size
    artifacts = {
        "onnx fp32": ("onnxruntime", export_onnx(student, work / ("%s.onnx" % preset), simplify=True)),
        "onnx int8": ("onnxruntime", quantize_student(student, work / ("%s-int8.onnx" % preset), calib_frames)),
        "tflite fp32": ("tflite", convert_fp32(student, work / ("%s.tflite" % preset), height, width)),
        "tflite int8": ("tflite", convert_int8(student, work / ("%s-int8.tflite" % preset), calib_frames, height, width)),
    }
    return student, weights, artifacts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="pico,nano,small")
    parser.add_argument("--size", default="1080x1920", help="HxW")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    import torch

    from edgerestore.export import calibration
    from edgerestore.export.onnx import reference_uint8
    from edgerestore.models.macs import macs_per_pixel
    from edgerestore.runtime.backends import create_backend
    from edgerestore.runtime.quality import psnr

    size = tuple(int(v) for v in args.size.split("x"))
    calib = calibration.build(size)
    frame = calib.holdout[0][0]
    results = {"size": list(size), "threads": args.threads, "rounds": args.rounds, "load_before": os.getloadavg(),
               "cpu": _cpu_name(), "presets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        built = {}
        for index, preset in enumerate(args.presets.split(",")):
            work = Path(tmp) / str(index)
            work.mkdir()
            student, weights, artifacts = build(preset, size, work, calib.frames)
            expected = reference_uint8(student, torch.from_numpy(frame)[None]).numpy()[0]
            engines = {}
            for name, (backend, path) in artifacts.items():
                engine = create_backend(backend, threads=args.threads).load(str(path))
                engine.warmup(size[0], size[1], runs=3)
                engines[name] = engine
            built[preset] = (student, weights, artifacts, expected, engines)
        # every artifact of every preset in turn, each round: ratios between presets are fair too
        times = {(p, n): [] for p, b in built.items() for n in b[4]}
        cpu = {key: [] for key in times}
        for _ in range(args.rounds):
            for (preset, name) in times:
                engine = built[preset][4][name]
                start, start_cpu = time.perf_counter(), time.process_time()
                engine.infer(frame)
                times[preset, name].append(time.perf_counter() - start)
                cpu[preset, name].append(time.process_time() - start_cpu)
        for preset, (student, weights, artifacts, expected, engines) in built.items():
            row = {"weights": weights, "macs_per_pixel": round(macs_per_pixel(student)), "artifacts": {}}
            for name, engine in engines.items():
                out = engine.infer(frame)
                ms = 1000 * float(np.median(times[preset, name]))
                cpu_ms = 1000 * float(np.median(cpu[preset, name]))
                row["artifacts"][name] = {"ms": round(ms, 2), "fps": round(1000 / ms, 1),
                                          "min_ms": round(1000 * float(np.min(times[preset, name])), 2),
                                          "p90_ms": round(1000 * float(np.percentile(times[preset, name], 90)), 2),
                                          "cpu_ms": round(cpu_ms, 2),
                                          "idle_fps_estimate": round(1000 * args.threads / cpu_ms, 1),
                                          "parity_db": round(min(psnr(out, expected), 99.99), 2),
                                          "size_mb": round(os.path.getsize(str(artifacts[name][1])) / 1e6, 3)}
            for family in ("onnx", "tflite"):
                row["%s_int8_speedup" % family] = round(
                    row["artifacts"]["%s fp32" % family]["ms"] / row["artifacts"]["%s int8" % family]["ms"], 2)
            results["presets"][preset] = row
            print(_table(preset, row), flush=True)
    results["load_after"] = os.getloadavg()
    print("load average before %.2f, after %.2f (%d cores; the machine is shared: figures are noisy)"
          % (results["load_before"][0], results["load_after"][0], os.cpu_count()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _table(preset, row):
    lines = ["%s (%s weights, %s MACs/px)" % (preset, row["weights"], row["macs_per_pixel"]),
             "  %-12s %8s %8s %8s %8s %10s %10s %8s" % ("artifact", "ms", "min ms", "FPS", "CPU ms", "FPS idle~",
                                                        "parity dB", "MB")]
    for name, a in row["artifacts"].items():
        lines.append("  %-12s %8.2f %8.2f %8.1f %8.2f %10.1f %10.2f %8.3f" % (
            name, a["ms"], a["min_ms"], a["fps"], a["cpu_ms"], a["idle_fps_estimate"], a["parity_db"], a["size_mb"]))
    lines.append("  INT8 speed-up: ONNX Runtime x%.2f, TFLite x%.2f" % (row["onnx_int8_speedup"],
                                                                         row["tflite_int8_speedup"]))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
