"""Source and sink URIs, jetson-inference style: ``scheme://location?key=value&...``.

A plain path is a file: ``clip.mp4``, ``photo.png`` or a folder of images. Python 3.6-safe.
"""

import os
import re
from urllib.parse import parse_qsl, urlsplit

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".h264", ".mpg", ".mpeg")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class Uri(object):
    """A parsed URI: ``scheme``, ``location`` (host+path or file path) and ``params`` (dict of str)."""

    __slots__ = ("raw", "scheme", "location", "params")

    def __init__(self, raw, scheme, location, params):
        self.raw = raw
        self.scheme = scheme
        self.location = location
        self.params = params

    def __repr__(self):
        return "Uri(%r)" % self.raw

    def param(self, key, default=None, cast=str):
        """A query parameter converted with ``cast``; a bad value names the key and the URI."""
        if key not in self.params:
            return default
        try:
            return cast(self.params[key])
        except ValueError:
            from edgerestore.errors import ConfigError

            raise ConfigError("bad value %r for %s in %s" % (self.params[key], key, self.raw))

    def flag(self, key, default=False):
        """A yes/no parameter (``1/0``, ``true/false``, ``yes/no``, ``on/off``)."""
        value = self.params.get(key)
        if value is None:
            return default
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        from edgerestore.errors import ConfigError

        raise ConfigError("bad value %r for %s in %s — use 1 or 0" % (value, key, self.raw))


SECRET_KEYS = ("token", "access_token", "auth", "key", "apikey", "api_key", "password", "passwd", "pass",
               "pwd", "secret", "sig", "signature", "session", "sessionid")
"""Query parameters whose values :func:`redact` hides (compared without case)."""

_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/\s:@'\"]*):([^/\s@'\"]*)@")
_SECRET_QUERY = re.compile(r"([?&;](?:%s)=)[^&#\s'\"]*" % "|".join(SECRET_KEYS), re.IGNORECASE)


def redact(text):
    """``text`` with every URL's password (``rtsp://user:***@host/...``) and every secret-looking
    query value (``?token=***``, :data:`SECRET_KEYS`) hidden, wherever in the text they are (an
    error message quoting the raw URL too). Everything that leaves the process goes through it:
    the log, ``/healthz``, ``/stats.json``, ``/metrics`` and the CLI's output."""
    text = str(text)
    if "@" in text:
        text = _CREDENTIALS.sub(r"\1\2:***@", text)
    if "=" in text:
        text = _SECRET_QUERY.sub(r"\1***", text)
    return text


def parse_uri(text):
    """Parse ``text``; plain paths become ``file``/``images`` URIs by what is on disk or the suffix."""
    text = str(text)
    if "://" not in text:
        return Uri(text, _scheme_for_path(text), text, {})
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    # file://out.mp4 and file:///abs/out.mp4 both work; v4l2://0 and v4l2:///dev/video0 too.
    location = parts.netloc + parts.path
    params = dict(parse_qsl(parts.query))
    if scheme == "file" and os.path.isdir(location):
        scheme = "images"
    return Uri(text, scheme, location, params)


def _scheme_for_path(path):
    if os.path.isdir(path):
        return "images"
    suffix = os.path.splitext(path)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix == "" and not os.path.exists(path):
        return "images"  # an output folder that does not exist yet
    return "file"


def size_param(uri, key="size", default=None):
    """``WIDTHxHEIGHT`` parameter as ``(width, height)``."""
    value = uri.params.get(key)
    if value is None:
        return default
    try:
        width, height = value.lower().split("x")
        return int(width), int(height)
    except ValueError:
        from edgerestore.errors import ConfigError

        raise ConfigError("bad %s %r in %s — write it as WIDTHxHEIGHT, e.g. 1280x720" % (key, value, uri.raw))


def device_path(uri, prefix="/dev/video"):
    """The device file of a camera-like URI: ``v4l2://0`` -> ``/dev/video0``, a path stays a path."""
    location = uri.location or "0"
    if location.isdigit():
        return prefix + location
    return location


def device_index(uri, default=0):
    """The number in ``csi://0`` or ``picam://1`` (a bare index; anything else is a ConfigError)."""
    location = uri.location or str(default)
    if not location.isdigit():
        from edgerestore.errors import ConfigError

        raise ConfigError("%s needs a camera number, e.g. %s://0" % (uri.raw, uri.scheme))
    return int(location)
