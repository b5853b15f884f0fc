"""``csi://N``: the board's ribbon-cable camera — GStreamer ``nvarguscamerasrc`` on Jetson,
picamera2 on Raspberry Pi. Python 3.6-safe.

On Jetson the camera goes through the ISP (nvarguscamerasrc), is converted to BGRx by the
hardware converter (nvvidconv) and handed to OpenCV's GStreamer backend through an appsink that
keeps only the newest buffer. JetPack's OpenCV is built with GStreamer; the PyPI wheels are not,
which is the first thing to check when ``csi://`` fails on a Jetson.
"""

import os

from edgerestore.errors import BackendUnavailableError, DeviceError
from edgerestore.runtime.sources.opencv_capture import OpenCVCaptureSource
from edgerestore.runtime.uri import device_index, size_param

DEVICE_TREE_MODEL = "/proc/device-tree/model"
TEGRA_RELEASE = "/etc/nv_tegra_release"


def board_family(model_path=DEVICE_TREE_MODEL, tegra_path=TEGRA_RELEASE):
    """``"jetson"``, ``"raspberrypi"`` or ``None`` from the device tree (what csi:// dispatches on)."""
    model = ""
    try:
        with open(model_path, "rb") as handle:
            model = handle.read().decode("utf-8", "replace").strip("\x00 \n")
    except (IOError, OSError):
        pass
    if os.path.exists(tegra_path) or "jetson" in model.lower() or "nvidia" in model.lower():
        return "jetson"
    if "raspberry pi" in model.lower():
        return "raspberrypi"
    return None


def nvargus_pipeline(sensor_id=0, width=1280, height=720, fps=30, flip=0):
    """The GStreamer pipeline string for one CSI camera on Jetson (BGRx out, newest frame only)."""
    return (
        "nvarguscamerasrc sensor-id=%d ! "
        "video/x-raw(memory:NVMM), width=(int)%d, height=(int)%d, framerate=(fraction)%d/1, format=(string)NV12 ! "
        "nvvidconv flip-method=%d ! video/x-raw, format=(string)BGRx ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! "
        "appsink drop=true max-buffers=1 sync=false"
        % (sensor_id, width, height, int(round(fps)), flip)
    )


def opencv_has_gstreamer():
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


class JetsonCSISource(OpenCVCaptureSource):
    """A Jetson CSI camera through nvarguscamerasrc (``csi://0?size=1280x720&fps=30&flip=0``)."""

    def __init__(self, uri, capture_factory=None, **_):
        import cv2

        sensor = device_index(uri)
        width, height = size_param(uri, default=(1280, 720))
        fps = uri.param("fps", 30.0, float)
        self.pipeline = nvargus_pipeline(sensor, width, height, fps, uri.param("flip", 0, int))
        if capture_factory is None:
            if not opencv_has_gstreamer():
                raise BackendUnavailableError(
                    "this OpenCV has no GStreamer support, which csi:// needs on Jetson — use "
                    "JetPack's OpenCV: pip uninstall opencv-python opencv-python-headless, then "
                    "sudo apt install python3-opencv"
                )
            capture_factory = cv2.VideoCapture
        capture = capture_factory(self.pipeline, cv2.CAP_GSTREAMER)
        if not capture.isOpened():
            capture.release()
            raise DeviceError(
                "no CSI camera answers on sensor-id %d — check the ribbon cable (contacts facing the "
                "board), then `sudo systemctl restart nvargus-daemon`; `ls /dev/video*` lists the "
                "cameras the kernel sees" % sensor
            )
        super(JetsonCSISource, self).__init__(
            capture, "CSI camera %d" % sensor,
            "check the ribbon cable and `sudo systemctl restart nvargus-daemon`", fps=fps,
        )
        self.size = (width, height)  # the appsink caps fix the size; GStreamer may not report it
        self.fps = fps


def open_csi(uri, **options):
    """Pick the CSI implementation for this board."""
    family = options.pop("board", None) or board_family()
    if family == "jetson":
        return JetsonCSISource(uri, **options)
    if family == "raspberrypi":
        from edgerestore.runtime.sources.picamera import PicameraSource

        return PicameraSource(uri, **options)
    raise DeviceError(
        "csi:// needs a Jetson (GStreamer nvarguscamerasrc) or a Raspberry Pi (picamera2), and this "
        "machine is neither — use v4l2:///dev/video0 for a USB camera or test://pattern to try the pipeline"
    )
