"""Build a bundle: every artifact a target allows, verified, with a manifest a board can trust.

:func:`export_bundle` resolves the target (:mod:`edgerestore.export.targets`), loads the student,
runs each format's exporter through :func:`run_exporter` (times it, checks the file, logs one
line), verifies each artifact on held-out real frames (:mod:`edgerestore.export.verify`) and
writes ``manifest.json`` (schema in docs/export.md): model and source checkpoint sha256, target
and board, input size, I/O contract per artifact, every file's sha256, tool versions,
calibration, verification figures and creation time. A format that fails is a ❌ row and the
others go on. The bundle is assembled in ``<out>.partial`` and renamed into place at the end, so
an interrupted export never leaves a half-written bundle under the final name.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from edgerestore.errors import CheckpointError, ConfigError, InputNotFoundError, UnknownNameError, UnsupportedInputError
from edgerestore.export.targets import Format, Target, get_format, get_target, select_formats
from edgerestore.files import file_sha256
from edgerestore.runtime.bundle import MANIFEST, SCHEMA

TOOLS = ("torch", "onnx", "onnxruntime", "onnxslim", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "numpy")


def tool_versions() -> Dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def parse_size(text: Optional[str]) -> Optional[Tuple[int, int]]:
    """``"720x1280"`` (height x width) -> (720, 1280); ``None`` stays None."""
    if text is None:
        return None
    try:
        height, width = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ConfigError("bad --size %r: give HEIGHTxWIDTH, e.g. 720x1280" % text) from None
    if height <= 0 or width <= 0:
        raise ConfigError("bad --size %r: both sides must be positive" % text)
    return height, width


def load_model(spec: str):
    """``(student, info)`` for a preset name (its shipped ``.pt``) or a student checkpoint path.

    ``info`` has ``preset``, ``source`` (file name) and ``source_sha256``.
    """
    from edgerestore.models.checkpoint import file_sha256, load_student
    from edgerestore.models.presets import PRESETS, get_preset
    from edgerestore.weights import shipped_path

    path = Path(spec)
    if path.suffix.lower() == ".onnx":
        raise CheckpointError("export needs the PyTorch student checkpoint (.pt), not %s — pass the .pt it came "
                              "from or a preset name" % path.name)
    if path.suffix.lower() in (".pt", ".pth"):
        if not path.is_file():
            raise InputNotFoundError("checkpoint %s does not exist" % path)
        student, info = load_student(path)
        preset = info.get("preset")
    else:
        if os.sep in spec or path.exists():
            raise UnknownNameError("model", spec, [".pt checkpoint"] + sorted(PRESETS))
        preset = get_preset(spec).name
        shipped = shipped_path(preset, ".pt")
        if shipped is None:
            raise InputNotFoundError("preset %s has no shipped weights (edgerestore/weights/%s.pt) — pass a trained "
                                     "checkpoint: edgerestore export path/to/student.pt --target ..." % (preset, preset))
        path = Path(shipped)
        student, info = load_student(path, expect=get_preset(preset).config)
    if student.config.blur_input:
        raise UnsupportedInputError("%s is a blur_input student, a training prototype: no export format and no "
                                    "runtime source can tell it a frame's blur — export a student trained without "
                                    "student.config.blur_input" % path.name)
    if student.config.oriented_bank:
        raise UnsupportedInputError("%s has an oriented_bank, a training prototype no export format builds yet — "
                                    "export a student trained without student.config.oriented_bank" % path.name)
    from edgerestore.runtime.framefilter import sidecar

    info = {"preset": preset, "source": path.name, "source_sha256": file_sha256(path),
            "config": student.config.to_dict(), "stride": student.stride}
    found = sidecar(path)
    if found:  # the motion deblur stage's filter travels with the student's exports
        info["frame_filter"] = {"source": os.path.basename(found), "file": None, "path": os.path.abspath(found)}
    return student.eval(), info


@dataclass
class ExportJob:
    """Everything an exporter needs; exporters write into ``out_dir`` and register extra files."""

    student: object
    model_info: dict
    target: Target
    size: Tuple[int, int]
    out_dir: Path
    work_dir: Path
    calib: Optional[str] = None
    calib_method: str = "percentile"
    native_logs: bool = False
    """Let native libraries' log lines through (``--debug``)."""
    extra_files: Dict[str, List[str]] = field(default_factory=dict)
    _shared: Dict[str, object] = field(default_factory=dict)
    _calibration: object = None

    @property
    def calibration(self):
        """Calibration frames and hold-out pairs at the export size (built on first use)."""
        if self._calibration is None:
            from edgerestore.export import calibration

            self._calibration = calibration.build(self.size, self.calib)
        return self._calibration

    def shared(self, key: str, make: Callable):
        """``make()`` once per job (formats that share a file, e.g. TensorRT FP16 and INT8)."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    def add_file(self, fmt: Format, name: str) -> None:
        self.extra_files.setdefault(fmt.name, [])
        if name not in self.extra_files[fmt.name]:
            self.extra_files[fmt.name].append(name)

    def metadata(self, fmt: Optional[Format]) -> dict:
        """Key/values stored in ONNX artifacts (the runtime reads ``edgerestore.*``)."""
        info = {"preset": self.model_info.get("preset") or "", "source": self.model_info["source"],
                "source_sha256": self.model_info["source_sha256"], "target": self.target.name}
        if fmt is not None:
            info.update({"format": fmt.name, "precision": fmt.precision})
        return info


@contextlib.contextmanager
def native_logs_hidden(hide: bool = True):
    """Send what native libraries write straight to file descriptor 2 (TensorFlow's oneDNN notice,
    absl's "log messages before absl::InitializeLog()", LiteRT's "Created ... XNNPACK delegate")
    to nowhere while the block runs; Python's own ``sys.stderr`` writes are unaffected outside it.
    ``hide=False`` (``--debug``) leaves them on the terminal."""
    if not hide:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def run_exporter(job: ExportJob, fmt: Format, log: Callable[[str], None]) -> Tuple[Path, float]:
    """Run ``fmt``'s exporter: time it, check it wrote a non-empty file in the bundle, log one line."""
    start = time.perf_counter()
    with native_logs_hidden(not job.native_logs):
        path = Path(fmt.load_exporter()(job, fmt))
    seconds = time.perf_counter() - start
    if path.parent.resolve() != job.out_dir.resolve():
        raise RuntimeError("exporter of %s wrote %s outside the bundle" % (fmt.name, path))
    if not path.is_file() or path.stat().st_size == 0:
        raise RuntimeError("exporter of %s produced no file at %s" % (fmt.name, path))
    log("exported %-14s -> %s (%.2f MB, %.1fs)" % (fmt.name, path.name, path.stat().st_size / 1e6, seconds))
    return path, seconds


def _io(fmt: Format, path: Path, size: Tuple[int, int], student=None) -> dict:
    """The artifact's I/O contract as the runtime needs it (and a temporal model's ``state``)."""
    from edgerestore.export.onnx import CONTRACT, FLOAT_CONTRACT, IO, state_spec

    contract = FLOAT_CONTRACT if fmt.backend == "tensorrt" else CONTRACT
    shape = [1, size[0], size[1], 3] if fmt.fixed_size else [1, "H", "W", 3]
    names = {"tflite": None}.get(fmt.backend, ("frame", "restored"))
    tflite = None
    if names is None:
        from edgerestore.export.tflite import read_io

        tflite = read_io(path)
        names = (tflite["input"]["name"], tflite["output"]["name"])
    spec = dict(IO[contract], contract=contract, shape=shape)
    io = {"input": dict(spec, name=names[0]), "output": dict(spec, name=names[1])}
    if student is not None:
        from edgerestore.export import conditions

        for index, cond in enumerate(conditions.of(student), 1):  # the frame first, then each in order
            entry = {"name": cond.name, "shape": [cond.width], "dtype": "float32", "meaning": cond.meaning}
            if tflite is not None:
                entry.update(name=tflite["inputs"][index]["name"], dtype=tflite["inputs"][index]["dtype"])
            io[cond.tag] = entry
    if student is not None and student.config.temporal:
        state = state_spec(student, "nhwc" if fmt.backend == "tflite" else "nchw")
        s, channels = student.config.scale, student.config.width
        for entry in state:
            if entry["input"] == "previous":
                entry["shape"] = list(shape)
                if fmt.backend == "tensorrt":
                    entry.update(dtype="float32", contract=contract)
            else:
                h, w = (size[0] // s, size[1] // s) if fmt.fixed_size else ("H/%d" % s, "W/%d" % s)
                entry["shape"] = [1, h, w, channels] if entry["layout"] == "nhwc" else [1, channels, h, w]
            if tflite is not None:  # the converter's own tensor names (inputs in argument order)
                entry["tensor"] = tflite["inputs"][1 if entry["input"] == "previous" else 2]["name"]
        io["state"] = state
    return io


@dataclass
class ExportResult:
    out_dir: Path
    manifest: dict
    rows: list
    warnings: List[str]


@dataclass
class ExportPlan:
    """What an export will make: the target, its formats, the student and the frame size."""
    target: Target
    formats: List[Format]
    warnings: List[str]
    student: object
    model_info: dict
    size: Tuple[int, int]


def plan_export(model: str, target: str, formats: Optional[List[str]] = None, precision: Optional[str] = None,
                size: Optional[Tuple[int, int]] = None, calib: Optional[str] = None,
                log: Callable[[str], None] = lambda m: None) -> ExportPlan:
    """Check everything that can be checked before the first exporter runs; one error names the fix."""
    target_row = get_target(target)
    chosen, warnings = select_formats(target_row, formats, precision)
    for warning in warnings:
        log("warning: " + warning)
    student, model_info = load_model(model)
    if student.config.temporal:
        skipped = [fmt for fmt in chosen if not fmt.temporal]
        chosen = [fmt for fmt in chosen if fmt.temporal]
        for fmt in skipped:
            warnings.append("%s skipped: it has no graph for temporal students yet (the other formats do)" % fmt.name)
            log("warning: " + warnings[-1])
        if not chosen:
            raise ConfigError("none of the formats asked for (%s) can export a temporal student; %s can" % (
                ", ".join(f.name for f in skipped), ", ".join(n for n in target_row.formats if get_format(n).temporal)))
    size = tuple(size or target_row.device.resolution)
    stride = model_info["stride"]
    if size[0] % stride or size[1] % stride:
        fixed = (-(-size[0] // stride) * stride, -(-size[1] // stride) * stride)
        raise ConfigError("size %dx%d is not a multiple of the model's stride %d — use --size %dx%d (the runtime "
                          "pads frames up to it)" % (size[0], size[1], stride, fixed[0], fixed[1]))
    if calib is not None and not os.path.exists(calib):
        raise InputNotFoundError("calibration input %s does not exist" % calib)
    return ExportPlan(target_row, chosen, warnings, student, model_info, size)


def build_artifact(job: ExportJob, fmt: Format, log: Callable[[str], None]) -> Tuple[Path, dict]:
    """Run ``fmt``'s exporter; the artifact's manifest entry (without its verification)."""
    path, seconds = run_exporter(job, fmt, log)
    size = job.size
    entry = {"format": fmt.name, "backend": fmt.backend, "precision": fmt.precision, "file": path.name,
             "extra_files": job.extra_files.get(fmt.name, []), "fixed_size": fmt.fixed_size,
             "input_size": list(size) if fmt.fixed_size else None, "io": _io(fmt, path, size, job.student),
             "export_seconds": round(seconds, 2), "description": fmt.description}
    if fmt.name == "tensorrt-int8":
        entry["calibration_cache"] = job.extra_files[fmt.name][0]
    return path, entry


class _Verifier(object):
    """Checks each artifact against the PyTorch student on held-out frames (references made once)."""

    def __init__(self, job: ExportJob, threads: Optional[int]):
        self.job, self.threads, self.references = job, threads, None

    def __call__(self, row, path: Path, fmt: Format, entry: dict) -> None:
        from edgerestore.export.verify import clips_of, expand, reference_outputs, verify_artifact

        job = self.job
        holdout = job.calibration.holdout
        if self.references is None:
            self.references = reference_outputs(job.student, holdout)
        options = {"work_dir": job.work_dir}
        if entry.get("calibration_cache"):
            options["calibration_cache"] = job.out_dir / entry["calibration_cache"]
        with native_logs_hidden(not job.native_logs):
            verify_artifact(row, path, fmt.backend, expand(job.student, holdout), self.references,
                            threads=self.threads, clips=clips_of(job.student, holdout), **options)


def write_manifest(job: ExportJob, plan: ExportPlan, artifacts: list, calib_method: str) -> dict:
    """``manifest.json`` of the bundle being made: every file's sha256, the target, the tools."""
    files = {}
    for entry in artifacts:
        for name in [entry["file"]] + entry["extra_files"]:
            files[name] = file_sha256(str(job.out_dir / name))
    found = plan.model_info.get("frame_filter")
    if found:  # beside every artifact: --deblur motion on the board (runtime/framefilter.py)
        from edgerestore.runtime.framefilter import BUNDLE_FILE

        shutil.copyfile(found.pop("path"), str(job.out_dir / BUNDLE_FILE))
        found["file"] = BUNDLE_FILE
        files[BUNDLE_FILE] = file_sha256(str(job.out_dir / BUNDLE_FILE))
    target_row = plan.target
    manifest = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "target": target_row.name,
        "device": target_row.device.to_dict(),
        "model": plan.model_info,
        "input_size": list(plan.size),
        "onnx": {"opset": target_row.opset, "ir_version": target_row.ir_version, "simplified": target_row.simplify},
        "calibration": dict(job.calibration.describe(), method=calib_method) if job._calibration else None,
        "tools": tool_versions(),
        "warnings": plan.warnings,
        "artifacts": artifacts,
        "files": files,
    }
    with open(job.out_dir / MANIFEST, "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=False)
        handle.write("\n")
    return manifest


def export_bundle(model: str, target: str, out, formats: Optional[List[str]] = None,
                  precision: Optional[str] = None, size: Optional[Tuple[int, int]] = None,
                  calib: Optional[str] = None, calib_method: str = "percentile", verify: bool = True,
                  threads: Optional[int] = None, log: Callable[[str], None] = lambda m: None,
                  on_format: Optional[Callable[[Format], None]] = None, native_logs: bool = False) -> ExportResult:
    """Export ``model`` (preset or .pt) for ``target`` into the bundle folder ``out``: plan, then build
    and verify each format, then write the manifest; see the module docstring. ``native_logs`` lets
    TensorFlow's and LiteRT's own log lines through (``--debug``)."""
    from edgerestore.export.verify import Row

    plan = plan_export(model, target, formats, precision, size, calib, log)
    out = Path(out)
    if out.exists() and not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise ConfigError("%s exists and is not a bundle — choose another --out or empty it" % out)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="edgerestore-export-", dir=str(partial.parent)))
    job = ExportJob(plan.student, plan.model_info, plan.target, plan.size, partial, work, calib, calib_method,
                    native_logs)
    verifier = _Verifier(job, threads) if verify else None
    rows, artifacts = [], []
    try:
        if verify or any(fmt.precision == "int8" for fmt in plan.formats):
            _ = job.calibration  # bad calibration input is one error up front, not a failed row per format
        for fmt in plan.formats:
            if on_format:
                on_format(fmt)
            row = Row(plan.target.name, fmt.name, fmt.precision, "failed", size=plan.size)
            rows.append(row)
            try:
                path, entry = build_artifact(job, fmt, log)
            except Exception as exc:  # a failing format never stops the others
                row.note = "export: %s: %s" % (type(exc).__name__, (str(exc).splitlines() or [""])[0])
                log("failed   %-14s %s" % (fmt.name, row.note))
                continue
            row.size_mb = round(path.stat().st_size / 1e6, 3)
            if verifier:
                verifier(row, path, fmt, entry)
            else:
                row.status, row.note = "ok", "not verified (--no-verify)"
            entry["verify"] = row.to_dict() if verify else {"status": "skipped"}
            artifacts.append(entry)
        manifest = write_manifest(job, plan, artifacts, calib_method)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    return ExportResult(out, manifest, rows, plan.warnings)
