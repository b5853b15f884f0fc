"""TensorRT: what the host puts in a bundle, and how the board builds (and caches) the engine.

TensorRT engines are not portable (they are tuned to one GPU and one TensorRT version), so the
host exports only the ONNX graph with float32 NHWC I/O (TensorRT 8.2 has no uint8 inputs) and,
for INT8, a calibration cache in the format ``IInt8EntropyCalibrator2`` reads and writes::

    TRT-8201-EntropyCalibration2
    frame: 3f810204          <- tensor name: float32 scale (amax / 127), big-endian hex bits

The scales come from entropy calibration (the KL-divergence threshold search TensorRT's
calibrator runs) over the activations ONNX Runtime computes on the real calibration frames.

On the board, :func:`build_engine` parses the ONNX, sets FP16 (and INT8 with a calibrator that
hands TensorRT the cache) and a timing cache, and serialises the engine under a key of model
sha256 + TensorRT version + GPU + precision + input shape (:func:`engine_key`), like
jetson-inference does. A GPU without INT8 (the Nano's sm_53) builds FP16 with a one-line warning.
TensorRT 10 rejects a cache whose header names another TensorRT version, so the calibrator
rewrites the header to the local version; if TensorRT still wants batches, the calibrator feeds
the package's calibration photos.

The real TensorRT / pycuda calls are the few in :func:`build_engine` and
:class:`~edgerestore.runtime.backends.tensorrt.TensorRTBackend`; everything else is plain Python
tested here against a stand-in shaped like TensorRT's Python API. This module imports neither
torch nor TensorRT at import time and is Python 3.6-safe (``edgerestore build-engine`` runs on a
Jetson Nano); the host-side exporters at the bottom import their tools lazily.
"""

import os
import re
import struct

from edgerestore.files import cache_root, file_sha256

ALGORITHM = "EntropyCalibration2"
CALIBRATION_CACHE = "calibration.cache"
INT8_MAX = 127.0
HIST_BINS = 2048
QUANT_BINS = 128


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
# entropy calibration (host side, numpy)


def entropy_threshold(hist, bin_width, quant_bins=QUANT_BINS):
    """The |x| threshold minimising KL(P || Q) between the histogram and its ``quant_bins`` quantization.

    ``hist`` counts |x| in ``len(hist)`` bins of ``bin_width`` from 0. For each candidate
    threshold (bin ``i``), P is the histogram clipped at ``i`` (outliers added to its last bin)
    and Q merges P's bins into ``quant_bins`` levels and spreads each level back evenly over the
    non-empty bins it came from; the best ``i`` gives amax = (i + 0.5) * bin_width.

    The first bin's count is replaced by the second's: after a ReLU most values are exactly 0, and
    that spike would otherwise make the search keep only ~6% of the range (every wider candidate
    smears the spike over a merged level), clipping most activations.
    """
    import numpy as np

    hist = np.array(hist, np.float64)
    if len(hist) > 1 and hist.sum() > 0:
        hist[0] = hist[1]
    if hist.sum() == 0:
        return 0.0
    last = int(np.nonzero(hist)[0][-1]) + 1
    if last <= quant_bins:
        return last * bin_width  # few distinct magnitudes: keep them all
    tail = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # tail[i] = hist[i:].sum()
    nonzero = (hist > 0).astype(np.float64)
    best_i, best_kl = last, np.inf
    for i in range(quant_bins, min(len(hist), last) + 1):
        p = hist[:i].copy()
        p[i - 1] += tail[i]
        edges = np.linspace(0, i, quant_bins + 1).round().astype(int)
        starts = np.unique(edges[:-1])
        sums = np.add.reduceat(hist[:i], starts)
        counts = np.add.reduceat(nonzero[:i], starts)
        level = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
        lengths = np.diff(np.append(starts, i))
        q = np.repeat(level, lengths) * nonzero[:i]
        total = q.sum()
        if total == 0:
            continue
        p /= p.sum()
        q /= total
        mask = p > 0
        qm = np.where(q[mask] > 0, q[mask], 1e-12)  # Q empty where P is not: heavy penalty, not inf
        kl = float(np.sum(p[mask] * np.log(p[mask] / qm)))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return (best_i + 0.5) * bin_width


def _frame_inputs(graph):
    """Names of the graph inputs that are frames (NHWC, 3 channels): the frame and a temporal
    model's previous output; its hidden features are not."""
    names = []
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[-1].HasField("dim_value") and dims[-1].dim_value == 3:
            names.append(value.name)
    return names or [graph.input[0].name]


def calibration_tensors(model):
    """Names of the tensors to give INT8 scales: the features between patchify and un-patchify.

    Frame-level tensors (the inputs, their reshapes, the residual add, a temporal model's blend,
    clamp and output) get none, so TensorRT keeps the layers that touch pixels in FP16: an INT8
    scale for 0..255 is 2 levels per step. Measured on a quickly trained ``small`` at 1080p
    (simulated INT8): parity 45.8 dB and PSNR vs ground truth -0.42 dB with the frame quantized,
    47.1 dB and -0.28 dB without.
    """
    graph = model.graph
    frame_level = set(_frame_inputs(graph))
    for node in graph.node:  # anything computed from pixels without a convolution is pixel-level
        if node.op_type not in ("Conv", "ConvTranspose") and set(node.input) & frame_level:
            frame_level.update(node.output)
    names = []
    for node in graph.node:
        if node.op_type in ("Conv", "ConvTranspose", "Relu") or (
                node.op_type == "Add" and not set(node.input) & frame_level):
            names += [n for n in node.output if n not in names and n not in frame_level]
    return names


def sequence_feeds(session, frames, run):
    """Inputs to calibrate a model on: each frame alone, or for a temporal model (more inputs) the
    frames as a clip run twice over, the state from the model's own previous outputs (``run(feeds)``
    returns the outputs by name)."""
    import numpy as np

    inputs = session.get_inputs()
    names = [i.name for i in inputs]
    if len(inputs) == 1:
        for frame in frames:
            yield {names[0]: frame[None].astype(np.float32)}
        return
    hidden_shape = [int(d) for d in inputs[2].shape]
    state = None
    for frame in list(frames) + list(frames):
        x = frame[None].astype(np.float32)
        previous, hidden = (x, np.zeros(hidden_shape, np.float32)) if state is None else state
        feeds = {names[0]: x, names[1]: previous, names[2]: hidden}
        outputs = run(feeds)
        restored = np.floor(outputs["restored"])  # the backend feeds back the truncated frame
        state = (restored, outputs["hidden_out"])
        yield feeds


def calibrate_onnx(onnx_path, frames, bins=HIST_BINS):
    """``{tensor name: scale}`` for the float-I/O graph's :func:`calibration_tensors`, on ``frames`` (uint8 HxWx3).

    Two passes like TensorRT's calibrator: the largest |x| of each tensor, then histograms of |x|
    over [0, max] and :func:`entropy_threshold`. Tensors that are always zero get no entry.
    A temporal model sees the frames as a clip (its state from its own outputs).
    """
    import numpy as np
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    names = calibration_tensors(model)
    existing = {o.name for o in model.graph.output}
    for name in names:
        if name not in existing:
            model.graph.output.extend([onnx.ValueInfoProto(name=name)])
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]

    def run(feeds):
        return dict(zip(outputs, session.run(outputs, feeds)))

    def activations(feeds, values):
        return dict((n, np.abs(v)) for n, v in values.items() if n in names)

    amax = dict((n, 0.0) for n in names)
    feeds_list = []
    for feeds in sequence_feeds(session, frames, run):
        feeds_list.append(feeds)
        for name, value in activations(feeds, run(feeds)).items():
            amax[name] = max(amax[name], float(value.max()))
    hists = dict((n, np.zeros(bins)) for n in names if amax[n] > 0)
    for feeds in feeds_list:
        for name, value in activations(feeds, run(feeds)).items():
            if name in hists:
                hists[name] += np.histogram(value, bins=bins, range=(0.0, amax[name]))[0]
    scales = {}
    for name, hist in hists.items():
        threshold = entropy_threshold(hist, amax[name] / bins)
        scales[name] = max(threshold, 1e-8) / INT8_MAX
    return scales


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
                 warnings=None, state=None):
        self.onnx_path = onnx_path
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
               calibration_cache=None, cache_dir=None, state=None):
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
    )


# ---------------------------------------------------------------------------------------------
# the calibrator and the build (the real TensorRT calls)


def package_calibration_frames(shape, limit=8):
    """Clean package photos fitted to ``shape`` = (1, H, W, 3): batches when TensorRT must recalibrate."""
    import cv2
    import numpy as np

    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "calibration_data")
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


# ---------------------------------------------------------------------------------------------
# host side: the exporters of the tensorrt-* formats (torch through edgerestore.export.onnx)


def _export_graph(job):
    from edgerestore.export.onnx import FLOAT_CONTRACT, export_onnx

    height, width = job.size
    path = job.out_dir / "model.trt.onnx"
    return export_onnx(job.student, path, height=height, width=width, opset=job.target.opset,
                       ir_version=job.target.ir_version, simplify=job.target.simplify, io=FLOAT_CONTRACT,
                       metadata=job.metadata(None))


def export_fp16(job, fmt):
    """Exporter of ``tensorrt-fp16``: the float-I/O ONNX graph at the target's frame size."""
    return job.shared("tensorrt-onnx", lambda: _export_graph(job))


def export_int8(job, fmt):
    """Exporter of ``tensorrt-int8``: the float-I/O graph plus its entropy calibration cache."""
    path = job.shared("tensorrt-onnx", lambda: _export_graph(job))
    scales = calibrate_onnx(path, job.calibration.frames)
    cache = job.out_dir / CALIBRATION_CACHE
    version = job.target.device.tensorrt or "8.2"
    cache.write_bytes(format_cache(scales, version))
    job.add_file(fmt, cache.name)
    return path
