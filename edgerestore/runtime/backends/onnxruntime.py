"""ONNX Runtime: CPU everywhere; CUDA / TensorRT execution providers when the build has them.

Runs models that follow the uint8 NHWC RGB contract (what ``edgerestore export`` writes); reads
the stride from the model's ``edgerestore.stride`` metadata. Python 3.6-safe.
"""

import os

from edgerestore.errors import BackendUnavailableError, InputNotFoundError
from edgerestore.runtime.backends.base import Backend

CONTRACT = "uint8-nhwc-rgb"


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, threads=None, providers=None):
        super(OnnxRuntimeBackend, self).__init__(threads=threads)
        self.providers = providers
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
        available = ort.get_available_providers()
        providers = [p for p in (self.providers or available) if p in available] or ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(model_path), opts, providers=providers)
        except Exception as exc:
            raise BackendUnavailableError(
                "ONNX Runtime cannot load %s: %s" % (model_path, str(exc).splitlines()[0])
            )
        meta = self.session.get_modelmeta().custom_metadata_map
        contract = meta.get("edgerestore.contract")
        if contract != CONTRACT:
            raise BackendUnavailableError(
                "%s is not an edgerestore frame model (contract %r, expected %r) — export it with "
                "`edgerestore export`" % (model_path, contract, CONTRACT)
            )
        self.stride = int(meta.get("edgerestore.stride", "1"))
        self.input_name = self.session.get_inputs()[0].name
        self.threads = threads
        self.model_path = str(model_path)
        self.metadata = dict(meta)
        return self

    def _run(self, image):
        return self.session.run(None, {self.input_name: image[None]})[0][0]

    def info(self):
        info = super(OnnxRuntimeBackend, self).info()
        info["providers"] = self.session.get_providers() if self.session else None
        return info
