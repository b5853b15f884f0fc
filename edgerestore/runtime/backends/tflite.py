"""TFLite (LiteRT) with XNNPACK: the Raspberry Pi backend. Python 3.6-safe.

Runs the ``.tflite`` files ``edgerestore export`` writes: uint8 ``[1,H,W,3]`` RGB in and out,
built for one frame size. Frames up to that size are padded (reflect) and the result cropped;
a larger frame is an error that names the fix (export for that size), never a silent resize.
Temporal models have three inputs, in the converter's argument order (``args_0`` the frame,
``args_1`` the previous output, ``args_2`` the hidden features, NHWC float32) and two outputs
(the uint8 frame and the float32 features): the state is fed back here, see ``base``.
A model with a noise-level input has two: the frame and ``args_1`` ``[1]``, the level (float32, or
int8 with its quantization in an INT8 model); a codec input is one more ``[2]`` after it.
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


def _argument_order(detail):
    """``serving_default_args_2`` -> 2: the converter names inputs after the model's arguments."""
    import re

    found = re.findall(r"args_(\d+)", detail["name"])
    return (int(found[-1]) if found else 1000, detail["index"])


def _state_of(model_path, inputs, outputs):
    """The state of a temporal .tflite: (spec like the ONNX metadata's, {input: (input index, output
    index)}). Inputs 1 and 2 are the previous frame and the hidden features; outputs are told apart
    by their dtype (uint8 frame, float32 features)."""
    frames = [o for o in outputs if o["dtype"].__name__ == "uint8"]
    features = [o for o in outputs if o["dtype"].__name__ != "uint8"]
    if len(inputs) != 3 or len(frames) != 1 or len(features) != 1:
        raise BackendUnavailableError("%s has %d inputs and %d outputs; an edgerestore temporal model has 3 and 2 — "
                                      "export it with `edgerestore export`" % (model_path, len(inputs), len(outputs)))
    previous, hidden = inputs[1], inputs[2]
    shape = [int(v) for v in hidden["shape"]]
    spec = [{"input": "previous", "output": "restored", "reset": "input", "like": "frame", "layout": "nhwc",
             "channels": 3, "dtype": "uint8"},
            {"input": "hidden", "output": "hidden_out", "reset": "zeros", "layout": "nhwc", "channels": shape[3],
             "dtype": "float32"}]
    indices = {"previous": (previous["index"], frames[0]["index"]), "hidden": (hidden["index"], features[0]["index"])}
    return spec, indices


class TFLiteBackend(Backend):
    name = "tflite"
    options = {"xnnpack": "run on the XNNPACK delegate (default on)"}

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
        inputs = sorted(interpreter.get_input_details(), key=_argument_order)
        outputs = interpreter.get_output_details()
        inp = inputs[0]
        out = [o for o in outputs if o["dtype"].__name__ == "uint8"][0] if len(outputs) > 1 else outputs[0]
        shape = [int(v) for v in inp["shape"]]
        if inp["dtype"].__name__ != "uint8" or len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise BackendUnavailableError(
                "%s is not an edgerestore frame model (input %s %s, expected uint8 [1,H,W,3]) — export "
                "it with `edgerestore export`" % (model_path, inp["dtype"].__name__, shape))
        self.interpreter = interpreter
        self.input_index = inp["index"]
        self.output_index = out["index"]
        self.state_spec = None
        self.level_input = self.codec_input = None
        self.condition_details = {}
        vectors = [d for d in inputs[1:] if len(d["shape"]) == 1 and d["dtype"].__name__ in ("float32", "int8")]
        if len(inputs) > 1 and len(vectors) == len(inputs) - 1:  # the level [1], the codec [2]
            for detail in vectors:
                width = int(detail["shape"][0])
                if width not in (1, 2):
                    raise BackendUnavailableError("%s has an input %s of %d values that no edgerestore model "
                                                  "has — export it again" % (model_path, detail["name"], width))
                setattr(self, "level_input" if width == 1 else "codec_input", detail["index"])
                self.condition_details[detail["index"]] = detail
        elif len(inputs) > 1:
            self.state_spec, self.state_indices = _state_of(model_path, inputs, outputs)
        self.size = (shape[1], shape[2])
        self.stride = 1  # fixed-size model: frames are padded to its size in _run
        self.threads = threads
        self.model_path = str(model_path)
        self.library = module.__name__.split(".")[0]
        return self

    def _fit(self, image):
        """``image`` padded to the model's fixed size (a larger one is an error naming the fix)."""
        import numpy as np

        height, width = image.shape[:2]
        model_h, model_w = self.size
        if height > model_h or width > model_w:
            raise ConfigError(
                "frame %dx%d is larger than the model's %dx%d — export for this size: edgerestore export "
                "--size %dx%d" % (width, height, model_w, model_h, height, width))
        if (height, width) == (model_h, model_w):
            return image
        pad_h, pad_w = model_h - height, model_w - width
        mode = "reflect" if pad_h < height and pad_w < width else "edge"
        return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)

    def _run(self, image):
        import numpy as np

        height, width = image.shape[:2]
        self.interpreter.set_tensor(self.input_index, np.ascontiguousarray(self._fit(image))[None])
        for index, value in self.condition_feeds().items():
            self.interpreter.set_tensor(index, value)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output_index)[0]
        return out[:height, :width]

    def condition_feeds(self):
        """The level's and codec's values, quantized as the model's inputs are (an INT8 model's int8
        inputs)."""
        import numpy as np

        feeds = Backend.condition_feeds(self)
        for index, value in feeds.items():
            detail = self.condition_details[index]
            if detail["dtype"].__name__ != "float32":
                scale, zero = detail["quantization"]
                feeds[index] = np.clip(np.round(value / scale) + zero, -128, 127).astype(np.int8)
        return feeds

    def zeros_state(self, entry, image):
        # the model's own (fixed) state shape, whatever the frame's size
        import numpy as np

        index = self.state_indices[entry["input"]][0]
        detail = [d for d in self.interpreter.get_input_details() if d["index"] == index][0]
        return np.zeros([int(v) for v in detail["shape"]], detail["dtype"])

    def _run_state(self, image, state):
        import numpy as np

        height, width = image.shape[:2]
        interpreter = self.interpreter
        interpreter.set_tensor(self.input_index, np.ascontiguousarray(self._fit(image))[None])
        for entry in self.state_spec:
            value = state[entry["input"]]
            if value.ndim == 3:  # a frame (the reset value of ``previous``)
                value = self._fit(value)[None]
            interpreter.set_tensor(self.state_indices[entry["input"]][0], np.ascontiguousarray(value))
        interpreter.invoke()
        following = {}
        for entry in self.state_spec:
            # copies: the interpreter reuses its buffers on the next invoke
            value = interpreter.get_tensor(self.state_indices[entry["input"]][1])
            if entry.get("like") == "frame":
                value = value[0, :height, :width]  # kept at the frame's size, padded again next time
            following[entry["input"]] = value
        out = interpreter.get_tensor(self.output_index)[0]
        return out[:height, :width], following

    def info(self):
        info = super(TFLiteBackend, self).info()
        info.update({"size": self.size, "xnnpack": self.xnnpack, "library": self.library})
        return info
