"""The display sink in a real window on a real (virtual) X server, checked by a screenshot."""

import os
import shutil
import struct
import subprocess
import time

import numpy as np
import pytest

from edgerestore.runtime.frames import Frame
from edgerestore.runtime.sinks import open_sink
from edgerestore.runtime.sinks.base import Sink
from tests.conftest import read_rgb

pytestmark = pytest.mark.display

SCREEN = (320, 240)


class Xvfb(object):
    """Xvfb on a free display number, its screen mirrored to an XWD file (``-fbdir``)."""

    def __init__(self, tmp_path, size=SCREEN):
        self.dir = tmp_path / "xvfb"
        self.dir.mkdir()
        read_fd, write_fd = os.pipe()
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "%dx%dx24" % size, "-fbdir", str(self.dir),
             "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_fd)
        number = b""
        with os.fdopen(read_fd, "rb") as pipe:
            while not number.endswith(b"\n"):
                chunk = pipe.read(1)
                if not chunk:
                    break
                number += chunk
        if not number.strip():
            self.close()
            pytest.skip("Xvfb did not start")
        self.display = ":" + number.decode().strip()

    def screenshot(self):
        """The screen as RGB, read from Xvfb's XWD framebuffer file."""
        data = (self.dir / "Xvfb_screen0").read_bytes()
        header = struct.unpack(">25I", data[:100])
        header_size, width, height, bpp, bytes_per_line, ncolors = (
            header[0], header[4], header[5], header[11], header[12], header[19])
        assert bpp == 32 and header[7] == 0  # 32-bit pixels, least significant byte first: B, G, R, X
        start = header_size + 12 * ncolors
        pixels = np.frombuffer(data, np.uint8, count=height * bytes_per_line, offset=start)
        return pixels.reshape(height, bytes_per_line)[:, :width * 4].reshape(height, width, 4)[:, :, 2::-1].copy()

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def xvfb(tmp_path, monkeypatch):
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt install xvfb; .ci/run installs it)")
    try:
        import tkinter  # noqa: F401
    except ImportError:
        pytest.skip("Tkinter is missing (apt install python3-tk)")
    server = Xvfb(tmp_path)
    monkeypatch.setenv("DISPLAY", server.display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    yield server
    server.close()


def type_keys(display, text):
    """Press and release keys on an X display with the XTEST extension (libXtst through ctypes)."""
    import ctypes
    import ctypes.util

    names = [ctypes.util.find_library("X11"), ctypes.util.find_library("Xtst")]
    if not all(names):
        pytest.skip("libX11/libXtst are missing (they come with Xvfb)")
    x11, xtst = ctypes.CDLL(names[0]), ctypes.CDLL(names[1])
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XStringToKeysym.restype = ctypes.c_ulong
    x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
    handle = x11.XOpenDisplay(display.encode())
    assert handle, "cannot open display %s" % display
    try:
        for char in text:
            code = x11.XKeysymToKeycode(handle, x11.XStringToKeysym(char.encode()))
            xtst.XTestFakeKeyEvent(handle, code, 1, 0)
            xtst.XTestFakeKeyEvent(handle, code, 0, 0)
            x11.XFlush(handle)
            time.sleep(0.05)
    finally:
        x11.XCloseDisplay(handle)


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class ScreenshotSink(Sink):
    """Placed after the display sink: grabs the screen while the window still shows the frame."""

    name = "screenshot"

    def __init__(self, server, display_sink):
        self.server, self.display_sink = server, display_sink
        self.shots = []

    def write(self, frame):
        expected = frame.image
        _wait_for(lambda: np.array_equal(self.server.screenshot(), expected), timeout=3.0)
        self.shots.append((frame.image.copy(), self.server.screenshot()))


def test_window_shows_the_restored_frame_fullscreen(xvfb, tiny_onnx, gopro_pair):
    """Real clip frame -> tiny model -> display://0 in a Tk window; the screen equals the output."""
    from edgerestore.runtime.runner import run
    from edgerestore.runtime.sinks.window import WindowSink
    from edgerestore.runtime.sources import open_source

    blurry = read_rgb(gopro_pair[0])[200:440, 400:720]  # a real 320x240 crop: the screen's size
    folder = xvfb.dir.parent / "frames"
    folder.mkdir()
    import cv2

    cv2.imwrite(str(folder / "a.png"), blurry[:, :, ::-1])
    cv2.imwrite(str(folder / "b.png"), np.ascontiguousarray(blurry[::-1, :, ::-1]))
    display = open_sink("display://0")
    assert isinstance(display, WindowSink) and display.toolkit in ("tk", "opencv")
    grabber = ScreenshotSink(xvfb, display)
    summary = run(open_source(str(folder)), [display, grabber], model=str(tiny_onnx))
    assert summary["frames"] == 2 and len(grabber.shots) == 2
    for restored, shot in grabber.shots:
        assert not np.array_equal(restored, blurry) and not np.array_equal(restored, blurry[::-1])
        assert np.array_equal(shot, restored)  # the window shows exactly the restored frame


def test_window_letterboxes_and_reports_keys(xvfb):
    import cv2

    frame = np.zeros((80, 160, 3), np.uint8)
    frame[:, :80] = (255, 0, 0)
    frame[:, 80:] = (0, 0, 255)
    sink = open_sink("display://0?toolkit=tk")
    try:
        sink.write(Frame(frame, 0))
        expected = np.zeros((240, 320, 3), np.uint8)
        expected[40:200] = cv2.resize(frame, (320, 160), interpolation=cv2.INTER_LINEAR)
        assert _wait_for(lambda: np.abs(xvfb.screenshot().astype(int) - expected).max() <= 1)
        assert sink.poll_keys() == []
        type_keys(xvfb.display, "sbq")  # real key presses through the X server (XTEST)
        assert _wait_for(lambda: sink._keys == ["s", "b", "q"])
        assert sink.poll_keys() == ["s", "b", "q"] and sink.poll_keys() == []
    finally:
        sink.close()
