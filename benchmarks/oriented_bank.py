#!/usr/bin/env python
"""What an oriented deconvolution bank (``StudentConfig.oriented_bank``) would cost at 1080p, and
one filter per frame (``benchmarks/global_filter.py``) applied with OpenCV.

The bank is a prototype that the exporter refuses; this times its own graph (the luma, the
``count`` full-resolution filters, their per-pixel weights from the features, the weighted sum) in
ONNX Runtime as float ONNX, interleaved with a shipped student's uint8 graph, so the ratio says how
much of a frame it would add. The last row is one 9x9 filter on every colour of the uint8 frame
(``cv2.filter2D``, OpenCV's threads limited to ``--threads``), as a runtime stage would run it:

    python benchmarks/oriented_bank.py --banks 8x9 4x9 8x5 --rounds 20 --reference edgerestore/weights/small.onnx
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bank_graph(count: int, size: int, width: int, path: str) -> None:
    """The bank alone as float ONNX: (frame [1,3,H,W], features [1,width,H/4,W/4]) -> correction."""
    import torch

    class Bank(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.luma = torch.nn.Conv2d(3, 1, 1, bias=False)  # the mean of the colours, as a graph computes it
            self.filters = torch.nn.Conv2d(1, count, size, padding=size // 2, bias=False)
            self.weights = torch.nn.ConvTranspose2d(width, count, 4, stride=4, bias=False)
            self.ones = torch.nn.Conv2d(count, 1, 1, bias=False)  # the sum over the bank

        def forward(self, x, features):
            return self.ones(self.weights(features) * self.filters(self.luma(x)))

    model = Bank().eval()
    x = torch.rand(1, 3, 64, 64)
    torch.onnx.export(model, (x, torch.rand(1, width, 16, 16)), path, opset_version=13,
                      input_names=["frame", "features"], output_names=["correction"], dynamo=False,
                      dynamic_axes={"frame": {2: "h", 3: "w"}, "features": {2: "fh", 3: "fw"}})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--banks", nargs="+", default=["8x9", "4x9", "8x5"],
                        help="COUNTxSIZE: filters and their side (default: 8x9 4x9 8x5)")
    parser.add_argument("--reference", default="edgerestore/weights/small.onnx",
                        help="a shipped uint8-contract graph to compare with (default: small's)")
    parser.add_argument("--width", type=int, default=32, help="feature channels (small: 32)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    height, width = 1080, 1920
    frame = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    features = np.random.default_rng(1).random((1, args.width, height // 4, width // 4), dtype=np.float32)
    sessions = {}
    reference = ort.InferenceSession(args.reference, options, providers=["CPUExecutionProvider"])
    sessions["reference " + os.path.basename(args.reference)] = (
        reference, {reference.get_inputs()[0].name: (frame[0].transpose(1, 2, 0) * 255).astype(np.uint8)[None]})
    folder = tempfile.mkdtemp()
    for spec in args.banks:
        count, size = (int(v) for v in spec.split("x"))
        path = os.path.join(folder, "bank-%s.onnx" % spec)
        bank_graph(count, size, args.width, path)
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        sessions["bank %s (%d MACs/px)" % (spec, count * size * size + count * args.width + count + 3)] = (
            session, {"frame": frame, "features": features})
    import cv2

    cv2.setNumThreads(args.threads)
    picture = np.ascontiguousarray((frame[0].transpose(1, 2, 0) * 255).astype(np.uint8))
    taps = np.random.default_rng(2).normal(0, 0.05, (9, 9)).astype(np.float32)
    taps[4, 4] += 1.0
    runs = {name: (lambda s=session, f=feeds: s.run(None, f)) for name, (session, feeds) in sessions.items()}
    runs["frame filter 9x9, every colour (cv2.filter2D)"] = lambda: cv2.filter2D(picture, -1, taps)
    times = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000.0)
    print("| graph | median ms | best ms |")
    print("|---|---|---|")
    for name, values in times.items():
        print("| %s | %.1f | %.1f |" % (name, statistics.median(values), min(values)))


if __name__ == "__main__":
    main()
