"""The motion deblur stage: one 9x9 sharpening filter per tile of a video frame, after the student, told
the blur the camera's motion allows. numpy + OpenCV, torch-free, Python 3.6-safe (board code imports it).

Per frame of a stream: the optical flow from the previous input frame (:mod:`edgerestore.runtime.motion`)
gives each ``tile``-pixel tile its motion; a small CNN reads the blur's size off the input frame (the
mean over its most detailed ``patch``-pixel tiles, told the noise level); each tile's descriptor is
that size along its motion, capped at a whole frame interval's smear ("flow-bounded"), and a small MLP
turns it and the level into the taps of the tile's filter. A tile that did not move is left as the
student made it, and so is a still picture (no previous frame). The file is an ``.npz`` written by
:func:`save` from ``benchmarks/blur_estimate.py`` and ``benchmarks/global_filter.py`` checkpoints
(``python -m edgerestore.export.framefilter --help``); docs/distill.md has how it was trained and
measured.
"""

import json
import math
import os

import numpy as np

from edgerestore.blurkernel import blur_descriptor, blur_moments, linear_kernel
from edgerestore.errors import ConfigError

SUFFIX = ".filter.npz"
"""A model file's frame filter sits beside it: ``model.onnx`` -> ``model.filter.npz``."""

BUNDLE_FILE = "filter.npz"
"""In an export bundle (beside ``manifest.json``) the one filter serves every artifact."""

TILE = 64
"""Pixels per side of the tiles that get a filter of their own (the motion of a real scene varies
across the frame: parallax, a wide-angle lens, things that move)."""

CALL_TILES = 64
"""The most tiles one OpenCV call filters side by side (a call per tile costs ~7x per pixel; a
bound keeps a big frame's copy small and spreads the calls over the threads)."""

STILL = 0.5
"""A tile whose smear (its motion per frame times the exposure's share) is under this many pixels is
left alone."""

SHARE = 0.5
"""Where the camera does not report its exposure, a tile's blur is capped by the smear of this share of
the frame interval at its speed. A whole interval's (1) over-sharpened real clips (docs/distill.md,
"The motion deblur stage")."""

SPEED_STEP = 0.5
ANGLE_STEP = 7.5
"""A tile's motion is rounded to these (px per frame, degrees): neighbours that move alike get one
filter and one OpenCV call (a pan: one per row of tiles)."""

STRIDES = (1, 2, 2, 2, 1)
"""The estimator's 3x3 convolutions (each followed by a ReLU): their strides."""


def sidecar(model_path):
    """The frame-filter file that goes with ``model_path`` (``.onnx``, ``.tflite``, a ``.pt``
    checkpoint, ...): ``<stem>.filter.npz`` beside it, or a bundle's :data:`BUNDLE_FILE`; None when none."""
    stem = str(model_path)
    for suffix in (".trt.onnx", ".onnx", ".tflite", ".engine", ".plan", ".pt", ".pth"):
        if stem.lower().endswith(suffix):
            stem = stem[:-len(suffix)]
            break
    if os.path.isfile(stem + SUFFIX):
        return stem + SUFFIX
    folder = os.path.dirname(os.path.abspath(str(model_path)))
    bundled = os.path.join(folder, BUNDLE_FILE)
    return bundled if os.path.isfile(bundled) and os.path.isfile(os.path.join(folder, "manifest.json")) else None


def _conv3x3(x, weight, bias, stride):
    """``x`` [N,H,W,C] float32 through a 3x3 convolution (zero padding 1, ``stride``) with torch's
    ``weight`` [O,C,3,3] and ``bias`` [O]: [N,H',W',O] (a correlation, as torch computes it)."""
    n, h, w, c = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out_h, out_w = (h - 1) // stride + 1, (w - 1) // stride + 1
    s = padded.strides
    windows = np.lib.stride_tricks.as_strided(
        padded, (n, out_h, out_w, 3, 3, c), (s[0], s[1] * stride, s[2] * stride, s[1], s[2], s[3]))
    columns = windows.reshape(n * out_h * out_w, 9 * c)
    kernel = np.ascontiguousarray(weight.transpose(2, 3, 1, 0).reshape(9 * c, -1))  # (dy, dx, c) -> o
    return (columns @ kernel + bias).reshape(n, out_h, out_w, -1)


def detailed_tiles(image, patch, count):
    """The ``count`` most detailed ``patch``-pixel tiles of ``image`` (uint8 HxWx3) on a grid (most
    absolute step across first), as float32 [N,P,P,3] in 0..1 (a frame smaller than one tile: the
    whole frame). What the blur estimator reads, here and in ``benchmarks/blur_estimate.py``."""
    p = patch
    h, w = image.shape[:2]
    if h < p or w < p:
        return image[None].astype(np.float32) / 255.0
    import cv2

    ny, nx = h // p, w // p
    core = np.ascontiguousarray(image[:ny * p, :nx * p])
    steps = np.zeros(core.shape, np.uint8)
    steps[:, 1:] = cv2.absdiff(core[:, 1:], core[:, :-1])
    steps[:, ::p] = 0  # a step across a tile's left edge is not the tile's
    # each tile's total absolute step across, inside the tile (row-major tile order)
    detail = steps.reshape(ny, p, nx, p * steps.shape[2]).sum(axis=(1, 3), dtype=np.int64).reshape(-1)
    chosen = np.argsort(detail)[::-1][:count]
    tiles = [core[(i // nx) * p:(i // nx + 1) * p, (i % nx) * p:(i % nx + 1) * p] for i in chosen]
    return np.stack(tiles).astype(np.float32) / 255.0


class FrameFilter(object):
    """A loaded frame-filter file: :meth:`estimate` a frame's blur, :meth:`kernel` a descriptor (run
    it with :func:`filtered`). ``reads``: which frame the estimator was trained on (``input`` or the
    student's ``output``); ``student``: the student it was trained and measured after."""

    def __init__(self, arrays, path=None):
        self.path = None if path is None else str(path)
        self.arrays = dict((key, np.asarray(value)) for key, value in arrays.items())
        meta = json.loads(str(self.arrays.pop("meta")))
        self.patch = int(meta["patch"])
        self.patches = int(meta["patches"])
        self.size = int(meta["size"])
        self.student = meta.get("student")
        self.reads = meta.get("reads", "input")

    @classmethod
    def load(cls, path):
        """Read a :func:`save` file; a one-line error names the fix."""
        try:
            with np.load(str(path)) as data:
                arrays = dict((key, data[key]) for key in data.files)
        except (OSError, ValueError) as exc:
            raise ConfigError("frame filter %s cannot be read (%s): write it again with "
                              "`python -m edgerestore.export.framefilter`" % (path, exc))
        if "meta" not in arrays:
            raise ConfigError("%s is not a frame-filter file (no meta): write it with "
                              "`python -m edgerestore.export.framefilter`" % path)
        return cls(arrays, path)

    def tiles(self, image):
        """:func:`detailed_tiles` of ``image``, as this estimator reads it."""
        return detailed_tiles(image, self.patch, self.patches)

    def estimate(self, image, level=0.0):
        """The blur descriptor of ``image`` (3 floats: size and two elongations), told its noise level."""
        x = self.tiles(image)
        x = x - x.mean(axis=(1, 2, 3), keepdims=True)
        for k, stride in enumerate(STRIDES):
            x = np.maximum(_conv3x3(x, self.arrays["conv%d.weight" % k], self.arrays["conv%d.bias" % k], stride), 0.0)
        pooled = x.mean(axis=(1, 2))
        pooled = np.concatenate([pooled, np.full((len(pooled), 1), level, np.float32)], 1)
        return (pooled @ self.arrays["head.weight"].T + self.arrays["head.bias"]).mean(0)

    def kernel(self, descriptor, level=0.0):
        """The ``size x size`` filter (float32, taps summing to about 1) for a blur ``descriptor``."""
        h = np.concatenate([[level], np.asarray(descriptor, np.float32)]).astype(np.float32)
        for k in range(3):
            h = h @ self.arrays["mlp%d.weight" % k].T + self.arrays["mlp%d.bias" % k]
            if k < 2:
                h = np.maximum(h, 0.0)
        taps = self.arrays["delta"] + h @ self.arrays["bank"]
        return taps.reshape(self.size, self.size).astype(np.float32)



def filtered(piece, kernel):
    """``piece`` (uint8 HxW or HxWxC, ``kernel.shape // 2`` pixels of border included) through ``kernel``
    on every channel: uint8, rounded and saturated (float32 for a float32 piece); crop the border off."""
    import cv2

    return cv2.filter2D(piece, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def tile_motion(moving, frame_shape, scale, tile):
    """The median motion ``[rows, columns, 2]`` of each ``tile``-pixel tile of a frame of ``frame_shape``
    (h, w), from the motion field ``moving`` on the flow's grid, ``scale`` (sy, sx) frame px per cell.
    Tiles whose cells have the same shape are taken together (one numpy call per shape)."""
    h, w = frame_shape
    sy, sx = scale
    rows, columns = -(-h // tile), -(-w // tile)

    def spans(count, side, step):
        return [(int(k * tile / step), max(int(k * tile / step) + 1, int(math.ceil(min(side, (k + 1) * tile) / step))))
                for k in range(count)]

    ys, xs = spans(rows, h, sy), spans(columns, w, sx)
    out = np.zeros((rows, columns, 2), np.float32)
    groups = {}
    for r, (y0, y1) in enumerate(ys):
        for c, (x0, x1) in enumerate(xs):
            groups.setdefault((y1 - y0, x1 - x0), []).append((r, c, y0, x0))
    for (height, width), members in groups.items():
        blocks = np.stack([moving[y0:y0 + height, x0:x0 + width].reshape(-1, 2) for _, _, y0, x0 in members])
        medians = np.median(blocks, axis=1)
        for (r, c, _, _), value in zip(members, medians):
            out[r, c] = value
    return out


def line_descriptor(length, angle_deg):
    """The blur descriptor (size, elongation along x/y, along the diagonals) of a straight smear
    ``length`` px long at ``angle_deg``, drawn as the trainer draws it; none under :data:`STILL` px."""
    if length < STILL:
        return (0.0, 0.0, 0.0)
    return blur_descriptor(blur_moments(linear_kernel(length, angle_deg)))


def oriented(size, angle_deg):
    """A descriptor of ``size`` elongated along ``angle_deg`` (a line's, whatever its length)."""
    return (size, size * math.cos(2 * math.radians(angle_deg)), size * math.sin(2 * math.radians(angle_deg)))


def bounded(size, speed, angle_deg):
    """The estimated ``size`` along the motion's direction, at most a whole interval's smear."""
    return oriented(min(size, line_descriptor(speed, angle_deg)[0]), angle_deg)


class MotionDeblur(object):
    """The stage: ``stage(restored, image, stream, level)`` -> the restored frame, each moving tile
    through its own filter. ``restored``: the student's output of ``image`` (uint8 HxWx3, the input
    frame); ``stream``: which video it continues (the flow is from that stream's previous frame);
    ``level``: the frame's noise level; ``exposure``: the exposure's share of the frame interval where the
    camera reports it (else ``share``: each tile's blur is at most the smear of that share of the
    interval at its speed). :meth:`reset` forgets a stream (a cut, a reconnect).
    ``luma``: add the filter's correction of the luma to every colour (a third of the filtering; 0.03 dB
    less on moving frames, docs/distill.md)."""

    def __init__(self, weights, tile=TILE, threads=None, luma=False, share=SHARE):
        self.weights = weights
        self.share = float(share)
        self.tile = int(tile)
        self.luma = bool(luma)
        self.threads = int(threads or os.cpu_count() or 1)
        self.pool = None
        self.previous = {}
        self.flow_estimator = None
        self.path = weights.path
        self.filtered = 0  # frames at least one tile of which went through a filter
        self.tiles_filtered = 0

    def reset(self, stream=None):
        """Forget ``stream``'s previous frame: its next frame is left alone (nothing to measure against)."""
        self.previous.pop(stream, None)

    def reset_all(self):
        self.previous = {}

    def motion(self, image, stream):
        """``HxWx2`` float32 motion of ``image`` since the stream's previous frame (frame pixels, from the
        previous position to the current one) on the flow's grid, and the grid's scale; None when there
        is no previous frame of this size or nothing moved."""
        from edgerestore.runtime.motion import FlowEstimator

        if self.flow_estimator is None:
            self.flow_estimator = FlowEstimator()
        picture = self.flow_estimator.prepare(image)
        previous, self.previous[stream] = self.previous.get(stream), picture
        if previous is None or previous.shape != picture.shape:
            return None
        flow = self.flow_estimator.flow(picture, previous, image.shape)
        if flow is None:
            return None
        scale = float(image.shape[1]) / flow.field.shape[1], float(image.shape[0]) / flow.field.shape[0]
        return -flow.field * np.array(scale, np.float32), scale

    def __call__(self, restored, image, stream=None, level=0.0, exposure=None):
        found = self.motion(image, stream)
        if found is None:
            return restored
        moving, (sx, sy) = found
        h, w = restored.shape[:2]
        share = self.share if exposure is None else float(exposure)
        # (quantised motion, tile height, tile width) -> [(top, bottom, left, right)]: the tiles told
        # alike are stacked into one image and filtered in one call (a call per tile cost 7x the time)
        groups = {}
        motion = tile_motion(moving, (h, w), (sy, sx), self.tile)
        for row in range(motion.shape[0]):
            top, bottom = row * self.tile, min(h, (row + 1) * self.tile)
            for column in range(motion.shape[1]):
                left, right = column * self.tile, min(w, (column + 1) * self.tile)
                fx, fy = (float(v) for v in motion[row, column])
                speed = math.hypot(fx, fy)
                if speed * share < STILL:  # it smeared less than half a pixel while the shutter was open
                    continue
                # a smear along an angle and along the opposite one are the same blur
                key = (int(round(speed / SPEED_STEP)), int(round(math.degrees(math.atan2(fy, fx)) / ANGLE_STEP)) %
                       int(round(180.0 / ANGLE_STEP)))
                groups.setdefault((key, bottom - top, right - left), []).append((top, bottom, left, right))
        if not groups:
            return restored
        size = max(0.0, float(self.weights.estimate(restored if self.weights.reads == "output" else image, level)[0]))
        half = self.weights.size // 2
        import cv2

        if self.luma:  # the filter's correction of the luma, added to every colour: a third of the work
            padded = cv2.copyMakeBorder(cv2.cvtColor(restored.astype(np.float32), cv2.COLOR_RGB2GRAY),
                                        half, half, half, half, cv2.BORDER_REFLECT_101)
        else:  # float32 once: OpenCV filters float 1.6x faster than it converts uint8
            padded = cv2.copyMakeBorder(restored, half, half, half, half, cv2.BORDER_REFLECT_101).astype(np.float32)
        out = np.array(restored)
        kernels = {}
        for (speed_bin, angle_bin), _, _ in groups:
            if (speed_bin, angle_bin) not in kernels:
                descriptor = bounded(size, speed_bin * SPEED_STEP * share, angle_bin * ANGLE_STEP)
                kernels[(speed_bin, angle_bin)] = self.weights.kernel(descriptor, level)
                if self.luma:
                    kernels[(speed_bin, angle_bin)][half, half] -= 1.0  # the correction: kernel minus identity

        def run(item):  # OpenCV lets go of the GIL: the groups spread over the pool's threads
            (key, th, tw), boxes = item
            # each tile with its border, side by side (OpenCV filters long rows fastest): a pixel's
            # filter reaches `half` columns, inside its own tile
            stack = np.concatenate([padded[t:b + 2 * half, left:r + 2 * half] for t, b, left, r in boxes], axis=1)
            sharp = filtered(stack, kernels[key])
            if not self.luma:
                sharp = cv2.addWeighted(sharp, 1.0, sharp, 0.0, 0.0, dtype=cv2.CV_8U)  # rounded, saturated
            tiles = sharp.reshape((th + 2 * half, len(boxes), tw + 2 * half) + sharp.shape[2:])
            for n, (t, b, left, r) in enumerate(boxes):
                inner = tiles[half:half + th, n, half:half + tw]
                if self.luma:  # the luma's correction added to every colour of the student's output
                    out[t:b, left:r] = cv2.add(restored[t:b, left:r], cv2.merge([np.ascontiguousarray(inner)] * 3),
                                               dtype=cv2.CV_8U)
                else:
                    out[t:b, left:r] = inner

        # at most CALL_TILES tiles a call (bounded memory on big frames), the largest calls first, so
        # that the threads finish together
        items = sorted([(key, boxes[k:k + CALL_TILES]) for key, boxes in groups.items()
                        for k in range(0, len(boxes), CALL_TILES)], key=lambda item: -len(item[1]))
        if self.pool is None and self.threads > 1 and len(items) > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(self.threads)
        if self.pool is None or len(items) == 1:
            for item in items:
                run(item)
        else:
            list(self.pool.map(run, items))
        self.tiles_filtered += sum(len(boxes) for boxes in groups.values())
        self.filtered += 1
        return out


DEBLUR = ("none", "motion")
"""What ``--deblur`` takes: nothing after the model, or the motion deblur stage of the model's filter file."""


def parse_deblur(value):
    """``none`` or ``motion``; a one-line error names the choices."""
    value = str(value or "none").strip().lower()
    if value not in DEBLUR:
        raise ConfigError("deblur %r: give none or motion (the motion deblur stage for moving video)" % (value,))
    return value


def parse_exposure(value):
    """``"auto"`` (the camera's, where it reports it; else :data:`SHARE`) or the exposure's share of the
    frame interval, a number in (0, 1]; a one-line error names the fix."""
    text = str("auto" if value is None else value).strip().lower()
    if text == "auto":
        return "auto"
    try:
        share = float(text)
    except ValueError:
        share = float("nan")
    if not 0.0 < share <= 1.0:
        raise ConfigError("exposure %r: give auto or the exposure's share of the frame interval, 0 < share <= 1 "
                          "(1/60 s at 30 fps is 0.5)" % (value,))
    return share


def save(path, estimator_state, filter_state, estimator_meta, student=None):
    """Write a frame-filter file from the state dicts of ``benchmarks/blur_estimate.py``'s Estimator
    (told the level) and ``benchmarks/global_filter.py``'s FilterPredictor (told mode, whitened, told
    the level): torch tensors or arrays."""
    def array(value):
        return np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, np.float32)

    convs = sorted(key[:-len(".weight")] for key in estimator_state if key.startswith("body.") and key.endswith(".weight"))
    if len(convs) != len(STRIDES) or "head.weight" not in estimator_state:
        raise ConfigError("the estimator state has %d convolutions, expected %d: not blur_estimate.py's Estimator"
                          % (len(convs), len(STRIDES)))
    if "bank" not in filter_state or "mlp.4.weight" not in filter_state:
        raise ConfigError("the filter state has no whitened bank: train it with global_filter.py --precondition")
    if array(estimator_state["head.weight"]).shape[1] != array(estimator_state[convs[-1] + ".weight"]).shape[0] + 1:
        raise ConfigError("the estimator is not told the noise level: train it with blur_estimate.py --level")
    convs.sort(key=lambda name: int(name.split(".")[1]))
    arrays = {}
    for k, name in enumerate(convs):
        arrays["conv%d.weight" % k] = array(estimator_state[name + ".weight"])
        arrays["conv%d.bias" % k] = array(estimator_state[name + ".bias"])
    arrays["head.weight"] = array(estimator_state["head.weight"])
    arrays["head.bias"] = array(estimator_state["head.bias"])
    for k, index in enumerate((0, 2, 4)):
        arrays["mlp%d.weight" % k] = array(filter_state["mlp.%d.weight" % index])
        arrays["mlp%d.bias" % k] = array(filter_state["mlp.%d.bias" % index])
    if arrays["mlp0.weight"].shape[1] != 4:
        raise ConfigError("the filter takes %d inputs, expected 4 (the level and a blur descriptor): train it with "
                          "global_filter.py --mode told --level" % arrays["mlp0.weight"].shape[1])
    arrays["bank"] = array(filter_state["bank"])
    arrays["delta"] = array(filter_state["delta"])
    size = int(round(np.sqrt(arrays["delta"].size)))
    meta = {"patch": int(estimator_meta.get("patch", 64)), "patches": int(estimator_meta.get("patches", 16)),
            "size": size, "student": student, "reads": "output" if estimator_meta.get("after") else "input"}
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    tmp = str(path) + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, str(path))
    return path
