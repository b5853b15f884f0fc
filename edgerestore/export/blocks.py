"""The uint8 plumbing around a student's core, shared by the FP32 and the INT8 ONNX graphs.

A frame-by-frame student predicts a *correction* to its input frame. Both deployable ONNX graphs
compute it in the **block layout** of the tail, ``[1, 3s², h, w]`` (block channel ``dy*3s + dx*3
+ c`` holds pixel ``(s*i+dy, s*j+dx)``, colour ``c``), and finish in uint8:

* the correction is quantized to uint8 (FP32 graph: scale 1 / zero point 128, i.e. rounded to
  whole pixel values, which is all a uint8 output keeps anyway; INT8 graph: its calibrated
  scale / zero point);
* transposed to channels-last and split / reshaped / concatenated back into frame rows: cheap
  uint8 copies where the float equivalents (a transposed convolution that writes the frame, a
  pixel shuffle) were the most expensive nodes of the graph;
* added to the frame by ``DequantizeLinear`` x2 + ``Add`` + ``QuantizeLinear`` (scale 1 / zero
  point 0: rounding and saturation in one node), which ONNX Runtime fuses into one ``QLinearAdd``.

Everything here is plain opset-13 ONNX (TensorRT's graph is a separate float one,
:class:`edgerestore.export.onnx.FloatFrameModel`). The shapes are read from the uint8 frame, so
the graphs take any frame size that is a multiple of the stride.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch

FRAME = "frame"
RESTORED = "restored"
CORRECTION_ZERO = 128
"""Zero point of the FP32 graph's uint8 correction: corrections of -128..127 pixel values."""


def block_tail_weight(student) -> torch.Tensor:
    """The student's ``s x s`` stride-``s`` transposed-convolution tail as the weight of a 1x1
    convolution to ``3s²`` block channels (values 0..255: multiplied by 255)."""
    weight = student.tail.weight  # (C, 3, s, s)
    width, s = weight.shape[0], student.config.scale
    return weight.permute(2, 3, 1, 0).reshape(3 * s * s, width, 1, 1) * 255.0


def shape_nodes(scale: int) -> Tuple[list, list]:
    """``(initializers, nodes)`` that read ``H, W`` off the frame and build the shapes the other
    helpers use: ``frame_shape``, ``rows_shape [1,h,s,3W]``, ``phase_shape [1,h,w,3s]`` and
    ``row_shape [1,h,1,3W]``."""
    from onnx import helper, numpy_helper

    ints = lambda name, values: numpy_helper.from_array(np.array(values, np.int64), name)  # noqa: E731
    inits = [ints("dim1", [1]), ints("dim2", [2]), ints("s", [scale]), ints("three", [3]), ints("one", [1]),
             ints("rs", [3 * scale])]
    node = helper.make_node
    nodes = [
        node("Shape", [FRAME], ["frame_shape"]),
        node("Gather", ["frame_shape", "dim1"], ["H"]), node("Gather", ["frame_shape", "dim2"], ["W"]),
        node("Div", ["H", "s"], ["h"]), node("Div", ["W", "s"], ["w"]), node("Mul", ["W", "three"], ["W3"]),
        node("Concat", ["one", "h", "s", "W3"], ["rows_shape"], axis=0),
        node("Concat", ["one", "h", "w", "rs"], ["phase_shape"], axis=0),
        node("Concat", ["one", "h", "one", "W3"], ["row_shape"], axis=0),
    ]
    return inits, nodes


def unit_quantization() -> list:
    """Scale 1 / zero point 0: the frame's own quantization."""
    from onnx import numpy_helper

    return [numpy_helper.from_array(np.array(1.0, np.float32), "unit_scale"),
            numpy_helper.from_array(np.array(0, np.uint8), "unit_zero")]


def head_channels(scale: int, conds=()) -> int:
    """Input channels of an INT8 graph's head: the ``3s²`` block channels, one more per value of each
    of ``conds``, and zero channels up to a multiple of 4, where ONNX Runtime's fast symmetric INT8
    convolution (MLAS ``ConvSym``) takes over from its general one (3x faster for `nano-level`'s head)."""
    k = 3 * scale * scale + sum(c.width for c in conds)
    return k + (-k) % 4 if conds else k


def frame_to_blocks(scale: int, blocks_nchw: str, conds=()) -> Tuple[list, list, list]:
    """``(nodes, value_info, initializers)``: the uint8 frame -> uint8 blocks ``[1,3s²,h,w]`` named
    ``blocks_nchw``. Each of ``conds`` (:mod:`edgerestore.export.conditions`: a student's noise level,
    codec strengths) adds last channels that hold its input's uint8 code (``code`` per unit),
    everywhere, then zero channels up to :func:`head_channels`: ``[1,3s²+K,h,w]``, more pieces of the
    concatenation that builds the blocks anyway."""
    from onnx import TensorProto, helper, numpy_helper

    s, k = scale, head_channels(scale, conds)
    phases = ["phase%d" % i for i in range(s)]
    node = helper.make_node
    pieces = phases + [c.tag + "_plane" for c in conds]
    extra, inits = [], []
    for n, c in enumerate(conds):
        t = c.tag
        pad = k - 3 * s * s - sum(d.width for d in conds) if n == len(conds) - 1 else 0  # the last one pads
        inits += [numpy_helper.from_array(np.array(c.code, np.float32), t + "_code"),
                  numpy_helper.from_array(np.array([c.width + pad], np.int64), t + "_width")]
        extra += [
            node("Mul", [c.name, t + "_code"], [t + "_scaled"]),
            node("QuantizeLinear", [t + "_scaled", "unit_scale", "unit_zero"], [t + "_u8"]),
        ]
        if pad:
            inits.append(numpy_helper.from_array(np.zeros(pad, np.uint8), t + "_pad"))
            extra.append(node("Concat", [t + "_u8", t + "_pad"], [t + "_padded"], axis=0))
        extra += [
            node("Concat", ["one", "h", "w", t + "_width"], [t + "_plane_shape"], axis=0),
            node("Expand", [t + "_padded" if pad else t + "_u8", t + "_plane_shape"], [t + "_plane"]),
        ]
    nodes = extra + [
        node("Reshape", [FRAME, "rows_shape"], ["rows"]),
        node("Split", ["rows"], [p + "_rows" for p in phases], axis=2),
    ] + [node("Reshape", [p + "_rows", "phase_shape"], [p]) for p in phases] + [
        node("Concat", pieces, ["blocks_nhwc"], axis=3),
        node("Transpose", ["blocks_nhwc"], [blocks_nchw], perm=[0, 3, 1, 2]),
    ]
    u8, info = TensorProto.UINT8, helper.make_tensor_value_info
    # Ranks on the uint8 tensors: ORT's NHWC transformer skips convolutions whose input rank is unknown.
    value_info = ([info("rows", u8, [1, "h", s, "W3"])]
                  + [info(p + "_rows", u8, [1, "h", 1, "W3"]) for p in phases]
                  + [info(p, u8, [1, "h", "w", 3 * s]) for p in phases]
                  + [info("blocks_nhwc", u8, [1, "h", "w", k]), info(blocks_nchw, u8, [1, k, "h", "w"])]
                  + [info(c.tag + "_plane", u8, [1, "h", "w", None]) for c in conds])
    return nodes, value_info, inits


def row_shape_nodes(scale: int, tag: str) -> Tuple[list, list]:
    """``(initializers, nodes)`` for ``row_shape<tag> = [1, H/scale, 1, 3W]`` (after :func:`shape_nodes`):
    for a correction at another stride than the frame's blocks (the context branch's)."""
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(np.array([scale], np.int64), "s" + tag)]
    nodes = [helper.make_node("Div", ["H", "s" + tag], ["h" + tag]),
             helper.make_node("Concat", ["one", "h" + tag, "one", "W3"], ["row_shape" + tag], axis=0)]
    return inits, nodes


def correction_to_frame(scale: int, correction: str, tag: str = "") -> Tuple[list, list]:
    """``(nodes, value_info)``: uint8 correction blocks ``[1,3s²,H/s,W/s]`` -> the same values in the
    frame's layout ``[1,H,W,3]``, named ``corr_frame<tag>`` (uint8 copies only)."""
    from onnx import TensorProto, helper

    k, h, name = 3 * scale * scale, "h" + tag, "corr_nhwc" + tag
    nodes = [helper.make_node("Transpose", [correction], [name], perm=[0, 2, 3, 1])]
    more, value_info = channels_last_blocks_to_frame(scale, name, tag)
    info = helper.make_tensor_value_info
    return nodes + more, [info(correction, TensorProto.UINT8, [1, k, h, "w" + tag])] + value_info


def channels_last_blocks_to_frame(scale: int, blocks_nhwc: str, tag: str = "") -> Tuple[list, list]:
    """``(nodes, value_info)``: uint8 blocks ``[1,H/s,W/s,3s²]`` (channels last) -> the frame's
    layout ``[1,H,W,3]``, named ``corr_frame<tag>``."""
    from onnx import TensorProto, helper

    s, k = scale, 3 * scale * scale
    h = "h" + tag
    node = helper.make_node
    name = lambda base: base + tag  # noqa: E731
    nodes = [
        node("Split", [blocks_nhwc], [name("corr%d" % i) for i in range(s)], axis=3),
    ] + [node("Reshape", [name("corr%d" % i), name("row_shape")], [name("corr%d_row" % i)]) for i in range(s)] + [
        node("Concat", [name("corr%d_row" % i) for i in range(s)], [name("corr_rows")], axis=2),
        node("Reshape", [name("corr_rows"), "frame_shape"], [name("corr_frame")]),
    ]
    u8, info = TensorProto.UINT8, helper.make_tensor_value_info
    value_info = ([info(blocks_nhwc, u8, [1, h, "w" + tag, k])]
                  + [info(name("corr%d" % i), u8, [1, h, "w" + tag, 3 * s]) for i in range(s)]
                  + [info(name("corr%d_row" % i), u8, [1, h, 1, "W3"]) for i in range(s)]
                  + [info(name("corr_rows"), u8, [1, h, s, "W3"]), info(name("corr_frame"), u8, [1, "H", "W", 3])])
    return nodes, value_info


GATE_QUADRANTS = 4
"""A temporal student's gate has one value per 2x2 pixels: 4 per ``s x s`` block (s = 4)."""


def gate_quadrant_weight(student) -> Tuple[torch.Tensor, torch.Tensor]:
    """The student's gate (a 2x2 stride-2 transposed convolution at ``1/s`` resolution, upsampled by
    ``s/2``) as a 1x1 convolution to its 4 values per block: ``(weight [4,C,1,1], bias [4])``,
    quadrant ``q = 2*a + b`` for the block's top/bottom (``a``) and left/right (``b``) half."""
    weight = student.gate.weight[:, 0]  # (C, 2, 2)
    width = weight.shape[0]
    return (weight.permute(1, 2, 0).reshape(GATE_QUADRANTS, width, 1, 1),
            torch.full((GATE_QUADRANTS,), float(student.gate_bias)))


def gate_expansion(scale: int) -> np.ndarray:
    """``[4, 3s²]`` float 0/1: row ``q`` marks the block values (channel ``dy*3s + dx*3 + c``) whose
    pixel lies in gate quadrant ``q`` (a matrix product copies each gate value to its pixels)."""
    half = scale // 2
    quadrant = [2 * (dy // half) + (dx // half) for dy in range(scale) for dx in range(scale) for _ in range(3)]
    expansion = np.zeros((GATE_QUADRANTS, 3 * scale * scale), np.float32)
    expansion[quadrant, np.arange(len(quadrant))] = 1.0
    return expansion


def quantized_add(a: Tuple[str, str, str], b: Tuple[str, str, str], out: Tuple[str, str, str]) -> list:
    """Nodes for ``out = a + b`` on uint8 tensors given as ``(name, scale, zero point)``:
    ``DequantizeLinear`` x2 + ``Add`` + ``QuantizeLinear``, which ONNX Runtime runs as one
    ``QLinearAdd`` (rounding and saturation included)."""
    from onnx import helper

    node = helper.make_node
    return [node("DequantizeLinear", list(a), [a[0] + "_dq"]),
            node("DequantizeLinear", list(b), [b[0] + "_dq"]),
            node("Add", [a[0] + "_dq", b[0] + "_dq"], [out[0] + "_float"]),
            node("QuantizeLinear", [out[0] + "_float", out[1], out[2]], [out[0]])]


def frame_plus_correction(scale: int, correction: str, correction_scale: str, correction_zero: str) -> Tuple[list, list]:
    """``(nodes, value_info)``: uint8 correction blocks ``[1,3s²,h,w]`` (with their quantization
    parameters) -> the restored uint8 frame ``restored = frame + correction``."""
    nodes, value_info = correction_to_frame(scale, correction)
    nodes += quantized_add((FRAME, "unit_scale", "unit_zero"), ("corr_frame", correction_scale, correction_zero),
                           (RESTORED, "unit_scale", "unit_zero"))
    return nodes, value_info


def set_frame_io(graph, conds=()) -> None:
    """The graph's inputs are the uint8 frame and each of ``conds`` (float32 ``[width]``: a student's
    noise level, codec strengths); its only output is the restored uint8 frame."""
    from onnx import TensorProto, helper

    u8, info = TensorProto.UINT8, helper.make_tensor_value_info
    del graph.input[:]
    graph.input.extend([info(FRAME, u8, [1, "H", "W", 3])])
    graph.input.extend([info(c.name, TensorProto.FLOAT, [c.width]) for c in conds])
    del graph.output[:]
    graph.output.extend([info(RESTORED, u8, [1, "H", "W", 3])])


def replace_nodes(graph, nodes: List) -> None:
    del graph.node[:]
    graph.node.extend(nodes)
