"""Frame sinks, created from URIs by one registry (scheme -> factory). Python 3.6-safe.

Every sink has ``write(frame)`` and ``close()``; ``close()`` always finalises what was written
(an MP4 stays playable whatever happened before), and sinks are context managers. Sinks that
take key presses (display windows, the framebuffer's terminal) also have ``poll_keys()``.
"""

import importlib
import os

from edgerestore.errors import OutputError, UnknownNameError
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
    try:
        return getattr(importlib.import_module(module_name), factory)(uri, **options)
    except (IOError, OSError) as exc:  # the file system said no: one line, whatever the sink
        raise OutputError(_output_problem(uri.location, exc))


def _output_problem(location, exc):
    parent = os.path.dirname(os.path.abspath(location))
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent) if os.path.dirname(parent) != parent else ""
    if parent and os.path.isfile(parent):
        return "cannot write %s: %s is a file, not a folder — choose another output path" % (location, parent)
    return "cannot write %s: %s — choose a folder you can write to" % (
        location, getattr(exc, "strerror", None) or exc)
