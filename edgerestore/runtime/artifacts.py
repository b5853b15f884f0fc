"""Model artifacts: the one table of file formats, and the one resolver from ``--model`` to what runs.

:data:`FORMATS` names every artifact format a bundle can hold (``edgerestore export`` adds an
exporter to each row, it does not restate them); :data:`FILE_TYPES` maps a file's suffix to the
backends that run it. :func:`resolve` turns what a user passes as ``--model`` (a shipped preset, a
model file, a bundle folder, a ``.pt`` checkpoint, ``none``) into the ordered ways to run it;
``restore``, ``run``, ``preview``, the service and ``bench`` all go through it.
Torch-free and Python 3.6-safe: a Jetson Nano runs this.
"""

import os
from collections import OrderedDict, namedtuple

from edgerestore.errors import BackendUnavailableError, BundleError, InputNotFoundError, UnknownNameError

DEFAULT_MODEL = "nano"
NO_MODEL = "none"  # --model none: frames pass through untouched (test cameras and screens)
CHECKPOINT_SUFFIXES = (".pt", ".pth")

ArtifactFormat = namedtuple("ArtifactFormat", "name backend precision filename fixed_size description temporal")
"""One kind of artifact: which backend runs it, at which precision, its file name in a bundle,
whether it is built for one frame size, what it is, and whether temporal students have a graph."""

FORMATS = OrderedDict((row.name, row) for row in (
    ArtifactFormat("onnx", "onnxruntime", "fp32", "model.onnx", False,
                   "ONNX, uint8 NHWC frame in and out (ONNX Runtime: CPU, CUDA)", True),
    ArtifactFormat("onnx-fp16", "onnxruntime", "fp16", "model-fp16.onnx", False,
                   "ONNX with FP16 weights and arithmetic, uint8 I/O (ONNX Runtime on a GPU or an FP16 CPU)", True),
    ArtifactFormat("onnx-int8", "onnxruntime", "int8", "model-int8.onnx", False,
                   "ONNX static QDQ INT8 calibrated on real frames, uint8 I/O (ONNX Runtime CPU)", False),
    ArtifactFormat("tflite", "tflite", "fp32", "model.tflite", True,
                   "TFLite FP32, uint8 NHWC I/O (LiteRT + XNNPACK)", True),
    ArtifactFormat("tflite-fp16", "tflite", "fp16", "model-fp16.tflite", True,
                   "TFLite with FP16 weights (XNNPACK runs FP16 where the CPU has it)", True),
    ArtifactFormat("tflite-int8", "tflite", "int8", "model-int8.tflite", True,
                   "TFLite INT8 (integer convolutions, per-channel weights, representative frames), uint8 I/O", True),
    ArtifactFormat("tensorrt-fp16", "tensorrt", "fp16", "model.trt.onnx", True,
                   "ONNX with float32 NHWC I/O; the board builds a TensorRT FP16 engine on first use", True),
    ArtifactFormat("tensorrt-int8", "tensorrt", "int8", "model.trt.onnx", True,
                   "as tensorrt-fp16 plus an IInt8EntropyCalibrator2 calibration cache; INT8 engine on the board",
                   True),
))

FileType = namedtuple("FileType", "suffix backends description")

FILE_TYPES = OrderedDict((row.suffix, row) for row in (
    FileType(".onnx", ("onnxruntime",), "ONNX graph with the uint8 NHWC frame contract"),
    FileType(".tflite", ("tflite",), "TFLite flatbuffer (LiteRT / tflite-runtime)"),
    FileType(".trt.onnx", ("tensorrt",), "a bundle's TensorRT graph (float32 I/O); the engine is built on the board"),
    FileType(".engine", ("tensorrt",), "a serialized TensorRT engine, built on this board"),
    FileType(".plan", ("tensorrt",), "a serialized TensorRT engine (another common suffix)"),
))
"""Model file suffix -> the backends that run it, preferred first. The longest matching suffix wins:
a bundle's TensorRT graph is ``model.trt.onnx``, not an ONNX Runtime model."""


class Candidate(object):
    """One way to run the model: a backend name, the model file for it, backend options, and the
    frame size the file is fixed to (``(width, height)``; None = any size)."""

    __slots__ = ("backend", "model", "options", "fixed_size")

    def __init__(self, backend, model, options=None, fixed_size=None):
        self.backend = backend
        self.model = str(model)
        self.options = dict(options or {})
        self.fixed_size = tuple(fixed_size) if fixed_size else None

    @property
    def label(self):
        return "%s:%s" % (self.backend, os.path.basename(self.model))

    def accepts(self, frame_size, stride=1):
        """Whether frames of ``(width, height)`` (padded up to ``stride``) fit this file."""
        if self.fixed_size is None or frame_size is None:
            return True
        padded = tuple(-(-int(side) // stride) * stride for side in frame_size)
        return padded == self.fixed_size

    def load(self, threads=None):
        """Create and load this candidate's backend (BackendUnavailableError when it cannot run)."""
        from edgerestore.runtime.backends import create_backend

        return create_backend(self.backend, threads=threads, **self.options).load(self.model)

    def __repr__(self):
        return "Candidate(%r, %r)" % (self.backend, self.model)


def file_type(path):
    """The :data:`FILE_TYPES` row of ``path`` (longest suffix), or None for an unknown file type."""
    name = os.path.basename(str(path)).lower()
    known = [suffix for suffix in FILE_TYPES if name.endswith(suffix)]
    return FILE_TYPES[max(known, key=len)] if known else None


def artifact_suffix(path):
    """The suffix that picks the backend (``.trt.onnx`` for ``model.trt.onnx``), else the last one."""
    row = file_type(path)
    return row.suffix if row else os.path.splitext(str(path))[1].lower()


def backends_for(path):
    """The backends that run ``path``'s file type, preferred first (empty when none does)."""
    row = file_type(path)
    return row.backends if row else ()


def is_model_file(path):
    return file_type(path) is not None


def known_types():
    return list(FILE_TYPES) + list(CHECKPOINT_SUFFIXES) + ["a bundle folder"]


def _order(names, backends):
    """``names`` filtered and ordered by ``backends`` (None keeps them all)."""
    if not backends:
        return list(names)
    return [name for name in backends if name in names]


def _options(name, settings):
    from edgerestore.runtime.backends import option_values

    return option_values(name, settings) if settings else {}


def _file_candidates(path, backends, settings):
    runnable = backends_for(path)
    if not runnable:
        raise UnknownNameError("model file type", artifact_suffix(path) or path, known_types())
    order = _order(runnable, backends)
    if not order:
        raise BackendUnavailableError("%s files run on %s, not on %s" % (
            artifact_suffix(path), ", ".join(runnable), ", ".join(backends)))
    return [Candidate(name, path, _options(name, settings)) for name in order]


def _bundle_candidates(root, backends, settings, frame_size, on_skipped):
    from edgerestore.runtime.bundle import load_bundle

    bundle = load_bundle(root)  # refuses files that do not match the manifest's sha256
    present = [a["backend"] for a in bundle.artifacts]
    usable = [a for a in bundle.artifacts if (a.get("verify") or {}).get("status") in (None, "ok", "skipped")]
    for artifact in bundle.artifacts:
        if artifact not in usable and on_skipped is not None:
            on_skipped(root, artifact["file"])
    if backends and not any(a["backend"] in backends for a in usable):
        # asked for a backend by name: run its artifact even if it failed parity at export
        usable = [a for a in bundle.artifacts if a["backend"] in backends]
    if not usable:
        if backends:
            raise BundleError("bundle %s has no artifact for %s; it has: %s" % (
                root, ", ".join(backends), ", ".join(sorted(set(present))) or "none"))
        raise BundleError("no artifact of bundle %s passed verification at export — re-export it" % root)
    order = _order(OrderedDict((a["backend"], None) for a in usable), backends)
    stride = int((bundle.manifest.get("model") or {}).get("stride") or 1)
    found = []
    for name in order:
        for artifact in usable:
            if artifact["backend"] != name:
                continue
            size = artifact.get("input_size") if artifact.get("fixed_size") else None
            fixed = (int(size[1]), int(size[0])) if size else None  # manifest sizes are [height, width]
            found.append(Candidate(name, bundle.path(artifact), _options(name, settings), fixed))
    # an artifact that takes this frame size first (a 640x480 TFLite must not take a 720p clip)
    fits = [c for c in found if c.accepts(frame_size, stride)]
    return fits + [c for c in found if c not in fits]


def resolve(spec, frame_size=None, backends=None, settings=None, on_skipped=None):
    """Every way to run ``spec``, preferred first, as :class:`Candidate` s (``[]`` for ``none``).

    * a bundle folder: its verified artifacts (sha256-checked), those that accept ``frame_size``
      (``(width, height)``) before fixed-size ones that do not;
    * a model file: one candidate per backend that runs its type (:data:`FILE_TYPES`);
    * a ``.pt`` / ``.pth`` checkpoint: exported once to ONNX through :mod:`edgerestore.host`;
    * a preset name: its shipped weights.

    ``backends`` (a name or a list) keeps only those backends, in that order; ``settings`` (a dict,
    or an object such as the service's ``[model]`` table) gives each backend the settings it declares
    as options (:func:`~edgerestore.runtime.backends.option_values`); ``on_skipped(bundle, file)`` hears of each artifact left
    out because it failed verification at export. Errors are one line that names the fix.
    """
    spec = str(spec or DEFAULT_MODEL)
    if isinstance(backends, str):
        backends = [backends]
    backends = list(backends or [])
    _check_backends(backends)
    if spec == NO_MODEL:
        return []
    if os.path.isdir(spec):
        from edgerestore.runtime.bundle import is_bundle

        if not is_bundle(spec):
            raise InputNotFoundError("%s is a folder without manifest.json, not a bundle — make one with "
                                     "`edgerestore export`" % spec)
        return _bundle_candidates(spec, backends, settings, frame_size, on_skipped)
    if spec.lower().endswith(CHECKPOINT_SUFFIXES):
        if not os.path.isfile(spec):
            raise InputNotFoundError("checkpoint %s does not exist" % spec)
        from edgerestore import host

        return _file_candidates(str(host.checkpoint_to_onnx(spec)), backends, settings)
    if os.path.isfile(spec):
        return _file_candidates(spec, backends, settings)
    if os.sep in spec or os.path.splitext(spec)[1]:
        raise InputNotFoundError("model %s does not exist" % spec)
    return _file_candidates(shipped_model(spec), backends, settings)


def _check_backends(names):
    from edgerestore.runtime.backends import REGISTRY

    for name in names:
        if name not in REGISTRY:
            raise UnknownNameError("backend", name, sorted(REGISTRY))


def unknown_preset(name):
    """The one error for a ``--model`` that is no file and no shipped preset (restore, run, bench)."""
    from edgerestore.weights import shipped_presets

    return UnknownNameError("preset", name, shipped_presets(),
                            hint="--model also takes a model file or folder: %s" % ", ".join(known_types()))


def shipped_model(preset):
    """The shipped model file of ``preset``; the error lists what this install ships."""
    from edgerestore.weights import shipped_path

    for suffix in FILE_TYPES:
        path = shipped_path(preset, suffix)
        if path:
            return path
    raise unknown_preset(preset)


def load_first(candidates, threads=None):
    """Create and load the first candidate whose backend runs here; the error lists every reason."""
    from edgerestore.runtime.backends import availability

    reasons = []
    for candidate in candidates:
        ok, reason = availability(candidate.backend)
        if not ok:
            reasons.append("%s: %s" % (candidate.backend, reason))
            continue
        return candidate.load(threads), candidate
    raise BackendUnavailableError("no backend can run this model here (%s)" % "; ".join(reasons or ["no candidates"]))
