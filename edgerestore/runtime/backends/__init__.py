"""Inference backends: one module each, one class with the same small interface, one registry.

A backend whose library is missing is *unavailable* with a reason (``edgerestore backends``
lists them); asking for it raises :class:`~edgerestore.errors.BackendUnavailableError` with that
reason instead of crashing. Python 3.6-safe.
"""

import importlib

from edgerestore.errors import BackendUnavailableError, ConfigError, UnknownNameError

# name -> "module:Class"; modules are imported only when a backend is probed or used.
REGISTRY = {
    "onnxruntime": "edgerestore.runtime.backends.onnxruntime:OnnxRuntimeBackend",
    "tflite": "edgerestore.runtime.backends.tflite:TFLiteBackend",
    "tensorrt": "edgerestore.runtime.backends.tensorrt:TensorRTBackend",
}

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
    cls = backend_class(name)
    unknown = sorted(set(options) - set(cls.options) - {"threads"})
    if unknown:
        raise ConfigError("backend %s takes no option %s — accepted: %s"
                          % (name, ", ".join(unknown), ", ".join(["threads"] + sorted(cls.options))))
    return cls(**options)


def option_values(name, values):
    """The entries of ``values`` (a dict or an object with attributes) that backend ``name`` declares
    as options and that are set: how config and the service hand their settings to a backend."""
    get = values.get if isinstance(values, dict) else (lambda key: getattr(values, key, None))
    return dict((key, get(key)) for key in backend_class(name).options if get(key) not in (None, "", [], ()))
