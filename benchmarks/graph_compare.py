#!/usr/bin/env python
"""Interleaved speed comparison of uint8-contract ONNX files (e.g. one graph before and after a change).

Every file runs through the runtime's ONNX Runtime backend on the same degraded real frame, once
per round in turn, so that whatever else the machine does slows them alike; the median and best
milliseconds over the rounds are printed with each file's speed against the first's (the median of
the rounds' ratios: a drift of the machine's speed cancels in each pair) and the CPU's vector
flags, and each file's output is compared with the first's.
``--profile`` adds ONNX Runtime's per-node kernel times (the costliest nodes of each file).

    git show HEAD~1:edgerestore/weights/nano.onnx > /tmp/nano-before.onnx
    python benchmarks/graph_compare.py /tmp/nano-before.onnx edgerestore/weights/nano.onnx --rounds 30
"""

import argparse
import collections
import glob
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def node_profile(path, frame, threads, runs=10, top=8):
    """The ``top`` costliest nodes: ``[(op:name, ms per run)]`` from ONNX Runtime's profiler."""
    import onnxruntime as ort

    folder = tempfile.mkdtemp()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(folder, "profile")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {session.get_inputs()[0].name: frame[None]}
    values = {"noise_level": [0.5], "codec": [0.0, 0.0]}  # a level or codec model: a noisy, uncompressed frame
    feeds.update({i.name: np.array(values[i.name], np.float32) for i in session.get_inputs()[1:] if i.name in values})
    for _ in range(runs):
        session.run(None, feeds)
    session.end_profiling()
    events = json.load(open(glob.glob(os.path.join(folder, "profile*.json"))[0]))
    total = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            total[event["args"]["op_name"] + ":" + event["name"][:-len("_kernel_time")]] += event["dur"]
    return [(key, us / runs / 1000.0) for key, us in total.most_common(top)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="ONNX files with the uint8 [1,H,W,3] contract")
    parser.add_argument("--size", default="1080x1920", help="HxW")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--noise-level", default="auto",
                        help="what a model with a noise-level input is given: auto (the runtime's default, its "
                             "meter included in the time) or a number")
    parser.add_argument("--profile", action="store_true", help="also print each file's costliest nodes")
    args = parser.parse_args(argv)

    from edgerestore.export import calibration
    from edgerestore.runtime.backends import create_backend
    from edgerestore.runtime.quality import psnr

    size = tuple(int(v) for v in args.size.split("x"))
    frame = calibration.build(size).holdout[0][0]
    engines = []
    for path in args.files:
        engine = create_backend("onnxruntime", threads=args.threads).load(path).set_noise_level(args.noise_level)
        engine.warmup(size[0], size[1], runs=3)
        engines.append(engine)
    times = [[] for _ in engines]
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for i, engine in enumerate(engines):
            start = time.perf_counter()
            engine.infer(frame)
            times[i].append(time.perf_counter() - start)
    first = engines[0].infer(frame)
    print("| file | median ms | best ms | FPS | speed vs first file | output vs first file (dB) |")
    print("|---|---|---|---|---|---|")
    for path, engine, samples in zip(args.files, engines, times):
        ms = 1000 * float(np.median(samples))
        # the median of each round's ratio: the rounds are interleaved, so a drift of the machine's
        # speed cancels in each pair
        ratio = float(np.median(np.array(times[0]) / np.array(samples)))
        print("| %s | %.1f | %.1f | %.1f | %.2fx | %.2f |" % (path, ms, 1000 * min(samples), 1000 / ms, ratio,
                                                            min(psnr(engine.infer(frame), first), 99.99)))
    from edgerestore.devices.detect import vector_flags

    print("\n%dx%d, ONNX Runtime %d threads, %d interleaved rounds; load average %.2f -> %.2f; CPU flags: %s"
          % (size[1], size[0], args.threads, args.rounds, load_before[0], os.getloadavg()[0],
             " ".join(vector_flags()) or "none of the vector extensions"))
    if args.profile:
        for path in args.files:
            print("\n%s, kernel ms per frame:" % path)
            for key, ms in node_profile(path, frame, args.threads):
                print("  %-60s %6.2f" % (key[:60], ms))


if __name__ == "__main__":
    main()
