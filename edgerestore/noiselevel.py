"""The noise level a ``level_input`` student is given, measured one way for training, benchmarks and
the runtime: the standard deviation of sensor noise in units of :data:`UNIT` levels of 255, 0 for
a clean frame. numpy only (board code imports it)."""

import math

import numpy as np

UNIT = 10.0
"""Levels of 255 per unit of noise level: white noise of sigma 10 reads 1 every way it is measured."""

MID_GREY = 128.0
"""Shot noise is counted at this brightness (levels of 255)."""


def of_params(gaussian_sigma: float, poisson_peak: float) -> float:
    """The sensor's level before anything else touches the picture: read noise (sigma, levels)
    and shot noise at mid-grey (``poisson_peak`` photons at white; 0 = none). What is left after
    compression is less: :func:`of_two_frames` measures that, as the runtime does."""
    variance = gaussian_sigma ** 2 + (MID_GREY * 255.0 / poisson_peak if poisson_peak > 0 else 0.0)
    return math.sqrt(variance) / UNIT


FINE_SHARE = 8.0 / 9.0
"""The share of white noise's variance that :func:`fine` keeps."""


def fine(image: np.ndarray) -> np.ndarray:
    """``image - its 3x3 mean`` (float32; the mean over the pixels inside the frame at its edges):
    what is left of noise once the picture's slow changes are gone."""
    x = np.asarray(image, dtype=np.float32)
    h, w = x.shape[:2]
    padded = np.pad(x, [(1, 1), (1, 1)] + [(0, 0)] * (x.ndim - 2))
    ones = np.pad(np.ones((h, w), np.float32), 1)
    total = np.zeros_like(x)
    count = np.zeros((h, w), np.float32)
    for dy in range(3):
        for dx in range(3):
            total += padded[dy:dy + h, dx:dx + w]
            count += ones[dy:dy + h, dx:dx + w]
    if x.ndim == 3:
        count = count[:, :, None]
    return x - total / count


def of_pair(degraded: np.ndarray, clean: np.ndarray) -> float:
    """A real pair's level (``HxWxC`` uint8): the standard deviation of the fine part of
    ``degraded - clean`` (as white noise's would be before :func:`fine`); 0 when they are equal."""
    if degraded.shape != clean.shape:
        raise ValueError("a pair's images differ in shape: %s vs %s" % (degraded.shape, clean.shape))
    error = degraded.astype(np.float32) - clean.astype(np.float32)
    return float(fine(error).std()) / math.sqrt(FINE_SHARE) / UNIT


CUT_LEVELS = 30.0
"""Frames whose mean difference exceeds this many levels lie across a cut and give no reading
(also the runtime's scene-cut threshold, :data:`edgerestore.runtime.backends.base.CUT_THRESHOLD`)."""

CALIBRATION_LEVELS = (0.0, 0.5, 1.0, 2.0)
"""Levels a noise-level model's INT8 export is calibrated at, one per calibration frame in turn."""


def calibration_level(index: int) -> float:
    """The level calibration frame ``index`` is given (:data:`CALIBRATION_LEVELS` in turn)."""
    return CALIBRATION_LEVELS[index % len(CALIBRATION_LEVELS)]


def of_two_frames(first: np.ndarray, second: np.ndarray) -> float:
    """The level of two frames of a still scene that differ only in their noise (``HxWxC`` uint8):
    :func:`of_pair` of the two, less the second frame's share (what the runtime's meter reads, and
    what training gives a synthetic crop: its degradation drawn twice, compression included)."""
    return of_pair(first, second) / math.sqrt(2.0)


class StaticNoiseMeter:
    """A video stream's level from the frames themselves: between two consecutive frames, the
    fine part of the difference in the blocks that changed least (the quietest ``quantile`` of the
    ``block x block`` blocks away from black and white, where noise clips) is noise, ``sqrt(2)``
    times a frame's own. One reading every ``every`` frames (the first from the stream's first two
    frames), on bands of rows that hold about
    ``pixels`` pixels, smoothed (``smoothing`` of each new reading). Frames across a cut give no
    reading.

    A still picture has no previous frame: its level stays ``initial`` (0: a clean frame). When
    everything moves (water, a fast pan) the quietest blocks still hold motion, and the level
    reads high; when nothing is still enough to compare (a cut on every frame) it stays put."""

    def __init__(self, block: int = 16, quantile: float = 0.1, smoothing: float = 0.2,
                 initial: float = 0.0, pixels: int = 100_000, every: int = 10):
        if not 0.0 < quantile < 1.0 or not 0.0 < smoothing <= 1.0 or block < 4 or pixels < 1 or every < 1:
            raise ValueError("StaticNoiseMeter needs 0 < quantile < 1, 0 < smoothing <= 1, block >= 4, "
                             "pixels >= 1, every >= 1")
        self.block, self.quantile, self.smoothing, self.pixels, self.every = block, quantile, smoothing, pixels, every
        self.initial = float(initial)
        self.reset()

    def reset(self) -> None:
        """Forget the stream (a new source): the level starts again from ``initial``."""
        self.level = self.initial
        self.readings = 0
        self.frames = 0
        self._previous = None

    def _sample(self, frame: np.ndarray) -> np.ndarray:
        """Whole bands of ``block`` rows, one in every few, to read about ``pixels`` pixels: the
        pixels keep their neighbours, so correlated noise reads as it does in :func:`of_pair`."""
        b = self.block
        bands = frame.shape[0] // b
        keep = max(1, -(-frame.shape[0] * frame.shape[1] // self.pixels))
        if bands == 0 or keep == 1:
            return frame.astype(np.float32)
        rows = frame[:bands * b].reshape(bands, b, *frame.shape[1:])[::keep]
        return rows.reshape(-1, *frame.shape[1:]).astype(np.float32)

    def measure(self, previous: np.ndarray, frame: np.ndarray) -> float:
        """One reading from two consecutive frames (``HxWx3`` uint8); ``nan`` when none can be had."""
        return self._reading(self._sample(previous), self._sample(frame))

    def _reading(self, a: np.ndarray, c: np.ndarray) -> float:
        if a.shape != c.shape or float(np.abs(c - a).mean()) > CUT_LEVELS:  # a cut: unrelated pictures
            return float("nan")
        b = self.block
        diff = fine(c - a)
        h, w = (diff.shape[0] // b) * b, (diff.shape[1] // b) * b
        if h == 0 or w == 0:
            return float("nan")

        def blocks(x):
            return x[:h, :w].reshape(h // b, b, w // b, b, -1)

        rms = np.sqrt((blocks(diff) ** 2).mean(axis=(1, 3, 4)))
        brightness = blocks(c).mean(axis=(1, 3, 4))
        usable = rms[(brightness > 24.0) & (brightness < 232.0)]
        if usable.size < 8:
            return float("nan")
        # a difference holds two frames' noise, and fine() keeps FINE_SHARE of it (the rows where
        # two bands meet mix unrelated rows, but the picture has cancelled: what is left is noise)
        return float(np.quantile(usable, self.quantile)) / math.sqrt(2.0 * FINE_SHARE) / UNIT

    def update(self, frame: np.ndarray) -> float:
        """Feed the stream's next frame (``HxWx3`` uint8); returns the smoothed level. Readings
        come from frames 0 and 1, then ``every`` and ``every + 1``, and so on."""
        keep = self.frames % self.every == 0  # the next reading's first frame
        self.frames += 1
        previous, self._previous = self._previous, None
        if previous is None and not keep:
            return self.level
        current = self._sample(frame)
        if previous is not None:
            reading = self._reading(previous, current)
            if reading == reading:  # not nan
                self.readings += 1
                self.level += max(self.smoothing, 1.0 / self.readings) * (reading - self.level)
        if keep:
            self._previous = current
        return self.level


def measure_stream(frames, limit: int = 60) -> dict:
    """A camera's (or a clip's) level from up to ``limit`` consecutive frames (``HxWx3`` uint8):
    every pair of neighbours gives a reading (:class:`StaticNoiseMeter` with ``every=1``).
    ``{"level", "readings", "frames", "spread"}``; ``level`` is the median reading (``nan``: no
    pair had enough still blocks), ``spread`` the readings' interquartile range."""
    meter = StaticNoiseMeter(every=1)
    readings = []
    previous = None
    count = 0
    for frame in frames:
        if count >= limit:
            break
        count += 1
        current = meter._sample(frame)
        if previous is not None:
            reading = meter._reading(previous, current)
            if reading == reading:
                readings.append(reading)
        previous = current
    if not readings:
        return {"level": float("nan"), "readings": 0, "frames": count, "spread": float("nan")}
    low, mid, high = np.percentile(readings, [25, 50, 75])
    return {"level": float(mid), "readings": len(readings), "frames": count, "spread": float(high - low)}
