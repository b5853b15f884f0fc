"""Student -> ONNX with the runtime's frame contract baked into the graph.

Contract (DESIGN.md): input ``uint8 [1,H,W,3]`` RGB, output the same; H and W multiples of the
student's stride (the runtime pads and crops).

The obvious graph (transpose to NCHW, cast, divide by 255, the network, multiply, round, clip,
cast, transpose back) spends most of its time on full-resolution rearrangements: on this
machine ONNX Runtime needs 10-25 ms per 1080p frame for each transpose, pixel (un)shuffle or
depth-to-space. So the exported graph never transposes a frame:

* the NHWC frame is *reshaped* (free) to a one-channel ``[1,1,H,3W]`` image whose rows interleave
  R, G and B; the student's ``s x s`` stride-``s`` patchify convolution becomes an ``s x 3s``
  stride-``(s, 3s)`` convolution on it, with the weights rearranged and divided by 255;
* the student's transposed-convolution tail becomes an ``s x 3s`` transposed convolution that
  writes the interleaved layout directly, weights multiplied by 255, its bias +0.5;
* the global residual adds the frame, ``Clip(0, 255)`` and a truncating ``Cast`` to uint8 round
  to nearest (thanks to the +0.5), and a reshape gives back ``[1,H,W,3]``.

The result equals the PyTorch student on the same uint8 frame (the tests demand >= 50 dB PSNR).

**Temporal students** take two more inputs, their state: ``previous`` (uint8 ``[1,H,W,3]``, their
own previous output) and ``hidden`` (float32 ``[1,C,H/s,W/s]``, the previous frame's head features),
and return ``hidden_out`` besides ``restored``. ``hidden`` is mixed into the features at low
resolution; the gate comes out of a 2x2 transposed convolution at half resolution and is
upsampled (nearest) straight into the interleaved rows (each value covers 2 rows x 6 values:
2x2 pixels, 3 colours), so the blend ``r + g * (previous - r)`` is four same-shape elementwise
operations on the rows. (Measured at 1080p: a per-pixel gate by a full-resolution transposed
convolution costs 8-20 ms, a gate broadcast over NHWC colours 26 ms, a uint8 concat of frame and
previous on the innermost axis 31 ms; docs/temporal.md.) The file's ``edgerestore.state``
metadata says how the runtime feeds the state (:func:`state_spec`).

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
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from edgerestore.models.student import StudentNet

DEFAULT_OPSET = 13  # TensorRT 8.2 (Jetson Nano, JetPack 4.6) parses up to opset 13
INPUT_NAME = "frame"
OUTPUT_NAME = "restored"
STATE_NAME = "previous"
HIDDEN_NAME = "hidden"
HIDDEN_OUTPUT = "hidden_out"
CONTRACT = "uint8-nhwc-rgb"


def state_spec(student: StudentNet, layout: str = "nchw") -> list:
    """How the runtime feeds a temporal model's state (stored as ``edgerestore.state``, in the
    bundle manifest, read by the runtime's backends): each input takes the named output of the
    stream's previous frame; on a reset (first frame, scene cut, reconnect, new frame size) it
    is a copy of the current frame (``input``) or zeros of the given shape (``zeros``)."""
    config = student.config
    return [
        {"input": STATE_NAME, "output": OUTPUT_NAME, "reset": "input", "like": INPUT_NAME,
         "layout": "nhwc", "channels": 3, "dtype": "uint8"},
        {"input": HIDDEN_NAME, "output": HIDDEN_OUTPUT, "reset": "zeros", "layout": layout,
         "channels": config.width, "stride": config.scale, "dtype": "float32"},
    ]


def _interleave_kernel(weight: torch.Tensor) -> torch.Tensor:
    """(C, 3, s, s) kernel over RGB planes -> (C, 1, s, 3s) kernel over interleaved RGB rows."""
    c, three, s, s2 = weight.shape
    assert three == 3 and s == s2
    return weight.permute(0, 2, 3, 1).reshape(c, 1, s, 3 * s)


class Uint8FrameModel(nn.Module):
    """The deployable graph: ``uint8 [1,H,W,3] -> uint8 [1,H,W,3]``, same maths as the student
    (temporal students: ``(frame, previous, hidden) -> (restored, hidden_out)``)."""

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
        self.act = nn.ReLU()
        self.body = copy.deepcopy(student.body)
        self.context = copy.deepcopy(student.context)

    def restore(self, rows: torch.Tensor, previous_rows: Optional[torch.Tensor] = None,
                hidden: Optional[torch.Tensor] = None):
        """Float frame rows ``[n,1,H,3W]`` (0..255) -> restored rows + 0.5 (not clamped);
        temporal: ``(rows, features)``."""
        head = self.act(self.head(rows))
        features = head if hidden is None else head + self.mix(hidden)
        features = self.context(self.body(features))
        restored = rows + self.tail(features)  # includes +0.5
        if previous_rows is None:
            return restored
        half = self.scale // 2
        gate = F.interpolate(torch.sigmoid(self.gate(features)), scale_factor=(half, 3 * half), mode="nearest")
        return restored + gate * (previous_rows + 0.5 - restored), head

    def forward(self, frame: torch.Tensor, previous: Optional[torch.Tensor] = None,
                hidden: Optional[torch.Tensor] = None):
        n, h, w, c = frame.shape
        rows = frame.reshape(n, 1, h, w * c).float()
        if not self.temporal:
            out = torch.clamp(self.restore(rows), 0.0, 255.0)
            return out.to(torch.uint8).reshape(n, h, w, c)
        out, features = self.restore(rows, previous.reshape(n, 1, h, w * c).float(), hidden)
        return torch.clamp(out, 0.0, 255.0).to(torch.uint8).reshape(n, h, w, c), features


class FloatFrameModel(Uint8FrameModel):
    """``float32 [1,H,W,3]`` (0..255) in, ``float32 [1,H,W,3]`` out: the TensorRT graph.

    The output is ``clamp(restored + 0.5, 0, 255)``: truncating it to uint8 gives the uint8 graph's
    frame exactly, so the board-side adapter is one ``astype``. A temporal student's ``previous``
    is float32 0..255 as well (the previous output after that truncation).
    """

    def forward(self, frame: torch.Tensor, previous: Optional[torch.Tensor] = None,
                hidden: Optional[torch.Tensor] = None):
        n, h, w, c = frame.shape
        rows = frame.reshape(n, 1, h, w * c)
        if not self.temporal:
            return torch.clamp(self.restore(rows), 0.0, 255.0).reshape(n, h, w, c)
        out, features = self.restore(rows, previous.reshape(n, 1, h, w * c), hidden)
        return torch.clamp(out, 0.0, 255.0).reshape(n, h, w, c), features


FLOAT_CONTRACT = "float32-nhwc-rgb"
# What the runtime needs to feed and read each graph (recorded in the bundle manifest).
IO = {
    CONTRACT: {"layout": "nhwc", "channels": "rgb", "dtype": "uint8", "scale": 1.0, "offset": 0.0},
    FLOAT_CONTRACT: {"layout": "nhwc", "channels": "rgb", "dtype": "float32", "scale": 1.0, "offset": 0.5,
                     "rounding": "the output includes +0.5: truncate to uint8"},
}


def reference_uint8(student: StudentNet, frame: torch.Tensor, state=None):
    """What the exported graph must compute, by the plain student: uint8 NHWC in and out.

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
        y = student(x) * 255.0
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
    model_cls = {CONTRACT: Uint8FrameModel, FLOAT_CONTRACT: FloatFrameModel}[io]
    model = model_cls(student.eval()).eval()
    sample_h = height or stride * 8
    sample_w = width or stride * 8
    for name, size in (("height", sample_h), ("width", sample_w)):
        if size % stride:
            raise ValueError("%s %d is not a multiple of the model's stride %d" % (name, size, stride))
    dtype = torch.uint8 if io == CONTRACT else torch.float32
    sample = torch.zeros(1, sample_h, sample_w, 3, dtype=dtype)
    inputs, names, outputs = (sample,), [INPUT_NAME], [OUTPUT_NAME]
    if student.config.temporal:
        s = student.config.scale
        hidden = torch.zeros(1, student.config.width, sample_h // s, sample_w // s)
        inputs, names = (sample, sample.clone(), hidden), [INPUT_NAME, STATE_NAME, HIDDEN_NAME]
        outputs = [OUTPUT_NAME, HIDDEN_OUTPUT]
    dynamic = None
    if height is None or width is None:
        dynamic = {name: {1: "height", 2: "width"} for name in names[:2] + outputs[:1]}
        if student.config.temporal:
            dynamic.update({HIDDEN_NAME: {2: "rows", 3: "columns"}, HIDDEN_OUTPUT: {2: "rows", 3: "columns"}})
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, inputs, str(path), opset_version=opset, input_names=names,
            output_names=outputs, dynamic_axes=dynamic, do_constant_folding=True, dynamo=False,
        )
    if simplify or ir_version is not None:
        _finish(path, ir_version, simplify)
    info = {"stride": stride, "contract": io, "config": json.dumps(student.config.to_dict())}
    if student.config.temporal:
        info["state"] = json.dumps(state_spec(student))
    info.update(metadata or {})
    write_metadata(path, info)
    return path


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
    """Tensors that must stay float32 in an FP16 graph: Resize's roi and scales."""
    return set(name for node in graph.node if node.op_type == "Resize" for name in node.input[1:3] if name)


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
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT and init.name not in keep:
            graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))

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
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type == TensorProto.FLOAT \
                    and node.output[0] not in keep:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16)))
    for name in reversed(inputs):
        graph.node.insert(0, helper.make_node("Cast", [name], [name + "_fp16"], to=TensorProto.FLOAT16))
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
