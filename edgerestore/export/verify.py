"""Verify exported artifacts: run each one on held-out real frames and compare.

For every artifact: parity = PSNR of its output vs the PyTorch FP32 student's output on the same
degraded hold-out frames, PSNR vs the ground-truth photos (and the PyTorch model's, for the INT8
rule), and FPS here at the artifact's size through the same runtime backend the board uses.
Bars: FP32/FP16 parity >= 45 dB; INT8 parity >= 38 dB *and* PSNR vs ground truth within 0.3 dB of
the FP32 model's. Status ``ok`` (✅), ``parity`` (❎ exported but failed the bars) or ``failed``
(❌ export or run failed); a failing row never stops the others.

A temporal (recurrent) model sees each hold-out frame twice in a row from a fresh state (see
:func:`clips_of`), so the fed-back state is checked too, and is compared frame by frame with the
PyTorch student run the same way.

TensorRT cannot run here, so a ``tensorrt-*`` artifact is checked on the graph TensorRT will
build from, run by ONNX Runtime with the engine's arithmetic simulated: FP16 weights and
activations, or INT8 fake quantization at exactly the calibration cache's scales (per-channel
symmetric weights, as TensorRT quantizes them). Its FPS here is not measured (``-``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from edgerestore.export.conditions import CODEC, LEVEL, TABLE
from edgerestore.runtime.quality import psnr

BARS = {"fp32": 45.0, "fp16": 45.0, "int8": 38.0}
INT8_GT_MARGIN = 0.3
MARKS = {"ok": "✅", "parity": "❎", "failed": "❌"}
FPS_RUNS = 5
IDENTICAL = 99.99  # PSNR recorded for bit-identical outputs (JSON has no infinity)


@dataclass
class Row:
    """One line of the verification table (and the manifest's record of it)."""

    target: str
    format: str
    precision: str
    status: str
    size_mb: Optional[float] = None
    parity_psnr: Optional[float] = None
    gt_psnr: Optional[float] = None
    reference_gt_psnr: Optional[float] = None
    fps: Optional[float] = None
    frames: int = 0
    size: Optional[Tuple[int, int]] = None
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _db(value: float) -> float:
    return IDENTICAL if math.isinf(value) else round(float(value), 2)


VERIFY_LEVEL = LEVEL.verify[0]
"""The noise level a ``level_input`` student is verified at (5 levels of 255: a noisy camera)."""
VERIFY_CODEC = CODEC.verify
"""The codec strengths a ``codec_input`` student is verified at (H.264 at QP 30: a video call)."""


def clips_of(student, holdout) -> List[List[np.ndarray]]:
    """The inputs to verify on: each degraded hold-out frame alone, or for a temporal student the
    frame twice in a row (the second run starts from the state the first left behind)."""
    repeat = 2 if student.config.temporal else 1
    return [[x] * repeat for x, _ in holdout]


def expand(student, holdout):
    """``holdout`` with each pair once per verified output (see :func:`clips_of`)."""
    repeat = 2 if student.config.temporal else 1
    return [pair for pair in holdout for _ in range(repeat)]


def reference_outputs(student, holdout: List[Tuple[np.ndarray, np.ndarray]]) -> List[np.ndarray]:
    """The PyTorch FP32 student's uint8 output for each verified input (:func:`clips_of`)."""
    import torch

    from edgerestore.export.onnx import reference_uint8

    outputs = []
    for clip in clips_of(student, holdout):
        state = None
        for x in clip:
            frame = torch.from_numpy(np.ascontiguousarray(x))[None]
            if student.config.temporal:
                out, state = reference_uint8(student, frame, state)
            else:
                out = reference_uint8(student, frame, level=VERIFY_LEVEL, codec=VERIFY_CODEC)
            outputs.append(out.numpy()[0])
    return outputs


def _time(run: Callable[[], object], runs: int = FPS_RUNS) -> float:
    run()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1.0 / float(np.median(times))


def run_with_backend(path: Path, backend: str, clips: List[List[np.ndarray]], threads: Optional[int] = None,
                     **_) -> Tuple[List[np.ndarray], Optional[float]]:
    """Outputs and FPS of ``path`` run by the runtime backend ``backend`` (what the board runs);
    each clip starts from a fresh state."""
    from edgerestore.runtime.backends import create_backend

    engine = create_backend(backend, threads=threads).load(str(path)).set_noise_level(VERIFY_LEVEL)
    engine.set_codec(VERIFY_CODEC)
    try:
        outputs = []
        for clip in clips:
            engine.reset()
            outputs.extend(engine.infer(frame) for frame in clip)
        fps = _time(lambda: engine.infer(clips[0][0]))
    finally:
        engine.close()
    return outputs, fps


# --- TensorRT, simulated with ONNX Runtime --------------------------------------------------------


def simulate_fp16(onnx_path, dst) -> Path:
    """Float-I/O graph with FP16 weights and activations (Casts at the input and output only)."""
    from edgerestore.export.onnx import cast_graph_to_fp16

    return cast_graph_to_fp16(onnx_path, dst, float_io_only=False)


def simulate_int8(onnx_path, scales: Dict[str, float], dst) -> Path:
    """Float-I/O graph with INT8 fake quantization: Q/DQ at each cached tensor's scale, and per-channel
    INT8 weights in the convolutions TensorRT runs in INT8, those whose input and output both have a
    scale (it runs a layer that consumes or produces a tensor without one in FP16, weights included:
    here the layers that read the frame's pixels)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    outputs = {o.name for o in graph.output}
    for node in graph.node:
        int8 = node.input[0] in scales and node.output[0] in scales and node.output[0] not in outputs
        if node.op_type in ("Conv", "ConvTranspose") and node.input[1] in inits and int8:
            w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            axis = 0 if node.op_type == "Conv" else 1  # output channels
            amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
            step = np.maximum(amax, 1e-12) / 127.0
            shape = [1] * w.ndim
            shape[axis] = -1
            step = step.reshape(shape)
            inits[node.input[1]].CopyFrom(numpy_helper.from_array(
                (np.clip(np.round(w / step), -127, 127) * step).astype(np.float32), node.input[1]))
    new_nodes = []
    for name, scale in sorted(scales.items()):
        if name in outputs:
            continue
        qname, dqname = name + "_q8", name + "_dq8"
        for node in graph.node:
            node.input[:] = [dqname if x == name else x for x in node.input]
        graph.initializer.extend([numpy_helper.from_array(np.array(scale, np.float32), name + "_s8"),
                                  numpy_helper.from_array(np.array(0, np.int8), name + "_z8")])
        new_nodes.append((name, [helper.make_node("QuantizeLinear", [name, name + "_s8", name + "_z8"], [qname]),
                                 helper.make_node("DequantizeLinear", [qname, name + "_s8", name + "_z8"], [dqname])]))
    nodes = list(graph.node)
    producers = {out: i for i, node in enumerate(nodes) for out in node.output}
    ordered = []
    after: Dict[int, list] = {}
    head = []
    for name, pair in new_nodes:
        if name in producers:
            after.setdefault(producers[name], []).extend(pair)
        else:
            head.extend(pair)  # graph input
    ordered.extend(head)
    for i, node in enumerate(nodes):
        ordered.append(node)
        ordered.extend(after.get(i, []))
    del graph.node[:]
    graph.node.extend(ordered)
    onnx.save(model, str(dst))
    return Path(dst)


def run_tensorrt_simulated(path: Path, backend: str, clips: List[List[np.ndarray]], threads: Optional[int] = None,
                           precision: str = "fp16", calibration_cache: Optional[Path] = None,
                           work_dir: Optional[Path] = None) -> Tuple[List[np.ndarray], Optional[float]]:
    """Outputs of the TensorRT graph with the engine's precision simulated by ONNX Runtime (no FPS);
    a temporal graph's state is fed back as the board's backend does (the truncated frame, the features)."""
    import tempfile

    import onnxruntime as ort

    from edgerestore.runtime.backends.tensorrt import from_network_output, to_network_input
    from edgerestore.runtime.backends.tensorrt_engine import parse_cache

    with tempfile.TemporaryDirectory(dir=str(work_dir) if work_dir else None) as tmp:
        sim = Path(tmp) / "sim.onnx"
        if precision == "int8":
            if calibration_cache is None:
                raise ValueError("INT8 TensorRT artifact without a calibration cache")
            simulate_int8(path, parse_cache(Path(calibration_cache).read_bytes())[1], sim)
        elif precision == "fp16":
            simulate_fp16(path, sim)
        else:
            sim = path
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or 0)
        session = ort.InferenceSession(str(sim), options, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    verified = {cond.name: list(cond.verify) for cond in TABLE}
    extra = {i.name: np.array(verified[i.name], np.float32) for i in inputs if i.name in verified}
    inputs = [i for i in inputs if i.name not in verified]
    shape = [int(d) for d in inputs[0].shape]
    outputs = []
    for clip in clips:
        state = None
        for frame in clip:
            if tuple(frame.shape[:2]) != tuple(shape[1:3]):
                raise ValueError("frame %s does not match the TensorRT input %s" % (frame.shape, shape))
            x = to_network_input(frame, np.zeros(shape, np.float32))
            feeds = {inputs[0].name: x}
            feeds.update(extra)
            if len(inputs) > 1:  # temporal: (frame, previous, hidden)
                previous, hidden = state if state is not None else (x, np.zeros([int(d) for d in inputs[2].shape],
                                                                                  np.float32))
                feeds.update({inputs[1].name: previous, inputs[2].name: hidden})
            values = session.run(None, feeds)
            restored = from_network_output(values[0])
            if len(inputs) > 1:
                state = (to_network_input(restored, np.zeros(shape, np.float32)), values[1])
            outputs.append(restored)
    return outputs, None


RUNNERS: Dict[str, Callable] = {
    "onnxruntime": run_with_backend,
    "tflite": run_with_backend,
    "tensorrt": run_tensorrt_simulated,
}


def judge(precision: str, parity: float, gt: float, reference_gt: float) -> Tuple[str, str]:
    """``(status, note)`` against the bars."""
    bar = BARS[precision]
    if parity < bar:
        return "parity", "parity %.2f dB < %.0f dB" % (parity, bar)
    if precision == "int8" and gt < reference_gt - INT8_GT_MARGIN:
        return "parity", "PSNR vs ground truth %.2f dB is more than %.1f dB below FP32's %.2f dB" % (
            gt, INT8_GT_MARGIN, reference_gt)
    return "ok", ""


def verify_artifact(row: Row, path: Path, backend: str, holdout, references, threads=None, clips=None,
                    **options) -> Row:
    """Fill ``row`` by running ``path`` on the hold-out frames (``clips``: the inputs of
    :func:`clips_of`, and ``holdout`` then one pair per input, :func:`expand`); any exception
    makes it ``failed``."""
    try:
        if clips is None:
            clips = [[x] for x, _ in holdout]
        outputs, fps = RUNNERS[backend](path, backend, clips, threads=threads, precision=row.precision, **options)
        parity = float(np.mean([min(psnr(o, r), IDENTICAL) for o, r in zip(outputs, references)]))
        gt = float(np.mean([psnr(o, t) for o, (_, t) in zip(outputs, holdout)]))
        reference_gt = float(np.mean([psnr(r, t) for r, (_, t) in zip(references, holdout)]))
        row.status, note = judge(row.precision, parity, gt, reference_gt)
        row.parity_psnr, row.gt_psnr, row.reference_gt_psnr = _db(parity), _db(gt), _db(reference_gt)
        row.fps = round(fps, 1) if fps else None
        row.frames = len(outputs)
        row.note = "; ".join(n for n in (row.note, note) if n)
    except Exception as exc:  # a failing row never stops the table
        row.status = "failed"
        row.note = "; ".join(n for n in (row.note, "verification: %s: %s" % (
            type(exc).__name__, (str(exc).splitlines() or [""])[0])) if n)
    return row


def format_table(rows: List[Row]) -> str:
    """The Ultralytics-style table: target, format, precision, status, size, parity, PSNR vs GT, FPS here."""
    header = ("target", "format", "precision", "status", "size MB", "parity dB", "PSNR vs GT dB", "FPS here")

    def cell(value, fmt="%.2f"):
        return "-" if value is None else (fmt % value)

    lines = []
    for row in rows:
        parity = "identical" if row.parity_psnr == IDENTICAL else cell(row.parity_psnr)
        lines.append((row.target, row.format, row.precision.upper(), "%s %s" % (MARKS[row.status], row.status),
                      cell(row.size_mb, "%.3f"), parity, cell(row.gt_psnr), cell(row.fps, "%.1f")))
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines)]
    out = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    for line in lines:
        out.append("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip())
    notes = ["%s %s: %s" % (r.target, r.format, r.note) for r in rows if r.note]
    return "\n".join(out + notes)
