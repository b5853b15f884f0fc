"""Inference backends: one module each, one class with the same small interface, one registry.

A backend whose library is missing is *unavailable* with a reason (``edgerestore backends``
lists them); asking for it raises :class:`~edgerestore.errors.BackendUnavailableError` with that
reason instead of crashing. Python 3.6-safe.
"""

import importlib

from edgerestore.errors import BackendUnavailableError, UnknownNameError

# name -> "module:Class"; modules are imported only when a backend is probed or used.
REGISTRY = {
    "onnxruntime": "edgerestore.runtime.backends.onnxruntime:OnnxRuntimeBackend",
    "tflite": "edgerestore.runtime.backends.tflite:TFLiteBackend",
    "tensorrt": "edgerestore.runtime.backends.tensorrt:TensorRTBackend",
}

# Artifact suffix -> the backends that can run it, preferred first. The longest matching suffix
# wins: a bundle's TensorRT graph (float I/O) is ``model.trt.onnx``.
BACKENDS_FOR_SUFFIX = {
    ".onnx": ("onnxruntime",),
    ".tflite": ("tflite",),
    ".trt.onnx": ("tensorrt",),
    ".engine": ("tensorrt",),
}


def artifact_suffix(path):
    """The longest suffix of ``path`` that :data:`BACKENDS_FOR_SUFFIX` knows (else its last suffix)."""
    import os

    name = os.path.basename(str(path)).lower()
    known = [suffix for suffix in BACKENDS_FOR_SUFFIX if name.endswith(suffix)]
    return max(known, key=len) if known else os.path.splitext(name)[1]


def backend_class(name):
    """The class registered as ``name`` (imports its module, not its library)."""
    if name not in REGISTRY:
        raise UnknownNameError("backend", name, REGISTRY)
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def availability(name):
    """``(available, reason)``: reason says what is missing and how to get it."""
    cls = backend_class(name)
    reason = cls.probe()
    return reason is None, (reason or "ok")


def list_backends():
    """``[(name, available, reason)]`` for every registered backend."""
    return [(name,) + availability(name) for name in sorted(REGISTRY)]


def create_backend(name, **options):
    """An unloaded backend instance; raises BackendUnavailableError when its library is missing."""
    available, reason = availability(name)
    if not available:
        raise BackendUnavailableError("backend %s is unavailable: %s" % (name, reason))
    return backend_class(name)(**options)


def backend_for_artifact(path, preferred=None):
    """Pick the backend for a model file: ``preferred`` if given, else the first available one."""
    suffix = artifact_suffix(path)
    candidates = BACKENDS_FOR_SUFFIX.get(suffix)
    if not candidates:
        raise UnknownNameError("model file type", suffix or str(path), BACKENDS_FOR_SUFFIX)
    if preferred:
        if preferred not in REGISTRY:
            raise UnknownNameError("backend", preferred, REGISTRY)
        if preferred not in candidates:
            raise BackendUnavailableError(
                "backend %s cannot run %s files; use one of: %s" % (preferred, suffix, ", ".join(candidates))
            )
        return preferred
    reasons = []
    for name in candidates:
        ok, reason = availability(name)
        if ok:
            return name
        reasons.append("%s: %s" % (name, reason))
    raise BackendUnavailableError("no backend can run %s here (%s)" % (path, "; ".join(reasons)))
