"""Frame sources, created from URIs by one registry (scheme -> factory). Python 3.6-safe.

Every source yields :class:`~edgerestore.runtime.frames.Frame` objects with RGB uint8 images,
has ``fps`` (or None), ``size`` ``(width, height)`` once known, ``frame_count`` (or None for
live sources), ``live`` (whether frames keep coming whether or not we read them) and ``close()``.
"""

import importlib

from edgerestore.errors import UnknownNameError
from edgerestore.runtime.uri import parse_uri

# scheme -> "module:factory"; the factory takes a parsed Uri and keyword options.
REGISTRY = {
    "file": "edgerestore.runtime.sources.video:VideoFileSource",
    "image": "edgerestore.runtime.sources.images:ImageSource",
    "images": "edgerestore.runtime.sources.images:ImageSource",
    "v4l2": "edgerestore.runtime.sources.opencv_capture:V4L2Source",
    "csi": "edgerestore.runtime.sources.csi:open_csi",
    "picam": "edgerestore.runtime.sources.picamera:PicameraSource",
    "rtsp": "edgerestore.runtime.sources.stream:StreamSource",
    "rtsps": "edgerestore.runtime.sources.stream:StreamSource",
    "test": "edgerestore.runtime.sources.pattern:TestPatternSource",
}


def open_source(text, **options):
    """Open the source named by a URI or a path; an unknown scheme lists the known ones."""
    uri = parse_uri(text)
    if uri.scheme not in REGISTRY:
        raise UnknownNameError("source scheme", uri.scheme + "://", [s + "://" for s in REGISTRY])
    module_name, factory = REGISTRY[uri.scheme].split(":")
    return getattr(importlib.import_module(module_name), factory)(uri, **options)
