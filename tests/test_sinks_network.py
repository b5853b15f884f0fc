"""The HTTP MJPEG sink with a real HTTP client and headless Chromium; the virtual webcam adapter
against a stand-in shaped like pyvirtualcam."""

import http.client
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from edgerestore.errors import DeviceError
from edgerestore.runtime.frames import Frame
from edgerestore.runtime.quality import psnr
from edgerestore.runtime.sinks import open_sink
from tests.conftest import read_rgb


@pytest.fixture
def real_frame(gopro_pair):
    return read_rgb(gopro_pair[1])[100:340, 200:520].copy()  # a real 320x240 picture


def _decode_jpeg(data):
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return image[:, :, ::-1]


def _read_parts(url, count, timeout=10.0):
    """Read ``count`` JPEG parts of a multipart/x-mixed-replace stream with http.client."""
    host, port = url.split("//", 1)[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    connection.request("GET", "/stream.mjpg")
    response = connection.getresponse()
    assert response.status == 200
    content_type = response.getheader("Content-Type")
    assert content_type.startswith("multipart/x-mixed-replace; boundary=")
    boundary = content_type.split("boundary=", 1)[1].encode()
    parts = []
    while len(parts) < count:
        line = response.fp.readline()
        if not line:
            break
        if line.strip() != b"--" + boundary:
            continue
        headers = {}
        while True:
            header = response.fp.readline().strip()
            if not header:
                break
            key, value = header.decode().split(":", 1)
            headers[key.lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        parts.append(response.fp.read(int(headers["content-length"])))
    connection.close()
    return parts


class Feeder(object):
    """Writes frames into a sink from another thread (as the pipeline's output thread does)."""

    def __init__(self, sink, images, interval=0.05):
        self.sink, self.images, self.interval = sink, images, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self):
        index = 0
        while not self.stop.is_set():
            self.sink.write(Frame(self.images[index % len(self.images)], index))
            index += 1
            time.sleep(self.interval)

    def close(self):
        self.stop.set()
        self.thread.join()


def test_http_sink_serves_frames_a_real_client_decodes(real_frame):
    sink = open_sink("http://127.0.0.1:0?quality=90")
    try:
        assert sink.host == "127.0.0.1" and sink.url.startswith("http://127.0.0.1:")
        feeder = Feeder(sink, [real_frame, np.ascontiguousarray(real_frame[::-1])])
        try:
            with urllib.request.urlopen(sink.url + "frame.jpg", timeout=10) as reply:
                assert reply.headers["Content-Type"] == "image/jpeg"
                still = _decode_jpeg(reply.read())
            assert still.shape == real_frame.shape
            assert max(psnr(still, real_frame), psnr(still, real_frame[::-1])) > 33
            parts = _read_parts(sink.url, 3)
            assert len(parts) == 3
            for part in parts:
                image = _decode_jpeg(part)
                assert max(psnr(image, real_frame), psnr(image, real_frame[::-1])) > 33
            with urllib.request.urlopen(sink.url, timeout=10) as reply:
                page = reply.read().decode()
            assert "stream.mjpg" in page and "<img" in page
            sink.set_stats({"backend": "onnxruntime", "fps": 12.5})
            with urllib.request.urlopen(sink.url + "stats.json", timeout=10) as reply:
                assert b'"fps": 12.5' in reply.read()
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(sink.url + "nothing", timeout=10)
            assert info.value.code == 404
        finally:
            feeder.close()
    finally:
        sink.close()
    with pytest.raises(OSError):  # closed: nothing listens any more
        urllib.request.urlopen(sink.url, timeout=2)


def test_http_sink_port_in_use_names_the_fix():
    first = open_sink("http://127.0.0.1:0")
    try:
        with pytest.raises(DeviceError, match="port in use.*http://127.0.0.1:%d" % (first.port + 1)):
            open_sink("http://127.0.0.1:%d" % first.port)
    finally:
        first.close()


@pytest.mark.browser
def test_page_renders_the_stream_in_headless_chromium(real_frame, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt install chromium; .ci/run installs it)")
    sink = open_sink("http://127.0.0.1:0")
    shot = tmp_path / "page.png"
    feeder = Feeder(sink, [real_frame])
    try:
        sink.set_stats({"backend": "onnxruntime", "bypass": False, "fps": 24.0, "latency_ms_p50": 41.0,
                        "dropped": 0})
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--user-data-dir=%s" % (tmp_path / "profile"), "--window-size=640,480",
             "--screenshot=%s" % shot, sink.url],
            capture_output=True, text=True, timeout=120)
    finally:
        feeder.close()
        sink.close()
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    page = read_rgb(shot)
    assert page.shape[:2] == (480, 640)
    # The picture is centred under the header: find the 320x240 frame in the screenshot.
    import cv2

    match = cv2.matchTemplate(page, real_frame, cv2.TM_CCOEFF_NORMED)
    _lo, best, _lo_at, (x, y) = cv2.minMaxLoc(match)
    assert best > 0.9, best
    assert psnr(page[y:y + 240, x:x + 320], real_frame) > 28


# --- virtual webcam ---------------------------------------------------------------------------


class FakeVirtualCamera(object):
    """Shaped like pyvirtualcam.Camera: fixed width/height/fps, send(RGB frame), close()."""

    def __init__(self, width, height, fps, device):
        self.width, self.height, self.fps, self.device = width, height, fps, device
        self.sent = []
        self.closed = False

    def send(self, frame):
        # pyvirtualcam raises when a frame does not match the camera's size and format.
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError("mismatching frame shape: %s" % (frame.shape,))
        self.sent.append(frame.copy())

    def close(self):
        self.closed = True


def test_virtual_webcam_keeps_one_size_and_closes(tmp_path):
    device = tmp_path / "video10"
    device.write_bytes(b"")
    cameras = []

    def factory(width, height, fps, path):
        cameras.append(FakeVirtualCamera(width, height, fps, path))
        return cameras[-1]

    sink = open_sink("v4l2loopback://%s" % device, fps=25, camera_factory=factory)
    first = np.random.RandomState(0).randint(0, 256, (48, 64, 3)).astype(np.uint8)
    wide = np.random.RandomState(1).randint(0, 256, (48, 130, 3)).astype(np.uint8)
    sink.write(Frame(first, 0))
    sink.write(Frame(wide, 1))  # e.g. the preview switched to side-by-side: scaled into 64x48
    sink.close()
    camera = cameras[0]
    assert (camera.width, camera.height, camera.fps, camera.device) == (64, 48, 25, str(device))
    assert np.array_equal(camera.sent[0], first)
    assert camera.sent[1].shape == (48, 64, 3) and camera.closed
    assert not camera.sent[1][:12].any()  # letterboxed: black band at the top


def test_virtual_webcam_missing_device_names_the_fix(tmp_path):
    with pytest.raises(DeviceError, match="modprobe v4l2loopback devices=1 video_nr=10.*exclusive_caps=1"):
        open_sink("v4l2loopback://%s" % (tmp_path / "video10"))


@pytest.mark.hardware
def test_real_v4l2loopback_device():
    import os

    if not os.path.exists("/dev/video10"):
        pytest.skip("no v4l2loopback device at /dev/video10 (sudo modprobe v4l2loopback video_nr=10)")
    pytest.importorskip("pyvirtualcam", reason="pyvirtualcam is not installed")
    with open_sink("v4l2loopback:///dev/video10") as sink:
        sink.write(Frame(np.zeros((480, 640, 3), np.uint8), 0))
