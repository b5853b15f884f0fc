"""Raspberry Pi cameras through picamera2: ``picam://0`` (and ``csi://0`` on a Pi). Python 3.6-safe.

picamera2's default format is the 4-channel ``XBGR8888``, whose pixels sit in memory as
R, G, B, X; ``RGB888`` sits as B, G, R (the names follow DRM's little-endian convention). The
frame is read straight from the camera's buffer (``MappedArray``, no copy) and converted to RGB
in a single copy, after which the buffer goes back to the camera. ``?format=RGB888`` halves the
memory traffic when the ISP can produce it.

The camera is created by ``picamera2_module.Picamera2`` (the real module unless a test passes a
stand-in shaped like it), so the adapter's contract is testable without a Pi.
"""

import numpy as np

from edgerestore.errors import BackendUnavailableError, ConfigError, DeviceError
from edgerestore.runtime.frames import as_rgb
from edgerestore.runtime.sources.live import LiveSource
from edgerestore.runtime.uri import device_index, size_param

# picamera2 format name -> channel order in memory (see the module docstring).
FORMAT_ORDER = {"XBGR8888": "rgbx", "XRGB8888": "bgrx", "RGB888": "bgr", "BGR888": "rgb"}
DEFAULT_FORMAT = "XBGR8888"
LIST_HINT = "`rpicam-hello --list-cameras` (libcamera-hello on older Raspberry Pi OS) lists cameras"


def exposure_share(metadata):
    """The exposure's share of the frame interval from a request's metadata (``ExposureTime`` and
    ``FrameDuration``, both microseconds), within 0..1; None when either is missing."""
    exposure, duration = metadata.get("ExposureTime"), metadata.get("FrameDuration")
    if not exposure or not duration or duration <= 0:
        return None
    return min(1.0, max(0.0, float(exposure) / float(duration)))


def owned_rgb(array, order):
    """RGB uint8 from a camera buffer view in one copy, never a view of the buffer itself."""
    out = as_rgb(array, order)
    if np.may_share_memory(out, array):  # already RGB and contiguous: as_rgb made no copy
        out = out.copy()
    return out


def _import_picamera2():
    try:
        import picamera2
    except ImportError:
        raise BackendUnavailableError(
            "picam:// needs picamera2 — sudo apt install python3-picamera2 (and create the venv "
            "with --system-site-packages so that it is visible)"
        )
    return picamera2


class PicameraSource(LiveSource):
    """``picam://0?size=1280x720&fps=30&format=XBGR8888&timeout=2``."""

    def __init__(self, uri, picamera2_module=None, **_):
        module = picamera2_module or _import_picamera2()
        index = device_index(uri)
        fmt = uri.params.get("format", DEFAULT_FORMAT).upper()
        if fmt not in FORMAT_ORDER:
            raise ConfigError("format %s in %s is not supported; use one of: %s"
                              % (fmt, uri.raw, ", ".join(sorted(FORMAT_ORDER))))
        size = size_param(uri, default=(1280, 720))
        fps = uri.param("fps", 30.0, float)
        self.timeout = uri.param("timeout", 2.0, float)
        info = []
        if hasattr(module.Picamera2, "global_camera_info"):
            info = module.Picamera2.global_camera_info()
            if index >= len(info):
                raise DeviceError(
                    "no Raspberry Pi camera %d (%d found) — check the ribbon cable (power off first) and "
                    "camera_auto_detect=1 in /boot/firmware/config.txt; %s" % (index, len(info), LIST_HINT)
                )
        try:
            camera = module.Picamera2(index)
        except (RuntimeError, IndexError) as exc:
            raise DeviceError("cannot open Raspberry Pi camera %d (%s) — is another program using it? %s"
                              % (index, exc, LIST_HINT))
        try:
            config = camera.create_video_configuration(
                main={"size": tuple(size), "format": fmt}, controls={"FrameRate": fps}, buffer_count=4)
            camera.configure(config)
            camera.start()
        except Exception:
            camera.close()
            raise
        super(PicameraSource, self).__init__(
            "Raspberry Pi camera %d" % index,
            "check the ribbon cable and that no other program opened the camera; " + LIST_HINT,
        )
        self._module = module
        self._camera = camera
        self.order = FORMAT_ORDER[fmt]
        self.format = fmt
        actual = self._configured_size()
        self.size = actual or tuple(size)
        self.fps = fps

    def _configured_size(self):
        try:
            main = self._camera.camera_configuration()["main"]
            return tuple(main["size"])
        except Exception:  # older picamera2 without camera_configuration()
            return None

    def _capture_request(self):
        try:
            job = self._camera.capture_request(wait=False)
        except TypeError:  # picamera2 < 0.3.13: blocking capture_request() without a job
            return self._camera.capture_request()
        return self._camera.wait(job, timeout=self.timeout)

    def _read(self):
        try:
            request = self._capture_request()
        except TimeoutError:
            return None
        except RuntimeError:  # the camera went away under us; retried, then DeviceError
            return None
        try:
            with self._module.MappedArray(request, "main") as mapped:
                image = owned_rgb(mapped.array, self.order)
            pts = exposure = None
            try:
                metadata = request.get_metadata()
                stamp = metadata.get("SensorTimestamp")
                pts = stamp / 1e9 if stamp else None
                exposure = exposure_share(metadata)
            except Exception:
                pts = None
        finally:
            request.release()  # give the buffer back to the camera at once
        return image, pts, None, exposure

    def _release(self):
        try:
            self._camera.stop()
        finally:
            self._camera.close()
