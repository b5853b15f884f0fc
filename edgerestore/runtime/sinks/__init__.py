"""Frame sinks, created from URIs by one registry (scheme -> factory). Python 3.6-safe.

Every sink has ``write(frame)`` and ``close()``; ``close()`` always finalises what was written
(an MP4 stays playable whatever happened before), and sinks are context managers. Sinks that
take key presses (display windows, the framebuffer's terminal) also have ``poll_keys()``.
"""

import importlib

from edgerestore.errors import UnknownNameError
from edgerestore.runtime.uri import parse_uri

REGISTRY = {
    "file": "edgerestore.runtime.sinks.video:VideoFileSink",
    "image": "edgerestore.runtime.sinks.images:ImageFileSink",
    "images": "edgerestore.runtime.sinks.images:ImageFileSink",
    "null": "edgerestore.runtime.sinks.null:NullSink",
    "display": "edgerestore.runtime.sinks.display:open_display",
    "http": "edgerestore.runtime.sinks.http:HttpSink",
    "v4l2loopback": "edgerestore.runtime.sinks.webcam:VirtualWebcamSink",
}


def open_sink(text, **options):
    """Open the sink named by a URI or a path; an unknown scheme lists the known ones.

    ``options`` may carry ``fps`` and ``size`` ``(width, height)`` from the source.
    """
    uri = parse_uri(text)
    if uri.scheme not in REGISTRY:
        raise UnknownNameError("sink scheme", uri.scheme + "://", [s + "://" for s in REGISTRY])
    module_name, factory = REGISTRY[uri.scheme].split(":")
    return getattr(importlib.import_module(module_name), factory)(uri, **options)
