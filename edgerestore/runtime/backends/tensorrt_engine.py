"""TensorRT on the board: the INT8 calibration cache format, the engine cache and the build.

TensorRT engines are not portable (tuned to one GPU and one TensorRT version), so a bundle holds
the ONNX graph and, for INT8, a calibration cache in the format ``IInt8EntropyCalibrator2`` reads
and writes::

    TRT-8201-EntropyCalibration2
    frame: 3f810204          <- tensor name: float32 scale (amax / 127), big-endian hex bits

:func:`plan_build` decides what to build (a GPU without INT8, the Nano's sm_53, plans FP16 with a
warning) and names the engine by model sha256 + TensorRT version + GPU + precision + input shape
(:func:`engine_key`); :func:`build_engine` makes the real TensorRT calls. TensorRT 10 rejects a
cache whose header names another version, so the calibrator rewrites the header; if TensorRT
still wants batches, it feeds the package's calibration photos. Torch-free, Python 3.6-safe:
``edgerestore build-engine`` and the TensorRT backend run this on a Jetson.
"""

import os
import re
import struct

from edgerestore.files import cache_root, file_sha256

ALGORITHM = "EntropyCalibration2"
CALIBRATION_CACHE = "calibration.cache"


# ---------------------------------------------------------------------------------------------
# calibration cache format (IInt8EntropyCalibrator2)


def version_number(version):
    """TensorRT's NV_TENSORRT_VERSION for a version string: 8.2.1 -> 8201, 10.3.0 -> 100300."""
    parts = [int(p) for p in re.findall(r"\d+", str(version))[:3]]
    parts += [0] * (3 - len(parts))
    major, minor, patch = parts
    if major >= 10:
        return major * 10000 + minor * 100 + patch
    return major * 1000 + minor * 100 + patch


def scale_to_hex(scale):
    """The 8 hex digits TensorRT writes for a float32 scale (its IEEE-754 bits, big-endian)."""
    return "%08x" % struct.unpack(">I", struct.pack(">f", float(scale)))[0]


def hex_to_scale(text):
    return struct.unpack(">f", struct.pack(">I", int(text, 16)))[0]


def format_cache(scales, version):
    """Calibration cache bytes for ``{tensor name: scale}`` as TensorRT ``version`` writes them."""
    lines = ["TRT-%d-%s" % (version_number(version), ALGORITHM)]
    for name in sorted(scales):
        lines.append("%s: %s" % (name, scale_to_hex(scales[name])))
    return ("\n".join(lines) + "\n").encode("ascii")


def parse_cache(data):
    """``(header, {tensor name: scale})`` of a calibration cache; raises ValueError when malformed."""
    text = data.decode("ascii") if isinstance(data, bytes) else data
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not re.match(r"^TRT-\d+-\w+$", lines[0]):
        raise ValueError("not a TensorRT calibration cache (first line %r)" % (lines[0] if lines else ""))
    scales = {}
    for line in lines[1:]:
        name, sep, value = line.rpartition(": ")
        if not sep or not re.match(r"^[0-9a-fA-F]{8}$", value.strip()):
            raise ValueError("malformed calibration cache line %r" % line)
        scales[name] = hex_to_scale(value.strip())
    return lines[0], scales


def retarget_cache(data, version):
    """The same scales under the header TensorRT ``version`` expects (it rejects other versions)."""
    _, scales = parse_cache(data)
    return format_cache(scales, version)


# ---------------------------------------------------------------------------------------------
# engine cache and build plan (board side)


def _slug(text):
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(text)).strip("-") or "unknown"


def engine_key(model_sha256, trt_version, gpu_name, precision, shape):
    """File name of a cached engine: everything that makes an engine unusable elsewhere is in it."""
    dims = "x".join(str(int(d)) for d in shape)
    return "%s_trt%s_%s_%s_%s.engine" % (model_sha256[:16], _slug(trt_version), _slug(gpu_name), precision, dims)


def timing_cache_name(trt_version, gpu_name):
    return "timing_trt%s_%s.cache" % (_slug(trt_version), _slug(gpu_name))


class BuildPlan(object):
    """What :func:`build_engine` will do; ``edgerestore build-engine --check`` prints it."""

    def __init__(self, onnx_path, model_sha256, shape, precision, requested, trt_version, gpu_name,
                 gpu_int8, workspace_mb, engine_path, timing_cache_path, calibration_cache=None,
                 warnings=None, state=None, level=None, codec=None):
        self.onnx_path = onnx_path
        self.level = level  # a noise-level model's level input name
        self.codec = codec  # a codec model's codec input name
        self.model_sha256 = model_sha256
        self.shape = tuple(shape)
        self.precision = precision
        self.requested = requested
        self.trt_version = trt_version
        self.gpu_name = gpu_name
        self.gpu_int8 = gpu_int8
        self.workspace_mb = workspace_mb
        self.engine_path = engine_path
        self.timing_cache_path = timing_cache_path
        self.calibration_cache = calibration_cache
        self.warnings = list(warnings or [])
        self.state = list(state or [])  # a temporal model's state tensors (manifest entries with shapes)

    def flags(self):
        """Builder flags, by TensorRT's names."""
        return {"fp32": [], "fp16": ["FP16"], "int8": ["FP16", "INT8"]}[self.precision]

    def describe(self):
        lines = [
            "model      %s (sha256 %s...)" % (self.onnx_path, self.model_sha256[:16]),
            "input      float32 %s (NHWC RGB 0..255; the backend converts uint8 frames)" % "x".join(map(str, self.shape)),
            "TensorRT   %s on %s" % (self.trt_version, self.gpu_name),
            "precision  %s (builder flags: %s)" % (self.precision.upper(), ", ".join(self.flags()) or "none"),
            "workspace  %s" % ("%d MB" % self.workspace_mb if self.workspace_mb else "TensorRT default"),
            "engine     %s" % self.engine_path,
            "timing     %s" % self.timing_cache_path,
        ]
        if self.precision == "int8":
            lines.append("calibrate  IInt8EntropyCalibrator2 reading %s (header rewritten to TRT %s)"
                         % (self.calibration_cache, version_number(self.trt_version)))
        for entry in self.state:
            lines.append("state      %s <- %s, float32 %s (reset: %s)" % (
                entry["input"], entry["output"], "x".join(str(d) for d in entry["shape"]), entry.get("reset")))
        return lines


def plan_build(onnx_path, shape, precision, trt_version, gpu_name, gpu_int8, workspace_mb=None,
               calibration_cache=None, cache_dir=None, state=None, level=None, codec=None):
    """The :class:`BuildPlan` for an ONNX artifact on this GPU; INT8 on a GPU without it plans FP16."""
    warnings = []
    requested = precision
    if precision == "int8" and not gpu_int8:
        warnings.append("%s has no INT8 (sm_53 Maxwell and older): building FP16 instead" % gpu_name)
        precision = "fp16"
    if precision == "int8" and not calibration_cache:
        warnings.append("no calibration cache in the bundle: building FP16 instead (re-export for INT8)")
        precision = "fp16"
    sha = file_sha256(onnx_path)
    root = os.path.join(cache_dir or cache_root(), "engines")
    return BuildPlan(
        onnx_path=str(onnx_path), model_sha256=sha, shape=shape, precision=precision, requested=requested,
        trt_version=trt_version, gpu_name=gpu_name, gpu_int8=gpu_int8, workspace_mb=workspace_mb,
        engine_path=os.path.join(root, engine_key(sha, trt_version, gpu_name, precision, shape)),
        timing_cache_path=os.path.join(root, timing_cache_name(trt_version, gpu_name)),
        calibration_cache=calibration_cache if precision == "int8" else None, warnings=warnings, state=state,
        level=level, codec=codec,
    )


# ---------------------------------------------------------------------------------------------
# the calibrator and the build (the real TensorRT calls)


def package_calibration_frames(shape, limit=8):
    """Clean package photos fitted to ``shape`` = (1, H, W, 3): batches when TensorRT must recalibrate."""
    import cv2
    import numpy as np

    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "calibration_data")
    names = sorted(n for n in os.listdir(folder) if n.startswith("calib-"))[:limit]
    height, width = shape[1], shape[2]
    frames = []
    for name in names:
        image = cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR)[:, :, ::-1]
        h, w = image.shape[:2]
        scale = max(float(height) / h, float(width) / w)
        image = cv2.resize(image, (max(width, int(round(w * scale))), max(height, int(round(h * scale)))))
        top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
        frames.append(np.ascontiguousarray(image[top:top + height, left:left + width]).astype(np.float32))
    return frames


CALIBRATION_LEVEL = 0.5
"""The noise level a noise-level model is recalibrated at on the board (5 levels of 255)."""
CALIBRATION_CODEC = (0.0, 1.0)
"""The codec strengths a codec model is recalibrated at on the board (H.264 at QP 30)."""


def make_calibrator(trt, cuda, cache_bytes, frames, write_path=None):
    """An ``IInt8EntropyCalibrator2`` that serves ``cache_bytes`` and, if TensorRT asks, ``frames``.

    ``frames`` are float32 arrays of the network input's shape without the batch axis (batch 1),
    or, for a network with several inputs (a temporal model), ``{input name: array with the batch
    axis}`` per batch.
    """

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.cache = cache_bytes
            self.frames = list(frames)
            self.index = 0
            self.device = None
            self.written = None

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            if self.index >= len(self.frames):
                return None
            item = self.frames[self.index]
            self.index += 1
            batches = item if isinstance(item, dict) else {names[0]: item[None]}
            if self.device is None:
                self.device = dict((n, cuda.mem_alloc(batches[n].nbytes)) for n in names)
            for name in names:
                cuda.memcpy_htod(self.device[name], batches[name])
            return [int(self.device[n]) for n in names]

        def read_calibration_cache(self):
            return self.cache

        def write_calibration_cache(self, cache):
            self.written = bytes(cache)
            if write_path:
                with open(write_path, "wb") as handle:
                    handle.write(self.written)

    return EntropyCalibrator()


def _atomic_write(path, data):
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder)
    tmp = path + ".part"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def build_engine(plan, trt, cuda=None, log=None):
    """Build the engine ``plan`` describes with TensorRT (module ``trt``); writes and returns its path."""
    log = log or (lambda message: None)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    with open(plan.onnx_path, "rb") as handle:
        if not parser.parse(handle.read()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError("TensorRT cannot parse %s: %s" % (plan.onnx_path, errors))
    config = builder.create_builder_config()
    if plan.workspace_mb:
        if hasattr(config, "set_memory_pool_limit"):  # TensorRT >= 8.4
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mb << 20)
        else:
            config.max_workspace_size = plan.workspace_mb << 20
    precision = plan.precision
    if precision == "int8" and not builder.platform_has_fast_int8:
        log("warning: %s reports no fast INT8: building FP16 instead" % plan.gpu_name)
        precision = "fp16"
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    calibrator = None
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        with open(plan.calibration_cache, "rb") as handle:
            cache = retarget_cache(handle.read(), plan.trt_version)
        batches = package_calibration_frames(plan.shape)
        if plan.state:  # a temporal model: each photo as the first frame of a stream
            import numpy as np

            shapes = dict((e["input"], e["shape"]) for e in plan.state)
            batches = [{"frame": f[None], "previous": f[None], "hidden": np.zeros(shapes["hidden"], np.float32)}
                       for f in batches]
        elif plan.level or plan.codec:  # each photo at a noisy camera's level, as a video call's frame
            import numpy as np

            conditions = {}
            if plan.level:
                conditions[plan.level] = np.array([CALIBRATION_LEVEL], np.float32)
            if plan.codec:
                conditions[plan.codec] = np.array(CALIBRATION_CODEC, np.float32)
            batches = [dict(conditions, frame=f[None]) for f in batches]
        calibrator = make_calibrator(trt, cuda, cache, batches, write_path=plan.engine_path + ".calib")
        config.int8_calibrator = calibrator
    timing = b""
    if os.path.isfile(plan.timing_cache_path):
        with open(plan.timing_cache_path, "rb") as handle:
            timing = handle.read()
    config.set_timing_cache(config.create_timing_cache(timing), False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT could not build an engine for %s (see its log above)" % plan.onnx_path)
    _atomic_write(plan.engine_path, bytes(serialized))
    _atomic_write(plan.timing_cache_path, bytes(config.get_timing_cache().serialize()))
    return plan.engine_path
