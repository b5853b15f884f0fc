"""The service's log: one JSON object per line. Python 3.6-safe.

Every line has ``ts`` (UTC, ISO 8601), ``level``, ``event`` (a stable name to grep or alert on:
``stats``, ``source_lost``, ``backend_failed``, ``sink_failed``...) and ``msg`` (a sentence for
people), plus the event's own fields. Lines go to stdout (systemd sends them to the journal) or
to a file that :meth:`JsonLog.reopen` reopens after logrotate moved it (SIGHUP does that).
Thread-safe: the pipeline's threads and the main thread log concurrently.
"""

import json
import sys
import threading
import time

from edgerestore.runtime.uri import redact

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def utc_timestamp(now=None):
    """``2025-01-31T12:00:00.123Z``."""
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % int((now % 1) * 1000)


class JsonLog(object):
    """Write events at or above ``level`` to ``path`` (None: ``stream``, default stdout)."""

    def __init__(self, level="info", path=None, stream=None):
        self.level = level
        self.path = path
        self._stream = stream
        self._handle = None
        self._lock = threading.Lock()
        self.counts = dict((name, 0) for name in LEVELS)  # lines written per level
        self.reopen()

    def reopen(self, path=None):
        """(Re)open the log file — after logrotate, or a reload that changed ``logging.file``. The
        new file is opened before the old one is let go: when it cannot be (``OSError``), the log
        goes on where it was."""
        with self._lock:
            target = self.path if path is None else (path or None)
            handle = open(target, "a", buffering=1) if target else None
            if self._handle is not None:
                self._handle.close()
            self._handle, self.path = handle, target

    def _out(self):
        if self._handle is not None:
            return self._handle
        return self._stream if self._stream is not None else sys.stdout

    def enabled(self, level):
        return LEVELS[level] >= LEVELS.get(self.level, 20)

    def log(self, level, event, msg="", **fields):
        """Write one line (when ``level`` is enabled); returns the dict written, or None."""
        if not self.enabled(level):
            return None
        record = {"ts": utc_timestamp(), "level": level, "event": event}
        if msg:
            record["msg"] = msg
        record.update(fields)
        line = redact(json.dumps(record, sort_keys=False, default=str))  # no secret leaves the process
        with self._lock:
            self.counts[level] += 1
            out = self._out()
            try:
                out.write(line + "\n")
                out.flush()
            except (IOError, OSError, ValueError):
                pass  # a full disk or a closed journal must not take the stream down
        return record

    def debug(self, event, msg="", **fields):
        return self.log("debug", event, msg, **fields)

    def info(self, event, msg="", **fields):
        return self.log("info", event, msg, **fields)

    def warning(self, event, msg="", **fields):
        return self.log("warning", event, msg, **fields)

    def error(self, event, msg="", **fields):
        return self.log("error", event, msg, **fields)

    def close(self):
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


class NullLog(JsonLog):
    """Discards everything (components used outside the service)."""

    def __init__(self):
        super(NullLog, self).__init__(level="error")

    def log(self, level, event, msg="", **fields):
        return None
