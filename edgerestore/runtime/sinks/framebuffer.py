"""The Linux framebuffer (``/dev/fb0``): HDMI output on a board without a desktop. Python 3.6-safe.

Geometry and depth come from sysfs (``/sys/class/graphics/fb0``: ``virtual_size``,
``bits_per_pixel``, ``stride``); on a real framebuffer device the ``FBIOGET_VSCREENINFO`` ioctl
then gives the visible size and where red, green and blue sit in a pixel. Without it (a file
standing in for the device) the usual layouts apply: 16 bpp = RGB565, 24/32 bpp = B, G, R(, X)
bytes. Frames are scaled to fit (letterbox) and written in one ``pwrite`` per frame.

The console cursor blinks over the picture unless switched off:
``sudo sh -c 'echo 0 > /sys/class/graphics/fbcon/cursor_blink'`` (or ``setterm -cursor off``).
"""

import fcntl
import os
import stat
import struct

import numpy as np

from edgerestore.errors import DeviceError
from edgerestore.runtime.sinks.base import Sink
from edgerestore.runtime.sinks.fit import letterbox

FBIOGET_VSCREENINFO = 0x4600
_VAR_SCREENINFO = struct.Struct("=40I")  # struct fb_var_screeninfo: 40 u32 fields

# bits per pixel -> ((red offset, length), (green ...), (blue ...)) when the ioctl cannot tell.
DEFAULT_LAYOUT = {
    16: ((11, 5), (5, 6), (0, 5)),
    24: ((16, 8), (8, 8), (0, 8)),
    32: ((16, 8), (8, 8), (0, 8)),
}


class FramebufferInfo(object):
    """What the kernel says about one framebuffer."""

    def __init__(self, width, height, bpp, stride, layout):
        self.width = width
        self.height = height
        self.bpp = bpp
        self.stride = stride
        self.layout = layout  # ((r_offset, r_length), (g...), (b...)) in bits

    def __repr__(self):
        return "FramebufferInfo(%dx%d, %d bpp, stride %d, layout %s)" % (
            self.width, self.height, self.bpp, self.stride, self.layout)


def _read_sysfs(sysfs_dir, name):
    with open(os.path.join(sysfs_dir, name)) as handle:
        return handle.read().strip()


def read_info(device, sysfs_dir):
    """The geometry of ``device`` from ``sysfs_dir``, refined by the ioctl on a real device."""
    try:
        width, height = (int(v) for v in _read_sysfs(sysfs_dir, "virtual_size").split(","))
        bpp = int(_read_sysfs(sysfs_dir, "bits_per_pixel"))
    except (IOError, OSError, ValueError) as exc:
        raise DeviceError("cannot read the framebuffer geometry from %s (%s) — is %s a framebuffer? "
                          "`fbset -i` shows it" % (sysfs_dir, exc, device))
    if bpp not in DEFAULT_LAYOUT:
        raise DeviceError("framebuffer %s uses %d bits per pixel; 16, 24 and 32 are supported — "
                          "set another depth with `fbset -depth 32`" % (device, bpp))
    try:
        stride = int(_read_sysfs(sysfs_dir, "stride"))
    except (IOError, OSError, ValueError):
        stride = width * bpp // 8
    layout = DEFAULT_LAYOUT[bpp]
    try:
        if stat.S_ISCHR(os.stat(device).st_mode):
            with open(device, "rb") as handle:
                raw = fcntl.ioctl(handle.fileno(), FBIOGET_VSCREENINFO, b"\0" * _VAR_SCREENINFO.size)
            fields = _VAR_SCREENINFO.unpack(raw)
            width, height = fields[0], fields[1]  # visible size (virtual_size may be double-buffered)
            layout = ((fields[8], fields[9]), (fields[11], fields[12]), (fields[14], fields[15]))
    except (IOError, OSError):
        pass
    return FramebufferInfo(width, height, bpp, stride, layout)


def pack_pixels(rgb, info):
    """RGB uint8 ``HxWx3`` -> the framebuffer's bytes ``H x (W * bpp/8)``."""
    height, width = rgb.shape[:2]
    (ro, rl), (go, gl), (bo, bl) = info.layout
    if info.bpp == 16:
        r = rgb[:, :, 0].astype(np.uint16) >> (8 - rl)
        g = rgb[:, :, 1].astype(np.uint16) >> (8 - gl)
        b = rgb[:, :, 2].astype(np.uint16) >> (8 - bl)
        value = (r << ro) | (g << go) | (b << bo)
        return value.astype("<u2").view(np.uint8).reshape(height, width * 2)
    bytes_per_pixel = info.bpp // 8
    out = np.zeros((height, width, bytes_per_pixel), np.uint8)
    for channel, (offset, _length) in enumerate(info.layout):
        out[:, :, offset // 8] = rgb[:, :, channel]  # little-endian: bit offset 16 = byte 2
    if bytes_per_pixel == 4:
        used = set(offset // 8 for offset, _ in info.layout)
        for spare in set(range(4)) - used:
            out[:, :, spare] = 255  # opaque, for framebuffers that honour alpha
    return out.reshape(height, width * bytes_per_pixel)


class FramebufferSink(Sink):
    """Frames, scaled to fit, on ``/dev/fbN`` (``display://N?mode=fb``; ``fb=`` and ``sysfs=`` override paths)."""

    name = "framebuffer"

    def __init__(self, uri, device=None, sysfs=None, keys=None, **_):
        from edgerestore.runtime.uri import device_index

        index = device_index(uri)
        self.device = device or uri.params.get("fb") or "/dev/fb%d" % index
        sysfs_dir = sysfs or uri.params.get("sysfs") or "/sys/class/graphics/fb%d" % index
        if not os.path.exists(self.device):
            raise DeviceError(
                "no display: no desktop session (DISPLAY is not set) and no framebuffer at %s — connect "
                "the HDMI screen before booting, or send the picture elsewhere (http://127.0.0.1:8080, "
                "file://out.mp4)" % self.device
            )
        self.info = read_info(self.device, sysfs_dir)
        try:
            self._fd = os.open(self.device, os.O_WRONLY)
        except OSError as exc:
            raise DeviceError("cannot write %s (%s) — add yourself to the video group: sudo usermod -aG "
                              "video $USER, then log in again" % (self.device, exc.strerror))
        info = self.info
        self._buffer = np.zeros((info.height, info.stride), np.uint8)
        self._canvas = None
        self.keys = keys
        self.frames = 0

    def write(self, frame):
        info = self.info
        self._canvas = letterbox(frame.image, info.width, info.height, self._canvas)
        packed = pack_pixels(self._canvas, info)
        self._buffer[:, :packed.shape[1]] = packed
        os.pwrite(self._fd, self._buffer.data, 0)  # one system call, from the start of the screen
        self.frames += 1

    def poll_keys(self):
        return self.keys.poll() if self.keys is not None else []

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.keys is not None:
            self.keys.close()
            self.keys = None
