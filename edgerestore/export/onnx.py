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

**Temporal students** take a second input, ``previous`` (uint8 ``[1,H,W,3]``: their own previous
output, the whole recurrent state): the frame and ``previous`` are concatenated per pixel while still uint8 (``[1,H,W,6]``, read as
``[1,1,H,6W]`` rows by one ``s x 6s`` head), and a second transposed convolution writes the
per-pixel, per-colour gate in the same interleaved rows as the correction, so the blend
``r + g * (previous - r)`` is four same-shape elementwise operations. The
file's ``edgerestore.state`` metadata says how the runtime feeds the state (:data:`STATE`).

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
from torch import nn

from edgerestore.models.student import StudentNet

DEFAULT_OPSET = 13  # TensorRT 8.2 (Jetson Nano, JetPack 4.6) parses up to opset 13
INPUT_NAME = "frame"
OUTPUT_NAME = "restored"
STATE_NAME = "previous"
CONTRACT = "uint8-nhwc-rgb"
# How the runtime feeds a temporal model's state (stored as ``edgerestore.state``, in the bundle
# manifest, and read by the runtime's backends): input ``previous`` gets the output ``restored``
# of the stream's previous frame, in the frame's own dtype and layout; on a reset (first frame,
# scene cut, reconnect, new frame size) it gets a copy of the current input frame ("input").
STATE = [{"input": STATE_NAME, "output": OUTPUT_NAME, "reset": "input", "layout": "nhwc", "channels": "rgb",
          "like": INPUT_NAME}]


def _interleave_kernel(weight: torch.Tensor) -> torch.Tensor:
    """(C, k, s, s) kernel over k planes (RGB, or RGB + previous RGB) -> (C, 1, s, k*s) kernel over
    rows whose pixels interleave the k values."""
    c, k, s, s2 = weight.shape
    assert k in (3, 6) and s == s2
    return weight.permute(0, 2, 3, 1).reshape(c, 1, s, k * s)


class Uint8FrameModel(nn.Module):
    """The deployable graph: ``uint8 [1,H,W,3] -> uint8 [1,H,W,3]``, same maths as the student
    (temporal students: ``(frame, previous) -> restored``)."""

    def __init__(self, student: StudentNet):
        super().__init__()
        s = student.config.scale
        width = student.config.width
        self.scale = s
        self.temporal = student.config.temporal
        channels = 6 if self.temporal else 3
        # temporal: the frame and the previous output side by side per pixel, R G B R' G' B'
        self.head = nn.Conv2d(1, width, (s, channels * s), stride=(s, channels * s))
        self.tail = nn.ConvTranspose2d(width, 1, (s, 3 * s), stride=(s, 3 * s))
        with torch.no_grad():
            self.head.weight.copy_(_interleave_kernel(student.head.weight) / 255.0)
            self.head.bias.copy_(student.head.bias)
            self.tail.weight.copy_(_interleave_kernel(student.tail.weight) * 255.0)
            self.tail.bias.fill_(0.5)  # with the truncating cast below: round to nearest
        if self.temporal:
            self.gate = nn.ConvTranspose2d(width, 1, (s, 3 * s), stride=(s, 3 * s))
            with torch.no_grad():
                self.gate.weight.copy_(_interleave_kernel(student.gate.weight))
                self.gate.bias.fill_(float(student.gate_bias))
        self.act = nn.ReLU()
        self.body = copy.deepcopy(student.body)
        self.context = copy.deepcopy(student.context)

    def restore(self, rows: torch.Tensor, pair_rows: Optional[torch.Tensor] = None,
                previous_rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Float frame rows ``[n,1,H,3W]`` (0..255) -> restored rows + 0.5 (not clamped). Temporal:
        ``pair_rows`` ``[n,1,H,6W]`` (frame and previous interleaved per pixel) feed the head."""
        features = self.context(self.body(self.act(self.head(rows if pair_rows is None else pair_rows))))
        restored = rows + self.tail(features)  # includes +0.5
        if previous_rows is None:
            return restored
        gate = torch.sigmoid(self.gate(features))
        return restored + gate * (previous_rows + 0.5 - restored)

    def forward(self, frame: torch.Tensor, previous: Optional[torch.Tensor] = None) -> torch.Tensor:
        n, h, w, c = frame.shape
        rows = frame.reshape(n, 1, h, w * c).float()
        pair_rows = previous_rows = None
        if self.temporal:
            # concatenated while still uint8 (a quarter of the bytes of a float concat)
            pair_rows = torch.cat([frame, previous], dim=3).reshape(n, 1, h, 2 * w * c).float()
            previous_rows = previous.reshape(n, 1, h, w * c).float()
        out = torch.clamp(self.restore(rows, pair_rows, previous_rows), 0.0, 255.0)
        return out.to(torch.uint8).reshape(n, h, w, c)


class FloatFrameModel(Uint8FrameModel):
    """``float32 [1,H,W,3]`` (0..255) in, ``float32 [1,H,W,3]`` out: the TensorRT graph.

    The output is ``clamp(restored + 0.5, 0, 255)``: truncating it to uint8 gives the uint8 graph's
    frame exactly, so the board-side adapter is one ``astype``. A temporal student's ``previous``
    is float32 0..255 as well (the previous output after that truncation).
    """

    def forward(self, frame: torch.Tensor, previous: Optional[torch.Tensor] = None) -> torch.Tensor:
        n, h, w, c = frame.shape
        rows = frame.reshape(n, 1, h, w * c)
        pair_rows = previous_rows = None
        if self.temporal:
            pair_rows = torch.cat([frame, previous], dim=3).reshape(n, 1, h, 2 * w * c)
            previous_rows = previous.reshape(n, 1, h, w * c)
        return torch.clamp(self.restore(rows, pair_rows, previous_rows), 0.0, 255.0).reshape(n, h, w, c)


FLOAT_CONTRACT = "float32-nhwc-rgb"
# What the runtime needs to feed and read each graph (recorded in the bundle manifest).
IO = {
    CONTRACT: {"layout": "nhwc", "channels": "rgb", "dtype": "uint8", "scale": 1.0, "offset": 0.0},
    FLOAT_CONTRACT: {"layout": "nhwc", "channels": "rgb", "dtype": "float32", "scale": 1.0, "offset": 0.5,
                     "rounding": "the output includes +0.5: truncate to uint8"},
}


def reference_uint8(student: StudentNet, frame: torch.Tensor, previous: Optional[torch.Tensor] = None) -> torch.Tensor:
    """What the exported graph must compute, by the plain student: uint8 NHWC in and out
    (``previous``: a temporal student's previous uint8 output; ``None`` = a reset)."""
    x = frame.permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        if student.config.temporal:
            p = None if previous is None else previous.permute(0, 3, 1, 2).float() / 255.0
            y = student(x, p) * 255.0
        else:
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
    inputs, names = (sample,), [INPUT_NAME]
    if student.config.temporal:
        inputs, names = (sample, sample.clone()), [INPUT_NAME, STATE_NAME]
    dynamic = None
    if height is None or width is None:
        dynamic = {name: {1: "height", 2: "width"} for name in names + [OUTPUT_NAME]}
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, inputs, str(path), opset_version=opset, input_names=names,
            output_names=[OUTPUT_NAME], dynamic_axes=dynamic, do_constant_folding=True, dynamo=False,
        )
    if simplify or ir_version is not None:
        _finish(path, ir_version, simplify)
    info = {"stride": stride, "contract": io, "config": json.dumps(student.config.to_dict())}
    if student.config.temporal:
        info["state"] = json.dumps(STATE)
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


def to_fp16(src, dst) -> Path:
    """FP16 copy of a uint8-contract graph: float16 weights and arithmetic, uint8 I/O unchanged.

    The graph's only float entry point is the Cast after the uint8 input, so retargeting the Casts
    and the float initializers is the whole conversion (no Cast pairs around every op).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16)))
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return Path(dst)


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
