"""USB/V4L2 cameras and GStreamer pipelines through OpenCV's ``VideoCapture``. Python 3.6-safe.

``v4l2:///dev/video0?size=1280x720&fps=30&fourcc=MJPG`` opens a camera with the V4L2 backend;
most USB cameras deliver 720p/1080p at full rate only as MJPG, which is the default here. The
capture object is created by ``capture_factory(target, api)`` (``cv2.VideoCapture`` unless a test
passes a stand-in), so everything above it is testable without a camera.
"""

import os

from edgerestore.errors import DeviceError
from edgerestore.runtime.frames import as_rgb
from edgerestore.runtime.sources.live import LiveSource
from edgerestore.runtime.uri import device_path, size_param

V4L2_LIST_HINT = "`v4l2-ctl --list-devices` lists cameras (sudo apt install v4l-utils)"


def _cv2():
    import cv2

    return cv2


class OpenCVCaptureSource(LiveSource):
    """Frames from a ``cv2.VideoCapture``-shaped object (BGR ``read()``), converted to RGB once."""

    def __init__(self, capture, description, lost_hint, fps=None):
        super(OpenCVCaptureSource, self).__init__(description, lost_hint)
        cv2 = _cv2()
        self._cap = capture
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        self.size = (width, height) if width and height else None
        self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0) or fps

    def _read(self):
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        # 4-channel BGRx (some GStreamer pipelines) or grayscale are converted here, once.
        order = "bgrx" if bgr.ndim == 3 and bgr.shape[2] == 4 else "bgr"
        return as_rgb(bgr, order if bgr.ndim == 3 else "rgb"), None

    def _release(self):
        self._cap.release()


class V4L2Source(OpenCVCaptureSource):
    """``v4l2:///dev/video0`` (or ``v4l2://0``): a USB or other V4L2 camera."""

    def __init__(self, uri, capture_factory=None, **_):
        path = device_path(uri)
        if not os.path.exists(path):
            raise DeviceError("no camera at %s — is it plugged in? %s" % (path, V4L2_LIST_HINT))
        cv2 = _cv2()
        factory = capture_factory or cv2.VideoCapture
        capture = factory(path, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise DeviceError(
                "cannot open the camera at %s: busy or not allowed — close other programs using it, "
                "and check that you are in the video group (sudo usermod -aG video $USER, then log in "
                "again); %s" % (path, V4L2_LIST_HINT)
            )
        fourcc = uri.params.get("fourcc", "MJPG").upper()
        if fourcc not in ("", "RAW", "NONE"):
            if len(fourcc) != 4:
                from edgerestore.errors import ConfigError

                raise ConfigError("fourcc must be 4 characters (MJPG, YUYV...), got %r in %s" % (fourcc, uri.raw))
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
        size = size_param(uri)
        if size:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        fps = uri.param("fps", None, float)
        if fps:
            capture.set(cv2.CAP_PROP_FPS, fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones
        timeout_ms = uri.param("timeout", 2.0, float) * 1000.0
        if hasattr(cv2, "CAP_PROP_READ_TIMEOUT_MSEC"):  # OpenCV >= 4.6: a hung camera returns False
            capture.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms)
        super(V4L2Source, self).__init__(
            capture, "camera %s" % path,
            "is it still plugged in (try another USB port or cable; `dmesg | tail` shows disconnects)? "
            + V4L2_LIST_HINT,
            fps=fps,
        )
        self.path = path
        self.requested = {"size": size, "fps": fps, "fourcc": fourcc}
