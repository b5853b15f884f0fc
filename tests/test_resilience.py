"""The service's resilient parts, in-process, with real files, servers, PyAV and ONNX Runtime:
a source that reconnects, sinks that fail alone, backends that fall back, a pipeline that stops
in time and swaps sinks while running."""

import io
import json
import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn

import numpy as np
import pytest

from edgerestore.runtime.frames import Frame
from edgerestore.runtime.jsonlog import JsonLog
from edgerestore.runtime.pipeline import Pipeline
from edgerestore.runtime.resilience import (
    Backoff,
    Candidate,
    FallbackBackend,
    GuardedSink,
    ReconnectingSource,
    valid_image,
)
from edgerestore.runtime.sinks import open_sink
from edgerestore.runtime.sinks.base import Sink
from edgerestore.runtime.sinks.video import free_name
from edgerestore.runtime.sources import open_source
from edgerestore.runtime.sources.base import Source


class Recorder(object):
    """A JsonLog writing into memory, with the parsed events."""

    def __init__(self, level="debug"):
        self.buffer = io.StringIO()
        self.log = JsonLog(level, stream=self.buffer)

    def events(self, name=None):
        lines = [json.loads(line) for line in self.buffer.getvalue().splitlines()]
        return [line for line in lines if name is None or line["event"] == name]


def _frames(source, count, timeout=60.0):
    got = []
    deadline = time.monotonic() + timeout
    for frame in source:
        got.append(frame)
        if len(got) >= count or time.monotonic() > deadline:
            break
    return got


# --- the source -----------------------------------------------------------------------------

def test_backoff_doubles_up_to_the_maximum_and_resets():
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_an_ended_file_is_reopened_and_every_frame_counted(real_clip):
    rec = Recorder()
    source = ReconnectingSource(str(real_clip), backoff=Backoff(0.01, 0.05), log=rec.log)
    assert source.open_now() and source.size == (320, 240) and source.live is False
    frames = _frames(source, 36 * 2 + 5)
    source.close()
    assert [f.index for f in frames] == list(range(77))  # numbered on across reopenings
    assert np.array_equal(frames[0].image, frames[36].image)  # it started over
    assert source.losses == 2 and source.reconnects == 2
    assert len(rec.events("source_ended")) == 2 and len(rec.events("source_reconnected")) == 2


def test_a_missing_camera_is_retried_with_exponential_backoff_until_it_appears(real_clip, tmp_path):
    target = tmp_path / "camera.mp4"
    rec = Recorder()
    source = ReconnectingSource(str(target), backoff=Backoff(0.05, 0.2), log=rec.log)
    assert not source.open_now() and source.state == "reconnecting"
    got = []
    thread = threading.Thread(target=lambda: got.extend(_frames(source, 5)))
    thread.start()
    deadline = time.monotonic() + 30
    while len(rec.events("source_open_failed")) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    shutil.copy(str(real_clip), str(target))  # the camera is plugged in
    thread.join(30)
    state = source.state
    source.close()
    delays = [event["retry_in_s"] for event in rec.events("source_open_failed")]
    assert delays[:4] == [0.05, 0.1, 0.2, 0.2]  # doubling, capped
    assert "does not exist" in rec.events("source_open_failed")[0]["error"]
    assert len(got) == 5 and state == "connected" and source.reconnects == 0  # first connection, no loss
    assert rec.events("source_connected")[0]["attempts"] >= 5


class _MjpegServer(object):
    """multipart/x-mixed-replace JPEGs on 127.0.0.1 — some parts are not JPEGs at all."""

    def __init__(self, parts):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not outer.stopped:
                        for part in parts:
                            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                             % len(part) + part + b"\r\n")
                            self.wfile.flush()
                            time.sleep(0.01)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(ThreadingMixIn, HTTPServer):
            daemon_threads = True

        self.stopped = False
        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/stream.mjpg" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.stopped = True
        self.server.shutdown()
        self.server.server_close()


def test_corrupt_frames_from_a_network_camera_are_skipped_and_counted():
    import cv2

    good = [cv2.imencode(".jpg", np.full((48, 64, 3), value, np.uint8))[1].tobytes() for value in (40, 200)]
    garbage = bytes(np.random.default_rng(0).integers(0, 256, 900, dtype=np.uint8))
    server = _MjpegServer([good[0], garbage, good[1], b"\xff\xd8 not a picture \xff\xd9"])
    rec = Recorder()
    source = ReconnectingSource(server.url, log=rec.log)
    try:
        assert source.open_now() and source.size == (64, 48)
        frames = _frames(source, 10)
    finally:
        source.close()
        server.close()
    assert len(frames) == 10 and all(f.image.shape == (48, 64, 3) for f in frames)
    assert source.corrupt >= 8  # two bad parts for every two good ones
    assert source.losses == 0  # a bad picture is not a lost camera


class _OddFrames(Source):
    """A camera driver that sometimes hands over something that is not a picture."""

    live = True

    def __iter__(self):
        good = np.zeros((4, 6, 3), np.uint8)
        for image in (good, np.zeros((4, 6), np.float32), good, np.zeros((0, 6, 3), np.uint8), None, good):
            yield Frame(image, 0)


def test_frames_that_are_not_uint8_rgb_are_skipped_and_counted():
    rec = Recorder()
    source = ReconnectingSource("test://pattern", opener=lambda uri: _OddFrames(), backoff=Backoff(0.01, 0.01),
                                log=rec.log)
    frames = _frames(source, 3)
    source.close()
    assert len(frames) == 3 and source.corrupt == 3 and rec.events("corrupt_frame")
    assert valid_image(frames[0].image) and not valid_image(np.zeros((2, 2, 4), np.uint8))


# --- sinks ----------------------------------------------------------------------------------

def _frame(i, size=(48, 64)):
    return Frame(np.full(size + (3,), (i * 7) % 256, np.uint8), i)


def test_a_full_disk_fails_the_sink_alone_and_it_is_retried():
    rec = Recorder()
    guard = GuardedSink("file:///dev/full?format=mp4", lambda uri: open_sink(uri, fps=30),
                        backoff=Backoff(0.05, 0.1), log=rec.log)
    assert guard.state == "ok"
    for i in range(200):  # the MP4 muxer flushes every few frames: the first flush hits ENOSPC
        guard.write(_frame(i))
        time.sleep(0.002)
    guard.close()
    failed = rec.events("sink_failed")
    assert guard.failures >= 2 and len(failed) >= 2  # failed, retried, failed again
    assert "No space left on device" in failed[0]["error"] and failed[0]["during"] == "write"
    assert guard.skipped > 0 and guard.written + guard.skipped == 200


class _DiskFillsUp(Sink):
    """A real file sink on a disk that fills up after ``after`` frames (as ENOSPC would)."""

    def __init__(self, sink, after):
        self.sink, self.after, self.count = sink, after, 0
        self.name = sink.name

    def write(self, frame):
        if self.count >= self.after:
            raise OSError(28, "No space left on device")
        self.sink.write(frame)
        self.count += 1

    def close(self):
        self.sink.close()


def test_a_retried_recording_never_overwrites_what_was_recorded(tmp_path):
    out = tmp_path / "cam.mp4"
    opened = []

    def opener(uri):
        sink = open_sink(uri, fps=30)
        opened.append(uri)
        return _DiskFillsUp(sink, 20) if len(opened) == 1 else sink

    guard = GuardedSink("file://%s?fragment=1" % out, opener, backoff=Backoff(0.01, 0.01), log=Recorder().log)
    for i in range(40):
        guard.write(_frame(i))
        time.sleep(0.001)
    guard.close()
    assert opened == ["file://%s?fragment=1" % out] * 2  # the sink itself picks a free name
    assert guard.current_uri == "file://%s" % (tmp_path / "cam.1.mp4")
    with open_source(str(out)) as first, open_source(str(tmp_path / "cam.1.mp4")) as second:
        assert len(list(first)) == 20  # finalised as far as it got
        assert len(list(second)) == guard.written - 20
    assert free_name(str(out)) == str(tmp_path / "cam.2.mp4")


class _FullDisk(Sink):
    """A disk that is full: the file opens and its first frame is buffered, the next write fails."""

    name = "file"

    def __init__(self):
        self.count = 0

    def write(self, frame):
        self.count += 1
        if self.count > 1:
            raise OSError(28, "No space left on device")

    def close(self):
        pass


def test_a_sink_that_keeps_failing_backs_off_to_the_cap_and_stays_degraded():
    rec = Recorder()
    guard = GuardedSink("file:///mnt/full/rec.mp4", lambda uri: _FullDisk(), backoff=Backoff(0.01, 0.08),
                        log=rec.log)
    states = []
    deadline = time.monotonic() + 1.0
    i = 0
    while time.monotonic() < deadline:
        guard.write(_frame(i))
        states.append(guard.status()["state"])
        i += 1
        time.sleep(0.002)
    delays = [event["retry_in_s"] for event in rec.events("sink_failed")]
    assert delays[:4] == [0.01, 0.02, 0.04, 0.08] and set(delays[4:]) == {0.08}, delays
    first_failure = states.index("retrying")
    assert "ok" not in states[first_failure:]  # one degraded state, no flapping
    assert not rec.events("sink_recovered")


def test_a_sink_counts_as_recovered_only_after_working_for_a_while(monkeypatch):
    from edgerestore.runtime import resilience

    monkeypatch.setattr(resilience, "RECOVERED_AFTER_S", 0.05)
    rec = Recorder()
    opened = []

    def opener(uri):
        opened.append(uri)
        return _FullDisk() if len(opened) == 1 else _NullSink()

    guard = GuardedSink("file:///mnt/x/rec.mp4", opener, backoff=Backoff(0.01, 0.01), log=rec.log)
    guard.write(_frame(0))
    guard.write(_frame(1))  # fails
    assert guard.state == "retrying"
    time.sleep(0.02)
    guard.write(_frame(2))  # reopened
    assert guard.state == "recovering" and guard.backoff.attempts == 1
    time.sleep(0.06)
    guard.write(_frame(3))
    assert guard.state == "ok" and guard.backoff.attempts == 0 and len(rec.events("sink_recovered")) == 1


class _NullSink(Sink):
    name = "file"

    def write(self, frame):
        pass

    def close(self):
        pass


# --- backends -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fixed_onnx(tmp_path_factory):
    """A tiny student exported for 64x64 frames only (like an engine built for one resolution)."""
    import torch

    from edgerestore.export.onnx import export_onnx
    from edgerestore.models.config import StudentConfig
    from edgerestore.models.student import StudentNet

    torch.manual_seed(1)
    student = StudentNet(StudentConfig(scale=4, width=8, blocks=0))
    torch.nn.init.normal_(student.tail.weight, std=0.05)
    path = tmp_path_factory.mktemp("fixed") / "fixed64.onnx"
    export_onnx(student, path, height=64, width=64)
    return path


def _direct(model, image):
    from edgerestore.runtime.backends import create_backend

    return create_backend("onnxruntime", threads=1).load(str(model)).infer(image)


def test_a_model_that_fails_to_load_falls_back_to_the_next(tmp_path, tiny_onnx):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(tiny_onnx.read_bytes()[:300])  # a truncated copy
    rec = Recorder()
    chain = FallbackBackend([Candidate("onnxruntime", broken), Candidate("onnxruntime", tiny_onnx)], threads=1,
                            log=rec.log).start((64, 48))
    assert chain.index == 1 and chain.name == "onnxruntime"
    failed = rec.events("backend_failed")
    assert failed[0]["during"] == "load" and failed[0]["candidate"] == "onnxruntime:broken.onnx"
    assert failed[0]["next"] == "onnxruntime:tiny.onnx"
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert np.array_equal(chain.infer(image), _direct(tiny_onnx, image))


def test_a_backend_that_crashes_mid_stream_hands_the_same_frame_to_the_next(fixed_onnx, tiny_onnx):
    rec = Recorder()
    chain = FallbackBackend([Candidate("onnxruntime", fixed_onnx), Candidate("onnxruntime", tiny_onnx)], threads=1,
                            log=rec.log).start((64, 64))
    square = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert np.array_equal(chain.infer(square), _direct(fixed_onnx, square)) and chain.index == 0
    wide = np.random.default_rng(2).integers(0, 256, (64, 96, 3), dtype=np.uint8)  # the camera changed mode
    assert np.array_equal(chain.infer(wide), _direct(tiny_onnx, wide))
    assert chain.index == 1 and chain.fallbacks == 1
    assert chain.frames_by_backend == {"onnxruntime": 2}
    crash = rec.events("backend_failed")[0]
    assert crash["during"] == "infer" and "fixed64.onnx" in crash["candidate"] and crash["error"]


def test_when_every_backend_fails_frames_pass_through_and_the_chain_is_retried(tmp_path, tiny_onnx):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not a model")
    rec = Recorder()
    chain = FallbackBackend([Candidate("onnxruntime", model)], threads=1, log=rec.log, retry=Backoff(0.05, 0.05))
    with pytest.raises(Exception, match="no backend could run the model: onnxruntime:model.onnx"):
        chain.start()
    chain._exhaust()  # what a crash of the last backend does mid-stream
    image = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert chain.infer(image) is image and chain.name == "bypass" and chain.bypassed == 1
    shutil.copy(str(tiny_onnx), str(model))  # the model is fixed (a new copy arrives)
    time.sleep(0.06)
    assert np.array_equal(chain.infer(image), _direct(tiny_onnx, image))
    assert chain.name == "onnxruntime" and not chain.exhausted
    assert rec.events("backends_exhausted") and rec.events("backend_loaded")


# --- the pipeline under the service ---------------------------------------------------------

class _HungCamera(Source):
    """A driver whose read never returns (it happens with some USB cameras)."""

    live = True
    size = (8, 8)

    def __iter__(self):
        yield Frame(np.zeros((8, 8, 3), np.uint8), 0)
        threading.Event().wait()


class _Collect(Sink):
    def __init__(self, name="collect"):
        self.name = name
        self.frames = []
        self.closed = False

    def write(self, frame):
        self.frames.append(frame.index)

    def close(self):
        self.closed = True


def test_stop_finishes_within_the_drain_timeout_even_with_a_hung_camera():
    sink = _Collect()
    pipeline = Pipeline(_HungCamera(), None, [sink], drain_timeout=0.6)
    thread = threading.Thread(target=pipeline.run)
    thread.start()
    time.sleep(0.3)
    began = time.monotonic()
    pipeline.stop()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - began < 1.0
    assert sink.closed and sink.frames == [0]


def test_sinks_are_swapped_while_running_and_the_removed_one_closed():
    first, kept, added = _Collect("a"), _Collect("b"), _Collect("c")
    source = open_source("test://pattern?size=32x24&fps=100")
    pipeline = Pipeline(source, None, [first, kept], stats_interval=0.1)
    thread = threading.Thread(target=pipeline.run)
    thread.start()
    time.sleep(0.3)
    pipeline.replace_sinks([kept, added])
    time.sleep(0.5)
    pipeline.stop()
    thread.join(5)
    source.close()
    assert first.closed and kept.closed and added.closed
    assert added.frames and kept.frames[-1] == added.frames[-1]
    assert len(kept.frames) > len(added.frames) and first.frames[-1] < added.frames[0]
    assert set(pipeline.stats.sinks) == {"1:b", "2:c"}


def test_the_log_file_is_reopened_after_rotation(tmp_path):
    path = tmp_path / "svc.log"
    log = JsonLog("info", str(path))
    log.info("one")
    os.rename(str(path), str(tmp_path / "svc.log.1"))
    log.info("two")  # still into the rotated file
    log.reopen()
    log.info("three")
    log.debug("hidden")
    log.close()
    assert [json.loads(x)["event"] for x in (tmp_path / "svc.log.1").read_text().splitlines()] == ["one", "two"]
    assert [json.loads(x)["event"] for x in path.read_text().splitlines()] == ["three"]
