"""A stand-in for TensorRT's and pycuda's Python APIs (no machine here has TensorRT or a CUDA GPU).

It has the classes, attributes and call shapes edgerestore uses, in both API generations
(TensorRT 8.2: bindings + ``execute_async_v2``, no memory pools; TensorRT >= 8.5/10: named I/O
tensors + ``execute_async_v3``), and it behaves like TensorRT where our code depends on it:

* the ONNX parser rejects opsets newer than the version parses (8.2: 13);
* the builder asks the INT8 calibrator for its cache and, like TensorRT 10, ignores a cache whose
  header names another TensorRT version or algorithm and then pulls batches with ``get_batch``
  until it returns None, then hands the new cache to ``write_calibration_cache``;
* ``platform_has_fast_int8`` is False on a Maxwell GPU.

The "engine" it serialises is a small JSON header plus the ONNX graph, and executing it runs that
graph with ONNX Runtime (FP32) on the stand-in device memory: so the backend's buffers, copies
and uint8 <-> float adapter are tested with real numbers. What it cannot tell us: whether real
TensorRT builds this graph, its FP16/INT8 numerics and speed; those are checked on a Jetson
(tests marked ``hardware``, and ``edgerestore build-engine``).
"""

import json
import re
import types

import numpy as np


def make_tensorrt(version="8.2.1", fast_int8=False, fast_fp16=True, max_opset=None):
    """A ``tensorrt``-shaped module of ``version``; counters in ``trt.calls``."""
    major, minor = (int(v) for v in version.split(".")[:2])
    new_api = (major, minor) >= (8, 5)
    max_opset = max_opset or (13 if (major, minor) < (8, 5) else 17 if major < 10 else 20)
    number = (major * 10000 if major >= 10 else major * 1000) + minor * 100 + int(version.split(".")[2])
    trt = types.ModuleType("tensorrt_standin")
    trt.__version__ = version
    trt.calls = {"builds": 0, "get_batch": 0, "read_cache": 0, "write_cache": 0, "parse": 0}

    class Logger(object):
        ERROR, WARNING, INFO = 1, 2, 3

        def __init__(self, severity=2):
            self.severity = severity

    class NetworkDefinitionCreationFlag(object):
        EXPLICIT_BATCH = 0

    class BuilderFlag(object):
        FP16, INT8 = "FP16", "INT8"

    class TensorIOMode(object):
        INPUT, OUTPUT = "INPUT", "OUTPUT"

    class IInt8EntropyCalibrator2(object):
        def __init__(self):
            pass

    class Network(object):
        def __init__(self, flags):
            self.flags = flags
            self.onnx = None

    class OnnxParser(object):
        def __init__(self, network, logger):
            self.network = network
            self.errors = []

        def parse(self, data):
            import onnx

            trt.calls["parse"] += 1
            try:
                model = onnx.load_from_string(data)
            except Exception as exc:
                self.errors.append("cannot read the model: %s" % exc)
                return False
            opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
            if opset > max_opset:
                self.errors.append("opset %d is newer than this TensorRT parses (%d)" % (opset, max_opset))
                return False
            self.network.onnx = data
            return True

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, index):
            return self.errors[index]

    class TimingCache(object):
        def __init__(self, data):
            self.data = bytes(data)

        def serialize(self):
            return self.data + b"+"  # grows with every build that used it

    class BuilderConfig(object):
        def __init__(self):
            self.flags = set()
            self.int8_calibrator = None
            self.workspace = None
            self.timing_cache = None

        def set_flag(self, flag):
            self.flags.add(flag)

        def get_flag(self, flag):
            return flag in self.flags

        def create_timing_cache(self, data):
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.timing_cache = cache
            return True

        def get_timing_cache(self):
            return self.timing_cache

    if new_api:
        class MemoryPoolType(object):
            WORKSPACE = "WORKSPACE"

        def set_memory_pool_limit(self, pool, size):
            self.workspace = (pool, size)

        BuilderConfig.set_memory_pool_limit = set_memory_pool_limit
        trt.MemoryPoolType = MemoryPoolType
    else:
        BuilderConfig.max_workspace_size = property(lambda self: self.workspace,
                                                    lambda self, v: setattr(self, "workspace", v))

    expected_header = "TRT-%d-EntropyCalibration2" % number

    class Builder(object):
        platform_has_fast_fp16 = fast_fp16
        platform_has_fast_int8 = fast_int8

        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags):
            return Network(flags)

        def create_builder_config(self):
            return BuilderConfig()

        def _calibrate(self, calibrator, onnx_bytes):
            trt.calls["read_cache"] += 1
            cache = calibrator.read_calibration_cache()
            header = bytes(cache).decode("ascii").splitlines()[0] if cache else ""
            if header == expected_header:
                return "cache"
            import onnx

            names = [i.name for i in onnx.load_from_string(onnx_bytes).graph.input] or ["frame"]  # every input
            batches = 0
            while True:
                trt.calls["get_batch"] += 1
                pointers = calibrator.get_batch(names)
                if pointers is None:
                    break
                assert len(pointers) == len(names) and all(isinstance(p, int) for p in pointers)
                batches += 1
            trt.calls["write_cache"] += 1
            calibrator.write_calibration_cache((expected_header + "\nframe: 3c010204\n").encode("ascii"))
            return "%d batches" % batches

        def build_serialized_network(self, network, config):
            trt.calls["builds"] += 1
            calibration = None
            if "INT8" in config.flags:
                calibration = self._calibrate(config.int8_calibrator, network.onnx)
            header = {"version": version, "flags": sorted(config.flags), "calibration": calibration,
                      "workspace": config.workspace}
            return json.dumps(header).encode("ascii") + b"\n" + network.onnx

    class Engine(object):
        def __init__(self, header, onnx_bytes):
            import onnxruntime as ort

            self.header = header
            self.session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
            self.inputs = [i.name for i in self.session.get_inputs()]
            self.outputs = [o.name for o in self.session.get_outputs()]
            self.io = self.inputs + self.outputs  # binding order: inputs first, like an ONNX-parsed network

        def create_execution_context(self):
            return Context(self)

    if new_api:
        Engine.num_io_tensors = property(lambda self: len(self.io))
        Engine.get_tensor_name = lambda self, i: self.io[i]
        Engine.get_tensor_mode = lambda self, name: TensorIOMode.INPUT if name in self.inputs else TensorIOMode.OUTPUT
    else:
        Engine.num_bindings = property(lambda self: len(self.io))
        Engine.get_binding_name = lambda self, i: self.io[i]
        Engine.binding_is_input = lambda self, i: i < len(self.inputs)

    class Context(object):
        def __init__(self, engine):
            self.engine = engine
            self.addresses = {}

        def _execute(self, pointers):
            """``pointers``: device pointer of every I/O tensor by name."""
            memory = trt.device_memory
            feeds = dict((name, memory[pointers[name]].reshape(memory.shapes[pointers[name]]))
                         for name in self.engine.inputs)
            for name, value in zip(self.engine.outputs, self.engine.session.run(None, feeds)):
                memory.write(pointers[name], value)
            return True

    if new_api:
        def set_tensor_address(self, name, pointer):
            self.addresses[name] = pointer
            return True

        def execute_async_v3(self, stream_handle):
            return self._execute(self.addresses)

        Context.set_tensor_address = set_tensor_address
        Context.execute_async_v3 = execute_async_v3
    else:
        def execute_async_v2(self, bindings, stream_handle):
            assert len(bindings) == len(self.engine.io), "one binding per I/O tensor"
            return self._execute(dict(zip(self.engine.io, bindings)))

        Context.execute_async_v2 = execute_async_v2

    class Runtime(object):
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, data):
            header, _, onnx_bytes = bytes(data).partition(b"\n")
            header = json.loads(header.decode("ascii"))
            if header["version"] != version:
                return None  # like TensorRT: engines of another version do not load
            return Engine(header, onnx_bytes)

    for cls in (Logger, NetworkDefinitionCreationFlag, BuilderFlag, TensorIOMode, IInt8EntropyCalibrator2,
                OnnxParser, Builder, Runtime):
        setattr(trt, cls.__name__, cls)
    trt.device_memory = None  # set by make_pycuda's memory when both are used together
    return trt


class DeviceMemory(dict):
    """The stand-in GPU memory: pointer (int) -> flat numpy buffer, with the shape last copied in."""

    def __init__(self):
        super(DeviceMemory, self).__init__()
        self.shapes = {}
        self.next = 0x1000

    def alloc(self, nbytes):
        pointer = self.next
        self.next += int(nbytes) + 0x100
        self[pointer] = np.zeros(int(nbytes) // 4, np.float32)
        return pointer

    def write(self, pointer, array):
        flat = np.ascontiguousarray(array, np.float32).reshape(-1)
        assert flat.size == self[pointer].size, "device copy of %d floats into %d" % (flat.size, self[pointer].size)
        self[pointer][:] = flat
        self.shapes[pointer] = array.shape


def make_pycuda(gpu_name="NVIDIA Tegra X1", compute_capability=(5, 3), trt=None):
    """A ``pycuda.driver``-shaped module sharing its device memory with the TensorRT stand-in ``trt``."""
    cuda = types.ModuleType("pycuda_driver_standin")
    memory = DeviceMemory()
    cuda.memory = memory
    cuda.copies = {"htod": 0, "dtoh": 0}
    if trt is not None:
        trt.device_memory = memory

    class DeviceAllocation(object):
        def __init__(self, nbytes):
            self.pointer = memory.alloc(nbytes)

        def __int__(self):
            return self.pointer

    class Device(object):
        def __init__(self, index):
            self.index = index

        @staticmethod
        def count():
            return 1

        def name(self):
            return gpu_name

        def compute_capability(self):
            return compute_capability

    class Stream(object):
        handle = 7

        def synchronize(self):
            pass

    def mem_alloc(nbytes):
        return DeviceAllocation(nbytes)

    def memcpy_htod(dst, src):
        cuda.copies["htod"] += 1
        memory.write(int(dst), np.asarray(src))

    def memcpy_htod_async(dst, src, stream=None):
        memcpy_htod(dst, src)

    def memcpy_dtoh_async(dst, src, stream=None):
        cuda.copies["dtoh"] += 1
        np.copyto(dst.reshape(-1), memory[int(src)])

    def pagelocked_empty(shape, dtype):
        return np.empty(shape, dtype)

    for name, value in dict(Device=Device, Stream=Stream, mem_alloc=mem_alloc, memcpy_htod=memcpy_htod,
                            memcpy_htod_async=memcpy_htod_async, memcpy_dtoh_async=memcpy_dtoh_async,
                            pagelocked_empty=pagelocked_empty, init=lambda: None).items():
        setattr(cuda, name, value)
    return cuda


def header_of(engine_path):
    """The stand-in engine's JSON header (flags, calibration, workspace) from its file."""
    with open(engine_path, "rb") as handle:
        return json.loads(handle.read().partition(b"\n")[0].decode("ascii"))


def cache_header(data):
    return re.split(r"\r?\n", bytes(data).decode("ascii"))[0]
