"""Motion compensation of a temporal model's state: optical flow between consecutive input frames,
and warps of the fed-back frame and features by it. Python 3.6-safe (numpy + OpenCV).

A temporal model whose state entries say ``"motion": "flow"`` (docs/temporal.md) gets its
previous output and its previous features *moved to where the picture now is* before they are
fed back: without that, a blend of the previous output can only help where the picture holds
still, and real video moves almost everywhere (a pan, a walking person, a street).

The flow is OpenCV's DIS (the ``ultrafast`` preset) on grey frames scaled down to at most
``MAX_WIDTH`` pixels, computed between the *degraded* input frames (what a board has), from the
current frame to the previous one: ``current(x) ~ previous(x + flow(x))``. Measured on the held-out
real clip ``tram`` (``mild``, 3 draws): a hand-set gate over the previous output warped this way
gives 31 % less flicker than the input at +0.4 dB, the same gate without the warp 9 % less
(docs/temporal.md, "Motion compensation"). What it costs per 1080p frame: docs/temporal.md.

The trainer computes the same flows on its training clips (:func:`dense_flow`) and warps in
PyTorch with the same bilinear sampling and replicated borders (:mod:`edgerestore.models.motion`).
"""

import math

import numpy as np

MAX_WIDTH = 640
"""Flow is computed on frames scaled down to at most this width (and height x width/width)."""


def _cv2():
    import cv2

    return cv2


def _gray(image):
    cv2 = _cv2()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] >= 3:
        image = cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2GRAY)
    elif image.ndim == 3:
        image = image[:, :, 0]
    return np.ascontiguousarray(image)


class Flow(object):
    """A flow field on a grid of ``field.shape[:2]`` that covers a frame of ``frame_shape``:
    ``field[y, x]`` is the displacement in grid pixels, from the current frame to the previous."""

    __slots__ = ("field", "frame_shape")

    def __init__(self, field, frame_shape):
        self.field = field
        self.frame_shape = tuple(frame_shape[:2])

    def sampling_map(self, height, width):
        """Where each pixel of a ``height x width`` grid laid over the frame (a frame at stride
        ``frame / grid``) samples the previous value: float32 ``HxWx2`` for ``cv2.remap``.

        Built at the flow's resolution and resized: the grid part of the map is linear, so the
        resize is exact for it except within half a flow pixel of the border."""
        cv2 = _cv2()
        fh, fw = self.field.shape[:2]
        ry, rx = float(height) / fh, float(width) / fw
        xs = (np.arange(fw, dtype=np.float32) + 0.5) * rx - 0.5
        ys = (np.arange(fh, dtype=np.float32) + 0.5) * ry - 0.5
        small = np.empty((fh, fw, 2), np.float32)
        small[..., 0] = xs[None, :] + self.field[..., 0] * rx
        small[..., 1] = ys[:, None] + self.field[..., 1] * ry
        if (height, width) == (fh, fw):
            return small
        shrink = height < fh or width < fw
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    def dense(self, height=None, width=None):
        """The displacement at every pixel of a ``height x width`` grid (default: the frame), in
        that grid's pixels: float32 ``HxWx2`` (what the trainer warps with)."""
        height = self.frame_shape[0] if height is None else height
        width = self.frame_shape[1] if width is None else width
        mapping = self.sampling_map(height, width)
        mapping[..., 0] -= np.arange(width, dtype=np.float32)[None, :]
        mapping[..., 1] -= np.arange(height, dtype=np.float32)[:, None]
        return mapping


def warp(image, flow, mapping=None):
    """``image`` (``HxW`` or ``HxWxC``, uint8 or float32) moved by ``flow``: ``out(x) = image(x +
    flow(x))``, bilinear, replicated borders, same dtype. ``mapping``: the flow's
    :meth:`Flow.sampling_map` for this size, when the caller already has it."""
    cv2 = _cv2()
    if mapping is None:
        mapping = flow.sampling_map(image.shape[0], image.shape[1])
    out = cv2.remap(np.ascontiguousarray(image), mapping, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)


def _warp_planes(planes, flow):
    """``[C, H, W]`` moved plane by plane (one sampling map; no transposes of the features)."""
    cv2 = _cv2()
    mapping = flow.sampling_map(planes.shape[1], planes.shape[2])
    out = np.empty(planes.shape, planes.dtype)
    for index in range(planes.shape[0]):
        cv2.remap(np.ascontiguousarray(planes[index]), mapping, None, cv2.INTER_LINEAR, dst=out[index],
                  borderMode=cv2.BORDER_REPLICATE)
    return out


def warp_state(value, entry, flow):
    """One state tensor moved by ``flow`` (a :class:`Flow` of the frame the state belongs to):
    ``[1, H, W, C]`` or ``[H, W, C]`` (``entry["layout"]`` nhwc) or ``[1, C, H, W]`` (nchw) at the
    entry's ``stride``. A state larger than the frame (a fixed-size model's padding) is moved where
    it covers the frame and kept as it is beyond."""
    nhwc = entry.get("layout", "nchw") == "nhwc"
    stride = int(entry.get("stride", 1))
    height, width = flow.frame_shape[0] // stride, flow.frame_shape[1] // stride
    planes = value if value.ndim == 3 else value[0]
    covered = planes[:height, :width] if nhwc else planes[:, :height, :width]
    moved = warp(covered, flow) if nhwc else _warp_planes(covered, flow)
    if covered.shape != planes.shape:
        grown = np.array(planes)
        if nhwc:
            grown[:height, :width] = moved
        else:
            grown[:, :height, :width] = moved
        moved = grown
    return moved if value.ndim == 3 else moved[None]


def _dis_flow():
    cv2 = _cv2()
    create = getattr(cv2, "DISOpticalFlow_create", None)
    if create is None:
        from edgerestore.errors import BackendUnavailableError

        raise BackendUnavailableError(
            "OpenCV %s has no DIS optical flow, which motion-compensated temporal models need: install OpenCV "
            ">= 4.0 (pip install opencv-python-headless, or apt install python3-opencv)" % cv2.__version__)
    return create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)


class FlowEstimator(object):
    """Flow between consecutive frames of one stream: :meth:`prepare` each frame once, then
    :meth:`flow` between two prepared frames. Not thread-safe (one per stream or per worker)."""

    def __init__(self, max_width=MAX_WIDTH):
        self.max_width = int(max_width)
        self._dis = None

    def prepare(self, image):
        """The grey, scaled-down picture the flow is computed on."""
        cv2 = _cv2()
        height, width = image.shape[:2]
        factor = int(math.ceil(float(width) / self.max_width)) if width > self.max_width else 1
        if factor > 1:
            # a strided view first: the area resize then reads a quarter of the pixels
            step = max(1, factor // 2)
            small = np.ascontiguousarray(image[::step, ::step])
            size = (max(1, width // factor), max(1, height // factor))
            return _gray(cv2.resize(small, size, interpolation=cv2.INTER_AREA))
        return _gray(image)

    def flow(self, current, previous, frame_shape):
        """The :class:`Flow` from ``current`` to ``previous`` (both from :meth:`prepare`) for a
        frame of ``frame_shape``; ``None`` when the two are identical (nothing moved)."""
        if current.shape != previous.shape:
            raise ValueError("flow between pictures of different sizes %s and %s" % (current.shape, previous.shape))
        if np.array_equal(current, previous):
            return None
        if self._dis is None:
            self._dis = _dis_flow()
        return Flow(self._dis.calc(current, previous, None), frame_shape)


def dense_flow(current, previous, estimator=None):
    """Full-resolution flow (float32 ``HxWx2``, pixels) from frame ``current`` to ``previous``
    (zeros when they are identical): what the trainer warps a clip's state with."""
    estimator = estimator or FlowEstimator()
    flow = estimator.flow(estimator.prepare(current), estimator.prepare(previous), current.shape)
    if flow is None:
        return np.zeros(current.shape[:2] + (2,), np.float32)
    return flow.dense()


def clip_flows(frames, estimator=None):
    """Flows of a clip ``[T, H, W, 3]`` (uint8): ``[T, H, W, 2]``, frame ``t`` to ``t - 1`` (zeros
    for frame 0)."""
    estimator = estimator or FlowEstimator()
    frames = np.asarray(frames)
    out = np.zeros(frames.shape[:3] + (2,), np.float32)
    for t in range(1, len(frames)):
        out[t] = dense_flow(frames[t], frames[t - 1], estimator)
    return out
