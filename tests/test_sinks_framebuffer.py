"""The framebuffer sink writes the right pixels into a file standing in for /dev/fb0."""

import numpy as np
import pytest

from edgerestore.errors import DeviceError, UnknownNameError
from edgerestore.runtime.frames import Frame
from edgerestore.runtime.sinks import open_sink


def _fake_fb(tmp_path, width, height, bpp, stride):
    """A sysfs folder like /sys/class/graphics/fb0 and a zero-filled file the size of the screen."""
    sysfs = tmp_path / "fb0-sysfs"
    sysfs.mkdir()
    (sysfs / "virtual_size").write_text("%d,%d\n" % (width, height))
    (sysfs / "bits_per_pixel").write_text("%d\n" % bpp)
    (sysfs / "stride").write_text("%d\n" % stride)
    device = tmp_path / "fb0"
    device.write_bytes(b"\0" * (stride * height))
    return device, sysfs


def _uri(device, sysfs):
    return "display://0?mode=fb&fb=%s&sysfs=%s" % (device, sysfs)


def _decode_565(raw, width, height, stride):
    """Independent RGB565 decoding: 5/6/5 bits back to 8 bits (low bits zero)."""
    rows = np.frombuffer(raw, np.uint8).reshape(height, stride)[:, :width * 2]
    value = rows.copy().view("<u2").astype(np.uint32)
    return np.dstack([((value >> 11) & 31) << 3, ((value >> 5) & 63) << 2, (value & 31) << 3]).astype(np.uint8)


def _frame(height, width, seed=0):
    return Frame(np.random.RandomState(seed).randint(0, 256, (height, width, 3)).astype(np.uint8), 0)


def test_16bpp_rgb565_with_a_padded_stride(tmp_path):
    device, sysfs = _fake_fb(tmp_path, 64, 48, 16, stride=160)  # 128 bytes of pixels + 32 of padding
    frame = _frame(48, 64, seed=1)
    with open_sink(_uri(device, sysfs)) as sink:
        assert sink.info.width == 64 and sink.info.height == 48 and sink.info.bpp == 16
        sink.write(frame)
        raw = device.read_bytes()
    assert len(raw) == 160 * 48  # nothing written past the screen
    shown = _decode_565(raw, 64, 48, 160)
    expected = frame.image & np.array([0xF8, 0xFC, 0xF8], np.uint8)
    assert np.array_equal(shown, expected)
    padding = np.frombuffer(raw, np.uint8).reshape(48, 160)[:, 128:]
    assert not padding.any()


def test_32bpp_is_bgrx_and_letterboxes_other_aspect_ratios(tmp_path):
    device, sysfs = _fake_fb(tmp_path, 64, 48, 32, stride=64 * 4)
    frame = _frame(48, 32, seed=2)  # narrower than the screen: black bars left and right
    with open_sink(_uri(device, sysfs)) as sink:
        sink.write(frame)
        sink.write(frame)  # a second frame overwrites the first, from the top of the screen
        assert sink.frames == 2
    pixels = np.frombuffer(device.read_bytes(), np.uint8).reshape(48, 64, 4)
    assert (pixels[:, :, 3] == 255).all()
    shown = pixels[:, :, 2::-1]  # B, G, R, X in memory
    assert not shown[:, :16].any() and not shown[:, 48:].any()
    assert np.array_equal(shown[:, 16:48], frame.image)


def test_scaled_frames_fill_the_screen(tmp_path):
    import cv2

    device, sysfs = _fake_fb(tmp_path, 64, 48, 32, stride=64 * 4)
    small = _frame(24, 32, seed=3)
    with open_sink(_uri(device, sysfs)) as sink:
        sink.write(small)
    shown = np.frombuffer(device.read_bytes(), np.uint8).reshape(48, 64, 4)[:, :, 2::-1]
    expected = cv2.resize(small.image, (64, 48), interpolation=cv2.INTER_LINEAR)
    assert np.abs(shown.astype(int) - expected.astype(int)).max() <= 1


def test_framebuffer_errors_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DeviceError, match="no framebuffer at .*missing-fb.*HDMI.*http://127.0.0.1:8080"):
        open_sink("display://0?fb=%s&sysfs=%s" % (tmp_path / "missing-fb", tmp_path))
    device, sysfs = _fake_fb(tmp_path, 64, 48, 8, stride=64)
    with pytest.raises(DeviceError, match="8 bits per pixel.*fbset -depth 32"):
        open_sink(_uri(device, sysfs))
    with pytest.raises(UnknownNameError, match="auto, fb, window"):
        open_sink("display://0?mode=hdmi")


def test_unknown_sink_scheme_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as info:
        open_sink("rtmp://server/live")
    for scheme in ("display://", "file://", "http://", "v4l2loopback://", "null://"):
        assert scheme in str(info.value)


@pytest.mark.hardware
def test_real_framebuffer(tmp_path):
    import os

    if not os.access("/dev/fb0", os.W_OK):
        pytest.skip("no writable /dev/fb0 on this machine (a board with HDMI has one)")
    with open_sink("display://0?mode=fb") as sink:
        sink.write(_frame(480, 640))
