"""TensorRT + pycuda: the Jetson backend. Python 3.6-safe (JetPack 4.6 = Python 3.6, TensorRT 8.2).

Loads a bundle's ``model.trt.onnx`` (float32 NHWC I/O: TensorRT 8.2 has no uint8 inputs), builds
the engine on first use into the engine cache (:mod:`edgerestore.runtime.backends.tensorrt_engine`: key = model
sha256 + TensorRT version + GPU + precision + shape, with a timing cache), or loads a prebuilt
``.engine``. A small adapter turns the uint8 RGB frame into the float input the manifest
describes and the float output (which carries +0.5) back into uint8 by truncation.

Works with TensorRT 8.x (bindings, ``execute_async_v2``) and 10.x (named tensors,
``execute_async_v3``). ``trt`` and ``cuda`` can be injected: the tests use stand-ins shaped like
TensorRT's and pycuda's Python APIs, because no machine here has TensorRT.
"""

import os

from edgerestore.errors import BackendUnavailableError, BundleError, ConfigError, InputNotFoundError
from edgerestore.runtime.backends.base import Backend

FLOAT_CONTRACT = "float32-nhwc-rgb"


def to_network_input(image, out):
    """Write a uint8 ``HxWx3`` frame into the float32 ``[1,H,W,3]`` input buffer ``out`` (values 0..255)."""
    import numpy as np

    np.copyto(out[0], image, casting="unsafe")
    return out


def from_network_output(out):
    """The uint8 frame of a float output that already includes +0.5 (truncation rounds)."""
    import numpy as np

    return out[0].astype(np.uint8)


def _import_trt():
    import tensorrt

    return tensorrt


def _import_cuda():
    import pycuda.autoinit  # noqa: F401  (creates the CUDA context)
    import pycuda.driver as cuda

    return cuda


class _Engine(object):
    """The deserialised engine, its context, stream and the host/device buffers of its inputs and
    outputs (one each for a frame model; a temporal model also has its state tensors)."""

    def __init__(self, trt, cuda, engine_bytes, shapes):
        """``shapes``: ``{tensor name: shape}``, or one shape for a model's one input and output."""
        import numpy as np

        self.trt, self.cuda = trt, cuda
        logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise BackendUnavailableError("TensorRT could not deserialise the engine (built by another version?)"
                                          " — delete it from the engine cache to rebuild")
        self.context = self.engine.create_execution_context()
        self.stream = cuda.Stream()
        self.order, self.inputs, self.outputs = self._io_names()
        if not isinstance(shapes, dict):
            if len(self.inputs) != 1 or len(self.outputs) != 1:
                raise BackendUnavailableError("expected an engine with one input and one output, got %s" % self.order)
            shapes = {self.inputs[0]: shapes, self.outputs[0]: shapes}
        missing = [n for n in self.order if n not in shapes]
        if missing:
            raise BackendUnavailableError("the engine's tensors %s are not in the bundle's manifest — re-export "
                                          "the bundle" % ", ".join(missing))
        self.host = dict((n, cuda.pagelocked_empty(tuple(int(d) for d in shapes[n]), dtype=np.float32))
                         for n in self.order)
        self.device = dict((n, cuda.mem_alloc(self.host[n].nbytes)) for n in self.order)
        self.host_in, self.host_out = self.host[self.inputs[0]], self.host[self.outputs[0]]
        self.v3 = hasattr(self.context, "execute_async_v3")
        if self.v3:  # TensorRT >= 8.5: named tensors
            for name in self.order:
                self.context.set_tensor_address(name, int(self.device[name]))

    def _io_names(self):
        """(all tensor names in binding order, input names, output names)."""
        engine = self.engine
        if hasattr(engine, "num_io_tensors"):
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            inputs = [n for n in names if engine.get_tensor_mode(n) == self.trt.TensorIOMode.INPUT]
        else:  # TensorRT 8.2: bindings
            names = [engine.get_binding_name(i) for i in range(engine.num_bindings)]
            inputs = [n for i, n in enumerate(names) if engine.binding_is_input(i)]
        outputs = [n for n in names if n not in inputs]
        if not inputs or not outputs:
            raise BackendUnavailableError("expected an engine with inputs and outputs, got %s" % names)
        return names, inputs, outputs

    def run(self):
        """Copy every input in, execute, copy every output out; returns the first output."""
        cuda = self.cuda
        for name in self.inputs:
            cuda.memcpy_htod_async(self.device[name], self.host[name], self.stream)
        if self.v3:
            self.context.execute_async_v3(self.stream.handle)
        else:
            self.context.execute_async_v2([int(self.device[n]) for n in self.order], self.stream.handle)
        for name in self.outputs:
            cuda.memcpy_dtoh_async(self.host[name], self.device[name], self.stream)
        self.stream.synchronize()
        return self.host_out


class TensorRTBackend(Backend):
    name = "tensorrt"
    options = {"precision": "fp16 or int8: the engine to build from the ONNX file (default: the bundle's)",
               "cache_dir": "where engines are cached (default: the edgerestore cache)",
               "log": "a function that takes one line (build progress and warnings)",
               "trt": "the tensorrt module (default: import it; tests pass a stand-in)",
               "cuda": "the pycuda.driver module (default: import it; tests pass a stand-in)"}

    def __init__(self, threads=None, precision=None, trt=None, cuda=None, cache_dir=None, log=None):
        super(TensorRTBackend, self).__init__(threads=threads)
        self.precision = precision
        self._trt, self._cuda = trt, cuda
        self.cache_dir = cache_dir
        self.log = log or (lambda message: None)
        self.plan = None
        self.size = None
        self.engine = None

    @classmethod
    def probe(cls):
        try:
            _import_trt()
        except ImportError:
            return ("TensorRT is not installed — it comes with JetPack (apt install python3-libnvinfer); "
                    "on a PC with an NVIDIA GPU: pip install tensorrt")
        try:
            import pycuda.driver as cuda

            cuda.init()
            if cuda.Device.count() == 0:
                return "no CUDA GPU found"
        except ImportError:
            return "pycuda is not installed — pip install pycuda (JetPack: see edgerestore/devices/jetson.md)"
        except Exception as exc:  # pycuda raises its own LogicError/RuntimeError kinds
            return "CUDA is not usable here: %s" % str(exc).splitlines()[0]
        return None

    def _modules(self):
        trt = self._trt or _import_trt()
        cuda = self._cuda or _import_cuda()
        return trt, cuda

    def gpu(self, trt, cuda):
        """``(name, has fast INT8)`` of GPU 0, as CUDA and TensorRT report them."""
        device = cuda.Device(0)
        builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
        return str(device.name()), bool(builder.platform_has_fast_int8)

    def plan(self, model_path):
        """The engine build plan for ``model_path`` on this GPU (imports TensorRT and pycuda)."""
        trt, cuda = self._modules()
        return self.plan_for(model_path, trt, cuda)

    def plan_for(self, model_path, trt, cuda):
        """The engine build plan for a bundle artifact (also what ``build-engine --check`` prints)."""
        from edgerestore.devices.profiles import PROFILES
        from edgerestore.runtime.backends.tensorrt_engine import plan_build
        from edgerestore.runtime.bundle import find_bundle_for

        bundle = find_bundle_for(model_path)
        artifact = bundle.artifact_for_file(model_path) if bundle else None
        if artifact is None:
            raise BundleError("%s is not in a bundle: TensorRT needs the manifest beside it (input size, "
                              "calibration) — use `edgerestore export --target jetson-...`" % model_path)
        io = artifact.get("io", {})
        contract = io.get("input", {}).get("contract")
        if contract != FLOAT_CONTRACT:
            raise BackendUnavailableError("%s has contract %r; TensorRT runs %r artifacts (tensorrt-fp16/int8)"
                                          % (model_path, contract, FLOAT_CONTRACT))
        shape = tuple(io["input"]["shape"])
        precision = self.precision or artifact["precision"]
        calibration = None
        if artifact.get("calibration_cache"):
            calibration = bundle.path(artifact["calibration_cache"])
        gpu_name, fast_int8 = self.gpu(trt, cuda)
        profile = PROFILES.get(bundle.target)
        plan = plan_build(model_path, shape, precision, trt.__version__, gpu_name, fast_int8,
                          workspace_mb=profile.workspace_mb if profile else None,
                          calibration_cache=calibration, cache_dir=self.cache_dir, state=io.get("state"),
                          level=(io.get("level") or {}).get("name"), codec=(io.get("codec") or {}).get("name"))
        self.io = artifact.get("io", {})
        return plan

    def load(self, model_path, **options):
        from edgerestore.runtime.backends.tensorrt_engine import build_engine

        model_path = str(model_path)
        if not os.path.isfile(model_path):
            raise InputNotFoundError("model %s does not exist" % model_path)
        trt, cuda = self._modules()
        if model_path.endswith((".engine", ".plan")):
            shape = options.get("shape")
            if not shape:
                raise ConfigError("a prebuilt engine needs its input shape; run the bundle instead")
            engine_path = model_path
        else:
            self.plan = self.plan_for(model_path, trt, cuda)
            for warning in self.plan.warnings:
                self.log("warning: " + warning)
            if not os.path.isfile(self.plan.engine_path):
                self.log("building the TensorRT %s engine (first run; cached in %s)"
                         % (self.plan.precision.upper(), os.path.dirname(self.plan.engine_path)))
                build_engine(self.plan, trt, cuda, log=self.log)
            engine_path, shape = self.plan.engine_path, self.plan.shape
        shapes = tuple(shape)
        self.state_spec = None
        io = getattr(self, "io", None) or {}
        self.level_input = (io.get("level") or {}).get("name")
        self.codec_input = (io.get("codec") or {}).get("name")
        if self.level_input or self.codec_input:  # the frame, the level [1], the codec [2]
            shapes = {"frame": tuple(shape), "restored": tuple(shape)}
            if self.level_input:
                shapes[self.level_input] = (1,)
            if self.codec_input:
                shapes[self.codec_input] = (2,)
        state = (getattr(self, "io", None) or {}).get("state")
        if state:  # a temporal model: its state tensors' shapes come from the manifest
            self.state_spec = state
            shapes = {"frame": tuple(shape), "restored": tuple(shape)}
            for entry in state:
                shapes[entry["input"]] = shapes[entry["output"]] = tuple(int(d) for d in entry["shape"])
        with open(engine_path, "rb") as handle:
            self.engine = _Engine(trt, cuda, handle.read(), shapes)
        self.size = (int(shape[1]), int(shape[2]))
        self.stride = 1
        self.model_path = model_path
        return self

    def _fit(self, image):
        import numpy as np

        height, width = image.shape[:2]
        model_h, model_w = self.size
        if height > model_h or width > model_w:
            raise ConfigError("frame %dx%d is larger than the engine's %dx%d — export with --size %dx%d"
                              % (width, height, model_w, model_h, height, width))
        if (height, width) != (model_h, model_w):
            pad_h, pad_w = model_h - height, model_w - width
            mode = "reflect" if pad_h < height and pad_w < width else "edge"
            image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
        return image

    def _run(self, image):
        import numpy as np

        height, width = image.shape[:2]
        to_network_input(self._fit(image), self.engine.host_in)
        for name, value in self.condition_feeds().items():
            np.copyto(self.engine.host[name], value)
        return from_network_output(self.engine.run())[:height, :width]

    def zeros_state(self, entry, image):
        import numpy as np

        return np.zeros(self.engine.host[entry["input"]].shape, np.float32)

    def _run_state(self, image, state):
        """The state stays in the engine's own float buffers: the previous frame as the uint8
        frame it was (truncated), the features as they came out."""
        import numpy as np

        height, width = image.shape[:2]
        engine = self.engine
        to_network_input(self._fit(image), engine.host_in)
        for entry in self.state_spec:
            value = state[entry["input"]]
            if value.ndim == 3:  # a frame: the reset value of ``previous``, or the last output
                to_network_input(self._fit(value), engine.host[entry["input"]])
            else:
                np.copyto(engine.host[entry["input"]], value)
        out = from_network_output(engine.run())
        following = {}
        for entry in self.state_spec:
            if entry["input"] == "previous":
                following[entry["input"]] = out[:height, :width]
            else:
                following[entry["input"]] = engine.host[entry["output"]].copy()
        return out[:height, :width], following

    def info(self):
        info = super(TensorRTBackend, self).info()
        if self.plan is not None:
            info.update({"precision": self.plan.precision, "engine": self.plan.engine_path,
                         "gpu": self.plan.gpu_name, "tensorrt": self.plan.trt_version})
        return info


# --- a bundle's TensorRT artifact (build-engine) -----------------------------------------------


def bundle_artifact(bundle, precision, echo):
    """``(artifact, precision)``: the bundle's TensorRT artifact for ``precision``.

    INT8 from a bundle without an INT8 artifact (a Jetson Nano's) builds that artifact's
    precision, with one warning that says why.
    """
    from edgerestore.errors import BundleError

    artifacts = [a for a in bundle.artifacts if a["backend"] == "tensorrt"]
    if not artifacts:
        raise BundleError("bundle %s (target %s) has no TensorRT artifact — export it with "
                          "`edgerestore export --target jetson-nano` (or jetson-orin...)" % (bundle.root, bundle.target))
    if not precision:
        return artifacts[0], artifacts[0]["precision"]
    matching = [a for a in artifacts if a["precision"] == precision]
    if matching:
        return matching[0], precision
    instead = artifacts[0]["precision"]
    profile = board_profile(bundle.target)
    if precision == "int8" and profile is not None and profile.gpu and not profile.gpu_int8:
        echo("warning: %s has no INT8 (its GPU is sm_%s): building %s instead"
             % (bundle.target, profile.compute_capability.replace(".", ""), instead.upper()))
    else:
        echo("warning: bundle %s has no %s TensorRT artifact (re-export with --precision %s); building %s instead"
             % (bundle.root, precision.upper(), precision, instead.upper()))
    return artifacts[0], instead


def board_profile(target):
    """The profile to plan for; for a family bundle (``jetson``) this board's, or its first member's."""
    from edgerestore.devices.detect import board_target
    from edgerestore.devices.profiles import profile_for

    return profile_for(target, board_target())


def offline_plan(bundle, artifact, precision):
    """The build plan of ``artifact`` for the bundle's board, from its device profile: what
    ``build-engine --check`` prints where TensorRT cannot run."""
    from edgerestore.runtime.backends.tensorrt_engine import plan_build

    profile = board_profile(bundle.target)
    calibration = bundle.path(artifact["calibration_cache"]) if artifact.get("calibration_cache") else None
    return plan_build(bundle.path(artifact), artifact["io"]["input"]["shape"], precision,
                      profile.tensorrt if profile else "unknown", profile.gpu if profile else "unknown GPU",
                      profile.gpu_int8 if profile else False,
                      workspace_mb=profile.workspace_mb if profile else None, calibration_cache=calibration,
                      state=artifact["io"].get("state"), level=(artifact["io"].get("level") or {}).get("name"),
                      codec=(artifact["io"].get("codec") or {}).get("name"))
