"""TFLite (LiteRT) with XNNPACK: the Raspberry Pi backend. Python 3.6-safe.

Runs the ``.tflite`` files ``edgerestore export`` writes: uint8 ``[1,H,W,3]`` RGB in and out,
built for one frame size. Frames up to that size are padded (reflect) and the result cropped;
a larger frame is an error that names the fix (export for that size), never a silent resize.
The interpreter comes from ``ai-edge-litert`` (Python >= 3.9) or ``tflite-runtime`` (older
Pythons); both apply the XNNPACK delegate by default. ``xnnpack=False`` runs TFLite's own kernels.
"""

import os

from edgerestore.errors import BackendUnavailableError, ConfigError, InputNotFoundError
from edgerestore.runtime.backends.base import Backend

# Module names to try, in order, for the interpreter.
INTERPRETERS = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


def _interpreter_module():
    import importlib

    errors = []
    for name in INTERPRETERS:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            errors.append("%s (%s)" % (name, exc))
    raise ImportError("; ".join(errors))


class TFLiteBackend(Backend):
    name = "tflite"

    def __init__(self, threads=None, xnnpack=True):
        super(TFLiteBackend, self).__init__(threads=threads)
        self.xnnpack = xnnpack
        self.interpreter = None
        self.size = None
        self.library = None

    @classmethod
    def probe(cls):
        try:
            _interpreter_module()
        except ImportError:
            return ("no TFLite interpreter — pip install ai-edge-litert (Python >= 3.9) "
                    "or tflite-runtime (older Pythons)")
        return None

    def load(self, model_path, **options):
        if not os.path.isfile(str(model_path)):
            raise InputNotFoundError("model %s does not exist" % model_path)
        module = _interpreter_module()
        threads = int(self.threads or os.cpu_count() or 1)
        kwargs = {"model_path": str(model_path), "num_threads": threads}
        if not self.xnnpack:
            kwargs["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            interpreter = module.Interpreter(**kwargs)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BackendUnavailableError("TFLite cannot load %s: %s" % (model_path, str(exc).splitlines()[0]))
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        shape = [int(v) for v in inp["shape"]]
        if inp["dtype"].__name__ != "uint8" or len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise BackendUnavailableError(
                "%s is not an edgerestore frame model (input %s %s, expected uint8 [1,H,W,3]) — export "
                "it with `edgerestore export`" % (model_path, inp["dtype"].__name__, shape))
        self.interpreter = interpreter
        self.input_index = inp["index"]
        self.output_index = out["index"]
        self.size = (shape[1], shape[2])
        self.stride = 1  # fixed-size model: frames are padded to its size in _run
        self.threads = threads
        self.model_path = str(model_path)
        self.library = module.__name__.split(".")[0]
        return self

    def _run(self, image):
        import numpy as np

        height, width = image.shape[:2]
        model_h, model_w = self.size
        if height > model_h or width > model_w:
            raise ConfigError(
                "frame %dx%d is larger than the model's %dx%d — export for this size: edgerestore export "
                "--size %dx%d" % (width, height, model_w, model_h, height, width))
        padded = image
        if (height, width) != (model_h, model_w):
            pad_h, pad_w = model_h - height, model_w - width
            mode = "reflect" if pad_h < height and pad_w < width else "edge"
            padded = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
        self.interpreter.set_tensor(self.input_index, np.ascontiguousarray(padded)[None])
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output_index)[0]
        return out[:height, :width]

    def info(self):
        info = super(TFLiteBackend, self).info()
        info.update({"size": self.size, "xnnpack": self.xnnpack, "library": self.library})
        return info
