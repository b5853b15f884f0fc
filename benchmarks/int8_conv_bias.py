#!/usr/bin/env python
"""Does ONNX Runtime's INT8 convolution stay fast with a bias computed at run time?

A student's noise level and codec strengths shift its head's bias. In the INT8 graph they could be
an int32 bias computed per frame instead of more uint8 input channels; this times one 1x1
QLinearConv (48 -> 24 channels, a 1080p frame's blocks, channels-last as in the exported graphs)
with its bias an initializer and with the same bias as a graph input, interleaved:

    python benchmarks/int8_conv_bias.py --rounds 30
"""

import argparse
import time

import numpy as np


def session(constant_bias, channels, outputs, threads):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.integers(-60, 60, (outputs, channels, 1, 1)).astype(np.int8), "w"),
             numpy_helper.from_array(np.array(1.0, np.float32), "xs"), numpy_helper.from_array(np.array(0, np.uint8), "xz"),
             numpy_helper.from_array(np.full(outputs, 0.01, np.float32), "ws"),
             numpy_helper.from_array(np.zeros(outputs, np.int8), "wz"),
             numpy_helper.from_array(np.array(0.5, np.float32), "ys"), numpy_helper.from_array(np.array(0, np.uint8), "yz")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, "h", "w", channels])]
    if constant_bias:
        inits.append(numpy_helper.from_array(np.full(outputs, 500, np.int32), "b"))
    else:
        inputs.append(helper.make_tensor_value_info("b", TensorProto.INT32, [outputs]))
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
             helper.make_node("QLinearConv", ["xt", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"]),
             helper.make_node("Transpose", ["y"], ["yt"], perm=[0, 2, 3, 1])]
    graph = helper.make_graph(nodes, "conv", inputs,
                              [helper.make_tensor_value_info("yt", TensorProto.UINT8, [1, "h", "w", outputs])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    channels, outputs = 48, 24
    x = np.random.default_rng(1).integers(0, 256, (1, 270, 480, channels)).astype(np.uint8)
    bias = np.full(outputs, 500, np.int32)
    ways = {"bias an initializer": (session(True, channels, outputs, args.threads), {"x": x}),
            "bias a graph input": (session(False, channels, outputs, args.threads), {"x": x, "b": bias})}
    times = dict((name, []) for name in ways)
    outs = {}
    for _ in range(args.rounds):
        for name, (run, feed) in ways.items():
            start = time.perf_counter()
            outs[name] = run.run(None, feed)[0]
            times[name].append(time.perf_counter() - start)
    print("| 1x1 QLinearConv %d -> %d channels, 270x480 | median ms |\n|---|---|" % (channels, outputs))
    for name in ways:
        print("| %s | %.2f |" % (name, 1000 * float(np.median(times[name]))))
    first, second = outs.values()
    print("\nthe same output: %s" % bool(np.array_equal(first, second)))


if __name__ == "__main__":
    main()
