"""ONNX Runtime INT8: static QDQ quantization calibrated on real frames, uint8 frame in and out.

The uint8 frame contract makes most of the usual INT8 plumbing unnecessary: the input frame *is*
already a quantized tensor (scale 1, zero point 0) and the output frame is a QuantizeLinear with
scale 1 / zero point 0 of the restored picture, so the graph has no Cast and no Clip.

The graph is laid out for what ONNX Runtime's CPU kernels fuse and run fast (measured; see
docs/export.md, "INT8 graph"):

* **Patchify as uint8 data movement + a 1x1 QLinearConv.** ``frame [1,H,W,3]`` is reshaped to
  ``[1,h,s,3W]`` (``h = H/s``), split into its ``s`` row phases, each reshaped to ``[1,h,w,3s]``,
  concatenated on the last axis to ``[1,h,w,3s²]`` and transposed to NCHW. ORT runs QLinearConv
  channels-last, so that transpose cancels with the one ORT inserts; the rest are cheap uint8
  copies. (A ``(s,3s)``-kernel QLinearConv on the interleaved rows, the FP32 graph's trick, costs
  ~10x more per MAC here; a 5-D transpose of the frame costs more than the whole network.)
* **Un-patchify the same way backwards.** The tail is a 1x1 convolution to ``3s²`` channels
  (QLinearConv; ORT has no CPU kernel for a quantized ConvTranspose, which stays float and was the
  most expensive node), whose uint8 output is split / reshaped / concatenated back to the frame
  layout, then QLinearAdd adds the input frame and requantizes to scale 1 / zero point 0.
* **A context branch as a second, coarse correction.** The branch's transposed convolution
  (float in ORT, between Q/DQ pairs and transposes) is folded into the tail: the fine and the
  coarse (``2s x 2s`` blocks) corrections reach the frame layout by the same uint8 copies, and two
  QLinearAdds add them up and to the frame (:class:`BlockCore`).
* **Filter bases from the blocks** (x86) or the planar frame (:data:`SOURCES`). A student's basis
  responses (:class:`edgerestore.export.onnx.BlockBases`) are a 3x3 convolution of the uint8 blocks,
  which ORT's fast symmetric kernel runs, or a stride-``s`` convolution of ``frame_planar`` (a
  transpose of the uint8 frame). Their weights are int8 (8-bit where :func:`pairs_unsaturable`),
  or 8-bit uint8, or float, whichever first keeps the core's parity (:data:`RESPONSES`), each filter
  keeping its float sum (:func:`_keep_response_sums`).
* **Condition channels** (noise level, codec) padded to a multiple of 4 input channels
  (:func:`~edgerestore.export.blocks.head_channels`): ORT's fast kernel needs it.
* **Rank information** on every hand-made uint8 tensor: without it ORT's NHWC transformer skips
  the first convolution and leaves transposes in the graph.

Calibration: ``onnxruntime.quantization.quantize_static`` on the float core (head -> body ->
tail) with per-channel symmetric INT8 weights, asymmetric uint8 activations and percentile
ranges (the best parity of min-max / entropy / percentile on real frames); the input's
quantization is pinned to scale 1 / zero point 0 so that the uint8 frame feeds it directly.
Weights use 7 of their 8 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2, and AVX-512
without VNNI) ONNX Runtime's uint8 x int8 kernels add pairs of products in int16 and saturate;
measured on the shipped students on such a CPU, parity went from 42.5-47.6 dB to 52.7-57.5 dB.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from edgerestore.export import conditions
from edgerestore.export.blocks import block_tail_weight, head_channels
from edgerestore.export.onnx import CONTRACT, block_bases, condition_metadata, write_metadata
from edgerestore.models.student import StudentNet

METHODS = ("percentile", "minmax", "entropy")
CORE_INPUT = "blocks"
PLANAR_INPUT = "frame_planar"
CORE_OUTPUT = "correction"
COARSE_OUTPUT = "coarse_correction"
CROP = (256, 384)  # calibration crops: real pixel statistics at a fraction of a full frame's memory
SOURCES = ("blocks", "frame")
"""What an INT8 graph computes its filter bases' responses from (:class:`BlockCore`): a 3x3
convolution of the uint8 blocks (4x the multiply-adds, but ONNX Runtime's fast symmetric kernel,
MLAS ConvSym, runs it: 1.5x faster on x86) or a stride-``s`` convolution of the planar frame (3 input
channels: ONNX Runtime's general kernel); the export target picks (``Target.int8_responses``)."""
RESPONSES = ("int8", "uint8", "float")
"""How the filter bases' response convolutions are quantized, tried in this order until the core's
parity reaches :data:`RESPONSES_PARITY`: int8 weights (all 8 bits where :func:`pairs_unsaturable`,
else 7); 8-bit uint8 weights (ONNX Runtime's u8u8 kernels, which no x86 CPU saturates, but slower);
float. Every quantized filter keeps its float sum (:func:`_keep_response_sums`)."""
RESPONSES_PARITY = 50.0
"""dB: when the quantized core's corrections fall below this parity with the float core's on the
calibration crops, the filter bases' responses (high-pass filters of the frame) are left in float:
their uint8 error, times the large weights a strongly denoising student gives them, costs parity,
and float costs time (docs/export.md, "ONNX Runtime INT8 graph", has both)."""


class BlockCore(nn.Module):
    """The student between patchify and un-patchify, on ``[1, 3s², h, w]`` blocks of pixel values.

    Block channel ``dy*3s + dx*3 + c`` holds pixel ``(s*i+dy, s*j+dx)``, colour ``c`` (values 0..255);
    the output holds the correction to add to the frame in the same layout.

    A student with a context branch gets two outputs: the tail is linear and follows the branch's
    residual directly, so ``tail(x + up(y)) = tail(x) + (tail o up)(y)``, and ``tail o up`` is one
    1x1 convolution from the branch's features to the ``3(2s)²`` values of each ``2s x 2s`` block
    (:func:`coarse_tail`). The branch's transposed convolution, which ONNX Runtime cannot run in
    INT8 (a float ConvTranspose between Q/DQ pairs and transposes, the costliest node), is gone;
    the coarse correction goes to the frame through the same uint8 plumbing as the fine one.
    """

    def __init__(self, student: StudentNet, source: str = "blocks"):
        super().__init__()
        if source not in SOURCES:
            raise ValueError("unknown response source %r; choose one of %s" % (source, ", ".join(SOURCES)))
        if student.config.temporal:
            raise NotImplementedError("temporal students have no INT8 export yet")
        s, width = student.config.scale, student.config.width
        k = 3 * s * s
        conds = conditions.of(student)
        # a student's noise level and codec strengths are more uint8 block channels (``code`` per unit),
        # padded with zero-weight channels to a multiple of 4 (blocks.head_channels)
        channels = head_channels(s, conds)
        self.head = nn.Conv2d(channels, width, 1)
        self.tail = nn.Conv2d(width, k, 1, bias=False)
        with torch.no_grad():
            head = student.head.weight.permute(0, 2, 3, 1).reshape(width, k, 1, 1) / 255.0
            for cond in conds:
                extra = conditions.head_weight(student, cond).t().reshape(width, cond.width, 1, 1) / cond.code
                head = torch.cat([head, extra], 1)
            head = torch.cat([head, head.new_zeros(width, channels - head.shape[1], 1, 1)], 1)
            self.head.weight.copy_(head)
            self.head.bias.copy_(student.head.bias)
            self.tail.weight.copy_(block_tail_weight(student))
        self.act = nn.ReLU()
        self.body = copy.deepcopy(student.body)
        # the bases' responses: a 3x3 convolution of the blocks (condition channels at zero weight), or
        # a strided one of the planar frame (a transpose of the uint8 frame; a quarter of the multiply-adds)
        self.source = source
        self.bases = block_bases(student, source, channels)
        self.coarse = student.config.context_width > 0
        if self.coarse:
            self.down = copy.deepcopy(student.context.down)
            self.context_body = copy.deepcopy(student.context.body)
            self.coarse_tail = coarse_tail(student)
            if self.bases is not None:
                self.up = copy.deepcopy(student.context.up)

    def forward(self, blocks: torch.Tensor, planar: Optional[torch.Tensor] = None):
        x = self.body(self.act(self.head(blocks)))
        fine = self.tail(x)
        if self.coarse:
            context = self.context_body(self.act(self.down(x)))
        if self.bases is not None:  # their weights come from the features after the context branch
            features = x + self.up(context) if self.coarse else x
            fine = fine + self.bases(planar if self.source == "frame" else blocks, features)
        if not self.coarse:
            return fine
        return fine, self.coarse_tail(context)


def coarse_tail(student: StudentNet) -> nn.Conv2d:
    """``tail o context.up`` as a 1x1 convolution from the context features to ``2s x 2s`` blocks
    (channel ``Y*6s + X*3 + c`` holds pixel ``(2s*i+Y, 2s*j+X)``, colour ``c``; values 0..255)."""
    s, width = student.config.scale, student.config.width
    up = student.context.up  # ConvTranspose2d(context_width -> width, 2, stride 2): weight (ci, co, a, b)
    tail = block_tail_weight(student).reshape(s, s, 3, width)  # (ky, kx, c, co)
    # pixel (2s*i + a*s + ky, 2s*j + b*s + kx): the up-sampled position (a, b), then the tail's (ky, kx)
    weight = torch.einsum("yxcw,iwab->aybxci", tail, up.weight).reshape(3 * (2 * s) ** 2, -1, 1, 1)
    bias = torch.einsum("yxcw,w->yxc", tail, up.bias)[None, :, None].expand(2, s, 2, s, 3).reshape(-1)
    conv = nn.Conv2d(up.in_channels, 3 * (2 * s) ** 2, 1)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return conv


def core_feed(student: StudentNet, frame: np.ndarray, values=None, source: str = "blocks") -> dict:
    """The inputs of :class:`BlockCore` for an ``HxWx3`` uint8 frame (and the ``values`` of the
    student's conditions, one sequence each, default 0: last block channels of their uint8
    codes, then zero channels up to :func:`~edgerestore.export.blocks.head_channels`), by input
    name (float32); the planar frame too where the bases' responses come from it (``source``)."""
    blocks = to_blocks(frame, student.config.scale)
    conds = conditions.of(student)
    if values is None:
        values = [(0.0,) * c.width for c in conds]
    codes = [conditions.uint8_code(cond, value) for cond, value in zip(conds, values)]
    if codes:
        pad = head_channels(student.config.scale, conds) - blocks.shape[1] - sum(len(c) for c in codes)
        code = np.concatenate(codes + [np.zeros(pad)]).astype(np.float32).reshape(1, -1, 1, 1)
        blocks = np.concatenate([blocks, np.broadcast_to(code, code.shape[:2] + blocks.shape[2:])], axis=1)
    feed = {CORE_INPUT: blocks}
    if student.config.filter_bases and source == "frame":
        feed[PLANAR_INPUT] = np.ascontiguousarray(frame.transpose(2, 0, 1)[None].astype(np.float32))
    return feed


def calibration_feeds(student: StudentNet, crops: List[np.ndarray], source: str = "blocks") -> List[dict]:
    """:func:`core_feed` of each crop; a student with conditions at their calibration values in
    turn (:func:`edgerestore.export.conditions.calibration_value`)."""
    conds = conditions.of(student)
    return [core_feed(student, crop, [conditions.calibration_value(c, n) for c in conds], source)
            for n, crop in enumerate(crops)]


def _core_args(feed: dict) -> tuple:
    return tuple(torch.from_numpy(v) for v in feed.values())


def to_blocks(frame: np.ndarray, scale: int) -> np.ndarray:
    """``HxWx3`` uint8 frame -> ``[1, 3s², H/s, W/s]`` float32 blocks (the core's input)."""
    height, width, _ = frame.shape
    h, w = height // scale, width // scale
    blocks = frame.reshape(h, scale, w, 3 * scale).transpose(0, 2, 1, 3).reshape(h, w, 3 * scale * scale)
    return np.ascontiguousarray(blocks.transpose(2, 0, 1)[None].astype(np.float32))


def from_blocks(blocks: np.ndarray, scale: int) -> np.ndarray:
    """``[1, 3s², h, w]`` blocks -> the ``hs x ws x 3`` frame they tile (the inverse of :func:`to_blocks`)."""
    _, _, h, w = blocks.shape
    return blocks[0].transpose(1, 2, 0).reshape(h, w, scale, scale, 3).transpose(0, 2, 1, 3, 4).reshape(
        h * scale, w * scale, 3)


def correction_sum_range(student: StudentNet, feeds: List[dict]) -> Tuple[float, int]:
    """``(scale, zero point)`` for the sum of a context student's fine and coarse corrections, from
    their float values on the calibration feeds (:func:`calibration_feeds`; min / max, 0 included)."""
    core, s = BlockCore(student, "frame" if PLANAR_INPUT in feeds[0] else "blocks").eval(), student.config.scale
    low = high = 0.0
    for feed in feeds:
        with torch.no_grad():
            fine, coarse = core(*_core_args(feed))
        total = from_blocks(fine.numpy(), s) + from_blocks(coarse.numpy(), 2 * s)
        low, high = min(low, float(total.min())), max(high, float(total.max()))
    scale = max(high - low, 1e-6) / 255.0
    return scale, int(round(-low / scale))


def calibration_crops(frames: List[np.ndarray], stride: int, crop=CROP) -> List[np.ndarray]:
    """Two crops per frame (top-left and bottom-right), multiples of ``stride``; small frames whole."""
    ch, cw = (crop[0] // stride) * stride, (crop[1] // stride) * stride
    crops = []
    for frame in frames:
        height, width = (frame.shape[0] // stride) * stride, (frame.shape[1] // stride) * stride
        if height <= ch or width <= cw:
            crops.append(frame[:height, :width])
            continue
        crops.append(frame[:ch, :cw])
        crops.append(frame[height - ch:height, width - cw:width])
    return [np.ascontiguousarray(c) for c in crops]


def _export_core(student: StudentNet, path: Path, opset: int, source: str = "blocks") -> None:
    s = student.config.scale
    feed = core_feed(student, np.zeros((8 * s, 12 * s, 3), np.uint8), source=source)
    inputs = list(feed)
    axes = {CORE_INPUT: {2: "h", 3: "w"}, PLANAR_INPUT: {2: "H", 3: "W"}, CORE_OUTPUT: {2: "h", 3: "w"},
            COARSE_OUTPUT: {2: "h2", 3: "w2"}}
    outputs = [CORE_OUTPUT, COARSE_OUTPUT] if student.config.context_width else [CORE_OUTPUT]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(BlockCore(student, source).eval(), _core_args(feed), str(path),
                          opset_version=opset, input_names=inputs, output_names=outputs,
                          dynamic_axes={name: axes[name] for name in inputs + outputs},
                          do_constant_folding=True, dynamo=False)


def _quantize_core(core: Path, qcore: Path, feeds: List[dict], method: str, responses: str = "int8") -> str:
    """Static QDQ quantization of the float ``core``, calibrated on ``feeds`` (:func:`calibration_feeds`).

    ``responses`` is how the filter bases' response convolutions are quantized (:data:`RESPONSES`);
    returns what their weights became (``int8 8-bit``, ``int8 7-bit``, ``uint8``, ``float``): int8
    weights take all 8 bits when :func:`pairs_unsaturable` proves that no x86 kernel can saturate
    on them (else 7), and every response filter keeps its float sum (:func:`_keep_response_sums`)."""
    import onnx

    float_core = onnx.load(str(core))
    convs = response_convs(float_core.graph)
    for eight_bit in ((True, False) if responses == "int8" and convs else (False,)):
        _quantize_static(core, qcore, feeds, method, responses, convs, eight_bit)
        if responses == "float" or not convs:
            return responses
        steps = _keep_response_sums(float_core, qcore, [n.name for n in convs])
        if not eight_bit or all(pairs_unsaturable(q) for q in steps):
            return responses + (" 8-bit" if eight_bit else " 7-bit" if responses == "int8" else "")
    raise AssertionError("unreachable")


def response_convs(graph) -> list:
    """The filter bases' response convolutions of a core's graph."""
    return [n for n in graph.node if n.op_type == "Conv" and "/bases/responses." in n.name]


def pairs_unsaturable(steps: np.ndarray) -> bool:
    """Whether int8 weights ``steps`` [out, taps] are safe from x86's uint8 x int8 kernels without VNNI
    (AVX2, AVX-512 without VNNI): they add *pairs* of products of uint8 inputs and int8 weights in
    int16, saturating, and which two taps make a pair depends on the kernel's packing. Safe whatever
    the packing if, in every output channel, the two largest positive taps times 255 stay under
    32767 and so do the two most negative: true of a high-pass filter, whose one large tap is its
    centre."""
    for row in steps.reshape(len(steps), -1):
        for side in (np.maximum(row, 0), np.maximum(-row, 0)):
            if 255 * int(np.sort(side)[-2:].sum()) > 32767:
                return False
    return True


def _quantize_static(core: Path, qcore: Path, feeds: List[dict], method: str, responses: str, convs,
                     eight_bit: bool) -> None:
    """ONNX Runtime's ``quantize_static`` of ``core`` into ``qcore`` (see :func:`_quantize_core`)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(feeds)

        def get_next(self):
            return next(self.items, None)

    unit = {"scale": np.array(1.0, np.float32), "zero_point": np.array(0, np.uint8)}
    if responses not in RESPONSES:
        raise ValueError("unknown responses mode %r; choose one of %s" % (responses, ", ".join(RESPONSES)))
    excluded = [n.name for n in convs] if responses == "float" else []
    overrides = {name: [unit] for name in (CORE_INPUT, PLANAR_INPUT)}
    if responses == "uint8":  # 8-bit unsigned weights: u8u8 kernels add in 32 bits and never saturate
        overrides.update({n.input[1]: [{"quant_type": QuantType.QUInt8, "symmetric": False, "reduce_range": False}]
                          for n in convs})
    if eight_bit:  # signed, all 8 bits, per output channel (pairs_unsaturable holds)
        overrides.update({n.input[1]: [{"quant_type": QuantType.QInt8, "symmetric": True, "reduce_range": False,
                                        "axis": 0}] for n in convs})
    methods = {"percentile": CalibrationMethod.Percentile, "minmax": CalibrationMethod.MinMax,
               "entropy": CalibrationMethod.Entropy}
    # The calibrators print progress and the quantizer logs a pre-processing hint on the root
    # logger: keep the export's output to one line per artifact.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(core), str(qcore), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                reduce_range=True,  # 7-bit weights: x86 u8s8 kernels without VNNI saturate 8-bit ones
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=methods[method],
                nodes_to_exclude=excluded or None, extra_options={"TensorQuantOverrides": overrides},
            )
    finally:
        root.setLevel(level)


def _keep_response_sums(float_core, qcore: Path, names: List[str]) -> List[np.ndarray]:
    """Round the quantized response filters so that each keeps its float filter's sum (its DC gain).

    A basis response is a high-pass filter (taps summing to ~0) that the student multiplies by
    large weights. Rounding each tap to the nearest step leaves its sum off by up to half a step per
    tap, so a flat area of brightness 128 gets a response of several levels where the float filter
    gives ~0: the bulk of the 7-bit int8 error of `nano-codec`, `small-level` and `small-codec`
    (docs/export.md). Here the taps nearest to rounding the other way are moved by one step until
    the quantized sum is the float sum rounded to the step; the filters' zero taps stay zero.
    ``float_core``: the loaded float core ``qcore`` was quantized from. Returns each filter's steps
    (stored value minus zero point) [out, taps]."""
    import onnx
    from onnx import numpy_helper

    done = []
    floats = {i.name: numpy_helper.to_array(i) for i in float_core.graph.initializer}
    model = onnx.load(str(qcore))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {n.output[0]: n for n in graph.node}
    convs = {n.name: n for n in graph.node if n.op_type == "Conv"}
    float_convs = {n.name: n for n in float_core.graph.node if n.op_type == "Conv"}
    for name in names:
        dq = producer.get(convs[name].input[1]) if name in convs else None
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            raise RuntimeError("unexpected quantized core: the weights of %s are not a quantized initializer" % name)
        weight = floats[float_convs[name].input[1]].astype(np.float64)
        stored = numpy_helper.to_array(inits[dq.input[0]])
        scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float64).reshape(-1)
        zero = (numpy_helper.to_array(inits[dq.input[2]]).astype(np.int64).reshape(-1)
                if len(dq.input) > 2 else np.zeros_like(scale, np.int64))
        info = np.iinfo(stored.dtype)
        count = weight.shape[0]  # output channels: a per-tensor scale is the same for each
        scale, zero = np.broadcast_to(scale, (count,)), np.broadcast_to(zero, (count,))
        steps = stored.astype(np.int64).reshape(count, -1) - zero[:, None]
        exact = weight.reshape(count, -1) / scale[:, None]
        steps = sum_keeping_steps(exact, steps, info.min - zero, info.max - zero)
        fixed = (steps + zero[:, None]).reshape(stored.shape).astype(stored.dtype)
        inits[dq.input[0]].CopyFrom(numpy_helper.from_array(fixed, dq.input[0]))
        done.append(steps)
    onnx.save(model, str(qcore))
    return done


def sum_keeping_steps(exact: np.ndarray, steps: Optional[np.ndarray] = None, low=-127, high=127) -> np.ndarray:
    """Integer ``steps`` [out, taps] for the filters ``exact`` [out, taps] (in steps): each tap rounded
    to its nearest step, then the taps whose rounding came closest to going the other way moved by
    one until each row sums to its float sum rounded; zero taps stay zero, every step stays in
    ``[low, high]`` (per row, or one for all). ``steps``: the rounding to start from (a quantizer's)."""
    exact = np.asarray(exact, np.float64)
    steps = np.round(exact).astype(np.int64) if steps is None else np.array(steps, np.int64)
    low, high = np.broadcast_to(low, (len(exact),)), np.broadcast_to(high, (len(exact),))
    for out in range(len(exact)):
        live = np.flatnonzero(exact[out] != 0)
        short = int(np.round(exact[out].sum())) - int(steps[out].sum())
        if not short or not len(live):
            continue
        step = int(np.sign(short))
        room = live[(steps[out, live] + step >= low[out]) & (steps[out, live] + step <= high[out])]
        order = room[np.argsort(-(exact[out, room] - steps[out, room]) * step, kind="stable")]
        steps[out, order[:abs(short)]] += step
    return steps


def core_parity(core: Path, qcore: Path, feeds: List[dict]) -> float:
    """PSNR (dB, peak 255) of the quantized core's corrections against the float core's on ``feeds``."""
    import onnxruntime as ort

    runs = [ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]) for path in (core, qcore)]
    error, count = 0.0, 0
    for feed in feeds:
        want, got = [[o.ravel() for o in run.run(None, feed)] for run in runs]
        for a, b in zip(want, got):
            error += float(np.sum((a.astype(np.float64) - b) ** 2))
            count += a.size
    mse = error / max(count, 1)
    return 99.0 if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def _wrap(qcore: Path, scale: int, sum_range: Optional[Tuple[float, int]] = None, conds=()):
    """The deployable graph: uint8 frame -> blocks -> quantized core -> frame + correction -> uint8.

    A core with a coarse correction (context branch) adds it to the fine one first, into a uint8
    tensor quantized by ``sum_range`` (:func:`correction_sum_range`), then to the frame."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgerestore.export import blocks

    model = onnx.load(str(qcore))
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    nodes = list(graph.node)
    inputs = [i.name for i in graph.input]  # the blocks, and the planar frame of filter bases
    q_in = {n.input[0]: n for n in nodes if n.op_type == "QuantizeLinear" and n.input[0] in inputs}
    outputs = [o.name for o in graph.output]  # the correction, and the coarse one of a context branch
    dq_out = {n.output[0]: n for n in nodes if n.op_type == "DequantizeLinear" and n.output[0] in outputs}
    float_planar = PLANAR_INPUT in inputs and PLANAR_INPUT not in q_in  # its convolution left in float
    if len(q_in) + int(float_planar) != len(inputs) or len(dq_out) != len(outputs):
        raise RuntimeError("unexpected quantized core: input/output quantization not found")
    for q in q_in.values():
        in_scale = float(numpy_helper.to_array(inits[q.input[1]]))
        in_zero = numpy_helper.to_array(inits[q.input[2]])
        if in_scale != 1.0 or int(in_zero) != 0 or in_zero.dtype != np.uint8:
            raise RuntimeError("the core's inputs must be quantized with scale 1 / zero point 0 (uint8)")
    core_nodes = [n for n in nodes if n not in q_in.values() and n not in dq_out.values()]

    new_inits, pre = blocks.shape_nodes(scale)
    graph.initializer.extend(new_inits + blocks.unit_quantization())
    to_blocks_nodes, value_info, cond_inits = blocks.frame_to_blocks(scale, q_in[CORE_INPUT].output[0], conds)
    graph.initializer.extend(cond_inits)
    if float_planar:
        to_blocks_nodes += [helper.make_node("Transpose", [blocks.FRAME], ["frame_planar_u8"], perm=[0, 3, 1, 2]),
                            helper.make_node("Cast", ["frame_planar_u8"], [PLANAR_INPUT], to=TensorProto.FLOAT)]
        value_info.append(helper.make_tensor_value_info("frame_planar_u8", TensorProto.UINT8, [1, 3, "H", "W"]))
    if PLANAR_INPUT in q_in:  # the uint8 frame transposed: cancels with ORT's channels-last QLinearConv
        planar = q_in[PLANAR_INPUT].output[0]
        to_blocks_nodes.append(helper.make_node("Transpose", [blocks.FRAME], [planar], perm=[0, 3, 1, 2]))
        value_info.append(helper.make_tensor_value_info(planar, TensorProto.UINT8, [1, 3, "H", "W"]))
    corr_q, corr_scale, corr_zero = dq_out[CORE_OUTPUT].input  # uint8 correction, its scale and zero point
    post, post_info = blocks.correction_to_frame(scale, corr_q)
    correction = ("corr_frame", corr_scale, corr_zero)
    if COARSE_OUTPUT in dq_out:
        coarse_q, coarse_scale, coarse_zero = dq_out[COARSE_OUTPUT].input
        row_inits, row_nodes = blocks.row_shape_nodes(2 * scale, "_coarse")
        coarse_nodes, coarse_info = blocks.correction_to_frame(2 * scale, coarse_q, "_coarse")
        if sum_range is None:
            raise RuntimeError("a core with a coarse correction needs the range of the corrections' sum")
        graph.initializer.extend(row_inits + [
            numpy_helper.from_array(np.array(sum_range[0], np.float32), "sum_scale"),
            numpy_helper.from_array(np.array(sum_range[1], np.uint8), "sum_zero")])
        post += row_nodes + coarse_nodes + blocks.quantized_add(
            correction, ("corr_frame_coarse", coarse_scale, coarse_zero), ("corr_sum", "sum_scale", "sum_zero"))
        post_info += coarse_info
        correction = ("corr_sum", "sum_scale", "sum_zero")
    post += blocks.quantized_add((blocks.FRAME, "unit_scale", "unit_zero"), correction,
                                 (blocks.RESTORED, "unit_scale", "unit_zero"))
    blocks.replace_nodes(graph, pre + to_blocks_nodes + core_nodes + post)
    blocks.set_frame_io(graph, conds)
    graph.value_info.extend(value_info + post_info)
    return model


def quantize_student(student: StudentNet, path, frames: List[np.ndarray], opset: int = 13,
                     ir_version: Optional[int] = None, method: str = "percentile",
                     metadata: Optional[dict] = None, work_dir=None, source: str = "blocks") -> Path:
    """Write the INT8 uint8-contract ONNX model of ``student``, calibrated on ``frames`` (uint8 RGB);
    ``source``: what its filter bases' responses are computed from (:data:`SOURCES`)."""
    import tempfile

    import onnx

    if method not in METHODS:
        raise ValueError("unknown calibration method %r; choose one of %s" % (method, ", ".join(METHODS)))
    if not frames:
        raise ValueError("INT8 calibration needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=str(work_dir) if work_dir else None) as tmp:
        core, qcore = Path(tmp) / "core.onnx", Path(tmp) / "core.int8.onnx"
        crops = calibration_crops(frames, student.stride)
        built = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for responses in RESPONSES if student.config.filter_bases else RESPONSES[:1]:
                # float responses (the last resort) come from the planar frame: from the blocks they
                # leave the head's bias in float as well (ONNX Runtime's quantizer), and parity fell
                wanted = "frame" if responses == "float" else source
                if wanted != built:
                    _export_core(student, core, opset, wanted)
                    feeds = calibration_feeds(student, crops, wanted)
                    built = wanted
                made = _quantize_core(core, qcore, feeds, method, responses)
                parity = core_parity(core, qcore, feeds)
                if parity >= RESPONSES_PARITY:
                    break
            responses = made if student.config.filter_bases else None
        total = correction_sum_range(student, feeds) if student.config.context_width else None
        model = _wrap(qcore, student.config.scale, total, conditions.of(student))
    if ir_version is not None:
        model.ir_version = ir_version
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    info = {"stride": student.stride, "contract": CONTRACT, "config": json.dumps(student.config.to_dict())}
    info.update(condition_metadata(student))
    info.update({"quantization": json.dumps({"format": "QDQ", "weights": "int8 per-channel symmetric, 7-bit range",
                                        "responses": responses,
                                        "responses_from": built if student.config.filter_bases else None,
                                        "activations": "uint8 asymmetric", "calibration": method,
                                        "frames": len(frames), "crops": len(crops),
                                        "core_parity_db": round(parity, 2)})})
    info.update(metadata or {})
    write_metadata(path, info)
    return path


def export_artifact(job, fmt) -> Path:
    """Exporter of ``onnx-int8``: calibrated on the job's calibration frames."""
    return quantize_student(job.student, job.out_dir / fmt.filename, job.calibration.frames,
                            opset=job.target.opset, ir_version=job.target.ir_version,
                            method=job.calib_method, metadata=job.metadata(fmt), work_dir=job.work_dir,
                            source=job.target.int8_responses)
