"""MJPEG over HTTP with a small page: ``http://127.0.0.1:8080``. Python 3.6-safe.

* ``/``            a page with the live picture and the latest statistics;
* ``/stream.mjpg`` the picture as ``multipart/x-mixed-replace`` JPEGs (browsers, VLC, OpenCV);
* ``/frame.jpg``   the latest frame as one JPEG;
* ``/stats.json``  the pipeline's latest statistics (when the runner provides them);
* more paths from :meth:`HttpSink.add_route` (the service adds ``/metrics`` and ``/healthz``).

Bound to 127.0.0.1 unless the URI names another address. Any other address (``http://0.0.0.0:8080``
shows it to the whole network) needs a token — ``token=`` from the caller, else
``$EDGERESTORE_HTTP_TOKEN`` (``?token=`` in the URI works too, but a command line is visible to
every user of the machine) — and then every request but ``/healthz`` must carry it: an
``Authorization: Bearer TOKEN`` header, or ``?token=TOKEN`` once in a browser (a cookie keeps it).
Port 0 picks a free port (see ``url``). A frame is JPEG-encoded once, and only when someone is
watching; a slow viewer skips frames instead of slowing the pipeline down.

Hardened for an unattended board (the standard library's server, which runs on Python 3.6, with
limits): a connection that sends no complete request within :data:`IDLE_TIMEOUT_S`, or stops
reading, is closed; at most :data:`MAX_CONNECTIONS` are served at once and :data:`MAX_STREAMS` of
them may be streams (the next gets ``503`` at once, without a thread); the token is checked
before anything else is done for a client; HTTP/0.9 requests get ``400``; ``HEAD`` answers like
``GET`` without the body; the listen backlog is :data:`BACKLOG`.
"""

import hmac
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn

from edgerestore.errors import ConfigError, DeviceError
from edgerestore.runtime.sinks.base import Sink
from edgerestore.runtime.uri import redact

BOUNDARY = "edgerestoreframe"
TOKEN_ENV = "EDGERESTORE_HTTP_TOKEN"
TOKEN_COOKIE = "edgerestore_token"
OPEN_PATHS = ("/healthz",)  # answered without the token (a health check reveals nothing)
IDLE_TIMEOUT_S = 10.0
"""Seconds a client may take to send its request's headers, or leave a stream unread."""
MAX_CONNECTIONS = 32
"""Connections served at once (threads); more are answered 503 and closed."""
MAX_STREAMS = 8
"""Of those, ``/stream.mjpg`` viewers."""
BACKLOG = 64
"""Connections the kernel queues before the server accepts them."""
BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\n"
        b"Connection: close\r\n\r\ntoo many connections; try again in a few seconds\n")


def is_loopback(host):
    """Whether ``host`` is only reachable from this machine."""
    return host in ("localhost", "::1") or host.startswith("127.")

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
    request_queue_size = BACKLOG

    def __init__(self, address, handler):
        self._count_lock = threading.Lock()
        self.active = 0  # connections being served (one thread each)
        self.streams = 0  # of which /stream.mjpg viewers
        self.refused = 0  # connections answered 503 for want of room
        HTTPServer.__init__(self, address, handler)

    def process_request(self, request, client_address):
        with self._count_lock:
            room = self.active < MAX_CONNECTIONS
            if room:
                self.active += 1
            else:
                self.refused += 1
        if not room:  # no thread for it: a fixed answer and close
            try:
                request.settimeout(1.0)
                request.sendall(BUSY)
            except (socket.error, ValueError):
                pass
            self.shutdown_request(request)
            return
        try:
            ThreadingMixIn.process_request(self, request, client_address)
        except Exception:
            with self._count_lock:
                self.active -= 1
            raise

    def process_request_thread(self, request, client_address):
        try:
            ThreadingMixIn.process_request_thread(self, request, client_address)
        finally:
            with self._count_lock:
                self.active -= 1

    def claim_stream(self):
        with self._count_lock:
            if self.streams >= MAX_STREAMS:
                self.refused += 1
                return False
            self.streams += 1
            return True

    def release_stream(self):
        with self._count_lock:
            self.streams -= 1


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


def _query_value(query, key):
    for part in query.split("&"):
        name, _sep, value = part.partition("=")
        if name == key:
            from urllib.parse import unquote

            return unquote(value)
    return None


def _handler(latest, sink):
    class Handler(BaseHTTPRequestHandler):
        server_version = "edgerestore"
        timeout = IDLE_TIMEOUT_S  # socket timeout: headers that never finish, a stream never read
        _head = False

        def parse_request(self):
            """HTTP/1.x only: an HTTP/0.9 request line (no version) would make the standard
            library wait for headers that never come."""
            words = self.raw_requestline.split()
            if len(words) != 3 or not words[2].startswith(b"HTTP/1."):
                self.close_connection = True
                try:
                    self.wfile.write(b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n"
                                     b"Connection: close\r\n\r\nHTTP/1.0 or HTTP/1.1 requests only\n")
                except (socket.error, ValueError):
                    pass
                return False
            return BaseHTTPRequestHandler.parse_request(self)

        def log_message(self, *args):  # no line per request on stderr
            pass

        def _send(self, code, content_type, body, headers=()):
            if content_type.startswith(("application/json", "text/plain")):
                body = redact(body.decode("utf-8")).encode("utf-8")  # no secret leaves the process
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if not self._head:
                self.wfile.write(body)

        def do_HEAD(self):
            self._head = True
            self.do_GET()

        def _presented_token(self, query):
            """``(token, from_query)`` from the header, the query string or the cookie."""
            header = self.headers.get("Authorization") or ""
            if header.lower().startswith("bearer "):
                return header[7:].strip(), False
            value = _query_value(query, "token")
            if value is not None:
                return value, True
            for part in (self.headers.get("Cookie") or "").split(";"):
                name, _sep, value = part.strip().partition("=")
                if name == TOKEN_COOKIE:
                    return value, False
            return None, False

        def _authorised(self, path, query):
            """True when no token is needed or the right one came; else answers 401 (False)."""
            token = sink.token
            if not token or path in OPEN_PATHS:
                return True
            presented, from_query = self._presented_token(query)
            if presented is not None and hmac.compare_digest(presented.encode("utf-8"), token.encode("utf-8")):
                if from_query:  # a browser: remember it so that the page's own requests work
                    self._cookie = "%s=%s; HttpOnly; SameSite=Strict; Path=/" % (TOKEN_COOKIE, token)
                return True
            self._send(401, "text/plain", b"a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN\n",
                       [("WWW-Authenticate", 'Bearer realm="edgerestore"')])
            return False

        def end_headers(self):
            cookie = getattr(self, "_cookie", None)
            if cookie:
                self.send_header("Set-Cookie", cookie)
                self._cookie = None
            BaseHTTPRequestHandler.end_headers(self)

        def do_GET(self):
            path, _sep, query = self.path.partition("?")
            if not self._authorised(path, query):
                return
            route = sink.routes.get(path)
            if route is not None:
                try:
                    code, content_type, body = route()
                except Exception as exc:  # noqa: BLE001 - one failing page must not kill the server
                    code, content_type, body = 500, "text/plain", ("%s\n" % exc).encode("utf-8")
                self._send(code, content_type, body)
            elif path in ("/", "/index.html"):
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
            if self._head or not self.server.claim_stream():
                if self._head:
                    self._send(200, "multipart/x-mixed-replace; boundary=" + BOUNDARY, b"")
                else:
                    self._send(503, "text/plain", b"too many viewers; try again later\n", [("Retry-After", "5")])
                return
            try:
                self._stream_frames()
            finally:
                self.server.release_stream()

        def _stream_frames(self):
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
    """Serve the frames as MJPEG on ``http://HOST:PORT`` (``?quality=80`` sets the JPEG quality).

    ``token`` (else ``?token=``, else ``$EDGERESTORE_HTTP_TOKEN``) is required to bind anything but
    a loopback address; ``routes`` maps more paths to functions returning ``(status, content type,
    body bytes)``.
    """

    name = "http"

    def __init__(self, uri, token=None, routes=None, **_):
        host, _sep, port = (uri.location.split("/", 1)[0]).rpartition(":")
        if not _sep:
            host, port = uri.location.split("/", 1)[0], ""
        self.host = host or "127.0.0.1"
        try:
            self.port = int(port) if port else 8080
        except ValueError:
            raise ConfigError("bad port %r in %s — write http://127.0.0.1:8080" % (port, uri.raw))
        self.token = token or uri.params.get("token") or os.environ.get(TOKEN_ENV) or None
        if not is_loopback(self.host) and not self.token:
            raise ConfigError("serving on %s shows the picture to the network and needs a token — set $%s "
                              "(or http.token in the service config), or serve on http://127.0.0.1:%d"
                              % (self.host, TOKEN_ENV, self.port))
        self.routes = dict(routes or {})
        self._latest = _LatestFrame(uri.param("quality", 80, int))
        try:
            self._server = _Server((self.host, self.port), _handler(self._latest, self))
        except (socket.error, OverflowError) as exc:
            raise DeviceError("cannot serve on %s:%d (%s) — is the port in use? pick another, e.g. "
                              "http://%s:%d" % (self.host, self.port, exc, self.host, self.port + 1))
        self.port = self._server.server_address[1]
        self.url = "http://%s:%d/" % (self.host, self.port)
        # A short poll interval: close() (shutdown) waits for the loop to notice, and a stopping
        # service has two seconds to finalise every sink.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="edgerestore-http")
        self._thread.daemon = True
        self._thread.start()
        self.frames = 0

    def add_route(self, path, handler):
        """Answer GET ``path`` with ``handler()`` -> ``(status, content_type, body_bytes)``."""
        self.routes[path] = handler

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
