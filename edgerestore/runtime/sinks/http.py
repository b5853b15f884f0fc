"""MJPEG over HTTP with a small page: ``http://127.0.0.1:8080``. Python 3.6-safe.

* ``/``            a page with the live picture and the latest statistics;
* ``/stream.mjpg`` the picture as ``multipart/x-mixed-replace`` JPEGs (browsers, VLC, OpenCV);
* ``/frame.jpg``   the latest frame as one JPEG;
* ``/stats.json``  the pipeline's latest statistics (when the runner provides them).

Bound to 127.0.0.1 unless the URI names another address (``http://0.0.0.0:8080`` shows it to
the whole network — there is no authentication). Port 0 picks a free port (see ``url``). A frame
is JPEG-encoded once, and only when someone is watching; a slow viewer skips frames instead of
slowing the pipeline down.
"""

import json
import socket
import threading

try:
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from socketserver import ThreadingMixIn
except ImportError:  # pragma: no cover
    raise

from edgerestore.errors import DeviceError
from edgerestore.runtime.sinks.base import Sink

BOUNDARY = "edgerestoreframe"

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>edgerestore preview</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { margin: 0; background: #111; color: #ddd; font: 14px sans-serif; }
 header { padding: 6px 10px; }
 img { display: block; max-width: 100vw; max-height: calc(100vh - 32px); margin: 0 auto; }
</style></head>
<body><header><b>edgerestore</b> <span id="stats">waiting for statistics&hellip;</span></header>
<img id="live" src="frame.jpg" alt="live picture">
<script>
 // The still frame shows at once; the stream replaces it after the page has loaded.
 window.addEventListener("load", function () { document.getElementById("live").src = "stream.mjpg"; });
 function refresh() {
   fetch("stats.json").then(function (r) { return r.json(); }).then(function (s) {
     if (s.backend) {
       document.getElementById("stats").textContent = s.backend + (s.bypass ? " (bypass)" : "") +
         "  " + (s.fps === null ? "-" : s.fps.toFixed(1)) + " FPS  latency p50 " +
         (s.latency_ms_p50 === null ? "-" : s.latency_ms_p50.toFixed(0)) + " ms  dropped " + s.dropped;
     }
   }).catch(function () {});
 }
 setInterval(refresh, 2000); refresh();
</script></body></html>
"""


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _LatestFrame(object):
    """The newest frame, its JPEG (made on first request) and a condition to wait for the next."""

    def __init__(self, quality):
        self.quality = quality
        self.condition = threading.Condition()
        self.image = None
        self.seq = 0
        self._jpeg = None
        self._jpeg_seq = -1
        self.closed = False
        self.stats = {}

    def put(self, image):
        with self.condition:
            self.image = image
            self.seq += 1
            self.condition.notify_all()

    def jpeg(self):
        """``(seq, bytes)`` of the newest frame, encoded at most once."""
        import cv2

        with self.condition:
            image, seq = self.image, self.seq
            if seq == self._jpeg_seq:
                return seq, self._jpeg
        if image is None:
            return seq, None
        ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        data = data.tobytes() if ok else None
        with self.condition:
            if seq >= self._jpeg_seq:
                self._jpeg, self._jpeg_seq = data, seq
        return seq, data

    def wait_newer(self, seq, timeout):
        with self.condition:
            if self.seq == seq and not self.closed:
                self.condition.wait(timeout)
            return self.seq != seq

    def close(self):
        with self.condition:
            self.closed = True
            self.condition.notify_all()


def _handler(latest):
    class Handler(BaseHTTPRequestHandler):
        server_version = "edgerestore"

        def log_message(self, *args):  # no line per request on stderr
            pass

        def _send(self, code, content_type, body):
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", PAGE.encode("utf-8"))
            elif path == "/frame.jpg":
                self._frame()
            elif path == "/stream.mjpg":
                self._stream()
            elif path == "/stats.json":
                self._send(200, "application/json", json.dumps(latest.stats).encode("utf-8"))
            else:
                self._send(404, "text/plain", b"not found: try / or /stream.mjpg\n")

        def _frame(self):
            seq, data = latest.jpeg()
            if data is None:
                latest.wait_newer(seq, 5.0)
                seq, data = latest.jpeg()
            if data is None:
                self._send(503, "text/plain", b"no frame yet\n")
            else:
                self._send(200, "image/jpeg", data)

        def _stream(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=" + BOUNDARY)
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            seq = -1
            try:
                while not latest.closed:
                    if not latest.wait_newer(seq, 1.0):
                        continue
                    seq, data = latest.jpeg()
                    if data is None:
                        continue
                    self.wfile.write(("--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                      % (BOUNDARY, len(data))).encode("ascii"))
                    self.wfile.write(data)
                    self.wfile.write(b"\r\n")
                    self.wfile.flush()
            except (socket.error, ValueError):  # the viewer went away
                pass

    return Handler


class HttpSink(Sink):
    """Serve the frames as MJPEG on ``http://HOST:PORT`` (``?quality=80`` sets the JPEG quality)."""

    name = "http"

    def __init__(self, uri, **_):
        host, _sep, port = (uri.location.split("/", 1)[0]).rpartition(":")
        if not _sep:
            host, port = uri.location.split("/", 1)[0], ""
        self.host = host or "127.0.0.1"
        try:
            self.port = int(port) if port else 8080
        except ValueError:
            from edgerestore.errors import ConfigError

            raise ConfigError("bad port %r in %s — write http://127.0.0.1:8080" % (port, uri.raw))
        self._latest = _LatestFrame(uri.param("quality", 80, int))
        try:
            self._server = _Server((self.host, self.port), _handler(self._latest))
        except (socket.error, OverflowError) as exc:
            raise DeviceError("cannot serve on %s:%d (%s) — is the port in use? pick another, e.g. "
                              "http://%s:%d" % (self.host, self.port, exc, self.host, self.port + 1))
        self.port = self._server.server_address[1]
        self.url = "http://%s:%d/" % (self.host, self.port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="edgerestore-http")
        self._thread.daemon = True
        self._thread.start()
        self.frames = 0

    def write(self, frame):
        self._latest.put(frame.image)
        self.frames += 1

    def set_stats(self, stats):
        """Make ``stats`` (a pipeline statistics dict) what ``/stats.json`` returns."""
        self._latest.stats = dict(stats)

    def close(self):
        if self._server is None:
            return
        self._latest.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
        self._server = None
