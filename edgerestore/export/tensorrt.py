"""TensorRT on the host: the exporters of the ``tensorrt-*`` formats and the entropy calibration.

The host exports only the ONNX graph with float32 NHWC I/O (TensorRT 8.2 has no uint8 inputs)
and, for INT8, a calibration cache whose scales come from entropy calibration (the KL-divergence
threshold search TensorRT's calibrator runs) over the activations ONNX Runtime computes on the
real calibration frames. The cache format and the board-side build live in
:mod:`edgerestore.runtime.backends.tensorrt_engine`.
"""

from edgerestore.runtime.backends.tensorrt_engine import CALIBRATION_CACHE, format_cache

INT8_MAX = 127.0
HIST_BINS = 2048
QUANT_BINS = 128


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

    from edgerestore.export import conditions

    inputs = session.get_inputs()
    names = [i.name for i in inputs]
    conds = [c for c in conditions.TABLE if c.name in names]
    if conds:  # a noise-level or codec model: each frame at the calibration values in turn
        for n, frame in enumerate(frames):
            feeds = {names[0]: frame[None].astype(np.float32)}
            feeds.update({c.name: np.array(conditions.calibration_value(c, n), np.float32) for c in conds})
            yield feeds
        return
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
