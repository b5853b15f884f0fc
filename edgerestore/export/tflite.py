"""TFLite for the Raspberry Pis: FP32, FP16 weights, and INT8, with the uint8 NHWC frame contract.

Converted here with litert-torch (PyTorch -> .tflite, no TensorFlow), run on the board with
ai-edge-litert or tflite-runtime and XNNPACK. TFLite is NHWC, so the graph is written the way
XNNPACK runs fast (measured; docs/export.md, "TFLite graph"):

* the head is the student's own ``s x s`` stride-``s`` convolution on the NHWC frame (the layout
  pass folds the NCHW permutes away);
* the tail is a 1x1 convolution to ``3s²`` channels whose output is sliced into its ``s`` row
  phases and concatenated back into frame rows: a TRANSPOSE_CONV runs ~2x slower than the whole
  rest of the network under XNNPACK, and pixel-shuffle lowers to full-frame transposes;
* a filter basis is a strided convolution of the frame into the ``3s²`` block channels in FP32;
  in INT8 it is the student's own depthwise filter of the frame (DEPTHWISE_CONV_2D) moved into
  the block layout by row-phase splits and a concatenation (``BlockBases(source="depthwise")``), a twelfth
  of the multiply-adds (measured faster in INT8 and slower in FP32 under XNNPACK on x86:
  docs/distill.md, "Filter bases");
* residual, +0.5, clamp and a truncating cast give the uint8 frame (round to nearest).

FP16 stores the weights as float16 (ai-edge-quantizer's float casting; XNNPACK computes in FP16
on CPUs that have it, e.g. the Pi 5's A76, and in FP32 elsewhere). INT8 is PT2E static
quantization calibrated on the representative frames: per-channel symmetric INT8 weights,
histogram-calibrated INT8 activations, integer convolutions; uint8 in and out. The weight
observers' ``eps`` is lowered from 2^-12: the head's weights include the 1/255 pixel scale and a
floor of 2^-12 on their scales crushed them to a few levels (37 dB parity instead of 55 dB).
Artifacts are built for one frame size (the board's camera mode); the runtime pads smaller frames.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from edgerestore.export import conditions
from edgerestore.export.onnx import (
    agreement_logit,
    agreement_weights,
    block_bases,
    condition_bias,
)
from edgerestore.models.student import StudentNet

WEIGHT_EPS = 2.0 ** -24


class TFLiteFrameModel(nn.Module):
    """``uint8 [1,H,W,3]`` RGB -> ``uint8 [1,H,W,3]``, laid out for TFLite / XNNPACK.

    A student with conditions (:mod:`edgerestore.export.conditions`): ``(frame, noise level float32
    [1], codec strengths float32 [2]) -> restored``, each where it has that input. Temporal students:
    ``(frame, previous uint8 [1,H,W,3], hidden float32 [1,H/s,W/s,C]) -> (restored, hidden_out)``; the state is NHWC like everything in TFLite. Their gate (one value
    per 2x2 pixels) is a 1x1 convolution to ``s²`` channels whose weights repeat each 2x2 value
    (the nearest upsampling folded into the weights), assembled into frame rows like the tail and
    broadcast over the colours. ``depthwise_bases``: filter bases as the student's depthwise filter
    moved into the block layout (the INT8 graph) instead of a strided convolution of the frame.
    """

    def __init__(self, student: StudentNet, depthwise_bases: bool = False):
        super().__init__()
        s, width = student.config.scale, student.config.width
        self.scale = s
        self.temporal = student.config.temporal
        self.head = copy.deepcopy(student.head)
        self.tail = nn.Conv2d(width, 3 * s * s, 1, bias=False)
        with torch.no_grad():
            self.head.weight.div_(255.0)
            # tail output channel dy*3s + dx*3 + c  <-  ConvTranspose weight [in, c, dy, dx]
            self.tail.weight.copy_(student.tail.weight.permute(2, 3, 1, 0).reshape(3 * s * s, width, 1, 1) * 255.0)
        if self.temporal:
            self.mix = copy.deepcopy(student.mix)
            self.gate = nn.Conv2d(width, s * s, 1)
            half = s // 2
            with torch.no_grad():
                # channel dy*s + dx <- the 2x2 gate value (dy // half, dx // half) of the block
                blocks = student.gate.weight[:, 0]  # [in, 2, 2]
                full = blocks.repeat_interleave(half, dim=1).repeat_interleave(half, dim=2)  # [in, s, s]
                self.gate.weight.copy_(full.permute(1, 2, 0).reshape(s * s, width, 1, 1))
                self.gate.bias.fill_(float(student.gate_bias))
            self.agreement = agreement_weights(student)
        self.act = nn.ReLU()
        self.body = copy.deepcopy(student.body)
        self.context = copy.deepcopy(student.context)
        self.bases = block_bases(student, "depthwise" if depthwise_bases else "frame")
        if depthwise_bases and self.bases is not None:
            for response in self.bases.responses:
                snap_to_int8(response.filt.weight)
        self.conditions = condition_bias(student, plane=False)

    def _rows(self, blocks: torch.Tensor, n: int, height: int, width: int, channels: int) -> torch.Tensor:
        """``[n, h, w, channels*s²]`` blocks -> ``[n, H, W, channels]`` (row phases concatenated)."""
        s = self.scale
        phases = torch.split(blocks, channels * s, dim=3)  # row dy of every block: [n, h, w, channels*s]
        rows = torch.cat([p.reshape(n, height // s, 1, width * channels) for p in phases], dim=2)
        return rows.reshape(n, height, width, channels)

    def forward(self, frame: torch.Tensor, *more: torch.Tensor):
        n, height, width, c = frame.shape
        x = frame.float()
        planar = x.permute(0, 3, 1, 2)
        head = self.head(planar)
        if self.conditions is not None:  # (frame, *values)
            head = self.conditions(head, more)
        if self.temporal:
            previous, hidden = more
        head = self.act(head)
        features = head + self.mix(hidden.permute(0, 3, 1, 2)) if self.temporal else head
        features = self.context(self.body(features))
        blocks = self.tail(features)
        if self.bases is not None:
            blocks = blocks + self.bases(planar, features)
        correction = self._rows(blocks.permute(0, 2, 3, 1), n, height, width, c)
        if not self.temporal:
            return torch.clamp(x + correction + 0.5, 0.0, 255.0).to(torch.uint8)
        restored = torch.clamp(x + correction, 0.0, 255.0)  # the blend mixes pictures, as the student's does
        previous = previous.float()
        logits = self.gate(features)
        if self.agreement is not None:  # per block, the same for its s² gate values
            s = self.scale
            rows = (x.reshape(n, 1, height, width * c), previous.reshape(n, 1, height, width * c))
            logits = logits + agreement_logit(*rows, self.agreement, (s, 3 * s))
        gate = self._rows(torch.sigmoid(logits).permute(0, 2, 3, 1), n, height, width, 1)
        out = restored + gate * (previous - restored)
        return torch.clamp(out + 0.5, 0.0, 255.0).to(torch.uint8), head.permute(0, 2, 3, 1)


def _quiet_converter():
    """Import litert-torch without its progress lines and import-time log noise (one line per export)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GLOG_minloglevel", "2")
    for name in ("torchao", "torch.utils._pytree", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import litert_torch

    litert_torch.config.show_progress = False
    return litert_torch


def _sample(height: int, width: int, student: Optional[StudentNet] = None) -> Tuple[torch.Tensor, ...]:
    frame = torch.zeros(1, height, width, 3, dtype=torch.uint8)
    if student is not None and conditions.of(student):
        return (frame,) + tuple(conditions.sample(c) for c in conditions.of(student))
    if student is None or not student.config.temporal:
        return (frame,)
    s = student.config.scale
    return frame, frame.clone(), torch.zeros(1, height // s, width // s, student.config.width)


def convert_fp32(student: StudentNet, path, height: int, width: int) -> Path:
    """Write the FP32 .tflite of ``student`` for ``height`` x ``width`` frames."""
    litert_torch = _quiet_converter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = TFLiteFrameModel(student.eval()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        litert_torch.convert(model, _sample(height, width, student)).export(str(path))
    return path


def convert_fp16(fp32_path, path) -> Path:
    """FP16-weight copy of an FP32 .tflite (ai-edge-quantizer float casting)."""
    from ai_edge_quantizer import quantizer

    recipe = [{"regex": ".*", "operation": "*", "algorithm_key": "float_casting",
               "op_config": {"weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
                             "compute_precision": "FLOAT", "explicit_dequantize": True}}]
    result = quantizer.Quantizer(str(fp32_path), recipe).quantize(enable_progress_report=False)
    Path(path).write_bytes(bytes(result.quantized_model))
    return Path(path)


def snap_to_int8(weight: torch.Tensor) -> None:
    """Move a filter basis' depthwise weights [C,1,k,k] (in place) onto the int8 grid their
    per-channel symmetric quantization (:func:`_int8_config`: ``max|w| / 127``) will use, each
    channel keeping its float sum (``quantize.sum_keeping_steps``): rounded tap by tap, a high-pass
    filter's sum drifts and leaks brightness into its response (docs/export.md, "Faster INT8 for the
    basis presets"). Quantization then stores these weights exactly."""
    from edgerestore.export.quantize import sum_keeping_steps

    with torch.no_grad():
        flat = weight.detach().reshape(len(weight), -1).double().numpy()
        scale = np.abs(flat).max(1, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        steps = sum_keeping_steps(flat / scale)
        weight.copy_(torch.from_numpy(steps * scale).reshape(weight.shape).to(weight.dtype))


def _int8_config():
    from litert_torch.quantize.pt2e_quantizer_utils import QuantizationConfig
    from torchao.quantization.pt2e.observer import HistogramObserver, PerChannelMinMaxObserver
    from torchao.quantization.pt2e.quantizer import QuantizationSpec

    activation = QuantizationSpec(
        dtype=torch.int8, quant_min=-128, quant_max=127, qscheme=torch.per_tensor_affine, is_dynamic=False,
        observer_or_fake_quant_ctr=HistogramObserver.with_args(eps=2 ** -12))
    weight = QuantizationSpec(
        dtype=torch.int8, quant_min=-127, quant_max=127, qscheme=torch.per_channel_symmetric, ch_axis=0,
        is_dynamic=False, observer_or_fake_quant_ctr=PerChannelMinMaxObserver.with_args(eps=WEIGHT_EPS))
    return QuantizationConfig(activation, activation, weight, None, None, False, False)


def calibration_inputs(student: StudentNet, frames: List[np.ndarray], height: int, width: int):
    """Model inputs for INT8 calibration. A temporal student sees the frames as a sequence twice
    over (its state from the float model after the previous frame), so the state inputs are
    calibrated on what they really carry: its own output and features."""
    for frame in frames:
        if frame.shape[:2] != (height, width):
            raise ValueError("calibration frame %s does not match the model size %dx%d" % (frame.shape, width, height))
    tensors = [torch.from_numpy(np.ascontiguousarray(f))[None] for f in frames]
    conds = conditions.of(student)
    if conds:
        for n, tensor in enumerate(tensors):
            yield (tensor,) + tuple(torch.tensor(conditions.calibration_value(c, n)) for c in conds)
        return
    if not student.config.temporal:
        for tensor in tensors:
            yield (tensor,)
        return
    from edgerestore.export.onnx import reference_uint8

    state = None
    for tensor in tensors + tensors:
        previous, hidden = (tensor, None) if state is None else state
        if hidden is None:
            s = student.config.scale
            hidden = torch.zeros(1, student.config.width, height // s, width // s)
        yield tensor, previous, hidden.permute(0, 2, 3, 1).contiguous()
        _, state = reference_uint8(student, tensor, state)


def quantize_pt2e_eval(model) -> None:
    """Put an exported (PT2E) module in eval mode: its ``.eval()`` is disabled, and the converter checks the flag."""
    from torchao.quantization.pt2e import move_exported_model_to_eval

    move_exported_model_to_eval(model)
    model.training = False


def convert_int8(student: StudentNet, path, frames: List[np.ndarray], height: int, width: int) -> Path:
    """Write the INT8 .tflite of ``student``, calibrated on ``frames`` (uint8 RGB, ``height`` x ``width``)."""
    litert_torch = _quiet_converter()
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    if not frames:
        raise ValueError("INT8 calibration needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sample = _sample(height, width, student)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(_int8_config())
        model = torch.export.export(TFLiteFrameModel(student.eval(), depthwise_bases=True).eval(), sample).module()
        model = quantize_pt2e.prepare_pt2e(model, quantizer)
        with torch.no_grad():
            for inputs in calibration_inputs(student, frames, height, width):
                model(*inputs)
        model = quantize_pt2e.convert_pt2e(model, fold_quantize=False)
        quantize_pt2e_eval(model)
        litert_torch.convert(model, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(path))
    return path


def export_tflite(student: StudentNet, path, height: int = 720, width: int = 1280, precision: str = "fp32",
                  frames: Optional[List[np.ndarray]] = None) -> Path:
    """One .tflite of ``student`` for ``height`` x ``width`` frames (smaller frames are padded at run time).

    ``precision`` is ``fp32``, ``fp16`` or ``int8`` (INT8 calibrates on ``frames``, default the
    package's calibration photos). Bundles come from ``edgerestore export``; this is the direct way.
    """
    path = Path(path)
    if precision == "fp16":
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return convert_fp16(convert_fp32(student, Path(tmp) / "fp32.tflite", height, width), path)
    if precision == "int8":
        if frames is None:
            from edgerestore.export.calibration import build

            frames = build((height, width)).frames
        return convert_int8(student, path, frames, height, width)
    if precision != "fp32":
        raise ValueError("unknown precision %r; choose fp32, fp16 or int8" % precision)
    return convert_fp32(student, path, height, width)


def _fp32(job) -> Path:
    """The FP32 conversion, once per job (``tflite`` and ``tflite-fp16`` both start from it)."""
    height, width = job.size
    return job.shared("tflite-fp32", lambda: convert_fp32(job.student, job.work_dir / "fp32.tflite", height, width))


def export_fp32(job, fmt) -> Path:
    """Exporter of ``tflite``."""
    path = job.out_dir / fmt.filename
    shutil.copyfile(str(_fp32(job)), str(path))
    return path


def export_fp16(job, fmt) -> Path:
    """Exporter of ``tflite-fp16``."""
    return convert_fp16(_fp32(job), job.out_dir / fmt.filename)


def export_int8(job, fmt) -> Path:
    """Exporter of ``tflite-int8``: calibrated on the job's representative frames."""
    height, width = job.size
    return convert_int8(job.student, job.out_dir / fmt.filename, job.calibration.frames, height, width)


def read_io(path) -> Optional[dict]:
    """Input/output names, shapes and dtypes of a .tflite (for the manifest); ``inputs`` and
    ``outputs`` list all of them (a temporal model has three inputs, in argument order)."""
    from ai_edge_litert.interpreter import Interpreter

    from edgerestore.runtime.backends.tflite import _argument_order

    interpreter = Interpreter(model_path=str(path))

    def describe(detail):
        return {"name": detail["name"], "shape": [int(v) for v in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name}

    inputs = [describe(d) for d in sorted(interpreter.get_input_details(), key=_argument_order)]
    outputs = [describe(d) for d in interpreter.get_output_details()]
    frames = [o for o in outputs if o["dtype"] == "uint8"] or outputs
    return {"input": inputs[0], "output": frames[0], "inputs": inputs, "outputs": outputs}
