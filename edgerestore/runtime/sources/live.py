"""What live sources (cameras, streams, the test pattern) share. Python 3.6-safe.

A live source keeps producing frames whether or not we read them, so the pipeline drops the
oldest frame rather than building a backlog. Reads that time out are retried; after
``max_failures`` failed reads in a row the camera counts as disconnected and iteration ends
with a :class:`~edgerestore.errors.DeviceError` that says what to check.
"""

import time

from edgerestore.errors import DeviceError
from edgerestore.runtime.frames import Frame
from edgerestore.runtime.sources.base import Source


class LiveSource(Source):
    """Subclasses implement :meth:`_read` and :meth:`_release`, and set ``self.size``/``self.fps``."""

    live = True
    max_failures = 5

    def __init__(self, description, lost_hint):
        self.description = description  # "camera /dev/video0", used in messages
        self.lost_hint = lost_hint  # what to check when it stops delivering frames
        self.failures = 0  # failed reads in a row
        self.timeouts = 0  # failed reads in all
        self.discontinuity = False  # set by a subclass that reconnected: the next frame says so
        self._closed = False
        self._t0 = time.monotonic()

    def _read(self):
        """``(rgb_image, pts_seconds_or_None)``, or ``None`` when no frame came in time; a source may add
        the frame's codec strengths and its exposure's share of the frame interval (or None for either)."""
        raise NotImplementedError

    def _release(self):
        pass

    def __iter__(self):
        index = 0
        while not self._closed:
            got = self._read()
            if got is None:
                self.failures += 1
                self.timeouts += 1
                if self.failures >= self.max_failures:
                    raise DeviceError(
                        "%s stopped delivering frames (%d failed reads in a row) — %s"
                        % (self.description, self.failures, self.lost_hint)
                    )
                continue
            self.failures = 0
            image, pts = got[:2]
            if pts is None:
                pts = time.monotonic() - self._t0
            # a decoding source may add what its codec did to the frame (edgerestore.codecinput)
            yield Frame(image, index, pts, discontinuity=self.discontinuity, codec=got[2] if len(got) > 2 else None,
                        exposure=got[3] if len(got) > 3 else None)
            self.discontinuity = False
            index += 1

    def close(self):
        if not self._closed:
            self._closed = True
            self._release()
