"""Discards frames (headless benchmarking): ``null://``. Python 3.6-safe."""

from edgerestore.runtime.sinks.base import Sink


class NullSink(Sink):
    name = "null"

    def __init__(self, uri=None, **_):
        self.frames = 0

    def write(self, frame):
        self.frames += 1
