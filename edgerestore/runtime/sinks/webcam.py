"""A virtual webcam: ``v4l2loopback:///dev/video10``, so Zoom, Meet or Teams receive the restored
picture. Python 3.6-safe.

Needs the v4l2loopback kernel module and pyvirtualcam::

    sudo apt install v4l2loopback-dkms
    sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=edgerestore exclusive_caps=1
    pip install pyvirtualcam

(``exclusive_caps=1`` is what makes Chrome-based apps list the device as a camera.) The webcam's
size is fixed when it opens — the first frame's size, or ``?size=1280x720`` — and later frames
are scaled to fit it (the preview can switch between side-by-side and split views). The camera
object comes from ``camera_factory`` (``pyvirtualcam.Camera`` unless a test passes a stand-in).
"""

import os

from edgerestore.errors import BackendUnavailableError, DeviceError
from edgerestore.runtime.sinks.base import Sink
from edgerestore.runtime.sinks.fit import letterbox
from edgerestore.runtime.uri import device_path, size_param

MODPROBE = "sudo modprobe v4l2loopback devices=1 video_nr=%s card_label=edgerestore exclusive_caps=1"


def _pyvirtualcam_factory():
    try:
        import pyvirtualcam
    except ImportError:
        raise BackendUnavailableError("the virtual webcam needs pyvirtualcam — pip install pyvirtualcam")

    def factory(width, height, fps, device):
        return pyvirtualcam.Camera(width=width, height=height, fps=fps, device=device,
                                   fmt=pyvirtualcam.PixelFormat.RGB, backend="v4l2loopback")

    return factory


class VirtualWebcamSink(Sink):
    name = "v4l2loopback"

    def __init__(self, uri, fps=None, camera_factory=None, **_):
        self.device = device_path(uri)
        number = self.device[len("/dev/video"):] if self.device.startswith("/dev/video") else "10"
        if not os.path.exists(self.device):
            raise DeviceError("no virtual webcam at %s — load v4l2loopback: %s (sudo apt install "
                              "v4l2loopback-dkms first)" % (self.device, MODPROBE % number))
        self._factory = camera_factory or _pyvirtualcam_factory()
        self.size = size_param(uri)
        self.fps = uri.param("fps", None, float) or fps or 30.0
        self._camera = None
        self._canvas = None
        self.frames = 0

    def _open(self, width, height):
        try:
            self._camera = self._factory(width, height, self.fps, self.device)
        except RuntimeError as exc:  # pyvirtualcam: not a v4l2loopback device, or busy
            raise DeviceError("cannot use %s as a virtual webcam (%s) — is it a v4l2loopback device? "
                              "`v4l2-ctl --list-devices` shows it; load the module with: %s"
                              % (self.device, exc, MODPROBE % "10"))
        self.size = (width, height)

    def write(self, frame):
        image = frame.image
        if self._camera is None:
            width, height = self.size or (image.shape[1], image.shape[0])
            self._open(width + width % 2, height + height % 2)  # YUV formats need even sizes
        width, height = self.size
        if image.shape[1] != width or image.shape[0] != height:
            self._canvas = letterbox(image, width, height, self._canvas)
            image = self._canvas
        self._camera.send(image)
        self.frames += 1

    def close(self):
        if self._camera is not None:
            self._camera.close()
            self._camera = None
