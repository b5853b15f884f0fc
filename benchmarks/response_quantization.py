#!/usr/bin/env python
"""How the INT8 exporter can quantize a filter-basis student's response convolution, measured.

``parity``: for each preset's shipped weights, the core's parity (dB, corrections of the quantized
core against the float core's on the package's calibration crops) with the response convolution's
weights quantized each way of :data:`VARIANTS` (7-bit and 8-bit int8, 8-bit uint8, each tap rounded
to its nearest step or each filter keeping its float sum; float), and what the exporter picks: the
first mode of ``quantize.RESPONSES`` at or over ``quantize.RESPONSES_PARITY``.

``layouts``: 1080p ONNX Runtime time of single-node graphs that compute a 3x3 per-colour filter's
responses of the uint8 frame at stride 4: the dense 6x6 kernel the exporter uses, a 3-group one,
and a depthwise 3x3 at full resolution followed by the uint8 copies into the block layout.

    python benchmarks/response_quantization.py parity nano nano-level nano-codec small small-level small-codec
    python benchmarks/response_quantization.py layouts --rounds 30
"""

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


VARIANTS = (
    # (column, mode, all 8 bits, keep each filter's sum)
    ("int8 7-bit, nearest", "int8", False, False),
    ("int8 7-bit", "int8", False, True),
    ("int8 8-bit", "int8", True, True),
    ("uint8, nearest", "uint8", False, False),
    ("uint8", "uint8", False, True),
    ("float", "float", False, False),
)
"""The response weights' quantizations compared: "nearest" rounds each tap to its nearest step (the
exporter before stop 35); the others keep each filter's float sum (``quantize._keep_response_sums``)."""


def parity(presets, source="blocks", size=(720, 1280)):
    import onnx

    from edgerestore.export import calibration, quantize
    from edgerestore.models.checkpoint import load_student

    warnings.simplefilter("ignore")
    frames = calibration.build(size=size).frames
    weights = Path(__file__).resolve().parents[1] / "edgerestore" / "weights"
    print("| preset | " + " | ".join(v[0] for v in VARIANTS) + " | exporter |")
    print("|---|" + "---|" * (len(VARIANTS) + 1))
    for name in presets:
        student, _ = load_student(weights / ("%s.pt" % name))
        if not student.config.filter_bases:
            print("| %s | no filter bases |" % name)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            core, qcore = Path(tmp) / "core.onnx", Path(tmp) / "core-q.onnx"
            crops = quantize.calibration_crops(frames, student.stride)
            row = []
            for _, mode, eight_bit, keep in VARIANTS:
                # float responses come from the planar frame, as in the exporter
                quantize._export_core(student, core, 13, "frame" if mode == "float" else source)
                feeds = quantize.calibration_feeds(student, crops, "frame" if mode == "float" else source)
                float_core = onnx.load(str(core))
                convs = quantize.response_convs(float_core.graph)
                quantize._quantize_static(core, qcore, feeds, "percentile", mode, convs, eight_bit)
                note = ""
                if keep:
                    steps = quantize._keep_response_sums(float_core, qcore, [n.name for n in convs])
                    note = "" if not eight_bit or all(map(quantize.pairs_unsaturable, steps)) else " (may saturate)"
                row.append("%.2f%s" % (quantize.core_parity(core, qcore, feeds), note))
            picked = None
            quantize._export_core(student, core, 13, source)
            feeds = quantize.calibration_feeds(student, crops, source)
            for mode in quantize.RESPONSES[:-1]:  # the exporter's float fallback reads the frame
                made = quantize._quantize_core(core, qcore, feeds, "percentile", mode)
                if quantize.core_parity(core, qcore, feeds) >= quantize.RESPONSES_PARITY:
                    picked = made
                    break
        print("| %s | %s | %s |" % (name, " | ".join(row), picked or "float"), flush=True)


def _layout_models(scale=4, seed=0):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    node, init = helper.make_node, numpy_helper.from_array
    common = [init(np.array(1.0, np.float32), "xs"), init(np.array(0, np.uint8), "xz"),
              init(np.array(0.5, np.float32), "ys"), init(np.array(128, np.uint8), "yz")]
    u8 = TensorProto.UINT8

    def build(conv_nodes, weight_shape, extra_inits=(), extra_info=()):
        weight = rng.integers(-60, 60, weight_shape).astype(np.int8)
        nodes = [node("Transpose", ["frame"], ["planar"], perm=[0, 3, 1, 2])] + conv_nodes + [
            node("QLinearAdd", ["resp", "ys", "yz", "resp", "ys", "yz", "ys", "yz"], ["out"], domain="com.microsoft")]
        inits = common + [init(weight, "kernel"), init(np.full(weight_shape[0], 0.01, np.float32), "kernel_scale"),
                          init(np.zeros(weight_shape[0], np.int8), "kernel_zero")] + list(extra_inits)
        info = [helper.make_tensor_value_info("planar", u8, [1, 3, "H", "W"])] + list(extra_info)
        graph = helper.make_graph(nodes, "responses", [helper.make_tensor_value_info("frame", u8, [1, "H", "W", 3])],
                                  [helper.make_tensor_value_info("out", u8, None)], inits, value_info=info)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)])
        model.ir_version = 8
        return model

    s, k = scale, scale + 2
    qconv = ["planar", "xs", "xz", "kernel", "kernel_scale", "kernel_zero", "ys", "yz"]
    dense = build([node("QLinearConv", qconv, ["resp"], kernel_shape=[k, k], strides=[s, s], pads=[1] * 4)],
                  (3 * s * s, 3, k, k))
    grouped = build([node("QLinearConv", qconv, ["resp"], kernel_shape=[k, k], strides=[s, s], pads=[1] * 4, group=3)],
                    (3 * s * s, 1, k, k))
    ints = lambda name, values: init(np.array(values, np.int64), name)  # noqa: E731
    phases = ["phase%d" % i for i in range(s)]
    plumbing = [
        node("QLinearConv", qconv, ["filtered"], kernel_shape=[3, 3], pads=[1] * 4, group=3),
        node("Transpose", ["filtered"], ["filtered_nhwc"], perm=[0, 2, 3, 1]),
        node("Shape", ["frame"], ["shape"]), node("Gather", ["shape", "dim1"], ["H"]),
        node("Gather", ["shape", "dim2"], ["W"]), node("Div", ["H", "s"], ["h"]), node("Div", ["W", "s"], ["w"]),
        node("Mul", ["W", "three"], ["W3"]),
        node("Concat", ["one", "h", "s", "W3"], ["rows_shape"], axis=0),
        node("Concat", ["one", "h", "w", "rs"], ["phase_shape"], axis=0),
        node("Reshape", ["filtered_nhwc", "rows_shape"], ["rows"]),
        node("Split", ["rows"], [p + "_rows" for p in phases], axis=2),
    ] + [node("Reshape", [p + "_rows", "phase_shape"], [p]) for p in phases] + [
        node("Concat", phases, ["blocks_nhwc"], axis=3),
        node("Transpose", ["blocks_nhwc"], ["resp"], perm=[0, 3, 1, 2]),
    ]
    info = helper.make_tensor_value_info
    depthwise = build(plumbing, (3, 1, 3, 3),
                      [ints("dim1", [1]), ints("dim2", [2]), ints("s", [s]), ints("three", [3]), ints("one", [1]),
                       ints("rs", [3 * s])],
                      [info("filtered", u8, [1, 3, "H", "W"]), info("filtered_nhwc", u8, [1, "H", "W", 3]),
                       info("rows", u8, [1, "h", s, "W3"]), info("blocks_nhwc", u8, [1, "h", "w", 3 * s * s]),
                       info("resp", u8, [1, 3 * s * s, "h", "w"])])
    return {"dense 6x6 stride 4 (exported)": dense, "3 groups, 6x6 stride 4": grouped,
            "depthwise 3x3 + uint8 copies": depthwise}


def layouts(rounds=30, threads=2, size=(1080, 1920)):
    import onnxruntime as ort

    frame = np.random.default_rng(1).integers(0, 256, (1,) + tuple(size) + (3,), dtype=np.uint8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    sessions = {name: ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
                for name, model in _layout_models().items()}
    times = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(None, {"frame": frame})
            times[name].append(time.perf_counter() - start)
    print("| responses of a %dx%d frame | median ms | best ms |" % (size[1], size[0]))
    print("|---|---|---|")
    for name, values in times.items():
        print("| %s | %.1f | %.1f |" % (name, 1000 * np.median(values), 1000 * min(values)))
    print("\nONNX Runtime %s, %d threads, %d interleaved rounds" % (ort.__version__, threads, rounds))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("parity", help="core parity of each quantization mode, per preset")
    p.add_argument("presets", nargs="+", help="presets with shipped weights, e.g. nano-codec small-level")
    p.add_argument("--source", choices=("blocks", "frame"), default="blocks",
                   help="what the responses are computed from (edgerestore.export.quantize.SOURCES)")
    t = sub.add_parser("layouts", help="1080p time of the ways to compute the responses")
    t.add_argument("--rounds", type=int, default=30)
    t.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.what == "parity":
        parity(args.presets, args.source)
    else:
        layouts(args.rounds, args.threads)


if __name__ == "__main__":
    main()
