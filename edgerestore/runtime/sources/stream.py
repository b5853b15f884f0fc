"""Network cameras: ``rtsp://user:pass@host:554/path`` through PyAV (FFmpeg). Python 3.6-safe.

RTSP runs over TCP by default (``?transport=udp`` to change; UDP loses packets on Wi-Fi and
smears the picture). Opening and every read have a timeout; when the stream breaks the source
reconnects, and after ``max_failures`` failed attempts in a row it gives up with a
:class:`~edgerestore.errors.DeviceError`. The container comes from ``opener`` (``av.open``
unless a test passes a stand-in shaped like it).
"""

import time

from edgerestore.errors import BackendUnavailableError, DeviceError
from edgerestore.runtime.sources.live import LiveSource


def _redact(url):
    """The URL without its password (it ends up in logs and error messages)."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.split("@", 1)
    user = credentials.split(":", 1)[0]
    return "%s://%s:***@%s" % (scheme, user, host)


class StreamSource(LiveSource):
    """An RTSP (or other FFmpeg network) stream, decoded to RGB frames as they arrive."""

    def __init__(self, uri, opener=None, **_):
        self.url = uri.raw
        self.timeout = uri.param("timeout", 5.0, float)
        self.retry_delay = uri.param("retry", 1.0, float)
        transport = uri.params.get("transport", "tcp")
        # Our own parameters must not reach the camera; the rest of the query string does.
        self.url = _strip_params(self.url, ("timeout", "retry", "transport"))
        self.options = {"rtsp_transport": transport, "fflags": "nobuffer", "flags": "low_delay"}
        if opener is None:
            try:
                import av
            except ImportError:
                raise BackendUnavailableError("rtsp:// needs PyAV — pip install av")
            opener = av.open
        self._opener = opener
        super(StreamSource, self).__init__(
            "stream %s" % _redact(self.url),
            "is the camera on the network and the URL right (try it in `ffplay -rtsp_transport tcp URL`)?",
        )
        self._container = None
        self._frames = None
        self._connect(first=True)

    def _connect(self, first=False):
        self._close_container()
        try:
            self._container = self._opener(self.url, options=dict(self.options),
                                           timeout=(self.timeout, self.timeout))
            streams = self._container.streams.video
            if not streams:
                raise ValueError("no video stream in it")
        except Exception as exc:
            self._close_container()
            if first:
                raise DeviceError("cannot open %s (%s) — is the camera on the network and the URL right "
                                  "(user, password, path)? `ffplay -rtsp_transport tcp URL` tests it"
                                  % (_redact(self.url), str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            return False
        stream = streams[0]
        stream.thread_type = "AUTO"
        rate = getattr(stream, "average_rate", None)
        self.fps = float(rate) if rate else None
        context = stream.codec_context
        self.size = (context.width, context.height) if context.width else None
        self._frames = self._container.decode(video=0)
        if not first:
            self.discontinuity = True  # reconnected: what comes next does not continue what came before
        return True

    def _read(self):
        if self._frames is None:
            time.sleep(self.retry_delay)
            self._connect()
            return None
        try:
            frame = next(self._frames)
        except Exception:  # StopIteration (stream ended), timeouts, network errors: reconnect
            self._frames = None
            return None
        pts = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
        return frame.to_ndarray(format="rgb24"), pts

    def _close_container(self):
        self._frames = None
        if self._container is not None:
            try:
                self._container.close()
            finally:
                self._container = None

    def _release(self):
        self._close_container()


def _strip_params(url, keys):
    if "?" not in url:
        return url
    base, query = url.split("?", 1)
    kept = [part for part in query.split("&") if part and part.split("=", 1)[0] not in keys]
    return base + ("?" + "&".join(kept) if kept else "")
