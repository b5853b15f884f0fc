"""Network cameras through PyAV (FFmpeg): ``rtsp://user:pass@host:554/path``, and MJPEG or other
video over HTTP: ``http://camera/stream.mjpg`` (what most IP cameras, and edgerestore's own http
sink, serve). Python 3.6-safe.

RTSP runs over TCP by default (``?transport=udp`` to change; UDP loses packets on Wi-Fi and
smears the picture). Opening and every read have a timeout; when the stream breaks the source
reconnects (``reconnects`` counts it), and after ``max_failures`` failed attempts in a row it
gives up with a :class:`~edgerestore.errors.DeviceError`. Packets are decoded one by one: a
packet that does not decode (a corrupt JPEG, a damaged H.264 slice) is skipped and counted in
``corrupt`` instead of breaking the connection. The container comes from ``opener``
(``av.open`` unless a test passes a stand-in shaped like it).
"""

import time

from edgerestore.codecinput import frame_codec
from edgerestore.errors import BackendUnavailableError, DeviceError
from edgerestore.runtime.sources.live import LiveSource
from edgerestore.runtime.uri import redact

_redact = redact  # the URL without its password (it ends up in logs and error messages)


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
        self.scheme = uri.scheme
        super(StreamSource, self).__init__(
            "stream %s" % _redact(self.url),
            "is the camera on the network and the URL right (try it in `%s`)?" % self._player_hint(),
        )
        self._container = None
        self._packets = None
        self._decoded = []  # frames of the last packet not returned yet
        self.corrupt = 0  # packets that did not decode (skipped)
        self.reconnects = 0  # connections re-established after the stream broke
        self._connect(first=True)

    def _player_hint(self):
        if self.scheme.startswith("rtsp"):
            return "ffplay -rtsp_transport tcp URL"
        return "ffplay URL"

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
                                  "(user, password, path)? `%s` tests it"
                                  % (_redact(self.url), str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                                     self._player_hint()))
            return False
        stream = streams[0]
        stream.thread_type = "SLICE"  # frame threads hold frames back (latency) and lose them around damage
        rate = getattr(stream, "average_rate", None)
        self.fps = float(rate) if rate else None
        context = stream.codec_context
        if getattr(context, "name", None) == "h264":  # each frame's QP, for models with a codec input (edgerestore.codecinput)
            context.options = {"export_side_data": "venc_params"}
        self.size = (context.width, context.height) if context.width else None
        self._packets = self._container.demux(stream)
        self._decoded = []
        if not first:
            self.discontinuity = True  # reconnected: what comes next does not continue what came before
        return True

    def _read(self):
        if self._packets is None:
            time.sleep(self.retry_delay)
            if self._connect():
                self.reconnects += 1
            return None
        while not self._decoded:
            try:
                packet = next(self._packets)
            except Exception:  # StopIteration (stream ended), timeouts, network errors: reconnect
                self._packets = None
                return None
            try:
                self._decoded = list(packet.decode())
            except Exception:  # noqa: BLE001 - a packet that does not decode: skip it, count it
                self.corrupt += 1
        frame = self._decoded.pop(0)
        pts = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
        return frame.to_ndarray(format="rgb24"), pts, frame_codec(frame)

    def _close_container(self):
        self._packets = None
        self._decoded = []
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
