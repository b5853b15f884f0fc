"""``edgerestore bench``: speed and quality of every backend x precision x resolution on this board.

What is measured, per row (one method on one backend at one precision and one frame size):

* speed: ``warmup`` frames, then ``frames`` timed frames (or fewer when a row runs past
  ``max_seconds``; the row says ``capped``): median FPS (1000 / median ms), mean FPS, latency
  p50/p95/p99, per-stage ms (``infer`` = the backend's own run; ``pre_post`` = padding to the
  stride and cropping back), process CPU % (can exceed 100 with several threads), RSS, GMAC/s
  where the model's MACs/px are known, and the board's temperature, CPU clock and throttling
  before and after the row;
* quality (once per method x backend x precision, at the evaluation images' own sizes): PSNR,
  SSIM and MS-SSIM against the ground truth per subset of the evaluation set
  (:mod:`~edgerestore.benchmarks.evalset`), and against the FP32 reference of the same model for
  every other artifact of it (quantised files, other backends). Below ``parity_db`` dB against the
  reference, a row's status is ``exported-but-failed-parity``;
* video quality on the set's clips: each clip restored frame after frame (a temporal model keeps
  its state within a clip and starts afresh at the next), PSNR / SSIM per frame and the clip's
  flicker and temporal error (:class:`~edgerestore.runtime.quality.TemporalReference`).

What is benched: model artifacts (``.onnx``, ``.tflite``, ... - each on every registered backend
that runs its suffix, see :mod:`edgerestore.runtime.backends`), folders of artifacts or bundles
(``manifest.json`` names preset and precision), shipped presets by name, the OpenCV baselines
(:mod:`~edgerestore.benchmarks.baselines`) and optionally a teacher. A candidate that cannot load
or run gives ``failed`` rows with the reason; the others complete.

The result is one JSON document per run that follows :mod:`~edgerestore.benchmarks.schema` and is
validated before it is written. Runs on a board with numpy, OpenCV and one backend; Python 3.6-safe.
"""

import json
import math
import os
import re
import sys
import time

import numpy as np

from edgerestore import host
from edgerestore.benchmarks.baselines import BASELINES, create_baseline
from edgerestore.benchmarks.schema import FORMAT, VERSION, validate
from edgerestore.devices import detect
from edgerestore.errors import InputNotFoundError, UnknownNameError
from edgerestore.files import file_sha256
from edgerestore.runtime import artifacts
from edgerestore.runtime import quality as metrics

DEFAULT_SIZES = ((1280, 720), (1920, 1080))
DEFAULT_FRAMES = 300
DEFAULT_WARMUP = 10
DEFAULT_MAX_SECONDS = 60.0
MIN_FRAMES = 5  # a capped row still times at least this many frames
DEFAULT_PARITY_DB = 30.0
IDENTICAL_PSNR = 100.0  # PSNR reported for bit-identical outputs (JSON has no infinity)
TIMING_FRAMES = 2  # distinct frames cycled through in a timed row

# Filename tokens that give away an artifact's precision, checked in this order.
PRECISION_TOKENS = (
    ("int8", "int8"), ("uint8", "int8"), ("qdq", "int8"), ("quant", "int8"), ("quantized", "int8"),
    ("fp16", "fp16"), ("float16", "fp16"), ("half", "fp16"),
    ("fp32", "fp32"), ("float32", "fp32"), ("float", "fp32"),
)
# Integer kernels, or "quantized weights": a DequantizeLinear of an initializer (QDQ format). A
# QuantizeLinear alone is no sign of INT8: the FP32 graphs round their uint8 output with one.
INT8_ONNX_OPS = ("QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul", "quantized weights")

# Modules whose versions go into the result (imported ones only: never import torch for this).
SOFTWARE = (
    ("numpy", "numpy"), ("opencv", "cv2"), ("onnxruntime", "onnxruntime"), ("ai_edge_litert", "ai_edge_litert"),
    ("tflite_runtime", "tflite_runtime"), ("tensorrt", "tensorrt"), ("torch", "torch"),
)


class Candidate(object):
    """One thing to bench: a method on a backend at a precision, and how to load it.

    ``factory(threads)`` returns a loaded object with the Backend interface (``infer``,
    ``total_seconds``, ``info()``, ``close()``). ``error`` set = every row fails with it.
    ``group`` ties the artifacts of one model together (the FP32 reference is looked up in it).
    """

    def __init__(self, method, kind, backend, precision=None, artifact=None, factory=None, group=None,
                 error=None, params=None, macs_per_pixel=None, frames=None, warmup=None):
        self.method = method
        self.kind = kind
        self.backend = backend
        self.precision = precision
        self.artifact = artifact
        self.factory = factory
        self.group = group
        self.error = error
        self.params = params
        self.macs_per_pixel = macs_per_pixel
        self.frames = frames
        self.warmup = warmup
        self.skip = False  # True: not benched, only noted (its backend cannot run here)
        self.fixed_size = None  # (width, height) of an artifact built for one frame size
        self.label = "%s/%s/%s" % (method, backend, precision or "-")

    def __repr__(self):
        return "Candidate(%s)" % self.label


# --------------------------------------------------------------------------- discovery


def precision_from_name(path):
    """``nano_int8.onnx`` -> ``int8``; None when the name says nothing."""
    tokens = re.split(r"[^a-z0-9]+", os.path.basename(str(path)).lower())
    for token, precision in PRECISION_TOKENS:
        if token in tokens:
            return precision
    return None


def model_name_from_file(path):
    """``nano_int8.onnx`` -> ``nano``: the file stem without precision tokens."""
    stem = os.path.splitext(os.path.basename(str(path)))[0]
    known = set(token for token, _ in PRECISION_TOKENS)
    parts = [p for p in re.split(r"[_.\-]+", stem) if p and p.lower() not in known]
    return "_".join(parts) or stem


def read_onnx_metadata(path):
    """``(metadata dict, op types)`` of an ONNX file: with the onnx package if present, else ORT's
    metadata. The op types include ``"quantized weights"`` when a DequantizeLinear reads an initializer."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        ops = set(n.op_type for n in model.graph.node)
        weights = set(init.name for init in model.graph.initializer)
        if any(n.op_type == "DequantizeLinear" and n.input[0] in weights for n in model.graph.node):
            ops.add("quantized weights")
        return dict((p.key, p.value) for p in model.metadata_props), ops
    except ImportError:
        pass
    except Exception:
        return {}, set()
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return dict(session.get_modelmeta().custom_metadata_map), set()
    except Exception:
        return {}, set()


def artifact_metadata(path):
    """What an artifact says about itself: ``edgerestore.*`` keys without the prefix, plus a sidecar
    ``<artifact>.json`` when one sits beside it."""
    info, ops = {}, set()
    if str(path).lower().endswith(".onnx"):
        raw, ops = read_onnx_metadata(path)
        info = dict((k.split(".", 1)[1], v) for k, v in raw.items() if k.startswith("edgerestore."))
    sidecar = str(path) + ".json"
    if os.path.isfile(sidecar):
        try:
            with open(sidecar) as handle:
                info.update(json.load(handle))
        except (OSError, ValueError):
            pass
    if ops and "precision" not in info and any(op in ops for op in INT8_ONNX_OPS):
        info["precision"] = "int8"
    return info


_MACS_CACHE = {}


def macs_per_pixel_of(info):
    """MACs per output pixel of an artifact: from its metadata, or counted from its student config
    with torch when torch is here (host); None otherwise."""
    if info.get("macs_per_pixel"):
        return float(info["macs_per_pixel"])
    config = info.get("config")
    if not config:
        return None
    if config not in _MACS_CACHE:
        try:
            _MACS_CACHE[config] = host.student_macs(json.loads(config))
        except (ValueError, TypeError, KeyError):  # a config of another version
            _MACS_CACHE[config] = None
    return _MACS_CACHE[config]


def _load_factory(backend_name, path, precision=None):
    """How to load ``path`` on ``backend_name``: a backend that declares a ``precision`` option
    (TensorRT builds FP16 or INT8 engines from one file) gets it there; one that declares
    ``precisions`` takes it at load; the others run the file as it is."""

    def factory(threads):
        from edgerestore.runtime.backends import backend_class, create_backend

        cls = backend_class(backend_name)
        takes = "precision" in cls.options
        kwargs = {"threads": threads}
        if precision and takes:
            kwargs["precision"] = precision
        runner = create_backend(backend_name, **kwargs)
        if precision and not takes and cls.precisions:
            return runner.load(path, precision=precision)
        return runner.load(path)

    return factory


def artifact_candidates(path, backends=None, entry=None, kind="student", method=None):
    """Candidates for one model file: one per registered backend that runs its suffix (and per
    precision for backends that build their own). ``entry``: what a bundle manifest says about the
    file (preset, precision, backend, fixed_size as (width, height))."""
    path = str(path)
    suffix = artifacts.artifact_suffix(path)
    entry = dict((k, v) for k, v in (entry or {}).items() if v is not None)
    info = artifact_metadata(path)
    info.update(entry)
    group = info.get("preset") or model_name_from_file(path)
    method = method or group
    precision = info.get("precision") or precision_from_name(path) or "fp32"
    macs = macs_per_pixel_of(info)
    from_manifest = "backend" in entry
    names = [entry["backend"]] if from_manifest else list(artifacts.backends_for(path))
    skipped = []
    if backends:
        names = [n for n in names if n in backends]
    else:
        # A backend whose library is missing here (TensorRT on a laptop) is a note, not a row of
        # failures -- unless no backend at all can run the file, or the user asked for it.
        available = [n for n in names if _available(n)[0]]
        if available or from_manifest:
            skipped = [n for n in names if n not in available]
            names = available
    if not names and not skipped:
        guess = "unknown"
        if backends:
            return []
        reason = "unknown model file type %s; use one of %s" % (suffix or path, ", ".join(artifacts.known_types()))
        names, error = [guess], reason
    else:
        error = None
    out = []
    for name in names:
        precisions = () if (from_manifest or error) else _backend_precisions(name)
        for p in precisions or (precision,):
            factory = None if error else _load_factory(name, path, p if (precisions or from_manifest) else None)
            cand = Candidate(method, kind, name, p, path, factory, group=group, error=error, macs_per_pixel=macs)
            cand.fixed_size = info.get("fixed_size")
            out.append(cand)
    for name in skipped:
        cand = Candidate(method, kind, name, precision, path, group=group, error=_available(name)[1])
        cand.skip = True
        out.append(cand)
    return out


def _available(name):
    from edgerestore.runtime.backends import availability

    try:
        return availability(name)
    except Exception as exc:  # a backend module that does not even import, or one not in this build
        return False, _error_text(exc)


def _backend_precisions(name):
    """Precisions a backend builds itself from one artifact; () = the file's own."""
    from edgerestore.runtime.backends import backend_class

    try:
        return tuple(backend_class(name).precisions)
    except Exception:
        return ()


def bundle_candidates(folder, backends=None):
    """Candidates for every artifact a bundle lists (its backend, precision and fixed size come from
    the manifest). A bundle whose files do not match their sha256 gives one failed row naming the
    file. None when the folder is no bundle (it is then benched file by file)."""
    from edgerestore.runtime.bundle import MANIFEST, load_bundle

    if not os.path.isfile(os.path.join(folder, MANIFEST)):
        return None
    name = os.path.basename(os.path.normpath(folder))
    try:
        bundle = load_bundle(folder)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        return [Candidate(name, "student", "bundle", None, folder, error=_error_text(exc))]
    model = bundle.manifest.get("model") or {}
    preset = model.get("preset") or name
    out = []
    for art in bundle.artifacts:
        size = art.get("input_size") if art.get("fixed_size") else None
        entry = {"preset": preset, "precision": art.get("precision"), "backend": art.get("backend"),
                 "fixed_size": (int(size[1]), int(size[0])) if size else None,  # manifest sizes are [h, w]
                 "config": json.dumps(model["config"]) if model.get("config") else None}
        out.extend(artifact_candidates(bundle.path(art), backends, entry))
    return out


def shipped_artifacts(name):
    """Shipped weight files of preset ``name`` (``nano.onnx``, ``nano_int8.onnx``, ``nano.tflite``...)."""
    from edgerestore.weights import WEIGHTS_DIR

    files = [f for f in os.listdir(WEIGHTS_DIR) if artifacts.is_model_file(f)]
    presets = set(os.path.splitext(f)[0] for f in files if f.endswith(".onnx")) | {name}
    return sorted(os.path.join(WEIGHTS_DIR, f) for f in files if artifact_owner(os.path.splitext(f)[0], presets) == name)


def artifact_owner(stem, presets):
    """The preset a shipped file stem belongs to: the longest preset name it starts with, followed
    by nothing or a separator (``nano_int8`` -> nano, ``nano-fast`` -> nano-fast, not nano)."""
    owners = [p for p in presets if stem == p or (stem.startswith(p) and stem[len(p)] in "_.-")]
    return max(owners, key=len) if owners else None


def default_specs():
    """What ``edgerestore bench`` benches with no model given: every shipped preset."""
    from edgerestore.weights import shipped_presets

    return shipped_presets()


def discover(specs, backends=None):
    """Candidates for what the user named: files, folders/bundles, preset names (see module docstring)."""
    out = []
    for spec in specs:
        spec = str(spec)
        if os.path.isdir(spec):
            found = bundle_candidates(spec, backends)
            if found is not None:
                out.extend(found)
                continue
            files = sorted(f for f in os.listdir(spec) if artifacts.is_model_file(f))
            if not files:
                raise InputNotFoundError("no model files (%s) in %s" % (", ".join(artifacts.FILE_TYPES), spec))
            for name in files:
                out.extend(artifact_candidates(os.path.join(spec, name), backends))
        elif os.path.isfile(spec):
            if spec.lower().endswith(artifacts.CHECKPOINT_SUFFIXES):
                out.extend(artifact_candidates(str(host.checkpoint_to_onnx(spec)), backends,
                                               {"preset": model_name_from_file(spec)}))
            else:
                out.extend(artifact_candidates(spec, backends))
        else:
            files = shipped_artifacts(spec)
            if not files:
                if os.sep in spec or "." in os.path.basename(spec):
                    raise InputNotFoundError("model %s does not exist" % spec)
                raise artifacts.unknown_preset(spec)
            for path in files:
                out.extend(artifact_candidates(path, backends, {"preset": spec}))
    return out


def baseline_candidates(names):
    """Candidates for the OpenCV baselines called ``names``."""
    out = []
    for name in names:
        if name not in BASELINES:
            raise UnknownNameError("baseline", name, BASELINES)
        cls = BASELINES[name]

        def factory(threads, name=name):
            return create_baseline(name, threads=threads)

        out.append(Candidate(name, "baseline", cls.name, None, None, factory, group=None, params=dict(cls.params)))
    return out


# --------------------------------------------------------------------------- measuring


def _cpu_seconds():
    # User + system time of every thread of this process, at nanosecond resolution (os.times ticks at 10 ms).
    return time.process_time()


def memory_mb():
    """``(rss, peak rss)`` of this process in MB (/proc/self/status; getrusage's peak elsewhere)."""
    try:
        with open("/proc/self/status") as handle:
            text = handle.read()
        rss = re.search(r"VmRSS:\s+(\d+)", text)
        hwm = re.search(r"VmHWM:\s+(\d+)", text)
        return (int(rss.group(1)) / 1024.0 if rss else None, int(hwm.group(1)) / 1024.0 if hwm else None)
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return None, peak
    except Exception:
        return None, None


def environment_snapshot(root="/", command_path=None):
    """Thermal snapshot of the board plus the load average (a shared machine shows here)."""
    snap = detect.thermal_snapshot(root, command_path)
    try:
        snap["load_avg"] = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        snap["load_avg"] = None
    return snap


def percentile(values, q):
    """Linear-interpolated percentile (numpy's default) of a non-empty sequence."""
    return float(np.percentile(np.asarray(values, np.float64), q))


def time_frames(runner, frames, count, warmup=DEFAULT_WARMUP, max_seconds=None, min_frames=MIN_FRAMES):
    """Warm up, then time ``count`` frames through ``runner.infer`` (cycling ``frames``).

    Returns a dict: ``latencies`` and ``infer`` (seconds per frame), ``wall`` and ``cpu`` seconds,
    ``capped`` (stopped by ``max_seconds`` after at least ``min_frames``). A temporal model is timed
    on one picture moving back and forth by 2 pixels: cycling different pictures would be a scene
    cut every frame (a restart of its state is not what a stream costs), and a picture that holds
    perfectly still would skip the motion compensation (no flow between identical frames).
    """
    if getattr(runner, "temporal", False):
        frames = [frames[0], np.ascontiguousarray(np.roll(frames[0], 2, axis=1))]
    for index in range(warmup):
        runner.infer(frames[index % len(frames)])
    latencies, infer = [], []
    capped = False
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    for index in range(count):
        frame = frames[index % len(frames)]
        inner0 = runner.total_seconds
        start = time.perf_counter()
        runner.infer(frame)
        end = time.perf_counter()
        latencies.append(end - start)
        infer.append(runner.total_seconds - inner0)
        if max_seconds and end - wall0 > max_seconds and index + 1 >= min_frames and index + 1 < count:
            capped = True
            break
    wall = time.perf_counter() - wall0
    return {"latencies": latencies, "infer": infer, "wall": wall, "cpu": _cpu_seconds() - cpu0, "capped": capped}


def speed_figures(timing, macs_per_pixel=None, width=None, height=None):
    """The speed block of a row from :func:`time_frames`' output."""
    lat_ms = [1000.0 * s for s in timing["latencies"]]
    infer_ms = [1000.0 * s for s in timing["infer"]]
    p50 = percentile(lat_ms, 50)
    figures = {
        "frames": len(lat_ms),
        "capped": timing["capped"],
        "fps": 1000.0 / p50 if p50 > 0 else None,
        "fps_mean": len(lat_ms) / timing["wall"] if timing["wall"] > 0 else None,
        "latency_ms": {
            "p50": p50, "p95": percentile(lat_ms, 95), "p99": percentile(lat_ms, 99),
            "mean": float(np.mean(lat_ms)), "min": float(np.min(lat_ms)), "max": float(np.max(lat_ms)),
            "samples": [round(v, 3) for v in lat_ms],
        },
        "stage_ms": {
            "infer": float(np.median(infer_ms)),
            "pre_post": float(np.median([a - b for a, b in zip(lat_ms, infer_ms)])),
        },
        "cpu_percent": 100.0 * timing["cpu"] / timing["wall"] if timing["wall"] > 0 else None,
        "gmacs_per_s": None,
    }
    if macs_per_pixel and width and height and figures["fps"]:
        figures["gmacs_per_s"] = macs_per_pixel * width * height * figures["fps"] / 1e9
    return figures


def _mean_metrics(rows):
    return {
        "psnr": float(np.mean([r["psnr"] for r in rows])),
        "ssim": float(np.mean([r["ssim"] for r in rows])),
        "ms_ssim": float(np.mean([r["ms_ssim"] for r in rows])),
        "images": len(rows),
    }


def _capped_quality(a, b):
    q = metrics.quality(a, b)
    if not math.isfinite(q["psnr"]):
        q["psnr"] = IDENTICAL_PSNR
    return q


def evaluate_quality(runner, pairs, reference=None):
    """Quality block of one runner on the evaluation pairs, and its outputs (for its group's others).

    ``reference``: ``(label, outputs)`` of the FP32 reference, compared output to output. A subset
    with an image the runner cannot take (larger than a fixed-size model) is left out whole, with
    the reason in ``error``, so every mean covers the same images for every method.
    """
    start = time.perf_counter()
    outputs, failed = [], {}
    for pair in pairs:
        if pair.subset in failed:
            outputs.append(None)
            continue
        try:
            outputs.append(runner.infer(pair.degraded))
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            failed[pair.subset] = "%s/%s: %s" % (pair.subset, pair.name, _error_text(exc))
            outputs.append(None)
    per_subset = {}
    for pair, out in zip(pairs, outputs):
        if pair.subset not in failed:
            per_subset.setdefault(pair.subset, []).append(_capped_quality(out, pair.clean))
    block = {
        "vs_ground_truth": dict((subset, _mean_metrics(rows)) for subset, rows in sorted(per_subset.items())),
        "vs_reference": None,
        "error": "; ".join(failed[k] for k in sorted(failed)) or None,
    }
    if reference is not None:
        label, ref_outputs = reference
        both = [(out, ref) for pair, out, ref in zip(pairs, outputs, ref_outputs)
                if out is not None and ref is not None and pair.subset not in failed]
        if both:
            vs = _mean_metrics([_capped_quality(out, ref) for out, ref in both])
            vs["reference"] = label
            block["vs_reference"] = vs
    block["seconds"] = time.perf_counter() - start
    return block, outputs


def evaluate_video(runner, clips, references):
    """``{clip name: {psnr, ssim, flicker, temporal_mad, reference_mad, temporal_error, ...}}`` of one
    runner; ``references`` holds each clip's :class:`~edgerestore.runtime.quality.TemporalReference`
    (the ground truth's motion, computed once for every runner). A clip the runner cannot take is
    left out (``None``), with the others scored."""
    block = {}
    for clip in clips:
        reset = getattr(runner, "reset", None)
        if reset is not None:
            reset()  # a clip is a stream of its own
        try:
            outputs = [runner.infer(frame) for frame in clip.degraded]
        except KeyboardInterrupt:
            raise
        except Exception:
            block[clip.name] = None
            continue
        rows = [metrics.quality(out, clean) for out, clean in zip(outputs, clip.clean)]
        scores = references[clip.name].score(outputs)
        block[clip.name] = dict(psnr=float(np.mean([min(r["psnr"], IDENTICAL_PSNR) for r in rows])),
                                ssim=float(np.mean([r["ssim"] for r in rows])), **scores)
    if clips and getattr(runner, "reset", None) is not None:
        runner.reset()
    return block


PAN = 6.0
"""px per frame of the pan the motion deblur stage is timed on (``deblur="motion"``): every tile moves."""


def panning_frames(picture, count, speed=PAN, size=None):
    """``count`` frames of a camera panning ``speed`` px per frame over ``picture`` (scaled just enough
    to cover ``size`` (w, h) and the pan; default: the picture's own size): the motion deblur stage's
    worst case, where every tile moves."""
    import cv2

    width, height = size or (picture.shape[1], picture.shape[0])
    margin = int(math.ceil(speed * count)) + 1
    scale = max((width + margin) / float(picture.shape[1]), height / float(picture.shape[0]))
    big = cv2.resize(picture, (int(math.ceil(picture.shape[1] * scale)), int(math.ceil(picture.shape[0] * scale))),
                     interpolation=cv2.INTER_CUBIC)
    return [np.ascontiguousarray(big[:height, int(round(k * speed)):int(round(k * speed)) + width])
            for k in range(count)]


def timing_frames(pairs, width, height, count=TIMING_FRAMES):
    """Frames to time with: degraded evaluation images resized to ``width x height`` (real content:
    some backends and filters are content-dependent), or a fixed synthetic texture without a set."""
    import cv2

    frames = []
    for pair in (pairs or [])[:count]:
        frames.append(np.ascontiguousarray(cv2.resize(pair.degraded, (width, height), interpolation=cv2.INTER_AREA)))
    if not frames:
        rng = np.random.RandomState(1234)
        small = rng.randint(0, 256, size=(max(1, height // 16), max(1, width // 16), 3)).astype(np.uint8)
        base = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        noise = rng.randint(-8, 9, size=base.shape)
        frames.append(np.clip(base.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    return frames


# --------------------------------------------------------------------------- the run


def _file_facts(path):
    if not path or not os.path.isfile(path):
        return None, None
    return file_sha256(path), os.path.getsize(path) / 1e6


def _error_text(exc):
    text = str(exc).strip().splitlines()
    return "%s: %s" % (type(exc).__name__, text[0] if text else "")


def _empty_row(candidate, width, height, sha256, size_mb, threads):
    return {
        "id": "%s/%dx%d" % (candidate.label, width, height),
        "method": candidate.method,
        "kind": candidate.kind,
        "backend": candidate.backend,
        "precision": candidate.precision,
        "artifact": candidate.artifact,
        "sha256": sha256,
        "size_mb": size_mb,
        "width": int(width),
        "height": int(height),
        "status": "failed",
        "error": None,
        "threads": threads,
        "frames": 0,
        "warmup": 0,
        "capped": False,
        "fps": None,
        "fps_mean": None,
        "latency_ms": None,
        "stage_ms": None,
        "cpu_percent": None,
        "rss_mb": None,
        "peak_rss_mb": None,
        "macs_per_pixel": candidate.macs_per_pixel,
        "gmacs_per_s": None,
        "thermal": None,
        "quality": None,
        "params": candidate.params,
    }


def _order(candidates):
    """Baselines first, then each model's FP32 reference before its other artifacts, teachers last.

    Returns ``(ordered, reference_of)`` where ``reference_of[group]`` is the reference candidate.
    """
    reference_of = {}
    for cand in candidates:
        if cand.kind != "student" or cand.precision != "fp32" or cand.error:
            continue
        current = reference_of.get(cand.group)
        if current is None or (cand.backend == "onnxruntime" and current.backend != "onnxruntime"):
            reference_of[cand.group] = cand
    rank = {"baseline": 0, "student": 1, "teacher": 2}
    keyed = []
    for index, cand in enumerate(candidates):
        is_ref = reference_of.get(cand.group) is cand
        keyed.append(((rank[cand.kind], cand.group or "", 0 if is_ref else 1, index), cand))
    keyed.sort(key=lambda item: item[0])
    return [cand for _, cand in keyed], reference_of


def _distinct(candidates, notes):
    """Drop a candidate that would run the very same file (same sha256) the same way as an earlier one:
    two bundles of one model for two frame sizes share their size-free ONNX file."""
    seen, out = {}, []
    for cand in candidates:
        digest = _file_facts(cand.artifact)[0] if cand.artifact and not cand.error else None
        key = (digest, cand.backend, cand.precision, cand.fixed_size)
        if digest and key in seen:
            notes.append("%s is the same file as %s; benched once" % (cand.artifact, seen[key].artifact))
            continue
        if digest:
            seen[key] = cand
        out.append(cand)
    return out


def _unique_labels(candidates):
    """``nano/onnxruntime/fp32#2`` for a second file of the same kind; files built for different
    fixed sizes (a 720p and a 1080p TFLite) keep one label: their rows differ by size."""
    seen = {}
    for cand in candidates:
        key = (cand.label, cand.fixed_size)
        n = seen.get(key, 0) + 1
        seen[key] = n
        if n > 1:
            cand.label = "%s#%d" % (cand.label, n)


def fixed_size_of(runner):
    """``(width, height)`` a loaded backend is built for (TFLite/TensorRT report ``size`` as (H, W)), or None."""
    info = runner.info() or {}
    size = info.get("input_size") or info.get("size")
    try:
        height, width = [int(v) for v in size]
        return (width, height)
    except (TypeError, ValueError):
        return None


def _row_sizes(cand, fixed, sizes, notes):
    """The sizes to time ``cand`` at: all of them, or only its own for a fixed-size artifact
    (padding a 720p frame into a 1080p model would time the wrong thing)."""
    if not fixed:
        return sizes
    chosen = [s for s in sizes if tuple(s) == tuple(fixed)]
    if not chosen:
        notes.append("%s (%s) is built for %dx%d only, which is not among the benched sizes"
                     % (cand.label, cand.artifact, fixed[0], fixed[1]))
    return chosen


def software_versions():
    """Versions of the libraries in play (only modules already imported, plus numpy and OpenCV)."""
    import cv2

    import edgerestore

    versions = {"edgerestore": edgerestore.__version__, "python": sys.version.split()[0],
                "numpy": np.__version__, "opencv": cv2.__version__}
    for label, module in SOFTWARE:
        if label in versions:
            continue
        mod = sys.modules.get(module)
        versions[label] = (str(getattr(mod, "__version__", "")) or None) if mod else None
    return versions


def _finite(value):
    """Replace NaN/inf by None everywhere (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return dict((k, _finite(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def _candidate_quality(cand, runner, pairs, videos, reference_of, ref_outputs, notes):
    """The quality block of one candidate: vs ground truth, vs its FP32 reference (parity), video."""
    clips, clip_references = videos
    reference = None
    ref = reference_of.get(cand.group)
    if ref is not None and ref is not cand and cand.kind == "student":
        reference = (ref.label, ref_outputs[ref.group]) if ref.group in ref_outputs else None
        if reference is None:
            notes.append("%s: its FP32 reference %s failed, no parity figures" % (cand.label, ref.label))
    try:
        quality, outputs = evaluate_quality(runner, pairs, reference)
        if ref is cand:
            ref_outputs[cand.group] = outputs
        if clips:
            quality["video"] = evaluate_video(runner, clips, clip_references)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        quality = {"vs_ground_truth": {}, "vs_reference": None, "error": _error_text(exc)}
    return quality


def _time_row(row, cand, runner, frames, default_frames, warmup, max_seconds, parity_db, snapshot):
    """Time ``runner`` on ``frames`` into ``row``: speed, memory, thermal state, the parity verdict."""
    width, height = row["width"], row["height"]
    thermal_before = snapshot()
    warmup = cand.warmup if cand.warmup is not None else warmup
    try:
        timing = time_frames(runner, frames, cand.frames or default_frames, warmup=warmup, max_seconds=max_seconds)
        row.update(speed_figures(timing, cand.macs_per_pixel, width, height))
        row["warmup"] = warmup
        row["status"] = "ok"
        vs = (row.get("quality") or {}).get("vs_reference")
        if vs and vs["psnr"] is not None and vs["psnr"] < parity_db:
            row["status"] = "exported-but-failed-parity"
            row["error"] = "%.1f dB vs %s, below the %.0f dB parity bar" % (vs["psnr"], vs["reference"], parity_db)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        row["error"] = _error_text(exc)
    row["rss_mb"], row["peak_rss_mb"] = memory_mb()
    row["thermal"] = {"before": thermal_before, "after": snapshot()}


def run_bench(candidates, sizes=DEFAULT_SIZES, frames=DEFAULT_FRAMES, warmup=DEFAULT_WARMUP,
              max_seconds=DEFAULT_MAX_SECONDS, threads=None, evalset=None, parity_db=DEFAULT_PARITY_DB,
              label=None, command=None, notes=None, root="/", command_path=None, on_row=None, on_row_done=None,
              deblur="none"):
    """Bench every candidate at every size; returns the validated result dict (see the module docstring).

    ``evalset``: ``(path, pairs)`` from :mod:`~edgerestore.benchmarks.evalset`, or None (no quality
    block). ``on_row(row_id)`` / ``on_row_done(row)`` drive a progress bar. ``deblur="motion"``: the
    students run the motion deblur stage of the filter beside them (a student without one gets a
    failed row), timed on a :func:`panning_frames` pan; their quality is scored before, on single
    pictures, which the stage leaves alone.
    """
    from edgerestore.benchmarks.evalset import describe_evalset
    from edgerestore.runtime import framefilter

    started = time.time()
    deblur = framefilter.parse_deblur(deblur)
    sizes = [(int(w), int(h)) for w, h in sizes]
    path, pairs = evalset if evalset else (None, [])
    clips, clip_references = [], {}
    if path:
        from edgerestore.benchmarks.evalset import load_clips

        clips = load_clips(path)
        clip_references = dict((clip.name, metrics.TemporalReference(clip.clean)) for clip in clips)
    board = detect.detect_board(root, command_path)
    before = environment_snapshot(root, command_path)
    notes = list(notes or [])
    for cand in candidates:
        if cand.skip:
            notes.append("%s not benched on %s: %s" % (cand.artifact or cand.method, cand.backend, cand.error))
    ordered, reference_of = _order(_distinct([c for c in candidates if not c.skip], notes))
    _unique_labels(ordered)
    ref_outputs = {}
    frames_cache = {}
    rows = []
    for cand in ordered:
        sha256, size_mb = _file_facts(cand.artifact)
        runner, load_error, quality = None, cand.error, None
        if load_error is None:
            try:
                runner = cand.factory(threads)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                load_error = _error_text(exc)
        if runner is not None:
            if cand.precision is None and cand.kind != "baseline":
                cand.precision = runner.info().get("precision")
            if pairs:
                quality = _candidate_quality(cand, runner, pairs, (clips, clip_references), reference_of,
                                             ref_outputs, notes)
            if deblur != "none" and cand.kind == "student":
                cand.params = dict(cand.params or {}, deblur=deblur)
                try:
                    runner.set_deblur(deblur)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    load_error = _error_text(exc)
        run_threads = (runner.info().get("threads") if runner is not None else None) or threads
        fixed = cand.fixed_size or (fixed_size_of(runner) if runner is not None else None)
        for width, height in _row_sizes(cand, fixed, sizes, notes):
            row = _empty_row(cand, width, height, sha256, size_mb, run_threads)
            if on_row:
                on_row(row["id"])
            row["quality"] = quality
            if load_error is not None:
                row["error"] = load_error
            else:
                key = (width, height, deblur != "none" and cand.kind == "student")
                if key not in frames_cache:
                    frames_cache[key] = timing_frames(pairs, width, height)
                    if key[2]:
                        frames_cache[key] = panning_frames(frames_cache[key][0], TIMING_FRAMES)
                _time_row(row, cand, runner, frames_cache[key], frames, warmup, max_seconds, parity_db,
                          lambda: environment_snapshot(root, command_path))
            row = _finite(row)
            rows.append(row)
            if on_row_done:
                on_row_done(row)
        if runner is not None:
            try:
                runner.close()
            except Exception:
                pass
    result = {
        "format": FORMAT,
        "version": VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 2),
        "command": command,
        "label": label or board["name"],
        "board": board,
        "software": software_versions(),
        "settings": {
            "frames": int(frames),
            "warmup": int(warmup),
            "max_seconds": max_seconds,
            "threads": threads,
            "sizes": [[w, h] for w, h in sizes],
            "parity_db": float(parity_db),
            "frames_source": ("degraded evaluation images resized to each size" if pairs else "synthetic texture")
            + (" (the students: a %g px/frame pan over the first, for the motion deblur stage)" % PAN
               if deblur != "none" else ""),
            "deblur": deblur,
            "evalset": describe_evalset(path, pairs) if pairs else None,
        },
        "environment": {"before": before, "after": environment_snapshot(root, command_path)},
        "rows": rows,
        "notes": notes,
    }
    return validate(_finite(result))


def write_result(result, path):
    """Validate and write one result atomically (a half-written JSON never appears)."""
    validate(result)
    folder = os.path.dirname(os.path.abspath(str(path)))
    if not os.path.isdir(folder):
        os.makedirs(folder)
    tmp = str(path) + ".part"
    with open(tmp, "w") as handle:
        json.dump(result, handle, indent=1, sort_keys=False, allow_nan=False)
        handle.write("\n")
    os.replace(tmp, str(path))
    return path


def default_result_path(result, folder="results"):
    """``results/bench-<board>-<time>.json``."""
    slug = re.sub(r"[^a-z0-9]+", "-", result["label"].lower()).strip("-") or "board"
    stamp = result["created"].replace(":", "").replace("-", "")
    return os.path.join(folder, "bench-%s-%s.json" % (slug, stamp))
