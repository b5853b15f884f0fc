"""The service's configuration file: one table of settings, validation that names key and line.

The file is TOML (read by :mod:`edgerestore.runtime.tomlsubset`: boards run Python 3.6–3.10,
without ``tomllib``), with tables ``[source]``, ``[model]``, ``[output]``, ``[http]``,
``[logging]`` and ``[service]``; :data:`FIELDS` lists every key, its type, default and accepted
values (``edgerestore config init`` writes them all, commented). Flags given to ``edgerestore
run`` override the file (:data:`FLAGS` maps them) — also after a reload (SIGHUP).

Every problem is one line naming where the value came from, the key, what is wrong and what is
accepted, e.g. ``edgerestore.toml line 9: model.backends: unknown backend 'tflit' — accepted:
onnxruntime``. Python 3.6-safe, torch-free.
"""

import os
import re
import textwrap
from types import SimpleNamespace

from edgerestore.errors import ConfigError
from edgerestore.runtime import tomlsubset

LOG_LEVELS = ("debug", "info", "warning", "error")
ORT_PROVIDERS = ("tensorrt", "cuda", "cpu")
SIZED_SCHEMES = ("v4l2", "csi", "picam", "test")  # sources that take ?size= and ?fps=
MIN_TOKEN_CHARS = 16
TOKEN_ENV = "EDGERESTORE_HTTP_TOKEN"
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}$")


class _Invalid(Exception):
    """Raised by a check: ``problem`` (what is wrong) and ``accepted`` (what would be right)."""

    def __init__(self, problem, accepted=None):
        super(_Invalid, self).__init__(problem)
        self.problem = problem
        self.accepted = accepted


# --- checks: each takes the raw value and returns the normalised one, or raises _Invalid -------

def _string(value):
    if not isinstance(value, str):
        raise _Invalid("not a string", 'a "quoted string"')
    return value


MAX_SIDE = 7680
"""The largest frame side a source may be asked for (8K UHD)."""
MAX_SECONDS = 3600.0
"""The longest wait, interval or timeout a setting takes (an hour)."""


def _number(minimum=None, maximum=None, above=None):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid("not a number", _range_text(minimum, maximum, above))
        if (above is not None and value <= above) or (minimum is not None and value < minimum) or \
                (maximum is not None and value > maximum):
            raise _Invalid("out of range", _range_text(minimum, maximum, above))
        return float(value)
    return check


def _integer(minimum=None, maximum=None):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid("not a whole number", _range_text(minimum, maximum, None, "whole number"))
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise _Invalid("out of range", _range_text(minimum, maximum, None, "whole number"))
        return value
    return check


def _range_text(minimum, maximum, above, noun="number"):
    if above is not None:
        return "a %s > %g" % (noun, above) + (" and <= %g" % maximum if maximum is not None else "")
    if minimum is not None and maximum is not None:
        return "a %s from %g to %g" % (noun, minimum, maximum)
    if minimum is not None:
        return "a %s >= %g" % (noun, minimum)
    return "a %s" % noun


def _parsed(where, what, accepted):
    """A field checked by the runtime's own parser ``where`` (``"module:function"``, imported when a value
    is checked), whose one-line error becomes ``what`` with ``accepted``; true/false are refused."""
    def check(value):
        import importlib

        from edgerestore.errors import ConfigError

        module, name = where.split(":")
        if isinstance(value, bool):
            raise _Invalid(what, accepted)
        try:
            return getattr(importlib.import_module(module), name)(value)
        except ConfigError:
            raise _Invalid(what, accepted)
    return check


_exposure = _parsed("edgerestore.runtime.framefilter:parse_exposure", "not an exposure share",
                    "\"auto\" or a number > 0 and <= 1")
_noise_level = _parsed("edgerestore.runtime.backends.base:parse_noise_level", "not a noise level",
                       "\"auto\" or a number >= 0")


def _boolean(value):
    if not isinstance(value, bool):
        raise _Invalid("not true or false", "true, false (no quotes)")
    return value


def _choice(options):
    def check(value):
        if value not in options:
            raise _Invalid("not one of the choices", ", ".join(options))
        return value
    return check


def _string_list(item_check=None, allow_empty=True):
    def check(value):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise _Invalid("not a list of strings", '["a", "b"]')
        if not value and not allow_empty:
            raise _Invalid("is empty", "at least one entry")
        seen = set()
        for item in value:
            if item in seen:
                raise _Invalid("lists %r twice" % item, "each entry once")
            seen.add(item)
        return [item_check(item) if item_check else item for item in value]
    return check


def _source_uri(value):
    from edgerestore.runtime.sources import REGISTRY
    from edgerestore.runtime.uri import parse_uri

    value = _string(value).strip()
    if not value:
        raise _Invalid("is empty", "a source URI such as v4l2:///dev/video0, csi://0, rtsp://..., a file")
    scheme = parse_uri(value).scheme
    if scheme not in REGISTRY:
        raise _Invalid("unknown source scheme %s://" % scheme, ", ".join(s + "://" for s in sorted(REGISTRY)))
    return value


def _sink_uri(value):
    from edgerestore.runtime.sinks import REGISTRY
    from edgerestore.runtime.uri import parse_uri

    if not value.strip():
        raise _Invalid("has an empty entry", "sink URIs such as file:///var/lib/edgerestore/out.mp4")
    scheme = parse_uri(value).scheme
    if scheme not in REGISTRY:
        raise _Invalid("unknown sink scheme %s://" % scheme, ", ".join(s + "://" for s in sorted(REGISTRY)))
    return value


def _resolution(value):
    value = _string(value).strip().lower()
    if not value:
        return None
    match = re.match(r"(\d+)x(\d+)$", value)
    if not match or not int(match.group(1)) or not int(match.group(2)):
        raise _Invalid("not WIDTHxHEIGHT", 'WIDTHxHEIGHT such as "1280x720", or "" for the camera\'s default')
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= MAX_SIDE and 16 <= height <= MAX_SIDE):
        raise _Invalid("out of range", "each side from 16 to %d pixels (8K), e.g. \"1920x1080\"" % MAX_SIDE)
    return width, height


def _model_entry(value):
    from edgerestore.runtime.artifacts import FILE_TYPES, NO_MODEL
    from edgerestore.weights import shipped_presets

    value = value.strip()
    if value == NO_MODEL or os.path.exists(value):
        return value
    looks_like_path = os.sep in value or os.path.splitext(value)[1]
    if looks_like_path:
        raise _Invalid("%s does not exist" % value,
                       "an existing model file (%s) or bundle folder" % ", ".join(FILE_TYPES))
    if value not in shipped_presets():
        raise _Invalid("no shipped model named %r (this install ships %s)" % (value, ", ".join(shipped_presets()) or "none"),
                       ", ".join(shipped_presets() + ["none", "a model file", "a bundle folder (edgerestore export)"]))
    return value


def _model_paths(value):
    paths = _string_list(_model_entry, allow_empty=False)(value)
    if "none" in paths and len(paths) > 1:
        raise _Invalid("mixes none with models", '"none" alone (frames pass through), or model files')
    return paths


def _backend_name(value):
    from edgerestore.runtime.backends import REGISTRY

    if value not in REGISTRY:
        raise _Invalid("unknown backend %r" % value, ", ".join(sorted(REGISTRY)))
    return value


def _listen(value):
    value = _string(value).strip()
    if value in ("", "off"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise _Invalid("not HOST:PORT", '"127.0.0.1:8080" (port 0 picks a free one), or "off"')
    return host, int(port)


def _token(value):
    value = _string(value).strip()
    if value and len(value) < MIN_TOKEN_CHARS:
        raise _Invalid("is too short (%d characters)" % len(value),
                       "%d+ random characters, e.g. python3 -c \"import secrets; print(secrets.token_hex(16))\""
                       % MIN_TOKEN_CHARS)
    return value


def _existing_file(value):
    value = _string(value).strip()
    if value and not os.path.isfile(value):
        raise _Invalid("%s does not exist" % value, "the path of a readable file, or \"\"")
    return value


def _log_file(value):
    value = _string(value).strip()
    if value and not os.path.isdir(os.path.dirname(os.path.abspath(value))):
        raise _Invalid("the folder of %s does not exist" % value, "a file in an existing folder, or \"\" for stdout")
    if value:  # the only sure test: open it for appending (and leave no empty file behind)
        existed = os.path.exists(value)
        try:
            open(value, "a").close()
        except (IOError, OSError) as exc:
            raise _Invalid("%s cannot be written (%s)" % (value, exc.strerror or exc),
                           "a writable file, or \"\" for stdout")
        if not existed:
            os.remove(value)
    return value


def _user(value):
    value = _string(value).strip()
    if not _USER.match(value):
        raise _Invalid("not a valid user name", "lower-case letters, digits, _ and -, starting with a letter")
    return value


class Field(object):
    """One setting: where it lives, its default (already valid), how to check it, a comment."""

    __slots__ = ("table", "key", "default", "check", "help", "secret")

    def __init__(self, table, key, default, check, help, secret=False):
        self.table = table
        self.key = key
        self.default = default
        self.check = check
        self.help = help
        self.secret = secret

    @property
    def name(self):
        return "%s.%s" % (self.table, self.key)


# ONE table of every setting (order = the order `config init` writes them).
FIELDS = [
    Field("source", "uri", "v4l2:///dev/video0", _source_uri,
          "where frames come from: v4l2:///dev/video0 (USB camera), csi://0 (ribbon camera), picam://0, "
          "rtsp://user:pass@host/path, http://host/stream.mjpg, a video file, test://pattern"),
    Field("source", "resolution", "", _resolution,
          'WIDTHxHEIGHT asked of a camera or the test pattern ("" = its default)'),
    Field("source", "fps", 0, _number(minimum=0, maximum=240), "frame rate asked of a camera (0 = its default; at most 240)"),
    Field("source", "reconnect_min_s", 0.5, _number(above=0, maximum=MAX_SECONDS),
          "first wait before reopening a lost source (seconds, at most 3600)"),
    Field("source", "reconnect_max_s", 30.0, _number(above=0, maximum=MAX_SECONDS),
          "the wait doubles up to this (at most 3600)"),
    Field("model", "path", "nano", _model_paths,
          "a preset with shipped weights (pico, nano, nano-fast, small), a model file, a bundle folder (its sha256 "
          "hashes are checked before loading), or \"none\"; a list is tried in order"),
    Field("model", "backends", [], _string_list(_backend_name),
          "backends in order of preference; when one fails to load or crashes the next takes over "
          "([] = every backend that can run the model file)"),
    Field("model", "providers", [], _string_list(_choice(ORT_PROVIDERS)),
          "ONNX Runtime execution providers, best first ([] = the best this build has)"),
    Field("model", "threads", 0, _integer(minimum=0, maximum=256), "inference threads (0 = all cores)"),
    Field("model", "noise_level", "auto", _noise_level,
          "for a model with a noise-level input: \"auto\" (measured from the still parts of the picture, "
          "frame to frame) or the camera's level, a number >= 0 (`edgerestore noise-level` measures it)"),
    Field("model", "deblur", "none", _choice(("none", "motion")),
          "\"motion\": after the model, sharpen each moving part of a frame along the camera's motion (a model "
          "with a motion deblur filter beside it: nano-codec); \"none\": nothing"),
    Field("model", "exposure", "auto", _exposure,
          "with deblur = \"motion\": the camera's exposure as a share of the frame interval (1/60 s at 30 fps "
          "is 0.5), a number > 0 and <= 1, or \"auto\" (what the camera reports, else 0.5)"),
    Field("model", "warmup", True, _boolean, "run a few frames through the model before the first real one"),
    Field("output", "sinks", ["null://"], _string_list(_sink_uri),
          "where restored frames go: file:///var/lib/edgerestore/out.mp4, v4l2loopback:///dev/video10, "
          "display://0, http://127.0.0.1:8081, null://"),
    Field("output", "retry_min_s", 1.0, _number(above=0, maximum=MAX_SECONDS),
          "first wait before reopening a failed sink (seconds, at most 3600)"),
    Field("output", "retry_max_s", 60.0, _number(above=0, maximum=MAX_SECONDS),
          "the wait doubles up to this (at most 3600)"),
    Field("output", "queue", 2, _integer(minimum=1, maximum=64),
          "frames queued between stages; live sources drop the oldest when full"),
    Field("http", "listen", "127.0.0.1:8080", _listen,
          "preview page, /stream.mjpg, /stats.json, /metrics (Prometheus) and /healthz "
          '("off" = none); another address than 127.0.0.1 needs a token'),
    Field("http", "token", "", _token, "bearer token asked of HTTP clients (Authorization: Bearer or ?token=); "
          "$EDGERESTORE_HTTP_TOKEN works too", secret=True),
    Field("http", "token_file", "", _existing_file, "or: a file holding the token (keep it chmod 600)"),
    Field("logging", "level", "info", _choice(LOG_LEVELS), "JSON-lines log level"),
    Field("logging", "file", "", _log_file, 'log file ("" = stdout, which systemd sends to the journal)'),
    Field("logging", "stats_every", 5.0, _number(above=0, maximum=MAX_SECONDS),
          "seconds between statistics lines (at most 3600)"),
    Field("logging", "telemetry", True, _boolean, "add temperature and throttling to the statistics"),
    Field("service", "user", "edgerestore", _user, "the system user `edgerestore service install` runs as"),
    Field("service", "watchdog_s", 30.0, _number(minimum=0, maximum=MAX_SECONDS),
          "systemd WatchdogSec (0 = no watchdog; at most 3600)"),
    Field("service", "stall_s", 20.0, _number(above=0, maximum=MAX_SECONDS),
          "no frame out for this long while the source is connected = stalled (the watchdog lets systemd restart)"),
    Field("service", "stop_timeout_s", 2.0, _number(above=0, maximum=60),
          "SIGTERM: seconds to drain the queues and finalise every sink"),
]
FIELD_MAP = dict(((field.table, field.key), field) for field in FIELDS)
TABLES = []
for _field in FIELDS:
    if _field.table not in TABLES:
        TABLES.append(_field.table)

# `edgerestore run` flag -> the setting it overrides.
FLAGS = {
    "--source": ("source", "uri"),
    "--resolution": ("source", "resolution"),
    "--sink": ("output", "sinks"),
    "--model": ("model", "path"),
    "--backend": ("model", "backends"),
    "--providers": ("model", "providers"),
    "--threads": ("model", "threads"),
    "--noise-level": ("model", "noise_level"),
    "--deblur": ("model", "deblur"),
    "--exposure": ("model", "exposure"),
    "--stats-every": ("logging", "stats_every"),
    "--http": ("http", "listen"),
    "--log-level": ("logging", "level"),
    "--log-file": ("logging", "file"),
}


class Config(object):
    """Validated settings: ``config.source.uri`` etc., plus where each value came from."""

    def __init__(self, path, values, origins):
        self.path = path
        self.values = values  # {table: {key: value}}
        self.origins = origins  # {table: {key: "file line N" | "--flag" | "default"}}
        for table, section in values.items():
            setattr(self, table, SimpleNamespace(**section))

    def section(self, table):
        return dict(self.values[table])

    def token(self):
        """The HTTP token: http.token, else the content of http.token_file, else
        ``$EDGERESTORE_HTTP_TOKEN``; None when there is none."""
        if self.http.token:
            return self.http.token
        if self.http.token_file:
            with open(self.http.token_file, "r") as handle:
                return handle.read().strip() or None
        return os.environ.get(TOKEN_ENV) or None

    def source_uri(self):
        """The source URI with the configured resolution and fps added where the scheme takes them."""
        from edgerestore.runtime.uri import parse_uri

        uri = self.source.uri
        parsed = parse_uri(uri)
        if parsed.scheme not in SIZED_SCHEMES:
            return uri
        extra = []
        if self.source.resolution and "size" not in parsed.params:
            extra.append("size=%dx%d" % self.source.resolution)
        if self.source.fps and "fps" not in parsed.params:
            extra.append("fps=%g" % self.source.fps)
        if not extra:
            return uri
        return uri + ("&" if "?" in uri else "?") + "&".join(extra)

    def describe(self):
        """Every setting as ``table.key = value  # origin`` lines (``config check`` prints them)."""
        lines = []
        for field in FIELDS:
            value = self.values[field.table][field.key]
            shown = "***" if field.secret and value else value
            lines.append("%s = %r  # %s" % (field.name, shown, self.origins[field.table][field.key]))
        return lines


def _problem(origin, field_name, value, invalid, secret=False):
    shown = "" if secret else " (got %r)" % (value,)
    accepted = " — accepted: %s" % invalid.accepted if invalid.accepted else ""
    return ConfigError("%s: %s: %s%s%s" % (origin, field_name, invalid.problem, shown, accepted))


def _read_document(path):
    if not os.path.isfile(path):
        raise ConfigError("config file %s does not exist — write one with `edgerestore config init --output %s`"
                          % (path, path))
    try:
        return tomlsubset.load(path)
    except tomlsubset.TomlError as exc:
        raise ConfigError("%s line %d: %s" % (path, exc.line, exc.problem))
    except (IOError, OSError) as exc:
        raise ConfigError("cannot read config file %s: %s" % (path, exc))


def load_config(path=None, overrides=None):
    """Read ``path`` (or nothing: defaults only), apply ``overrides`` and check every value.

    ``overrides`` maps a flag (a key of :data:`FLAGS`) to its value. Raises a one-line
    :class:`~edgerestore.errors.ConfigError` for the first problem.
    """
    label = path
    doc = _read_document(path) if path else tomlsubset.Document()
    for table, entries in doc.tables.items():
        if table and table not in TABLES:
            raise ConfigError("%s line %d: unknown table [%s] — accepted: %s" % (
                label, doc.table_lines[table], table, ", ".join("[%s]" % t for t in TABLES)))
        for key, (_value, line) in entries.items():
            if (table, key) not in FIELD_MAP:
                where = "[%s]" % table if table else "the top level (put settings in a [table])"
                known = sorted(f.key for f in FIELDS if f.table == table) if table else []
                raise ConfigError("%s line %d: unknown key %s%s in %s%s" % (
                    label, line, table + "." if table else "", key, where,
                    " — accepted: %s" % ", ".join(known) if known else
                    " — accepted tables: %s" % ", ".join("[%s]" % t for t in TABLES)))
    by_field = {}
    for flag, value in (overrides or {}).items():
        if flag not in FLAGS:
            raise ConfigError("%s cannot override a setting — flags that can: %s" % (flag, ", ".join(sorted(FLAGS))))
        by_field[FLAGS[flag]] = (value, flag)
    values = dict((table, {}) for table in TABLES)
    origins = dict((table, {}) for table in TABLES)
    for field in FIELDS:
        slot = (field.table, field.key)
        if slot in by_field:
            raw, origin = by_field[slot]
        elif field.key in doc.tables.get(field.table, {}):
            raw, line = doc.tables[field.table][field.key]
            origin = "%s line %d" % (label, line)
        else:
            raw, origin = field.default, "default"
        try:
            value = field.check(raw)
        except _Invalid as invalid:
            raise _problem(origin, field.name, raw, invalid, field.secret)
        values[field.table][field.key] = value
        origins[field.table][field.key] = origin
    config = Config(os.path.abspath(path) if path else None, values, origins)
    _cross_checks(config)
    return config


def _cross_checks(config):
    """Rules between settings; the error names the later key's origin."""
    pairs = (("source", "reconnect_min_s", "reconnect_max_s"), ("output", "retry_min_s", "retry_max_s"))
    for table, low, high in pairs:
        if config.values[table][high] < config.values[table][low]:
            raise ConfigError("%s: %s.%s: smaller than %s.%s (got %g) — accepted: a number >= %g" % (
                config.origins[table][high], table, high, table, low, config.values[table][high],
                config.values[table][low]))
    listen = config.http.listen
    from edgerestore.runtime.sinks.http import is_loopback

    if listen and not is_loopback(listen[0]) and not config.token():
        raise ConfigError("%s: http.listen: %s is reachable from the network and needs a token (got %r) — "
                          "accepted: set http.token, http.token_file or $EDGERESTORE_HTTP_TOKEN, or listen on "
                          "127.0.0.1"
                          % (config.origins["http"]["listen"], listen[0], "%s:%d" % listen))
    from edgerestore.runtime.backends import REGISTRY, backend_class

    backends = config.model.backends
    takers = sorted(name for name in REGISTRY if "providers" in backend_class(name).options)
    if config.model.providers and backends and not set(takers) & set(backends):
        raise ConfigError("%s: model.providers: only %s take%s providers, and model.backends lists none of "
                          "them (got %r) — accepted: [] or add %s to model.backends"
                          % (config.origins["model"]["providers"], ", ".join(takers), "s" if len(takers) == 1 else "",
                             config.model.providers, " or ".join('"%s"' % t for t in takers)))


# --- device profiles (edgerestore.devices.profiles, when this install has it) ----------------

# Source to write for a board family: profile-name prefix -> URI (first match wins).
DEFAULT_SOURCES = (("rpi", "csi://0"), ("jetson", "csi://0"))


def load_profile(name):
    """The board profile ``name`` from :mod:`edgerestore.devices.profiles`."""
    from edgerestore.devices import profiles

    return profiles.get_profile(name)


def profile_settings(profile):
    """What a profile decides, through a small interface: ``name``, ``backends`` (preferred first),
    ``resolution`` ``(height, width)`` and ``preset``; ``title`` when present."""
    height, width = profile.resolution
    uri = "v4l2:///dev/video0"
    for prefix, candidate in DEFAULT_SOURCES:
        if profile.name.startswith(prefix):
            uri = candidate
            break
    return {
        "name": profile.name,
        "title": getattr(profile, "title", None) or profile.name,
        "source": uri,
        "resolution": "%dx%d" % (width, height),
        "backends": [name for name in profile.backends],
        "preset": profile.preset,
    }


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[%s]" % ", ".join(_toml_value(item) for item in value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return '"%s"' % str(value).replace("\\", "\\\\").replace('"', '\\"')


def render_config(profile=None):
    """A complete, commented config file: the defaults, or a board profile's choices."""
    chosen = {}
    header = ["# edgerestore service configuration (TOML)."]
    if profile is not None:
        settings = profile_settings(profile)
        chosen = {
            ("source", "uri"): settings["source"],
            ("source", "resolution"): settings["resolution"],
            ("model", "path"): settings["preset"],
            ("model", "backends"): settings["backends"],
        }
        header.append("# Written by `edgerestore config init --device %s` for: %s." % (settings["name"], settings["title"]))
    else:
        header.append("# Written by `edgerestore config init`; --device <board> fills in a board's defaults.")
    header += [
        "# Check it:   edgerestore config check FILE      Run it:  edgerestore run --config FILE",
        "# Flags given to `edgerestore run` override these values. `systemctl reload edgerestore`",
        "# (SIGHUP) re-reads this file without stopping the stream.",
    ]
    lines = list(header)
    table = None
    for field in FIELDS:
        if field.table != table:
            table = field.table
            lines += ["", "[%s]" % table]
        lines.extend("# " + part for part in textwrap.wrap(field.help, 98))
        value = chosen.get((field.table, field.key), field.default)
        lines.append("%s = %s" % (field.key, _toml_value(value)))
    return "\n".join(lines) + "\n"


def write_config(path, profile=None, force=False):
    """Write :func:`render_config` to ``path`` (never over an existing file unless ``force``)."""
    if os.path.exists(path) and not force:
        raise ConfigError("%s exists — pass --force to overwrite it, or another --output" % path)
    text = render_config(profile)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        os.makedirs(folder)
    tmp = path + ".part"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path
