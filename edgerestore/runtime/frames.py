"""Frames as the runtime moves them: ``numpy.uint8`` RGB arrays ``HxWx3`` plus timing.

Also the padding rule of the model contract: H and W must be multiples of the model's stride; the
runtime pads by reflection and crops the result, it never resizes. Python 3.6-safe.
"""

import time

import numpy as np


class Frame(object):
    """One picture and where it came from.

    ``index`` counts frames from the source, ``pts`` is the source's presentation time in seconds
    (or None), ``captured`` the ``time.monotonic()`` when the runtime received it (latency is
    measured from there). After inference ``raw`` keeps the input picture (side-by-side views and
    quality meters use it). ``discontinuity`` marks the first frame after the source lost
    continuity (a stream that reconnected, a file that looped): models that carry state from
    frame to frame start afresh there. ``codec`` is what the decoder read of the compression, as
    :mod:`edgerestore.codecinput` strengths (an H.264 frame's QP, a JPEG's quality), or None
    (an uncompressed frame, or a source that cannot tell). ``exposure`` is the exposure's share of the
    frame interval (0..1) where the camera reports it (picamera2's ``ExposureTime`` over
    ``FrameDuration``), else None: the motion deblur stage bounds the smear by it.
    """

    __slots__ = ("image", "index", "pts", "captured", "raw", "discontinuity", "codec", "exposure")

    def __init__(self, image, index, pts=None, captured=None, raw=None, discontinuity=False, codec=None,
                 exposure=None):
        self.image = image
        self.index = index
        self.pts = pts
        self.captured = time.monotonic() if captured is None else captured
        self.raw = raw
        self.discontinuity = discontinuity
        self.codec = codec
        self.exposure = exposure

    def with_image(self, image):
        """The restored frame: same index and times, ``raw`` set to this frame's picture."""
        return Frame(image, self.index, self.pts, self.captured, raw=self.image, discontinuity=self.discontinuity,
                     codec=self.codec, exposure=self.exposure)


def pad_to_multiple(image, multiple):
    """Reflect-pad an HxWxC image at the bottom/right to multiples of ``multiple``.

    Returns ``(padded, (height, width))`` with the original size for :func:`crop`. Frames already
    the right size are returned as they are (no copy).
    """
    height, width = image.shape[:2]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if not pad_h and not pad_w:
        return image, (height, width)
    # numpy's "reflect" needs the pad smaller than the size; tiny frames fall back to edge copies.
    mode = "reflect" if pad_h < height and pad_w < width else "edge"
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode), (height, width)


def crop(image, size):
    """Undo :func:`pad_to_multiple`."""
    height, width = size
    if image.shape[0] == height and image.shape[1] == width:
        return image
    return image[:height, :width]


# channel order -> the OpenCV conversion that makes RGB in one pass (no intermediate copy).
_CV2_CONVERSIONS = {"bgr": "COLOR_BGR2RGB", "rgbx": "COLOR_RGBA2RGB", "bgrx": "COLOR_BGRA2RGB", "gray": "COLOR_GRAY2RGB"}


def _cv2_convert(image, order):
    """OpenCV's conversion (SIMD, one output allocation), or None when it cannot take this array."""
    try:
        import cv2
    except ImportError:
        return None
    try:
        return cv2.cvtColor(image, getattr(cv2, _CV2_CONVERSIONS[order]))
    except cv2.error:  # e.g. negative strides; numpy handles those
        return None


def as_rgb(image, order="rgb"):
    """Convert what a camera or decoder gives to contiguous RGB uint8 ``HxWx3``, in one copy at most.

    ``order`` names the channel order in memory of 3- or 4-channel input: ``rgb``, ``bgr``,
    ``rgbx`` (picamera2's XBGR8888), ``bgrx`` (picamera2's XRGB8888, GStreamer's BGRx), ``xrgb``
    or ``xbgr``. 2-D (grayscale) input is replicated to three channels. Rows may be padded
    (a view into a camera buffer with a larger stride); the result never is.
    """
    if image.dtype != np.uint8:
        raise ValueError("frames must be uint8, got %s" % image.dtype)
    if image.ndim == 2:
        out = _cv2_convert(image, "gray")
        return out if out is not None else np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    channels = image.shape[2]
    slices = {
        "rgb": (0, 1, 2), "bgr": (2, 1, 0), "rgbx": (0, 1, 2), "bgrx": (2, 1, 0),
        "xrgb": (1, 2, 3), "xbgr": (3, 2, 1),
    }
    if order not in slices:
        raise ValueError("unknown channel order %r; use one of %s" % (order, ", ".join(sorted(slices))))
    expected = 3 if order in ("rgb", "bgr") else 4
    if channels != expected:
        raise ValueError("a %s frame needs %d channels, got %d" % (order, expected, channels))
    if order == "rgb":
        return np.ascontiguousarray(image)
    if order in _CV2_CONVERSIONS:
        out = _cv2_convert(image, order)
        if out is not None:
            return out
    return np.ascontiguousarray(image[:, :, list(slices[order])])
