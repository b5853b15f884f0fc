"""ONNX Runtime: CPU everywhere; CUDA / TensorRT execution providers when the build has them.

Runs models that follow the uint8 NHWC RGB contract (what ``edgerestore export`` writes); reads
the stride from the model's ``edgerestore.stride`` metadata. Python 3.6-safe.

Providers: by default the best one this build offers (TensorRT, then CUDA, then CPU — e.g.
``onnxruntime-gpu`` on a laptop with an NVIDIA GPU, or the Jetson Zoo wheel); ``providers=`` takes
short names (``tensorrt``, ``cuda``, ``cpu``) or ONNX Runtime's own. The TensorRT provider builds
an engine on first use and caches it (FP16) under ``$EDGERESTORE_CACHE/ort-tensorrt``. When the
automatic choice fails to start (a GPU build without its CUDA/TensorRT libraries), the backend
falls back to the CPU and says so in ``info()["fallback"]``; an explicit choice fails instead.
"""

import os

from edgerestore.errors import BackendUnavailableError, InputNotFoundError
from edgerestore.files import cache_root
from edgerestore.runtime.backends.base import Backend

CONTRACT = "uint8-nhwc-rgb"

PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def _cache_root():
    return cache_root("ort-tensorrt")


def provider_options(name, device_id=0):
    """ONNX Runtime options for one provider (engine cache and FP16 for TensorRT)."""
    if name == "TensorrtExecutionProvider":
        cache = _cache_root()
        return {
            "device_id": device_id,
            "trt_fp16_enable": True,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": cache,
        }
    if name == "CUDAExecutionProvider":
        return {"device_id": device_id}
    return {}


def choose_providers(requested, available):
    """``(providers, explicit)``: the providers to ask for, best first, ending with the CPU.

    ``requested`` is None (automatic), a comma-separated string or a list of short or full names.
    Raises BackendUnavailableError for a provider this build lacks.
    """
    from edgerestore.errors import UnknownNameError

    if not requested:
        chosen = [p for p in PREFERENCE if p in available] or ["CPUExecutionProvider"]
        return chosen, False
    if isinstance(requested, str):
        requested = [part.strip() for part in requested.split(",") if part.strip()]
    chosen = []
    for name in requested:
        full = PROVIDER_NAMES.get(name.lower(), name)
        if full not in PREFERENCE and not full.endswith("ExecutionProvider"):
            raise UnknownNameError("ONNX Runtime provider", name, PROVIDER_NAMES)
        if full not in available:
            raise BackendUnavailableError(
                "ONNX Runtime here has no %s (it has %s) — for NVIDIA GPUs pip install onnxruntime-gpu "
                "(on Jetson, the wheel for your JetPack from the Jetson Zoo)" % (full, ", ".join(available)))
        chosen.append(full)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")  # nodes a GPU provider cannot take run here
    return chosen, True


def parse_state(text, model_path, inputs, outputs):
    """The ``edgerestore.state`` metadata of a temporal model, checked against its inputs/outputs."""
    import json

    try:
        spec = json.loads(text)
    except ValueError:
        raise BackendUnavailableError("%s has unreadable state metadata — re-export it" % model_path)
    for entry in spec:
        if entry.get("input") not in inputs or entry.get("output") not in outputs:
            raise BackendUnavailableError(
                "%s: state %s -> %s does not match the model's inputs %s / outputs %s — re-export it"
                % (model_path, entry.get("output"), entry.get("input"), inputs, outputs))
    return spec


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    options = {"providers": "execution providers, best first: tensorrt,cuda,cpu (default: the best this build has)",
               "spinning": "let ONNX Runtime's threads busy-wait between operators (default off)"}

    def __init__(self, threads=None, providers=None, spinning=False):
        super(OnnxRuntimeBackend, self).__init__(threads=threads)
        self.providers = providers
        self.spinning = spinning
        self.session = None
        self.input_name = None

    @classmethod
    def probe(cls):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime is not installed — pip install onnxruntime"
        return None

    def load(self, model_path, **options):
        import onnxruntime as ort

        if not os.path.isfile(str(model_path)):
            raise InputNotFoundError("model %s does not exist" % model_path)
        opts = ort.SessionOptions()
        threads = self.threads or os.cpu_count() or 1
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not self.spinning:
            # ORT's worker threads busy-wait between operators by default. In the pipeline the
            # decoder, the sinks (and on a shared machine, other programs) need those cores; a
            # spinning pool takes CPU from them and then waits for the preempted straggler.
            # Measured on the 2-core dev machine at 1080p: faster with it off, alone and in the pipeline.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        providers, explicit = choose_providers(self.providers, ort.get_available_providers())
        self.fallback = None
        try:
            self.session = self._session(ort, model_path, opts, providers)
        except Exception as exc:
            if explicit or providers == ["CPUExecutionProvider"]:
                raise BackendUnavailableError(
                    "ONNX Runtime cannot load %s with %s: %s"
                    % (model_path, ", ".join(providers), str(exc).splitlines()[0] if str(exc) else exc))
            self.fallback = "%s failed (%s); running on the CPU" % (
                providers[0], str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            try:
                self.session = self._session(ort, model_path, opts, ["CPUExecutionProvider"])
            except Exception as exc2:
                raise BackendUnavailableError(
                    "ONNX Runtime cannot load %s: %s" % (model_path, str(exc2).splitlines()[0]))
        active = self.session.get_providers()
        if self.fallback is None and providers[0] not in active:  # ORT may drop a provider quietly
            self.fallback = "%s did not start; running on %s" % (providers[0], ", ".join(active))
        meta = self.session.get_modelmeta().custom_metadata_map
        contract = meta.get("edgerestore.contract")
        if contract != CONTRACT:
            raise BackendUnavailableError(
                "%s is not an edgerestore frame model (contract %r, expected %r) — export it with "
                "`edgerestore export`" % (model_path, contract, CONTRACT)
            )
        self.stride = int(meta.get("edgerestore.stride", "1"))
        self.input_name = self.session.get_inputs()[0].name
        self.state_spec = None
        if meta.get("edgerestore.state"):
            self.state_spec = parse_state(meta["edgerestore.state"], model_path,
                                          [i.name for i in self.session.get_inputs()],
                                          [o.name for o in self.session.get_outputs()])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.level_input = meta.get("edgerestore.level_input") or None
        self.codec_input = meta.get("edgerestore.codec_input") or None
        names = [i.name for i in self.session.get_inputs()]
        for kind, name in (("noise-level", self.level_input), ("codec", self.codec_input)):
            if name and name not in names:
                raise BackendUnavailableError("%s names a %s input %r it does not have — export it again"
                                              % (model_path, kind, name))
        self.threads = threads
        self.model_path = str(model_path)
        self.metadata = dict(meta)
        return self

    @staticmethod
    def _session(ort, model_path, opts, providers):
        if "TensorrtExecutionProvider" in providers and not os.path.isdir(_cache_root()):
            os.makedirs(_cache_root())
        options = [provider_options(name) for name in providers]
        return ort.InferenceSession(str(model_path), opts, providers=providers, provider_options=options)

    def _run(self, image):
        feeds = {self.input_name: image[None]}
        feeds.update(self.condition_feeds())
        return self.session.run(None, feeds)[0][0]

    def _run_state(self, image, state):
        feeds = {self.input_name: image[None]}
        feeds.update(self.condition_feeds())
        for name, value in state.items():
            feeds[name] = value if value.ndim == 4 else value[None]
        outputs = dict(zip(self.output_names, self.session.run(self.output_names, feeds)))
        following = dict((entry["input"], outputs[entry["output"]]) for entry in self.state_spec)
        return outputs[self.output_names[0]][0], following

    def info(self):
        info = super(OnnxRuntimeBackend, self).info()
        info["providers"] = self.session.get_providers() if self.session else None
        info["fallback"] = getattr(self, "fallback", None)
        return info
