"""The interface every backend implements, and the state of temporal models. Python 3.6-safe.

A *temporal* (recurrent) model takes state tensors besides the frame and returns their new
values besides the restored frame; the model file says which (``state`` in the ONNX metadata or
the bundle manifest, see :data:`edgerestore.export.onnx.STATE`): each entry names the input that
takes the state, the output that gives its next value, and what it is on a reset (``input``: a
copy of the current frame; ``zeros``). The backend keeps the state per *stream* (one camera, one
file: ``infer(frame, stream=...)``) and starts it afresh

* on the first frame of a stream and after :meth:`Backend.reset` (the pipeline calls it when a
  source reconnects or loops, or the preview leaves bypass),
* when the frame size changes, and
* on a scene cut: a 64x36 grey thumbnail of the frame differs from the previous frame's by more
  than ``cut_threshold`` levels on average. Measured on the real clips in ../shared/data/video
  with the ``mild`` and ``strong`` degradations: consecutive frames differ by 3.6-10 on average
  (12.3 at most, a fast pan), cuts between those clips by 65-92; the default is 30. Costs about
  0.3 ms per 1080p frame (a strided view, then OpenCV's area resize).

State entries marked ``"motion": "flow"`` are motion-compensated before they are fed back: moved
by the optical flow from this frame to the previous one (:mod:`edgerestore.runtime.motion`; about
8 ms per 1080p frame on a 2-core x86 machine). The time spent on the state counts in the
backend's inference time.

A frame-by-frame model never pays for any of this.

A model with a *noise-level input* (``level_input`` in the ONNX metadata: the name of a float32
``[1]`` input) is given each frame's sensor-noise level (:mod:`edgerestore.noiselevel`):
``noise_level`` = a number (the camera's, measured once: ``edgerestore noise-level``), or
``"auto"``: measured per stream from the still parts of consecutive frames
(:class:`~edgerestore.noiselevel.StaticNoiseMeter`; a single picture reads 0, a clean frame).

A model with a *codec input* (``codec_input``: a float32 ``[2]`` input) is told what the codec did
to each frame (:mod:`edgerestore.codecinput`): ``codec`` = ``"auto"`` (what the source read off
the frame: an H.264 frame's QP, a JPEG's quality; nothing = an uncompressed frame), ``"none"``,
``"jpeg:Q"`` or ``"h264:QP"``.
"""

import time

import numpy as np

from edgerestore import codecinput
from edgerestore.errors import ConfigError
from edgerestore.noiselevel import CUT_LEVELS, StaticNoiseMeter
from edgerestore.runtime.frames import crop, pad_to_multiple

CUT_THRESHOLD = CUT_LEVELS  # 30 levels: the noise meter skips pairs of frames across a cut by the same measure
THUMBNAIL = (64, 36)
TILE_ABOVE = 3840 * 2160
"""Frames of more pixels than a 4K frame run through a frame-by-frame model in overlapping tiles,
so a 64-megapixel photo does not need gigabytes of feature maps (a 4 GB board has no more)."""
TILE = 1024
"""Side of a tile (pixels, before the overlap)."""
TILE_OVERLAP = 64
"""Pixels each tile sees beyond its edges and throws away: more than the receptive field of every
preset (the deepest, ``small``, sees 52 px around a pixel), so tiled output equals whole-frame output."""


def thumbnail(image):
    """A small grey picture of ``image`` (float32 ``36x64``) for scene-cut detection."""
    import cv2

    height, width = image.shape[:2]
    step = max(1, min(height, width) // (4 * THUMBNAIL[1]))
    small = np.ascontiguousarray(image[::step, ::step])
    small = cv2.resize(small, THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)
    return small.mean(axis=2) if small.ndim == 3 else small


def parse_codec(value):
    """``"auto"``, ``"none"``, ``"jpeg:Q"``, ``"h264:QP"`` or a pair of strengths -> ``"auto"`` or
    the ``(jpeg, h264)`` strengths; a one-line error names the fix."""
    if isinstance(value, (tuple, list)) and len(value) == len(codecinput.FIELDS):
        return tuple(float(v) for v in value)
    text = str(value).strip().lower()
    if text in ("auto", "none"):
        return text if text == "auto" else codecinput.strengths()
    name, _, number = text.partition(":")
    try:
        if name == "jpeg":
            return codecinput.strengths("jpeg", jpeg_quality=int(number))
        if name == "h264":
            return codecinput.strengths("h264", h264_qp=float(number))
    except ValueError:
        pass
    raise ConfigError("codec %r: give auto, none, jpeg:QUALITY (1..100) or h264:QP (0..51), e.g. h264:28"
                      % (value,))


def parse_noise_level(value):
    """``"auto"`` or a level >= 0 (a number or its text); a one-line error names the fix."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        level = float(value)
    except (TypeError, ValueError):
        level = float("nan")
    if not level >= 0.0 or level == float("inf"):
        raise ConfigError("noise level %r: give auto or a number >= 0 (0 = a clean camera; "
                          "`edgerestore noise-level` measures yours)" % (value,))
    return level


def is_cut(shot, previous, threshold=CUT_THRESHOLD):
    """Whether two :func:`thumbnail` pictures of consecutive frames lie across a scene cut."""
    return float(np.abs(shot - previous).mean()) > threshold


class StreamState(object):
    """What a temporal model remembers about one stream between frames."""

    __slots__ = ("values", "size", "thumbnail", "frames", "picture")

    def __init__(self):
        self.values = None  # {state input name: array} after the last frame; None = start afresh
        self.size = None
        self.thumbnail = None
        self.frames = 0
        self.picture = None  # what the flow to the next frame is computed from (motion-compensated models)


class Backend(object):
    """load(model) -> warmup(shape) -> infer(frame) -> frame, info().

    Subclasses set ``name``, implement :meth:`probe`, :meth:`load` and :meth:`_run` (one padded
    ``uint8 HxWx3`` RGB frame in, the same out), and set ``self.stride`` in :meth:`load`. This base
    class pads frames to the stride (reflect), crops the result and times every call.

    Temporal models: :meth:`load` also sets ``self.state_spec`` (a list of state entries, see the
    module docstring) and the subclass implements :meth:`_run_state` instead of :meth:`_run`.
    """

    name = "base"
    options = {}
    """What the constructor takes besides ``threads``: ``{option: one line of help}``. Config, the
    service and bench read this declaration; :func:`~edgerestore.runtime.backends.create_backend`
    refuses an option a backend does not declare."""
    precisions = ()
    """Precisions the backend builds from one model file, chosen at :meth:`load` (``bench`` gives
    each a row); ``()``: it runs the file at the file's own precision."""

    def __init__(self, threads=None):
        self.threads = threads
        self.stride = 1
        self.model_path = None
        self.calls = 0
        self.total_seconds = 0.0
        self.state_spec = None
        self.streams = {}
        self.scene_cuts = True
        self.cut_threshold = CUT_THRESHOLD
        self.resets = {"first": 0, "requested": 0, "size": 0, "cut": 0}
        self.flow_estimator = None
        self.level_input = None  # a noise-level model's level input (set by load)
        self.noise_level = "auto"
        self.level_meters = {}
        self.level_now = 0.0
        self.codec_input = None  # a codec model's codec input (set by load)
        self.codec = "auto"
        self.codec_now = codecinput.strengths()
        self.frame_filter = None  # the motion deblur stage after the model (runtime/framefilter.py)
        self.exposure = "auto"  # what the stage is told of the exposure: the frame's, or a fixed share

    def set_deblur(self, value):
        """``"motion"``: run the motion deblur stage (:mod:`edgerestore.runtime.framefilter`) of the filter
        file beside the loaded model on every restored frame of a moving video; ``"none"``: nothing."""
        from edgerestore.runtime import framefilter

        if framefilter.parse_deblur(value) == "none":
            self.frame_filter = None
            return self
        path = framefilter.sidecar(self.model_path)
        if path is None:
            raise ConfigError("%s has no motion deblur filter (%s beside it): use --model nano-codec, which ships "
                              "one, or --deblur none" % (self.model_path, framefilter.SUFFIX))
        self.frame_filter = framefilter.MotionDeblur(framefilter.FrameFilter.load(path))
        return self

    def set_exposure(self, value):
        """``"auto"`` (each frame's, where the camera reports it) or a fixed share of the frame interval
        (:func:`~edgerestore.runtime.framefilter.parse_exposure`), for the motion deblur stage."""
        from edgerestore.runtime.framefilter import parse_exposure

        self.exposure = parse_exposure(value)
        return self

    def set_noise_level(self, value):
        """``"auto"`` or a fixed level (:func:`parse_noise_level`); models without a level input
        ignore it."""
        self.noise_level = parse_noise_level(value)
        self.level_meters = {}
        return self

    def stream_level(self, stream, image):
        """The noise level to run ``stream``'s next frame ``image`` with."""
        if self.noise_level != "auto":
            return self.noise_level
        meter = self.level_meters.get(stream)
        if meter is None:
            meter = self.level_meters[stream] = StaticNoiseMeter()
        return meter.update(image)

    def set_codec(self, value):
        """``"auto"`` or a fixed codec (:func:`parse_codec`); models without a codec input ignore it."""
        self.codec = parse_codec(value)
        return self

    def condition_feeds(self):
        """``{input: float32}`` of a noise-level model's level and a codec model's strengths."""
        feeds = {}
        if self.level_input is not None:
            feeds[self.level_input] = np.array([self.level_now], np.float32)
        if self.codec_input is not None:
            feeds[self.codec_input] = np.array(self.codec_now, np.float32)
        return feeds

    @classmethod
    def probe(cls):
        """``None`` when the backend can run here, else a one-line reason naming the fix."""
        raise NotImplementedError

    def load(self, model_path, **options):
        raise NotImplementedError

    def _run(self, image):
        raise NotImplementedError

    def _run_state(self, image, state):
        """Temporal models: ``(restored frame, {state input: next value})`` for one padded frame
        and the state after the previous frame (``{state input: value}``)."""
        raise NotImplementedError

    @property
    def temporal(self):
        """Whether the loaded model carries state from frame to frame."""
        return bool(self.state_spec)

    @property
    def motion_compensated(self):
        """Whether some of the state is moved by the optical flow before it is fed back."""
        return any(entry.get("motion") == "flow" for entry in self.state_spec or ())

    def initial_state(self, image):
        """The state of a fresh stream whose first (padded) frame is ``image``."""
        state = {}
        for entry in self.state_spec or ():
            reset = entry.get("reset", "input")
            if reset == "input":
                state[entry["input"]] = image
            elif reset == "zeros":
                state[entry["input"]] = self.zeros_state(entry, image)
            else:
                raise ValueError("unknown state reset %r of %s" % (reset, entry["input"]))
        return state

    def zeros_state(self, entry, image):
        """A zero state tensor for ``entry`` at the size of ``image``: ``[1, C, H/s, W/s]`` (nchw)
        or ``[1, H/s, W/s, C]`` (nhwc), ``C`` = ``channels``, ``s`` = ``stride`` of the entry."""
        height, width = image.shape[:2]
        scale = int(entry.get("stride", 1))
        channels = int(entry["channels"])
        h, w = height // scale, width // scale
        shape = (1, channels, h, w) if entry.get("layout", "nchw") == "nchw" else (1, h, w, channels)
        return np.zeros(shape, np.dtype(entry.get("dtype", "float32")))

    def reset(self, stream=None):
        """Forget the state of ``stream`` (``None``: the default stream) and its noise meter's readings;
        the next frame starts afresh."""
        self.level_meters.pop(stream, None)
        if self.frame_filter is not None:
            self.frame_filter.reset(stream)
        state = self.streams.get(stream)
        if state is not None and state.values is not None:
            state.values = None
            self.resets["requested"] += 1

    def reset_all(self):
        """Forget every stream."""
        for stream in list(self.streams):
            self.reset(stream)
        self.level_meters = {}
        if self.frame_filter is not None:
            self.frame_filter.reset_all()

    def _stream_state(self, stream, image):
        """The state to run ``image`` with (a fresh one after a cut, a size change or a reset)."""
        state = self.streams.get(stream)
        if state is None:
            state = self.streams[stream] = StreamState()
        shot = thumbnail(image) if self.scene_cuts else None
        fresh = state.values is None
        if not fresh and state.size != image.shape:
            fresh = True
            self.resets["size"] += 1
        elif not fresh and shot is not None and state.thumbnail is not None and \
                is_cut(shot, state.thumbnail, self.cut_threshold):
            fresh = True
            self.resets["cut"] += 1
        elif fresh and state.frames == 0:
            self.resets["first"] += 1
        state.thumbnail = shot
        state.size = image.shape
        state.frames += 1
        if self.motion_compensated:
            self._compensate(state, image, fresh)
        if fresh:
            state.values = self.initial_state(image)
        return state

    def _compensate(self, state, image, fresh):
        """Move the state entries marked ``"motion": "flow"`` to where the picture now is."""
        from edgerestore.runtime import motion

        if self.flow_estimator is None:
            self.flow_estimator = motion.FlowEstimator()
        picture = self.flow_estimator.prepare(image)
        previous, state.picture = state.picture, picture
        if fresh or previous is None:
            return
        flow = self.flow_estimator.flow(picture, previous, image.shape)
        if flow is None:
            return
        for entry in self.state_spec:
            if entry.get("motion") == "flow":
                name = entry["input"]
                state.values[name] = motion.warp_state(state.values[name], entry, flow)

    def infer(self, image, stream=None, codec=None, exposure=None):
        """Restore one RGB uint8 ``HxWx3`` frame of any size; returns a frame of the same size.

        A temporal model continues ``stream`` (any hashable; ``None`` = the default stream), and so
        does a noise-level model's ``"auto"`` level. ``codec``: the frame's codec strengths as its
        source read them (:class:`~edgerestore.runtime.frames.Frame`), for a codec model's ``"auto"``;
        ``exposure``: the exposure's share of the frame interval where the camera reports it, for the
        motion deblur stage.
        """
        if self.level_input is not None:
            self.level_now = self.stream_level(stream, image)
        if self.codec_input is not None:
            self.codec_now = self.codec if self.codec != "auto" else (codec or codecinput.strengths())
        if not self.state_spec and image.shape[0] * image.shape[1] > TILE_ABOVE:
            out = self._infer_tiled(image)
        else:
            out = self._infer_frame(image, stream)
        if self.frame_filter is not None:
            start = time.perf_counter()
            # told the frame's noise level: the model's, or measured here for a model without a level input
            level = self.level_now if self.level_input is not None else self.stream_level(stream, image)
            out = self.frame_filter(out, image, stream, level, exposure if self.exposure == "auto" else self.exposure)
            self.total_seconds += time.perf_counter() - start
        return out

    def _infer_frame(self, image, stream):
        padded, size = pad_to_multiple(image, self.stride)
        if self.state_spec:
            start = time.perf_counter()
            state = self._stream_state(stream, padded)
            out, state.values = self._run_state(padded, state.values)
        else:
            start = time.perf_counter()
            out = self._run(padded)
        self.total_seconds += time.perf_counter() - start
        self.calls += 1
        return crop(out, size)

    def _infer_tiled(self, image, tile=TILE, overlap=TILE_OVERLAP):
        """:meth:`infer` of a big frame as overlapping tiles whose edges are thrown away. Tiles
        start on multiples of the model's stride, so each sees the same patch grid as the whole
        frame would."""
        stride = max(1, int(self.stride))
        tile = max(stride, tile - tile % stride)
        overlap = -(-overlap // stride) * stride
        height, width = image.shape[:2]
        out = np.empty_like(image)
        for top in range(0, height, tile):
            for left in range(0, width, tile):
                y0, x0 = max(0, top - overlap), max(0, left - overlap)
                y1, x1 = min(height, top + tile + overlap), min(width, left + tile + overlap)
                piece = self._infer_frame(np.ascontiguousarray(image[y0:y1, x0:x1]), None)
                bottom, right = min(height, top + tile), min(width, left + tile)
                out[top:bottom, left:right] = piece[top - y0:bottom - y0, left - x0:right - x0]
        return out

    def warmup(self, height, width, runs=3):
        """Run a few frames of this size so that allocations and kernel choices happen now."""
        frame = np.zeros((height, width, 3), np.uint8)
        for _ in range(runs):
            self.infer(frame, stream=("warmup",))
        self.streams.pop(("warmup",), None)
        self.level_meters.pop(("warmup",), None)
        self.calls, self.total_seconds = 0, 0.0
        self.resets = dict((k, 0) for k in self.resets)

    def info(self):
        """What runs: backend, model, threads, stride, and the mean inference time so far."""
        info = {
            "backend": self.name,
            "model": self.model_path,
            "threads": self.threads,
            "stride": self.stride,
            "mean_ms": 1000.0 * self.total_seconds / self.calls if self.calls else None,
        }
        if self.level_input is not None:
            info["noise_level"] = {"setting": self.noise_level, "last": round(float(self.level_now), 3)}
        if self.codec_input is not None:
            info["codec"] = {"setting": self.codec, "last": [round(float(v), 3) for v in self.codec_now]}
        if self.frame_filter is not None:
            info["frame_filter"] = {"file": self.frame_filter.path, "tile": self.frame_filter.tile,
                                    "frames_filtered": self.frame_filter.filtered,
                                    "tiles_filtered": self.frame_filter.tiles_filtered}
        if self.state_spec:
            info["temporal"] = {"state": [entry["input"] for entry in self.state_spec], "streams": len(self.streams),
                                "motion_compensated": self.motion_compensated,
                                "resets": dict(self.resets), "scene_cuts": self.scene_cuts,
                                "cut_threshold": self.cut_threshold}
        return info

    def close(self):
        pass
