"""Student -> ONNX with the runtime's frame contract baked into the graph.

Contract (DESIGN.md): input ``uint8 [1,H,W,3]`` RGB, output the same; H and W multiples of the
student's stride (the runtime pads and crops).

The obvious graph (transpose to NCHW, cast, divide by 255, the network, multiply, round, clip,
cast, transpose back) spends most of its time on full-resolution rearrangements: ONNX Runtime
needs 10-25 ms per 1080p frame for each float transpose, pixel (un)shuffle or depth-to-space. So
the exported graph never rearranges a float frame:

* the NHWC frame is *reshaped* (free) to a one-channel ``[1,1,H,3W]`` image whose rows interleave
  R, G and B; the student's ``s x s`` stride-``s`` patchify convolution becomes an ``s x 3s``
  stride-``(s, 3s)`` convolution on it, with the weights rearranged and divided by 255;
* frame-by-frame students (:class:`RowsCore`): the transposed-convolution tail becomes a 1x1
  convolution to the ``3s²`` values of each ``s x s`` block, weights multiplied by 255; that
  correction is rounded to uint8 (zero point 128: corrections of -128..+127 pixel values, what a
  uint8 frame can take from a student that changes pixels by less than half the range), moved
  back into frame rows by uint8 copies and added to the frame by one node ONNX Runtime fuses into
  ``QLinearAdd`` (rounding and saturation included; :mod:`edgerestore.export.blocks`). Measured
  at 1080p, this tail costs 2-3x less than a transposed convolution that writes the interleaved
  rows, followed by the float add, clip and cast (docs/export.md, "FP32 graph");
* temporal students (:class:`TemporalRowsCore`) get the same uint8 tail, and their blend with
  the previous output is uint8 too (below).

The result equals the PyTorch student on the same uint8 frame (the tests demand >= 50 dB PSNR).

**Temporal students** take two more inputs, their state: ``previous`` (uint8 ``[1,H,W,3]``, their
own previous output) and ``hidden`` (float32 ``[1,C,H/s,W/s]``, the previous frame's head features),
and return ``hidden_out`` besides ``restored``. ``hidden`` is mixed into the features at low
resolution; the gate's 4 values per ``s x s`` block (one per 2x2 pixels) are rounded to 1/255,
copied to the block's 3s² values by a 0/1 matrix product and moved into the frame's layout by the
same uint8 copies as the correction, and the blend ``g * previous + (1 - g) * r`` runs as two
``QLinearMul`` and a ``QLinearAdd`` (docs/temporal.md has the costs, and the float graph this
replaced). The file's ``edgerestore.state`` metadata says how the runtime feeds the state
(:func:`state_spec`).

Per export target (:mod:`edgerestore.export.targets`) the graph gets the opset and IR version the
board's software parses (TensorRT 8.2 on the Jetson Nano: opset 13, IR 7), is simplified with
onnxslim, and is built for a fixed size or for any size. :class:`FloatFrameModel` is the same graph
with float32 I/O for TensorRT, which has no uint8 inputs (8.2): values 0..255, and the output
already carries the +0.5 so that truncating it to uint8 rounds (the backend's adapter does that).
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from edgerestore.export import blocks, conditions
from edgerestore.models.student import AGREEMENT_UNIT, StudentNet, weighted_responses

GRAPH_VERSION = 6
"""Bumped whenever the exported graph changes (2: frame-by-frame students' uint8 block tail; 3: the
temporal students' uint8 tail and blend; 4: temporal students blend the clamped picture, and their
gate's agreement term; 5: filter bases, so no cached conversion made while they were not exported
survives; 6: the noise-level input)."""
DEFAULT_OPSET = 13  # TensorRT 8.2 (Jetson Nano, JetPack 4.6) parses up to opset 13
INPUT_NAME = "frame"
OUTPUT_NAME = "restored"
STATE_NAME = "previous"
HIDDEN_NAME = "hidden"
HIDDEN_OUTPUT = "hidden_out"
LEVEL_NAME = conditions.LEVEL.name
"""A ``level_input`` student's second input: float32 ``[1]``, the frame's noise level
(:mod:`edgerestore.noiselevel`)."""
CODEC_NAME = conditions.CODEC.name
"""A ``codec_input`` student's next input: float32 ``[2]``, the codec's strengths
(:mod:`edgerestore.codecinput`)."""
CONTRACT = "uint8-nhwc-rgb"


def state_spec(student: StudentNet, layout: str = "nchw") -> list:
    """How the runtime feeds a temporal model's state (stored as ``edgerestore.state``, in the
    bundle manifest, read by the runtime's backends): each input takes the named output of the
    stream's previous frame; on a reset (first frame, scene cut, reconnect, new frame size) it
    is a copy of the current frame (``input``) or zeros of the given shape (``zeros``); entries
    with ``"motion": "flow"`` are motion-compensated first."""
    config = student.config
    spec = [
        {"input": STATE_NAME, "output": OUTPUT_NAME, "reset": "input", "like": INPUT_NAME,
         "layout": "nhwc", "channels": 3, "dtype": "uint8"},
        {"input": HIDDEN_NAME, "output": HIDDEN_OUTPUT, "reset": "zeros", "layout": layout,
         "channels": config.width, "stride": config.scale, "dtype": "float32"},
    ]
    if config.motion:  # moved by the optical flow between frames before it is fed back (runtime.motion)
        for entry in spec:
            entry["motion"] = "flow"
    return spec


def _interleave_kernel(weight: torch.Tensor) -> torch.Tensor:
    """(C, 3, s, s) kernel over RGB planes -> (C, 1, s, 3s) kernel over interleaved RGB rows."""
    c, three, s, s2 = weight.shape
    assert three == 3 and s == s2
    return weight.permute(0, 2, 3, 1).reshape(c, 1, s, 3 * s)


def agreement_weights(student: StudentNet) -> Optional[nn.Parameter]:
    """A copy of the student's agreement weights ``(a, b)``, or ``None`` when its gate has none."""
    return copy.deepcopy(student.agreement) if student.config.agreement else None


def agreement_logit(rows: torch.Tensor, previous_rows: torch.Tensor, weights: torch.Tensor,
                    block) -> torch.Tensor:
    """The gate's agreement term ``a*d + b*d²`` on 0..255 pictures in any layout whose ``block``
    (a pooling kernel) covers one ``s x s`` block of pixels and colours (``(s, 3s)`` on frame rows):
    ``d`` as :func:`edgerestore.models.student.disagreement`, one value per block."""
    d = F.avg_pool2d((rows - previous_rows).abs(), block) * (1.0 / AGREEMENT_UNIT)
    return weights[0] * d + weights[1] * d * d


class BlockBases(nn.Module):
    """A student's filter bases (``config.filter_bases``) in the block layout ``[n,3s²,H/s,W/s]``
    (channel ``(dy*s + dx)*3 + colour``): :meth:`forward` is the sum over filters of the response at
    every pixel of each ``s x s`` block times its per-pixel weight, in the input's units.

    The response, zero-padded as the student's: on frame rows ``[n,1,H,3W]`` (``source="rows"``)
    one convolution with a ``(s+k-1, 3(s+k-1))`` kernel of stride ``(s, 3s)``; on the planar frame
    ``[n,3,H,W]`` (``"frame"``: TFLite FP32, whose layout pass makes it the NHWC frame, and the INT8
    ONNX core, fed a transpose of the uint8 frame) one with an ``s+k-1`` kernel of stride ``s``; or
    (``"depthwise"``, TFLite INT8) the student's own depthwise filter of the planar frame, moved
    into the block layout by :func:`frame_to_blocks`.
    The weight is a 1x1 convolution of the features, repeated over the colours."""

    def __init__(self, student: StudentNet, source: str = "rows", channels: int = 0):
        super().__init__()
        s, width = student.config.scale, student.config.width
        self.responses = nn.ModuleList()
        self.weights = nn.ModuleList()
        if source not in ("rows", "frame", "depthwise", "blocks"):
            raise ValueError("unknown filter-basis source %r (rows, frame, depthwise or blocks)" % source)
        for filt, weights in zip(student.bases.filters, student.bases.weights):
            # the per-pixel weight (ConvTranspose [width, 1, s, s]) as block channels (dy*s + dx)*3 + colour
            weight = nn.Conv2d(width, 3 * s * s, 1, bias=False)
            with torch.no_grad():
                per_pixel = weights.weight[:, 0].permute(1, 2, 0).reshape(s * s, 1, width)
                weight.weight.copy_(per_pixel.expand(s * s, 3, width).reshape(3 * s * s, width, 1, 1))
            self.weights.append(weight)
            if source == "depthwise":
                self.responses.append(_BlockResponse(copy.deepcopy(filt), s))
                continue
            k = filt.kernel_size[0]
            p = k // 2
            if source == "blocks":
                self.responses.append(_blocks_response(filt, s, channels or 3 * s * s))
                continue
            if source == "rows":
                response = nn.Conv2d(1, 3 * s * s, (s + k - 1, 3 * (s + k - 1)), stride=(s, 3 * s),
                                     padding=(p, 3 * p), bias=False)
            else:
                response = nn.Conv2d(3, 3 * s * s, s + k - 1, stride=s, padding=p, bias=False)
            kernel = torch.zeros_like(response.weight)
            for dy in range(s):
                for dx in range(s):
                    for colour in range(3):
                        channel = (dy * s + dx) * 3 + colour
                        for u in range(k):
                            for v in range(k):
                                tap = filt.weight[colour, 0, u, v]
                                if source == "rows":
                                    kernel[channel, 0, dy + u, 3 * (dx + v) + colour] = tap
                                else:
                                    kernel[channel, colour, dy + u, dx + v] = tap
            with torch.no_grad():
                response.weight.copy_(kernel)
            self.responses.append(response)

    def forward(self, frame: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return weighted_responses(self.responses, self.weights, frame, features)


def frame_to_blocks(frame: torch.Tensor, scale: int) -> torch.Tensor:
    """``[n, H, W, c]`` -> ``[n, H/s, W/s, c*s²]`` blocks, channel ``(dy*s + dx)*c + colour``:
    reshapes, ``s`` row phases and a concatenation (no transpose of the frame)."""
    n, height, width, c = frame.shape
    rows = frame.reshape(n, height // scale, scale, width * c)
    phases = torch.split(rows, 1, dim=2)  # row dy of every block
    return torch.cat([p.reshape(n, height // scale, width // scale, c * scale) for p in phases], dim=3)


def _blocks_response(filt: nn.Conv2d, scale: int, channels: int) -> nn.Conv2d:
    """A depthwise ``k x k`` filter of the frame as a 3x3 convolution of its ``[n, channels, h, w]``
    blocks (the first ``3s²`` channels the pixels, any others ignored), zero-padded: block output
    channel ``(dy*s + dx)*3 + colour`` reads pixel ``(dy + u - k//2, dx + v - k//2)`` of the block
    grid around it (``k <= 2s + 1``)."""
    k, s = filt.kernel_size[0], scale
    p = k // 2
    if p > s:
        raise ValueError("a %dx%d filter reaches beyond the neighbouring blocks of stride %d" % (k, k, s))
    conv = nn.Conv2d(channels, 3 * s * s, 3, padding=1, bias=False)
    kernel = torch.zeros_like(conv.weight)
    for dy in range(s):
        for dx in range(s):
            for colour in range(3):
                for u in range(k):
                    for v in range(k):
                        r, c = dy + u - p, dx + v - p
                        source = ((r % s) * s + c % s) * 3 + colour
                        kernel[(dy * s + dx) * 3 + colour, source, r // s + 1, c // s + 1] = filt.weight[colour, 0, u, v]
    with torch.no_grad():
        conv.weight.copy_(kernel)
    return conv


class _BlockResponse(nn.Module):
    """A depthwise filter of the planar frame, returned in the block layout ``[n, 3s², h, w]``."""

    def __init__(self, filt: nn.Conv2d, scale: int):
        super().__init__()
        self.filt, self.scale = filt, scale

    def forward(self, planar: torch.Tensor) -> torch.Tensor:
        return frame_to_blocks(self.filt(planar).permute(0, 2, 3, 1), self.scale).permute(0, 3, 1, 2)


def block_bases(student: StudentNet, source: str = "rows", channels: int = 0) -> Optional[BlockBases]:
    """:class:`BlockBases` of ``student``, or None when it has no filter bases."""
    return BlockBases(student, source, channels) if student.config.filter_bases else None


class ConditionBias(nn.Module):
    """The head biases of a student's conditions (:mod:`edgerestore.export.conditions`: the noise
    level, the codec strengths) times their values, added to the head's NCHW pre-activation.
    ``plane`` (the ONNX graphs): a 1x1 convolution of the values expanded to a ``[1,K,h,w]`` plane,
    which ONNX Runtime fuses into the head's convolution and ReLU as it does a residual; a broadcast
    add of ``[1,C,1,1]`` (``plane=False``, the TFLite graph, where XNNPACK broadcasts natively) stops
    that fusion in ONNX Runtime (docs/export.md, "The noise level")."""

    def __init__(self, student: StudentNet, plane: bool = True):
        super().__init__()
        weight = conditions.weights(student).clone()  # [K, C]
        self.k = weight.shape[0]
        self.use_plane = plane
        if plane:
            self.plane = nn.Conv2d(self.k, weight.shape[1], 1, bias=False)
            with torch.no_grad():
                self.plane.weight.copy_(weight.t().reshape(weight.shape[1], self.k, 1, 1))
        elif self.k == 1:
            self.weight = nn.Parameter(weight.reshape(1, -1, 1, 1))
        else:
            self.weight = nn.Parameter(weight)

    def forward(self, head: torch.Tensor, values: Sequence[torch.Tensor], size=None) -> torch.Tensor:
        """``values``: one tensor per condition, in input order; ``size``: the head's ``(h, w)``,
        read off the frame (a Shape of the head's own output would make ONNX Runtime convert it out
        of its blocked layout)."""
        vector = values[0] if len(values) == 1 else torch.cat([v.reshape(-1) for v in values])
        if not self.use_plane:
            if self.k == 1:
                return head + vector.reshape(1, 1, 1, 1) * self.weight
            return head + (vector.reshape(1, self.k) @ self.weight).reshape(1, -1, 1, 1)
        plane = vector.reshape(1, self.k, 1, 1).expand(1, self.k, size[0], size[1])
        return head + self.plane(plane)


def condition_bias(student: StudentNet, plane: bool = True) -> Optional[ConditionBias]:
    """The :class:`ConditionBias` of a student with conditions, else None."""
    return ConditionBias(student, plane) if conditions.of(student) else None


def head_size(rows: torch.Tensor, scale: int):
    """``(h, w)`` of the head's output for frame rows ``[n,1,H,3W]``."""
    return rows.shape[2] // scale, rows.shape[3] // (3 * scale)


class FloatFrameModel(nn.Module):
    """``float32 [1,H,W,3]`` (0..255) in, ``float32 [1,H,W,3]`` out: the TensorRT graph of every
    student (TensorRT 8.2 has no uint8 inputs), temporal ones ``(frame, previous, hidden) ->
    (restored, hidden_out)``: the interleaved-rows head of :class:`RowsCore`, a transposed
    convolution tail that writes the rows, and a temporal student's float blend of the rows.

    The output is ``clamp(restored + 0.5, 0, 255)``: truncating it to uint8 gives the uint8 graph's
    frame, so the board-side adapter is one ``astype``. A temporal student's ``previous`` is float32
    0..255 as well (the previous output after that truncation).
    """

    def __init__(self, student: StudentNet):
        super().__init__()
        s = student.config.scale
        width = student.config.width
        self.scale = s
        self.temporal = student.config.temporal
        self.head = nn.Conv2d(1, width, (s, 3 * s), stride=(s, 3 * s))
        self.tail = nn.ConvTranspose2d(width, 1, (s, 3 * s), stride=(s, 3 * s))
        with torch.no_grad():
            self.head.weight.copy_(_interleave_kernel(student.head.weight) / 255.0)
            self.head.bias.copy_(student.head.bias)
            self.tail.weight.copy_(_interleave_kernel(student.tail.weight) * 255.0)
            self.tail.bias.fill_(0.5)  # with the truncating cast below: round to nearest
        if self.temporal:
            self.mix = copy.deepcopy(student.mix)
            self.gate = nn.ConvTranspose2d(width, 1, 2, stride=2)
            with torch.no_grad():
                self.gate.weight.copy_(student.gate.weight)
                self.gate.bias.fill_(float(student.gate_bias))
            self.agreement = agreement_weights(student)
        self.act = nn.ReLU()
        self.body = copy.deepcopy(student.body)
        self.context = copy.deepcopy(student.context)
        self.bases = block_bases(student)
        self.conditions = condition_bias(student)
        if self.bases is not None:  # block layout -> frame rows: a transposed convolution of 0/1 weights
            self.place = nn.ConvTranspose2d(3 * s * s, 1, (s, 3 * s), stride=(s, 3 * s), bias=False)
            with torch.no_grad():
                self.place.weight.copy_(torch.eye(3 * s * s).reshape(3 * s * s, 1, s, 3 * s))

    def restore(self, rows: torch.Tensor, previous_rows: Optional[torch.Tensor] = None,
                hidden: Optional[torch.Tensor] = None, values: Sequence[torch.Tensor] = ()):
        """Float frame rows ``[n,1,H,3W]`` (0..255) -> restored rows + 0.5 (not clamped);
        temporal: ``(rows, features)``. ``values``: the student's conditions."""
        head = self.head(rows)
        if self.conditions is not None:
            head = self.conditions(head, values, head_size(rows, self.scale))
        head = self.act(head)
        features = head if hidden is None else head + self.mix(hidden)
        features = self.context(self.body(features))
        restored = rows + self.tail(features)  # includes +0.5
        if self.bases is not None:
            restored = restored + self.place(self.bases(rows, features))
        if previous_rows is None:
            return restored
        restored = torch.clamp(restored, 0.5, 255.5)  # the blend mixes pictures, as the student's does
        half = self.scale // 2
        logits = self.gate(features)
        if self.agreement is not None:
            logits = logits + F.interpolate(agreement_logit(rows, previous_rows, self.agreement,
                                                            (self.scale, 3 * self.scale)), scale_factor=2)
        gate = F.interpolate(torch.sigmoid(logits), scale_factor=(half, 3 * half), mode="nearest")
        return restored + gate * (previous_rows + 0.5 - restored), head

    def forward(self, frame: torch.Tensor, *more: torch.Tensor):
        """Temporal: ``(frame, previous, hidden)``; a student with conditions: ``(frame, *values)``
        (:mod:`edgerestore.export.conditions`: the noise level, the codec strengths)."""
        n, h, w, c = frame.shape
        rows = frame.reshape(n, 1, h, w * c)
        if not self.temporal:
            return torch.clamp(self.restore(rows, values=more), 0.0, 255.0).reshape(n, h, w, c)
        previous, hidden = more
        out, features = self.restore(rows, previous.reshape(n, 1, h, w * c), hidden)
        return torch.clamp(out, 0.0, 255.0).reshape(n, h, w, c), features


FLOAT_CONTRACT = "float32-nhwc-rgb"
# What the runtime needs to feed and read each graph (recorded in the bundle manifest).
IO = {
    CONTRACT: {"layout": "nhwc", "channels": "rgb", "dtype": "uint8", "scale": 1.0, "offset": 0.0},
    FLOAT_CONTRACT: {"layout": "nhwc", "channels": "rgb", "dtype": "float32", "scale": 1.0, "offset": 0.5,
                     "rounding": "the output includes +0.5: truncate to uint8"},
}


def reference_uint8(student: StudentNet, frame: torch.Tensor, state=None, level: float = 0.0, codec=None):
    """What the exported graph must compute, by the plain student: uint8 NHWC in and out
    (``level``: a ``level_input`` student's noise level; ``codec``: a ``codec_input`` one's codec
    strengths, :mod:`edgerestore.codecinput`).

    Temporal students: ``state`` is ``None`` (a reset) or ``(previous uint8 NHWC, hidden)``, and
    the result is ``(restored, (restored, hidden))``, the state after this frame as the runtime
    keeps it.
    """
    x = frame.permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        if student.config.temporal:
            given = None
            if state is not None:
                given = (state[0].permute(0, 3, 1, 2).float() / 255.0, state[1])
            y, (_, hidden) = student.step(x, given)
            out = torch.clamp(y * 255.0 + 0.5, 0, 255).to(torch.uint8).permute(0, 2, 3, 1)
            return out, (out, hidden)
        y = student(x, level=level, codec=codec) * 255.0
    return torch.clamp(y + 0.5, 0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def write_metadata(path, metadata: dict) -> None:
    """Store ``edgerestore.*`` key/values in the ONNX file (the runtime reads stride and contract)."""
    import onnx

    model = onnx.load(str(path))
    existing = {p.key: p for p in model.metadata_props}
    for key, value in metadata.items():
        key = "edgerestore." + key
        prop = existing.get(key) or model.metadata_props.add()
        prop.key, prop.value = key, str(value)
    onnx.save(model, str(path))


def condition_metadata(student: StudentNet) -> dict:
    """The ONNX metadata that names a student's condition inputs (``level_input``, ``codec_input``)."""
    return {cond.flag: cond.name for cond in conditions.of(student)}


def export_onnx(
    student: StudentNet,
    path,
    height: Optional[int] = None,
    width: Optional[int] = None,
    opset: int = DEFAULT_OPSET,
    metadata: Optional[dict] = None,
    ir_version: Optional[int] = None,
    simplify: bool = False,
    io: str = CONTRACT,
) -> Path:
    """Write the ONNX model of ``student``; dynamic H/W unless both are given.

    ``io`` is the contract: ``uint8-nhwc-rgb`` (ONNX Runtime) or ``float32-nhwc-rgb`` (TensorRT).
    ``ir_version`` pins the file's IR version (older parsers reject newer ones), ``simplify`` runs
    onnxslim. The file's metadata records the stride, the contract and anything in ``metadata``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stride = student.stride
    if io not in (CONTRACT, FLOAT_CONTRACT):
        raise ValueError("unknown I/O contract %r (%s or %s)" % (io, CONTRACT, FLOAT_CONTRACT))
    sample_h = height or stride * 8
    sample_w = width or stride * 8
    for name, size in (("height", sample_h), ("width", sample_w)):
        if size % stride:
            raise ValueError("%s %d is not a multiple of the model's stride %d" % (name, size, stride))
    if io == CONTRACT:
        build = _export_temporal_block_graph if student.config.temporal else _export_block_graph
        build(student, path, opset, height, width)
        return _finish_export(student, path, io, ir_version, simplify, metadata)
    model = FloatFrameModel(student.eval()).eval()
    sample = torch.zeros(1, sample_h, sample_w, 3, dtype=torch.float32)
    inputs, names, outputs = (sample,), [INPUT_NAME], [OUTPUT_NAME]
    conds = conditions.of(student)
    inputs += tuple(conditions.sample(cond) for cond in conds)
    names += [cond.name for cond in conds]
    if student.config.temporal:
        s = student.config.scale
        hidden = torch.zeros(1, student.config.width, sample_h // s, sample_w // s)
        inputs, names = (sample, sample.clone(), hidden), [INPUT_NAME, STATE_NAME, HIDDEN_NAME]
        outputs = [OUTPUT_NAME, HIDDEN_OUTPUT]
    dynamic = None
    if height is None or width is None:
        dynamic = {name: {1: "height", 2: "width"} for name in names[:2] + outputs[:1]
                   if name not in [cond.name for cond in conds]}
        if student.config.temporal:
            dynamic.update({HIDDEN_NAME: {2: "rows", 3: "columns"}, HIDDEN_OUTPUT: {2: "rows", 3: "columns"}})
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, inputs, str(path), opset_version=opset, input_names=names,
            output_names=outputs, dynamic_axes=dynamic, do_constant_folding=True, dynamo=False,
        )
    return _finish_export(student, path, io, ir_version, simplify, metadata)


def _finish_export(student: StudentNet, path: Path, io: str, ir_version: Optional[int], simplify: bool,
                   metadata: Optional[dict]) -> Path:
    if simplify or ir_version is not None:
        _finish(path, ir_version, simplify)
    info = {"stride": student.stride, "contract": io, "config": json.dumps(student.config.to_dict())}
    info.update(condition_metadata(student))
    if student.config.temporal:
        info["state"] = json.dumps(state_spec(student))
    info.update(metadata or {})
    write_metadata(path, info)
    return path


TIE_BREAK = 2.0 ** -12


class RowsCore(nn.Module):
    """A frame-by-frame student from float frame rows ``[1,1,H,3W]`` (0..255) to its correction in
    the block layout ``[1,3s²,H/s,W/s]`` (:mod:`edgerestore.export.blocks`): the head is the
    interleaved-rows convolution (``s x 3s``, stride ``(s, 3s)``, on ``[1,1,H,3W]``), the tail a 1x1
    convolution."""

    def __init__(self, student: StudentNet):
        super().__init__()
        s, width = student.config.scale, student.config.width
        self.head = nn.Conv2d(1, width, (s, 3 * s), stride=(s, 3 * s))
        self.tail = nn.Conv2d(width, 3 * s * s, 1)
        with torch.no_grad():
            self.head.weight.copy_(_interleave_kernel(student.head.weight) / 255.0)
            self.head.bias.copy_(student.head.bias)
            self.tail.weight.copy_(blocks.block_tail_weight(student))
            # QuantizeLinear rounds half to even, the student's uint8 output rounds half up: a
            # 1/4096 nudge makes exact halves (common in smoothing filters) round the same way
            self.tail.bias.fill_(TIE_BREAK)
        self.act = nn.ReLU()
        self.body = copy.deepcopy(student.body)
        self.context = copy.deepcopy(student.context)
        self.bases = block_bases(student)
        self.conditions = condition_bias(student)

    def forward(self, rows: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        head = self.head(rows)
        if self.conditions is not None:
            head = self.conditions(head, values, head_size(rows, self.head.stride[0]))
        features = self.context(self.body(self.act(head)))
        if self.bases is None:
            return self.tail(features)
        return self.tail(features) + self.bases(rows, features)


ROWS_INPUT = "frame_rows"
CORE_OUTPUT = "correction"


def _export_block_graph(student: StudentNet, path: Path, opset: int, height: Optional[int],
                        width: Optional[int]) -> None:
    """The FP32 graph of a frame-by-frame student: uint8 frame -> rows (a reshape and one Cast)
    -> :class:`RowsCore` -> correction rounded to uint8 -> frame + correction (uint8 plumbing of
    :mod:`edgerestore.export.blocks`). Measured against the graph that writes the frame with a
    transposed convolution in docs/export.md ("FP32 graph")."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    s = student.config.scale
    sample = torch.zeros(1, 1, student.stride * 4, student.stride * 12)
    axes = {ROWS_INPUT: {2: "H", 3: "W3"}, CORE_OUTPUT: {2: "h", 3: "w"}}
    conds = conditions.of(student)
    inputs = (sample,) + tuple(conditions.sample(cond) for cond in conds)
    names = [ROWS_INPUT] + [cond.name for cond in conds]
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(RowsCore(student.eval()).eval(), inputs, str(path), opset_version=opset,
                          input_names=names, output_names=[CORE_OUTPUT], dynamic_axes=axes,
                          do_constant_folding=True, dynamo=False)
    model = onnx.load(str(path))
    graph = model.graph
    inits, pre = blocks.shape_nodes(s)
    graph.initializer.extend(inits + blocks.unit_quantization() + [
        numpy_helper.from_array(np.array(blocks.CORRECTION_ZERO, np.uint8), "correction_zero")])
    pre += [helper.make_node("Concat", ["one", "one", "H", "W3"], ["image_shape"], axis=0),
            helper.make_node("Reshape", [blocks.FRAME, "image_shape"], ["frame_rows_u8"]),
            helper.make_node("Cast", ["frame_rows_u8"], [ROWS_INPUT], to=TensorProto.FLOAT)]
    quantize = helper.make_node("QuantizeLinear", [CORE_OUTPUT, "unit_scale", "correction_zero"], ["correction_u8"])
    post, value_info = blocks.frame_plus_correction(s, "correction_u8", "unit_scale", "correction_zero")
    blocks.replace_nodes(graph, pre + list(graph.node) + [quantize] + post)
    blocks.set_frame_io(graph, conds)
    if height and width:
        dims = graph.input[0].type.tensor_type.shape.dim
        dims[1].dim_value, dims[2].dim_value = height, width
    graph.value_info.extend(value_info + [
        helper.make_tensor_value_info("frame_rows_u8", TensorProto.UINT8, [1, 1, "H", "W3"])])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


class TemporalRowsCore(RowsCore):
    """A temporal student from frame rows and its ``hidden`` state to ``(correction, gate logits,
    head features)``: the correction in the block layout as in :class:`RowsCore`, the gate as its 4
    logits per block (:func:`blocks.gate_quadrant_weight`), the head features the next ``hidden``."""

    def __init__(self, student: StudentNet):
        super().__init__(student)
        width = student.config.width
        self.mix = copy.deepcopy(student.mix)
        self.gate = nn.Conv2d(width, blocks.GATE_QUADRANTS, 1)
        weight, bias = blocks.gate_quadrant_weight(student)
        with torch.no_grad():
            self.gate.weight.copy_(weight)
            self.gate.bias.copy_(bias)
        self.agreement = agreement_weights(student)

    def forward(self, rows: torch.Tensor, hidden: torch.Tensor, previous_rows: Optional[torch.Tensor] = None):
        head = self.act(self.head(rows))
        features = self.context(self.body(head + self.mix(hidden)))
        logits = self.gate(features)
        if self.agreement is not None:  # one value per block, the same for its 4 quadrants
            s = self.head.stride[0]
            logits = logits + agreement_logit(rows, previous_rows, self.agreement, (s, 3 * s))
        return self.tail(features), logits, head


GATE_LOGITS = "gate_logits"
PREVIOUS_ROWS = "previous_rows"


def _export_temporal_block_graph(student: StudentNet, path: Path, opset: int, height: Optional[int],
                                 width: Optional[int]) -> None:
    """The graph of a temporal student: :class:`TemporalRowsCore`, the frame-by-frame result
    ``r = frame + correction`` as in :func:`_export_block_graph`, the gate (sigmoid of 4 values per
    block, rounded to 1/255) copied into the frame's layout like the correction, and the blend
    ``restored = g * previous + (1 - g) * r`` by nodes ONNX Runtime fuses into two QLinearMul and a
    QLinearAdd (each rounds: within one level of the float blend). Every full-resolution tensor is
    uint8 besides the float rows the head reads.
    Measured at 1080p against the graph it replaced (float rows, a transposed-convolution tail and a
    float blend): docs/temporal.md."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    s, c = student.config.scale, student.config.width
    sample = torch.zeros(1, 1, student.stride * 4, student.stride * 12)
    hidden = torch.zeros(1, c, 4, 4)
    axes = {ROWS_INPUT: {2: "H", 3: "W3"}, HIDDEN_NAME: {2: "h", 3: "w"}, CORE_OUTPUT: {2: "h", 3: "w"},
            GATE_LOGITS: {2: "h", 3: "w"}, HIDDEN_OUTPUT: {2: "h", 3: "w"}}
    core_inputs, core_names = (sample, hidden), [ROWS_INPUT, HIDDEN_NAME]
    row_tensors = ["frame_rows_u8"]
    if student.config.agreement:  # the gate reads the previous frame too, as float rows like the frame
        core_inputs, core_names = core_inputs + (sample.clone(),), core_names + [PREVIOUS_ROWS]
        axes[PREVIOUS_ROWS] = axes[ROWS_INPUT]
        row_tensors.append("previous_rows_u8")
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(TemporalRowsCore(student.eval()).eval(), core_inputs, str(path), opset_version=opset,
                          input_names=core_names, output_names=[CORE_OUTPUT, GATE_LOGITS, HIDDEN_OUTPUT],
                          dynamic_axes=axes, do_constant_folding=True, dynamo=False)
    model = onnx.load(str(path))
    graph = model.graph
    inits, pre = blocks.shape_nodes(s)
    scalar = numpy_helper.from_array
    graph.initializer.extend(inits + blocks.unit_quantization() + [
        scalar(np.array(blocks.CORRECTION_ZERO, np.uint8), "correction_zero"),
        scalar(np.array(1.0 / 255.0, np.float32), "gate_scale"),
        scalar(np.array(-1.0 / 255.0, np.float32), "complement_scale"),
        scalar(np.array(255, np.uint8), "full_zero"),
        scalar(blocks.gate_expansion(s), "gate_expansion")])
    pre += [helper.make_node("Concat", ["one", "one", "H", "W3"], ["image_shape"], axis=0),
            helper.make_node("Reshape", [blocks.FRAME, "image_shape"], ["frame_rows_u8"]),
            helper.make_node("Cast", ["frame_rows_u8"], [ROWS_INPUT], to=TensorProto.FLOAT)]
    if student.config.agreement:
        pre += [helper.make_node("Reshape", [STATE_NAME, "image_shape"], ["previous_rows_u8"]),
                helper.make_node("Cast", ["previous_rows_u8"], [PREVIOUS_ROWS], to=TensorProto.FLOAT)]
    node = helper.make_node
    post = [node("QuantizeLinear", [CORE_OUTPUT, "unit_scale", "correction_zero"], ["correction_u8"])]
    corr_nodes, value_info = blocks.correction_to_frame(s, "correction_u8")
    post += corr_nodes + blocks.quantized_add((blocks.FRAME, "unit_scale", "unit_zero"),
                                              ("corr_frame", "unit_scale", "correction_zero"),
                                              ("framewise", "unit_scale", "unit_zero"))
    # the gate: 4 values per block -> uint8 -> channels last -> one per block value -> frame layout
    # (the 4 -> 3s² expansion is a float MatMul with a 0/1 matrix: ONNX Runtime's uint8 Gather,
    # Expand and broadcasting QLinearMul copy byte by byte and cost 30-100 ms at 1080p)
    post += [node("Sigmoid", [GATE_LOGITS], ["gate"]),
             node("Transpose", ["gate"], ["gate_quadrants"], perm=[0, 2, 3, 1]),
             node("MatMul", ["gate_quadrants", "gate_expansion"], ["gate_blocks"]),
             node("QuantizeLinear", ["gate_blocks", "gate_scale", "unit_zero"], ["corr_nhwc_gate"])]
    gate_nodes, gate_info = blocks.channels_last_blocks_to_frame(s, "corr_nhwc_gate", "_gate")
    post += gate_nodes
    # restored = g * previous + (1 - g) * r, in uint8; 1 - g is the gate read with scale -1/255 and
    # zero point 255 (no second gate tensor)
    post += [node("DequantizeLinear", ["corr_frame_gate", "gate_scale", "unit_zero"], ["gate_frame"]),
             node("DequantizeLinear", ["corr_frame_gate", "complement_scale", "full_zero"], ["complement_frame"]),
             node("DequantizeLinear", [STATE_NAME, "unit_scale", "unit_zero"], ["previous_dq"]),
             node("DequantizeLinear", ["framewise", "unit_scale", "unit_zero"], ["framewise_dq"]),
             node("Mul", ["previous_dq", "gate_frame"], ["kept_float"]),
             node("QuantizeLinear", ["kept_float", "unit_scale", "unit_zero"], ["kept"]),
             node("Mul", ["framewise_dq", "complement_frame"], ["fresh_float"]),
             node("QuantizeLinear", ["fresh_float", "unit_scale", "unit_zero"], ["fresh"])]
    post += blocks.quantized_add(("kept", "unit_scale", "unit_zero"), ("fresh", "unit_scale", "unit_zero"),
                                 (blocks.RESTORED, "unit_scale", "unit_zero"))
    gate_row_inits, gate_row_nodes = blocks.row_shape_nodes(s, "_gate")
    graph.initializer.extend(gate_row_inits)
    blocks.replace_nodes(graph, pre + gate_row_nodes + list(graph.node) + post)
    u8, info = TensorProto.UINT8, helper.make_tensor_value_info
    hidden_shape = [1, c, "h", "w"]
    del graph.input[:]
    graph.input.extend([info(blocks.FRAME, u8, [1, "H", "W", 3]), info(STATE_NAME, u8, [1, "H", "W", 3]),
                        info(HIDDEN_NAME, TensorProto.FLOAT, hidden_shape)])
    del graph.output[:]
    graph.output.extend([info(blocks.RESTORED, u8, [1, "H", "W", 3]),
                         info(HIDDEN_OUTPUT, TensorProto.FLOAT, hidden_shape)])
    if height and width:
        for value in list(graph.input[:2]) + [graph.output[0]]:
            dims = value.type.tensor_type.shape.dim
            dims[1].dim_value, dims[2].dim_value = height, width
        for value in (graph.input[2], graph.output[1]):
            dims = value.type.tensor_type.shape.dim
            dims[2].dim_value, dims[3].dim_value = height // s, width // s
    graph.value_info.extend(value_info + gate_info + [
        info(name, u8, [1, 1, "H", "W3"]) for name in row_tensors])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _finish(path: Path, ir_version: Optional[int], simplify: bool) -> None:
    """Simplify (onnxslim: folds the shape arithmetic) and pin the IR version, in place."""
    import onnx

    model = onnx.load(str(path))
    if simplify:
        import onnxslim

        model = onnxslim.slim(model)
    if ir_version is not None:
        model.ir_version = ir_version
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def float32_parameters(graph) -> set:
    """Tensors that must stay float32 in an FP16 graph: Resize's roi and scales, and the scales of
    (De)QuantizeLinear (opset 13 has no float16 ones)."""
    keep = set(name for node in graph.node if node.op_type == "Resize" for name in node.input[1:3] if name)
    return keep | set(node.input[1] for node in graph.node if node.op_type in ("QuantizeLinear", "DequantizeLinear"))


def _float32_quantize_inputs(graph, half: set) -> None:
    """Cast float16 tensors back to float32 in front of QuantizeLinear (opset 13 quantizes float32
    only). ``half``: the tensors the conversion made float16; what is computed from them is float16
    too, except through (De)QuantizeLinear, Shape and Casts to other types."""
    from onnx import TensorProto, helper

    keeps_type = {"DequantizeLinear", "QuantizeLinear", "Shape"}
    for node in graph.node:
        to = [attr.i for attr in node.attribute if attr.name == "to"]
        if node.op_type in keeps_type or (node.op_type == "Cast" and to != [TensorProto.FLOAT16]):
            continue
        if any(name in half for name in node.input):
            half.update(node.output)
    for index in reversed(range(len(graph.node))):
        node = graph.node[index]
        if node.op_type == "QuantizeLinear" and node.input[0] in half:
            cast = helper.make_node("Cast", [node.input[0]], [node.input[0] + "_fp32"], to=TensorProto.FLOAT)
            node.input[0] = node.input[0] + "_fp32"
            graph.node.insert(index, cast)


def cast_graph_to_fp16(src, dst, float_io_only: bool = True) -> Path:
    """Copy of the graph at ``src`` computing in float16: float16 weights and constants, Casts to
    float retargeted to float16, and one Cast at each float input and output so the I/O contract
    stays what it was. ``float_io_only=False`` wraps every input and output (a graph whose I/O is
    all float, like the TensorRT graph the FP16 engine is simulated with)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    keep = float32_parameters(graph)
    half = set()
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT and init.name not in keep:
            graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
            half.add(init.name)

    def wrapped(values):
        return [v.name for v in values if not float_io_only or v.type.tensor_type.elem_type == TensorProto.FLOAT]

    inputs, outputs = wrapped(graph.input), wrapped(graph.output)
    renamed = set(inputs) | set(outputs)  # a temporal graph's hidden_out is an output and an input of later nodes
    for node in graph.node:
        node.input[:] = [name + "_fp16" if name in renamed else name for name in node.input]
        node.output[:] = [name + "_fp16" if name in outputs else name for name in node.output]
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
                half.update(node.output)
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type == TensorProto.FLOAT \
                    and node.output[0] not in keep:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16)))
                half.update(node.output)
    for name in reversed(inputs):
        graph.node.insert(0, helper.make_node("Cast", [name], [name + "_fp16"], to=TensorProto.FLOAT16))
        half.add(name + "_fp16")
    _float32_quantize_inputs(graph, half)
    for name in outputs:
        graph.node.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT))
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return Path(dst)


def to_fp16(src, dst) -> Path:
    """FP16 copy of a uint8-contract graph: float16 weights and arithmetic, uint8 I/O unchanged.

    The graph's only float entry points are the Casts after the uint8 inputs, so retargeting the
    Casts and the float initializers is most of the conversion (no Cast pairs around every op);
    a temporal graph's float32 state (``hidden``/``hidden_out``) gets one Cast each way, so its
    I/O contract does not change either.
    """
    return cast_graph_to_fp16(src, dst, float_io_only=True)


def export_artifact(job, fmt) -> Path:
    """Exporter of the ``onnx`` format: the uint8 graph, any frame size, the target's opset/IR."""
    path = job.out_dir / fmt.filename
    export_onnx(job.student, path, opset=job.target.opset, ir_version=job.target.ir_version,
                simplify=job.target.simplify, metadata=job.metadata(fmt))
    return path


def export_fp16_artifact(job, fmt) -> Path:
    """Exporter of ``onnx-fp16``: the FP32 graph with float16 weights and arithmetic."""
    tmp = job.work_dir / "fp32-for-fp16.onnx"
    export_onnx(job.student, tmp, opset=job.target.opset, ir_version=job.target.ir_version,
                simplify=job.target.simplify, metadata=job.metadata(fmt))
    return to_fp16(tmp, job.out_dir / fmt.filename)
