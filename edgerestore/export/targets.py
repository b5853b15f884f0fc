"""Export targets and artifact formats: ONE declarative table each, keyed by name.

A *format* is one kind of artifact (``onnx-int8``, ``tflite-fp16``, ``tensorrt-int8``...), a row of
the runtime's table (:data:`edgerestore.runtime.artifacts.FORMATS`: backend, precision, file name,
fixed frame size) plus the function that writes it. A *target* is a board (a row of
:data:`edgerestore.devices.profiles.PROFILES`) plus what to build for it: its formats in order of
preference and the ONNX opset / IR version its software parses. ``edgerestore export --target``
reads these two tables and nothing else decides per board.

Every exporter named here has the same contract: ``exporter(job, fmt) -> Path`` of the artifact
it wrote inside ``job.out_dir`` (extra files it needs go through ``job.add_file``);
:func:`edgerestore.export.bundle.run_exporter` times it, checks the file and logs one line.
Torch-free (the CLI lists targets without importing torch).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from edgerestore.devices.profiles import PROFILES, DeviceProfile
from edgerestore.errors import UnknownNameError
from edgerestore.runtime.artifacts import FORMATS as ARTIFACT_FORMATS

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Format:
    name: str
    backend: str
    precision: str
    filename: str
    """File name inside the bundle (formats sharing a file share it: TensorRT FP16/INT8 use one ONNX)."""
    exporter: str
    """``module:function`` with the exporter contract (see the module docstring)."""
    fixed_size: bool
    """Built for one input size (TFLite, TensorRT); ONNX Runtime artifacts take any size."""
    description: str
    temporal: bool = True
    """Whether the format has a graph for temporal (recurrent) students."""

    def load_exporter(self) -> Callable:
        module_name, attr = self.exporter.split(":")
        return getattr(importlib.import_module(module_name), attr)


# The rows are the runtime's artifact table (edgerestore.runtime.artifacts.FORMATS); export only
# adds the function that writes each.
EXPORTERS: Dict[str, str] = {
    "onnx": "edgerestore.export.onnx:export_artifact",
    "onnx-fp16": "edgerestore.export.onnx:export_fp16_artifact",
    "onnx-int8": "edgerestore.export.quantize:export_artifact",
    "tflite": "edgerestore.export.tflite:export_fp32",
    "tflite-fp16": "edgerestore.export.tflite:export_fp16",
    "tflite-int8": "edgerestore.export.tflite:export_int8",
    "tensorrt-fp16": "edgerestore.export.tensorrt:export_fp16",
    "tensorrt-int8": "edgerestore.export.tensorrt:export_int8",
}

FORMATS: Dict[str, Format] = {
    name: Format(row.name, row.backend, row.precision, row.filename, EXPORTERS[name], row.fixed_size,
                 row.description, row.temporal)
    for name, row in ARTIFACT_FORMATS.items()
}


@dataclass(frozen=True)
class Target:
    name: str
    profile: str
    """Row of the device table."""
    formats: Tuple[str, ...]
    """What to build, preferred first (the runtime picks the first one whose backend is available)."""
    opset: int
    ir_version: int
    simplify: bool = True
    """Run onnxslim on the ONNX graphs."""
    precision_fallback: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    """requested precision -> (precision built instead, why); e.g. INT8 on a GPU without INT8."""
    int8_responses: str = "blocks"
    """What an ONNX INT8 graph computes filter-basis responses from (:data:`edgerestore.export.quantize.SOURCES`):
    the blocks, measured faster on x86; the planar frame on the Raspberry Pis, whose ONNX Runtime
    kernels were not measured (a Pi 4's Cortex-A72 has no dot-product instructions, and the blocks
    take 4x the multiply-adds)."""

    @property
    def device(self) -> DeviceProfile:
        return PROFILES[self.profile]


TARGETS: Dict[str, Target] = {target.name: target for target in (
    # TensorRT 8.2 (JetPack 4.6) parses opset <= 13 and IR version <= 7 (ONNX 1.8).
    # ONNX fallbacks last: FP32 for ONNX Runtime on the CPU, FP16 for ONNX Runtime's CUDA provider.
    Target("jetson-nano", "jetson-nano", ("tensorrt-fp16", "onnx", "onnx-fp16"), opset=13, ir_version=7,
           precision_fallback={"int8": ("fp16", "its Maxwell GPU (sm_53) has no INT8 tensor cores")}),
    Target("jetson-xavier-nx", "jetson-xavier-nx", ("tensorrt-int8", "tensorrt-fp16", "onnx", "onnx-fp16"),
           opset=13, ir_version=7),
    # JetPack 6 ships TensorRT 10.3 and ONNX Runtime >= 1.17.
    Target("jetson-orin", "jetson-orin", ("tensorrt-int8", "tensorrt-fp16", "onnx", "onnx-fp16"), opset=17, ir_version=8),
    Target("rpi4", "rpi4", ("tflite-int8", "tflite", "tflite-fp16", "onnx-int8", "onnx"), opset=13, ir_version=7,
           int8_responses="frame"),
    Target("rpi5", "rpi5", ("tflite-int8", "tflite-fp16", "tflite", "onnx-int8", "onnx"), opset=13, ir_version=7,
           int8_responses="frame"),
    Target("cpu", "cpu", ("onnx-int8", "onnx"), opset=13, ir_version=7),
    # Families (devices.profiles.FAMILIES): one bundle for every board of the family, built for the
    # most limited member's software (TensorRT 8.2: opset 13, IR 7). `build-engine` on the board
    # turns the INT8 artifact into FP16 on a Nano (no INT8) and INT8 on Xavier/Orin.
    Target("jetson", "jetson-nano", ("tensorrt-int8", "tensorrt-fp16", "onnx", "onnx-fp16"), opset=13, ir_version=7),
    Target("pi", "rpi4", ("tflite-int8", "tflite", "tflite-fp16", "onnx-int8", "onnx"), opset=13, ir_version=7,
           int8_responses="frame"),
)}


def get_target(name: str) -> Target:
    """The target called ``name``; an unknown name lists the valid ones."""
    if name not in TARGETS:
        raise UnknownNameError("target", name, TARGETS)
    return TARGETS[name]


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise UnknownNameError("format", name, FORMATS)
    return FORMATS[name]


def select_formats(target: Target, formats: Optional[List[str]] = None,
                   precision: Optional[str] = None) -> Tuple[List[Format], List[str]]:
    """The formats to build for ``target`` and one-line warnings about substitutions.

    ``formats`` picks by name (each must be one the target allows); ``precision`` keeps the
    formats of that precision, or the target's declared fallback precision with a warning
    (INT8 on a Jetson Nano builds FP16).
    """
    warnings: List[str] = []
    names = list(target.formats)
    if formats:
        for name in formats:
            get_format(name)
            if name not in target.formats:
                raise UnknownNameError("format for target %s" % target.name, name, target.formats)
        names = [n for n in names if n in formats]
    if precision:
        if precision not in PRECISIONS:
            raise UnknownNameError("precision", precision, PRECISIONS)
        chosen = [n for n in names if FORMATS[n].precision == precision]
        if not chosen and precision in target.precision_fallback:
            instead, why = target.precision_fallback[precision]
            warnings.append("%s: no %s (%s); building %s instead" % (target.name, precision.upper(), why,
                                                                      instead.upper()))
            chosen = [n for n in names if FORMATS[n].precision == instead]
        if not chosen:
            valid = sorted({FORMATS[n].precision for n in names})
            raise UnknownNameError("precision for target %s" % target.name, precision, valid)
        names = chosen
    return [FORMATS[n] for n in names], warnings
