"""The HTTP server under abuse (issue 20, item 5): real sockets on 127.0.0.1, bounded in count and time."""

import socket
import threading
import time
import urllib.request

import numpy as np
import pytest

from edgerestore.runtime.frames import Frame
from edgerestore.runtime.sinks import http as http_sink
from edgerestore.runtime.sinks import open_sink

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(http_sink, "IDLE_TIMEOUT_S", 1.0)
    monkeypatch.setattr(http_sink, "MAX_CONNECTIONS", 6)
    monkeypatch.setattr(http_sink, "MAX_STREAMS", 2)
    sink = open_sink("http://127.0.0.1:0", token=TOKEN)
    sink.add_route("/healthz", lambda: (200, "application/json", b'{"status": "ok"}'))
    sink.write(Frame(np.zeros((32, 48, 3), np.uint8), 0))
    yield sink
    sink.close()


def _connect(sink):
    conn = socket.create_connection(("127.0.0.1", sink.port), timeout=5)
    conn.settimeout(5)
    return conn


def _read_all(conn):
    chunks = []
    while True:
        data = conn.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def test_the_limits_stay_in_the_issues_bounds():
    assert http_sink.IDLE_TIMEOUT_S <= 10 and http_sink.BACKLOG >= 64
    assert http_sink._Server.request_queue_size >= 64


def test_an_idle_or_slow_connection_is_closed_after_the_timeout(server):
    idle, slow = _connect(server), _connect(server)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers that never end
    start = time.monotonic()
    assert _read_all(idle) == b"" and _read_all(slow) == b""
    assert time.monotonic() - start < 4.0  # closed by the 1 s timeout, not held
    idle.close()
    slow.close()


def test_connections_past_the_cap_get_503_without_a_thread(server):
    held = [_connect(server) for _ in range(http_sink.MAX_CONNECTIONS)]
    time.sleep(0.3)
    threads = threading.active_count()
    extra = _connect(server)
    answer = _read_all(extra)
    assert answer.startswith(b"HTTP/1.0 503") and threading.active_count() <= threads
    assert server._server.refused >= 1
    for conn in held:
        conn.close()
    extra.close()
    time.sleep(0.3)  # the held connections' threads end; the server takes clients again
    code = urllib.request.urlopen("http://127.0.0.1:%d/healthz" % server.port, timeout=5).status
    assert code == 200


def test_streams_past_their_cap_get_503(server):
    def stream():
        conn = _connect(server)
        conn.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % TOKEN.encode())
        return conn

    viewers = [stream() for _ in range(http_sink.MAX_STREAMS)]
    for viewer in viewers:
        assert viewer.recv(64).startswith(b"HTTP/1.0 200")
    third = stream()
    assert third.recv(64).startswith(b"HTTP/1.0 503")
    for conn in viewers + [third]:
        conn.close()


def test_the_token_is_checked_before_a_stream_starts(server):
    conn = _connect(server)
    conn.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = _read_all(conn)
    assert answer.startswith(b"HTTP/1.0 401") and server._server.streams == 0
    conn.close()


def test_head_answers_healthz_without_a_body(server):
    conn = _connect(server)
    conn.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = _read_all(conn)
    head, _sep, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and b"Content-Length: 16" in head and body == b""
    conn.close()


def test_an_http_0_9_request_is_answered_at_once(server):
    conn = _connect(server)
    conn.sendall(b"GET /\r\n")
    start = time.monotonic()
    answer = _read_all(conn)
    assert answer.startswith(b"HTTP/1.0 400") and time.monotonic() - start < 0.9  # before the idle timeout
    conn.close()
