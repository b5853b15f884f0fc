"""The JSON schema of one ``edgerestore bench`` run, and a validator that needs no extra package.

:data:`SCHEMA` is standard JSON Schema (draft 7). :func:`validate` uses the ``jsonschema`` package
when it is installed (the host's dev extra) and otherwise a small built-in checker of the same
keywords (``type``, ``properties``, ``required``, ``additionalProperties``, ``items``, ``enum``,
``minimum``), so a board validates its own results with no dependency; the tests check that both
agree. ``edgerestore bench --print-schema`` prints the schema. Python 3.6-safe.
"""

import math

from edgerestore.errors import EdgeRestoreError

FORMAT = "edgerestore-bench"
VERSION = 1
STATUSES = ("ok", "exported-but-failed-parity", "failed")
KINDS = ("student", "baseline", "teacher")


class BenchResultError(EdgeRestoreError):
    """A bench result that does not follow the schema (the message says where and why)."""

    exit_code = 6


def _nullable(kind):
    kinds = [kind] if isinstance(kind, str) else list(kind)
    return {"type": kinds + ["null"]}


NUM = _nullable("number")
INT = _nullable("integer")
STR = _nullable("string")


def _obj(properties, required=(), extra=False):
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": extra}


METRICS = _obj({"psnr": NUM, "ssim": NUM, "ms_ssim": NUM, "images": {"type": "integer", "minimum": 0}},
               required=("psnr", "ssim", "ms_ssim", "images"))

THROTTLED = {"type": ["object", "null"], "properties": {
    "raw": {"type": "string"}, "now": {"type": "boolean"}, "since_boot": {"type": "boolean"},
    "flags": {"type": "array", "items": {"type": "string"}},
}, "required": ["raw", "now", "since_boot", "flags"], "additionalProperties": False}

THERMAL = _obj({
    "temperature_c": NUM,
    "zones": {"type": "object", "additionalProperties": {"type": "number"}},
    "cpu_mhz": INT,
    "throttled": THROTTLED,
    "load_avg": {"type": ["array", "null"], "items": {"type": "number"}},
}, required=("temperature_c", "throttled"))

VIDEO = _obj({"psnr": NUM, "ssim": NUM, "flicker": NUM, "temporal_mad": NUM, "reference_mad": NUM,
              "temporal_error": NUM, "valid_fraction": NUM, "frames": {"type": "integer", "minimum": 0}},
             required=("psnr", "ssim", "flicker", "temporal_error", "frames"))

QUALITY = {"type": ["object", "null"], "properties": {
    "vs_ground_truth": {"type": "object", "additionalProperties": METRICS},
    "video": {"type": ["object", "null"], "additionalProperties": VIDEO},
    "vs_reference": {"type": ["object", "null"], "properties": dict(METRICS["properties"], reference={"type": "string"}),
                     "required": ["reference", "psnr", "ssim", "ms_ssim", "images"], "additionalProperties": False},
    "error": STR,
    "seconds": NUM,
}, "required": ["vs_ground_truth", "vs_reference", "error"], "additionalProperties": False}

ROW = _obj({
    "id": {"type": "string"},
    "method": {"type": "string"},
    "kind": {"enum": list(KINDS)},
    "backend": {"type": "string"},
    "precision": STR,
    "artifact": STR,
    "sha256": STR,
    "size_mb": NUM,
    "width": {"type": "integer", "minimum": 1},
    "height": {"type": "integer", "minimum": 1},
    "status": {"enum": list(STATUSES)},
    "error": STR,
    "threads": INT,
    "frames": {"type": "integer", "minimum": 0},
    "warmup": {"type": "integer", "minimum": 0},
    "capped": {"type": "boolean"},
    "fps": NUM,
    "fps_mean": NUM,
    "latency_ms": {"type": ["object", "null"], "properties": {
        "p50": NUM, "p95": NUM, "p99": NUM, "mean": NUM, "min": NUM, "max": NUM,
        "samples": {"type": "array", "items": {"type": "number"}},
    }, "required": ["p50", "p95", "p99", "samples"], "additionalProperties": False},
    "stage_ms": {"type": ["object", "null"], "additionalProperties": NUM},
    "cpu_percent": NUM,
    "rss_mb": NUM,
    "peak_rss_mb": NUM,
    "macs_per_pixel": NUM,
    "gmacs_per_s": NUM,
    "thermal": {"type": ["object", "null"], "properties": {"before": THERMAL, "after": THERMAL},
                "additionalProperties": False},
    "quality": QUALITY,
    "params": {"type": ["object", "null"]},
}, required=("id", "method", "kind", "backend", "precision", "artifact", "width", "height", "status", "error",
             "frames", "fps", "latency_ms", "quality"))

BOARD = _obj({
    "kind": {"enum": ["raspberry-pi", "jetson", "generic"]},
    "name": {"type": "string"},
    "model": STR,
    "soc": STR,
    "cpu": _obj({"model": STR, "cores": INT, "governor": STR, "max_mhz": INT, "cur_mhz": INT},
                required=("model", "cores", "governor")),
    "ram_mb": INT,
    "os": STR,
    "kernel": STR,
    "machine": STR,
    "hostname": STR,
    "python": {"type": "string"},
    "l4t": STR,
    "jetpack": STR,
    "nvpmodel": {"type": ["object", "null"], "properties": {"name": STR, "id": INT}},
}, required=("kind", "name", "soc", "cpu", "ram_mb", "os", "python", "l4t", "jetpack"))

SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "edgerestore bench result",
    "type": "object",
    "properties": {
        "format": {"enum": [FORMAT]},
        "version": {"enum": [VERSION]},
        "created": {"type": "string"},
        "duration_s": NUM,
        "command": STR,
        "label": {"type": "string"},
        "board": BOARD,
        "software": {"type": "object", "additionalProperties": STR},
        "settings": _obj({
            "frames": {"type": "integer", "minimum": 1},
            "warmup": {"type": "integer", "minimum": 0},
            "max_seconds": NUM,
            "threads": INT,
            "sizes": {"type": "array", "items": {"type": "array", "items": {"type": "integer", "minimum": 1}}},
            "parity_db": {"type": "number"},
            "frames_source": {"type": "string"},
            "evalset": {"type": ["object", "null"]},
            "deblur": {"enum": ["none", "motion"]},
        }, required=("frames", "warmup", "sizes", "parity_db", "evalset")),
        "environment": _obj({"before": THERMAL, "after": THERMAL}, required=("before", "after")),
        "rows": {"type": "array", "items": ROW},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["format", "version", "created", "label", "board", "software", "settings", "environment", "rows"],
    "additionalProperties": False,
}


# --------------------------------------------------------------------------- the built-in checker

_PY_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


def _where(path):
    out = "result"
    for part in path:
        out += "[%d]" % part if isinstance(part, int) else ".%s" % part
    return out


def iter_errors(value, schema=None, path=()):
    """Yield ``"where: what"`` for every violation (the built-in checker)."""
    schema = SCHEMA if schema is None else schema
    if "enum" in schema and value not in schema["enum"]:
        yield "%s: %r is not one of %s" % (_where(path), value, schema["enum"])
        return
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_PY_TYPES[k](value) for k in kinds):
            yield "%s: expected %s, got %s" % (_where(path), " or ".join(kinds), type(value).__name__)
            return
    if isinstance(value, float) and not math.isfinite(value):
        yield "%s: %r is not a finite number (JSON has no NaN/Infinity)" % (_where(path), value)
    if "minimum" in schema and _PY_TYPES["number"](value) and value < schema["minimum"]:
        yield "%s: %r is below the minimum %r" % (_where(path), value, schema["minimum"])
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                yield "%s: required property %r is missing" % (_where(path), key)
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                for err in iter_errors(item, props[key], path + (key,)):
                    yield err
            elif extra is False:
                yield "%s: unexpected property %r" % (_where(path), key)
            elif isinstance(extra, dict):
                for err in iter_errors(item, extra, path + (key,)):
                    yield err
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            for err in iter_errors(item, schema["items"], path + (index,)):
                yield err


def _jsonschema_errors(result):
    import jsonschema

    validator = jsonschema.Draft7Validator(SCHEMA)
    for err in sorted(validator.iter_errors(result), key=lambda e: list(e.absolute_path)):
        yield "%s: %s" % (_where(tuple(err.absolute_path)), err.message)


def validate(result, use_jsonschema=None):
    """Raise :class:`BenchResultError` naming the first problems; returns ``result`` when valid.

    ``use_jsonschema``: None = when installed, True = require it, False = the built-in checker.
    """
    if use_jsonschema is None:
        try:
            import jsonschema  # noqa: F401

            use_jsonschema = True
        except ImportError:
            use_jsonschema = False
    errors = list(_jsonschema_errors(result) if use_jsonschema else iter_errors(result))
    if errors:
        more = " (and %d more)" % (len(errors) - 3) if len(errors) > 3 else ""
        raise BenchResultError("invalid bench result: %s%s" % ("; ".join(errors[:3]), more))
    return result
