"""Scores every restored frame (and its input) against a clean reference. Python 3.6-safe.

Used by ``edgerestore restore --reference`` and the demo: frames are paired by index with the
frames of a reference source (a video, an image or a folder of images of the same size).
"""

import numpy as np

from edgerestore.errors import UnsupportedInputError
from edgerestore.runtime.quality import quality
from edgerestore.runtime.sinks.base import Sink


class QualitySink(Sink):
    name = "quality"

    def __init__(self, reference_frames, every=1):
        self._reference = iter(reference_frames)
        self._next_index = 0
        self.every = max(1, int(every))
        self.restored = []
        self.inputs = []

    def _reference_for(self, index):
        frame = None
        while self._next_index <= index:
            try:
                frame = next(self._reference)
            except StopIteration:
                raise UnsupportedInputError(
                    "the reference has fewer frames than the input (ran out at frame %d)" % index
                )
            self._next_index += 1
        return frame

    def write(self, frame):
        reference = self._reference_for(frame.index)
        if frame.index % self.every:
            return
        ref = reference.image
        if ref.shape != frame.image.shape:
            raise UnsupportedInputError(
                "reference frame %d is %dx%d but the input is %dx%d — give the clean version of "
                "the same footage" % (frame.index, ref.shape[1], ref.shape[0], frame.image.shape[1], frame.image.shape[0])
            )
        self.restored.append(quality(frame.image, ref))
        if frame.raw is not None:
            self.inputs.append(quality(frame.raw, ref))

    @staticmethod
    def _mean(rows):
        if not rows:
            return None
        return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}

    def result(self):
        """Mean metrics: ``{"frames": n, "input": {...}, "restored": {...}}``."""
        return {"frames": len(self.restored), "input": self._mean(self.inputs), "restored": self._mean(self.restored)}
