"""``test://pattern?size=1280x720&fps=30``: a moving test picture, paced like a camera.

Colour bars, a fine checkerboard and a gradient (detail a restorer can visibly blur or keep), a
box that crosses the frame and a frame counter, so that motion, latency and dropped frames are
visible in a preview. Frames are due at ``fps`` on the wall clock; a slow reader misses frames
(as with a real camera) instead of slowing the pattern down. ``?realtime=0`` produces frames as
fast as they are read (benchmarks); ``?frames=N`` stops after N frames. Python 3.6-safe.
"""

import time

import numpy as np

from edgerestore.runtime.frames import Frame
from edgerestore.runtime.sources.base import Source
from edgerestore.runtime.uri import size_param

BARS = np.array([[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
                 [255, 0, 255], [255, 0, 0], [0, 0, 255], [16, 16, 16]], np.uint8)


def pattern_background(width, height):
    """The static part of the picture (bars on top, checkerboard + gradient below)."""
    image = np.empty((height, width, 3), np.uint8)
    bars_h = height // 2
    columns = (np.arange(width) * len(BARS)) // max(1, width)
    image[:bars_h] = BARS[columns][None, :, :]
    ys, xs = np.mgrid[bars_h:height, 0:width]
    checker = (((xs // 4) + (ys // 4)) % 2).astype(np.uint8) * 96
    ramp = (xs * 159 // max(1, width - 1)).astype(np.uint8)
    image[bars_h:, :, 0] = ramp + checker
    image[bars_h:, :, 1] = checker + 64
    image[bars_h:, :, 2] = 255 - ramp - checker // 2
    return image


def pattern_frame(background, index):
    """Frame ``index`` of the moving pattern (the background scrolls, a box crosses)."""
    height, width = background.shape[:2]
    image = np.roll(background, (index * 4) % max(1, width), axis=1)
    box = max(4, min(width, height) // 8)
    span_x = max(1, width - box)
    x = (index * 7) % (2 * span_x)
    x = x if x < span_x else 2 * span_x - x
    y = (height - box) // 2
    image[y:y + box, x:x + box] = (255, 128, 0)
    if width >= 64 and height >= 24:
        import cv2

        cv2.putText(image, "%06d" % index, (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.3, height / 720.0), (255, 255, 255), 1, cv2.LINE_AA)
    return image


class TestPatternSource(Source):
    """A live source that needs no hardware: try the pipeline, the preview and the sinks."""

    __test__ = False  # not a pytest test class despite the name

    live = True

    def __init__(self, uri, clock=time.monotonic, sleep=time.sleep, **_):
        name = uri.location or "pattern"
        if name != "pattern":
            from edgerestore.errors import UnknownNameError

            raise UnknownNameError("test source", name, ["pattern"])
        self.size = size_param(uri, default=(1280, 720))
        self.fps = uri.param("fps", 30.0, float)
        self.realtime = uri.flag("realtime", True)
        limit = uri.param("frames", 0, int)
        self.frame_count = limit or None
        self.live = self.realtime  # unpaced frames are like a file: nothing is missed if we are slow
        self.missed = 0  # frames that came due while the reader was busy (a camera drops those)
        self._background = pattern_background(*self.size)
        self._clock = clock
        self._sleep = sleep

    def __iter__(self):
        start = self._clock()
        index = 0
        tick = 0  # the slot on the fps clock, which keeps running while nobody reads
        while self.frame_count is None or index < self.frame_count:
            if self.realtime:
                due = start + tick / self.fps
                now = self._clock()
                if due > now:
                    self._sleep(due - now)
                else:
                    behind = int((now - due) * self.fps)
                    self.missed += behind
                    tick += behind
            yield Frame(pattern_frame(self._background, tick), index, tick / self.fps)
            index += 1
            tick += 1
