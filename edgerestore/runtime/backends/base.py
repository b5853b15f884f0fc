"""The interface every backend implements. Python 3.6-safe."""

import time

from edgerestore.runtime.frames import crop, pad_to_multiple


class Backend(object):
    """load(model) -> warmup(shape) -> infer(frame) -> frame, info().

    Subclasses set ``name``, implement :meth:`probe`, :meth:`load` and :meth:`_run` (one padded
    ``uint8 HxWx3`` RGB frame in, the same out), and set ``self.stride`` in :meth:`load`. This base
    class pads frames to the stride (reflect), crops the result and times every call.
    """

    name = "base"

    def __init__(self, threads=None):
        self.threads = threads
        self.stride = 1
        self.model_path = None
        self.calls = 0
        self.total_seconds = 0.0

    @classmethod
    def probe(cls):
        """``None`` when the backend can run here, else a one-line reason naming the fix."""
        raise NotImplementedError

    def load(self, model_path, **options):
        raise NotImplementedError

    def _run(self, image):
        raise NotImplementedError

    def infer(self, image):
        """Restore one RGB uint8 ``HxWx3`` frame of any size; returns a frame of the same size."""
        padded, size = pad_to_multiple(image, self.stride)
        start = time.perf_counter()
        out = self._run(padded)
        self.total_seconds += time.perf_counter() - start
        self.calls += 1
        return crop(out, size)

    def warmup(self, height, width, runs=3):
        """Run a few frames of this size so that allocations and kernel choices happen now."""
        import numpy as np

        frame = np.zeros((height, width, 3), np.uint8)
        for _ in range(runs):
            self.infer(frame)
        self.calls, self.total_seconds = 0, 0.0

    def info(self):
        """What runs: backend, model, threads, stride, and the mean inference time so far."""
        return {
            "backend": self.name,
            "model": self.model_path,
            "threads": self.threads,
            "stride": self.stride,
            "mean_ms": 1000.0 * self.total_seconds / self.calls if self.calls else None,
        }

    def close(self):
        pass
