"""What keeps the service's stream alive: a source that reconnects, sinks that fail alone and
retry, backends that fall back to the next one. Python 3.6-safe, torch-free.

Each wraps the runtime's ordinary pieces (any source, sink or backend) so the
:class:`~edgerestore.runtime.pipeline.Pipeline` runs them unchanged:

* :class:`ReconnectingSource` never ends: a camera that is unplugged, stalls (reads time out) or
  ends is closed and reopened with exponential backoff, one log line per attempt; frames that
  are not ``uint8 HxWx3`` are skipped and counted (``corrupt``, with what the source itself
  skipped, e.g. packets that did not decode).
* :class:`GuardedSink` catches a sink's failure (disk full, virtual webcam removed), logs it,
  skips frames for that sink only and reopens it with exponential backoff. A file that already
  holds a recording is never overwritten by the retry: it continues in ``name.1.mp4``...
* :class:`FallbackBackend` loads the first candidate (backend + model file) that works; when
  inference raises, the next candidate takes over on the same frame. When every candidate has
  failed, frames pass through unrestored (the stream goes on) and the chain is retried later.
"""

import inspect
import threading
import time

import numpy as np

from edgerestore.errors import BackendUnavailableError
from edgerestore.runtime.artifacts import Candidate  # noqa: F401  (the chain runs these)
from edgerestore.runtime.jsonlog import NullLog
from edgerestore.runtime.sources.base import Source
from edgerestore.runtime.uri import parse_uri, redact

NOT_LIVE_SCHEMES = ("file", "image", "images")


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return "%s: %s" % (type(exc).__name__, text[0]) if text else type(exc).__name__


class Backoff(object):
    """Exponential delays: ``initial``, doubled after each failure, at most ``maximum``."""

    def __init__(self, initial=0.5, maximum=30.0, factor=2.0):
        self.initial = float(initial)
        self.maximum = float(maximum)
        self.factor = float(factor)
        self.attempts = 0

    def next(self):
        """The delay before the next attempt (and count the attempt)."""
        delay = min(self.maximum, self.initial * (self.factor ** self.attempts))
        self.attempts += 1
        return delay

    def reset(self):
        self.attempts = 0


def valid_image(image):
    """Whether ``image`` is what the runtime moves: a non-empty ``uint8 HxWx3`` array."""
    return (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3 and image.shape[0] > 0 and image.shape[1] > 0)


class ReconnectingSource(Source):
    """Frames from ``uri`` for as long as the service runs, whatever the camera does.

    ``opener(uri)`` opens the real source (``open_source``). ``state`` is ``connecting``,
    ``connected`` (frames flow), ``reconnecting`` or ``closed``; ``reconnects`` counts sources
    that delivered frames again after a loss, ``losses`` the losses.
    """

    def __init__(self, uri, opener=None, backoff=None, log=None):
        if opener is None:
            from edgerestore.runtime.sources import open_source as opener
        self.uri = uri
        self.label = redact(uri)
        self._opener = opener
        self.backoff = backoff or Backoff()
        self.log = log or NullLog()
        self.live = parse_uri(uri).scheme not in NOT_LIVE_SCHEMES
        self.state = "connecting"
        self.inner = None
        self.losses = 0
        self.reconnects = 0
        self.frames = 0
        self.last_error = None
        self.lost_at = None
        self.last_frame_at = None  # time.monotonic() of the last good frame
        self.read_started = 0.0  # when the read in progress (if _reading) began
        self._skipped = 0  # invalid frames this wrapper dropped
        self._inner_corrupt = 0  # what closed inner sources had counted themselves
        self._iterator = None
        self._retry_at = 0.0
        self._pending_uri = None
        self._closed = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._reading = False
        self._generator = None

    @property
    def corrupt(self):
        """Frames skipped as corrupt: by this wrapper, and by the sources it opened."""
        current = getattr(self.inner, "corrupt", 0) or 0
        return self._skipped + self._inner_corrupt + current

    @property
    def inner_reconnects(self):
        """Reconnections the current source made by itself (RTSP/HTTP streams do)."""
        return getattr(self.inner, "reconnects", 0) or 0

    def open_now(self):
        """Try to open the source at once (the service wants its size and fps before it starts).
        A failure is logged and retried later by iteration; returns whether it opened."""
        return self._open(first=True)

    def _open(self, first=False):
        try:
            inner = self._opener(self.uri)
        except Exception as exc:  # noqa: BLE001 - any failure to open is retried
            self.last_error = _one_line(exc)
            delay = self.backoff.next()
            self._retry_at = time.monotonic() + delay
            self.state = "reconnecting"
            self.log.warning("source_open_failed", "cannot open the source; retrying in %.1f s" % delay,
                             source=self.label, error=self.last_error, attempt=self.backoff.attempts,
                             retry_in_s=round(delay, 2))
            return False
        if hasattr(inner, "reconnects") and hasattr(inner, "max_failures"):
            # A network stream reconnects by itself; here this wrapper does it instead, with
            # exponential backoff and a log line per attempt, so the stream gives up at once.
            inner.max_failures = 1
        with self._lock:
            self.inner = inner
            self._iterator = iter(inner)
        self.size = getattr(inner, "size", None)
        self.fps = getattr(inner, "fps", None)
        if first:
            self.live = getattr(inner, "live", self.live)
        if self.state == "connecting":
            self.log.info("source_opened", "source opened", source=self.label, size=self.size, fps=self.fps)
        return True

    def switch(self, uri):
        """Read from ``uri`` from now on (a config reload); takes effect between two frames."""
        self._pending_uri = uri
        self._wake.set()

    def _close_inner(self):
        with self._lock:
            inner, self.inner, self._iterator = self.inner, None, None
        if inner is None:
            return
        self._inner_corrupt += getattr(inner, "corrupt", 0) or 0
        try:
            inner.close()
        except Exception as exc:  # noqa: BLE001 - it is broken already
            self.log.debug("source_close_failed", source=self.label, error=_one_line(exc))

    def _lost(self, exc):
        """The source ended (``exc`` None) or failed: close it and schedule the reopening."""
        self._close_inner()
        self.losses += 1
        self.lost_at = time.monotonic()
        self.state = "reconnecting"
        self.last_error = _one_line(exc) if exc is not None else "the source ended"
        delay = self.backoff.next()
        self._retry_at = time.monotonic() + delay
        if exc is None:
            self.log.warning("source_ended", "the source ended; reopening in %.1f s" % delay,
                             source=self.label, retry_in_s=round(delay, 2))
        else:
            self.log.warning("source_lost", "lost the source; reconnecting in %.1f s" % delay,
                             source=self.label, error=self.last_error, retry_in_s=round(delay, 2))

    def _take_switch(self):
        uri, self._pending_uri = self._pending_uri, None
        self._close_inner()
        self.uri, self.label = uri, redact(uri)
        self.live = parse_uri(uri).scheme not in NOT_LIVE_SCHEMES
        self.backoff.reset()
        self.state = "connecting"
        self._retry_at = 0.0
        self.log.info("source_switched", "reading from the new source", source=self.label)

    def __iter__(self):
        self._generator = self._frames()
        return self._generator

    def _frames(self):
        try:
            for frame in self._loop():
                yield frame
        finally:  # also when close() closes this generator from another thread
            self._close_inner()

    def _loop(self):
        index = 0
        while not self._closed.is_set():
            if self._pending_uri is not None:
                self._take_switch()
            if self._iterator is None:
                wait = self._retry_at - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)  # close() and switch() cut the wait short
                    self._wake.clear()
                    continue
                if not self._open():
                    continue
            self.read_started = time.monotonic()
            self._reading = True
            try:
                frame = next(self._iterator)
            except StopIteration:
                self._lost(None)
                continue
            except Exception as exc:  # noqa: BLE001 - unplugged, stalled, network: reconnect
                if self._closed.is_set():
                    break
                self._lost(exc)
                continue
            finally:
                self._reading = False
            if self._closed.is_set():
                break
            if not valid_image(getattr(frame, "image", None)):
                self._skipped += 1
                if self._skipped in (1, 10, 100, 1000) or self._skipped % 10000 == 0:
                    self.log.warning("corrupt_frame", "skipped a frame that is not uint8 HxWx3",
                                     source=self.label, corrupt=self.corrupt)
                continue
            if self.state != "connected":
                if self.losses:
                    self.reconnects += 1
                    self.log.info("source_reconnected", "frames flow again", source=self.label,
                                  down_s=round(time.monotonic() - self.lost_at, 2), attempts=self.backoff.attempts,
                                  size=self.size)
                else:
                    self.log.info("source_connected", "frames flow", source=self.label, size=self.size,
                                  attempts=self.backoff.attempts)
                self.state = "connected"
                self.backoff.reset()
            frame.index = index
            index += 1
            self.frames += 1
            self.last_frame_at = time.monotonic()
            yield frame

    def close(self):
        """Stop iterating and release the camera — here when nobody is reading (the iteration is
        suspended or never started), else by the reading thread as soon as its read returns
        (never under its feet: closing a PyAV container or a V4L2 device mid-read can crash)."""
        self._closed.set()
        self._wake.set()
        self.state = "closed"
        generator = self._generator
        if generator is None or inspect.getgeneratorstate(generator) == inspect.GEN_CREATED:
            self._close_inner()
            return
        try:
            generator.close()  # suspended: runs its finally (closes the source) in this thread
        except ValueError:
            pass  # "generator already executing": the reading thread closes it


RECOVERED_AFTER_S = 5.0
"""A sink that failed counts as recovered once it has taken frames for this long without failing:
a full disk accepts the reopened file's first bytes, so one good write proves nothing."""


class GuardedSink(object):
    """A sink that fails alone: errors are logged, frames skipped for it, the sink reopened later.

    ``opener(uri)`` opens the real sink. ``state`` is ``ok``, ``retrying`` (waiting for the next
    attempt), ``recovering`` (reopened after a failure, not yet :data:`RECOVERED_AFTER_S` without
    one) or ``closed``; all but ``ok`` make the service *degraded*, so health does not flap while a
    disk stays full. The delays between attempts double up to the backoff's cap and start again
    only after a recovery. ``failures`` counts failures (opening, writing), ``skipped`` the frames
    it missed, ``written`` the frames it took. A file sink never overwrites: a reopened recording
    takes a new name (:func:`edgerestore.runtime.sinks.video.free_name`).
    """

    def __init__(self, uri, opener, backoff=None, log=None):
        self.uri = uri
        self.label = redact(uri)
        self.scheme = parse_uri(uri).scheme
        self.name = self.scheme
        self._opener = opener
        self.backoff = backoff or Backoff(1.0, 60.0)
        self.log = log or NullLog()
        self.sink = None
        self.state = "retrying"
        self.failures = 0
        self.skipped = 0
        self.written = 0
        self.last_error = None
        self.current_uri = uri
        self._retry_at = 0.0
        self._reopened_at = None  # when a failed sink was opened again (None: never failed)
        self._stats = None
        self._open(first=True)

    def _open(self, first=False):
        try:
            self.sink = self._opener(self.uri)
        except Exception as exc:  # noqa: BLE001 - retried later, the others keep running
            self._failed(exc, "open")
            return False
        written_to = getattr(self.sink, "path", None)
        if written_to and self.scheme == "file":
            self.current_uri = "file://" + written_to
        if first:
            self.state = "ok"
        else:
            self.state, self._reopened_at = "recovering", time.monotonic()
        if self._stats is not None and hasattr(self.sink, "set_stats"):
            self.sink.set_stats(self._stats)
        return True

    def _check_recovered(self):
        if self._reopened_at is not None and time.monotonic() - self._reopened_at >= RECOVERED_AFTER_S:
            self._reopened_at = None
            self.state = "ok"
            self.backoff.reset()
            self.log.info("sink_recovered", "the sink works again", sink=self.label,
                          target=redact(self.current_uri), failures=self.failures, skipped=self.skipped)

    def _failed(self, exc, during):
        self.failures += 1
        self.last_error = _one_line(exc)
        self.state = "retrying"
        self._reopened_at = None
        delay = self.backoff.next()
        self._retry_at = time.monotonic() + delay
        self.log.warning("sink_failed", "a sink failed (%s); the others go on, retrying in %.1f s" % (during, delay),
                         sink=self.label, error=self.last_error, during=during, failures=self.failures,
                         retry_in_s=round(delay, 2))

    def write(self, frame):
        if self.sink is None:
            if self.state == "closed" or time.monotonic() < self._retry_at or not self._open():
                self.skipped += 1
                return
        try:
            self.sink.write(frame)
        except Exception as exc:  # noqa: BLE001 - disk full, device removed, ...
            self._discard()
            self._failed(exc, "write")
            self.skipped += 1
            return
        self.written += 1
        self._check_recovered()

    def _discard(self):
        sink, self.sink = self.sink, None
        if sink is None:
            return
        try:
            sink.close()
        except Exception as exc:  # noqa: BLE001 - it failed already; finalise what can be
            self.log.debug("sink_close_failed", sink=self.label, error=_one_line(exc))

    def set_stats(self, stats):
        self._stats = stats
        if self.sink is not None and hasattr(self.sink, "set_stats"):
            self.sink.set_stats(stats)

    def status(self):
        return {"state": self.state, "target": redact(self.current_uri), "written": self.written,
                "skipped": self.skipped, "failures": self.failures, "error": self.last_error}

    def close(self):
        """Finalise the sink (an MP4 gets its index); a failure to do so is logged, not raised."""
        sink, self.sink = self.sink, None
        self.state = "closed"
        if sink is None:
            return
        try:
            sink.close()
        except Exception as exc:  # noqa: BLE001
            self.failures += 1
            self.last_error = _one_line(exc)
            self.log.warning("sink_close_failed", "could not finalise a sink", sink=self.label,
                             error=self.last_error)


def default_loader(candidate, threads=None):
    """Create and load the backend of ``candidate`` (BackendUnavailableError when it cannot run)."""
    return candidate.load(threads)


class FallbackBackend(object):
    """Runs the first candidate that works; on failure the next one takes over.

    ``name`` is the running backend's name (``bypass`` when every candidate failed and frames
    pass through). ``frames_by_backend`` counts restored frames per backend name, ``fallbacks``
    the switches caused by failures, ``failures`` keeps ``(candidate label, error)`` pairs.
    """

    def __init__(self, candidates, threads=None, log=None, loader=default_loader, retry=None, noise_level="auto",
                 deblur="none", exposure="auto"):
        self.candidates = list(candidates)
        self.threads = threads
        self.noise_level = noise_level
        self.deblur = deblur
        self.exposure = exposure
        self.log = log or NullLog()
        self._loader = loader
        self.retry = retry or Backoff(10.0, 300.0)
        self.current = None
        self.index = None
        self.fallbacks = 0
        self.failures = []
        self.frames_by_backend = {}
        self.bypassed = 0
        self.exhausted = False
        self._retry_at = 0.0
        self._pending = None
        self._size = None  # (height, width) to warm up at

    @property
    def name(self):
        if self.current is not None:
            return self.current.name
        return "bypass" if self.exhausted else "none"

    @property
    def candidate(self):
        return self.candidates[self.index] if self.index is not None else None

    def start(self, size=None):
        """Load the first candidate that works (warmed up at ``size`` ``(width, height)``).

        Raises BackendUnavailableError listing every candidate's failure when none loads. Without
        candidates (``model = "none"``) frames pass through.
        """
        if size:
            self._size = (size[1], size[0])
        if self.candidates and not self._load_from(0):
            raise BackendUnavailableError("no backend could run the model: %s" % "; ".join(
                "%s: %s" % failure for failure in self.failures[-len(self.candidates):]) or "no candidates")
        return self

    def _load_from(self, start):
        for index in range(start, len(self.candidates)):
            candidate = self.candidates[index]
            began = time.monotonic()
            try:
                backend = self._loader(candidate, self.threads)
                if hasattr(backend, "set_noise_level"):
                    backend.set_noise_level(self.noise_level)
                if hasattr(backend, "set_deblur"):
                    backend.set_deblur(self.deblur)  # a candidate without the stage's filter fails: the next may have it
                    backend.set_exposure(self.exposure)
                if self._size:
                    backend.warmup(*self._size)
            except Exception as exc:  # noqa: BLE001 - the next candidate may work
                self.failures.append((candidate.label, _one_line(exc)))
                later = self.candidates[index + 1].label if index + 1 < len(self.candidates) else None
                self.log.warning("backend_failed", "%s could not load the model%s" % (
                    candidate.backend, "; trying %s" % later if later else ""),
                    candidate=candidate.label, model=str(candidate.model), during="load",
                    error=_one_line(exc), next=later)
                continue
            self.current, self.index, self.exhausted = backend, index, False
            self.log.info("backend_loaded", "running %s" % candidate.label, backend=candidate.backend,
                          model=str(candidate.model), load_s=round(time.monotonic() - began, 3),
                          fallback=index > 0)
            return True
        return False

    def replace(self, loaded):
        """Switch to another, already started FallbackBackend (a reload) before the next frame."""
        self._pending = loaded

    def _take_pending(self):
        new, self._pending = self._pending, None
        old = self.current
        self.candidates, self.current, self.index = new.candidates, new.current, new.index
        self.threads, self.exhausted, self._size = new.threads, new.exhausted, new._size
        self.failures.extend(new.failures)
        if old is not None and old is not self.current:
            old.close()

    def _drop_current(self):
        backend, self.current = self.current, None
        if backend is not None:
            try:
                backend.close()
            except Exception:  # noqa: BLE001 - it crashed already
                pass

    def infer(self, image, codec=None, exposure=None):
        if self._pending is not None:
            self._take_pending()
        if self.current is None:
            return self._bypass(image, codec, exposure)
        while True:
            try:
                out = self.current.infer(image, codec=codec, exposure=exposure)
            except Exception as exc:  # noqa: BLE001 - a crashed backend: the next one takes over
                failed = self.candidates[self.index]
                self.failures.append((failed.label, _one_line(exc)))
                self.fallbacks += 1
                self.log.warning("backend_failed", "%s failed during inference; falling back" % failed.backend,
                                 candidate=failed.label, model=str(failed.model), during="infer",
                                 error=_one_line(exc))
                self._drop_current()
                self._size = image.shape[:2]
                if not self._load_from(self.index + 1):
                    self._exhaust()
                    return self._bypass(image, codec, exposure)
                continue
            name = self.current.name
            self.frames_by_backend[name] = self.frames_by_backend.get(name, 0) + 1
            return out

    def _exhaust(self):
        self.exhausted = True
        self.index = None
        delay = self.retry.next()
        self._retry_at = time.monotonic() + delay
        self.log.error("backends_exhausted", "every backend failed; frames pass through unrestored, "
                       "retrying the backends in %.0f s" % delay, retry_in_s=round(delay, 1),
                       candidates=[c.label for c in self.candidates])

    def _bypass(self, image, codec=None, exposure=None):
        """No backend runs: ``model = "none"``, or every candidate failed (then retried now and then)."""
        if not self.exhausted:
            return image
        if time.monotonic() >= self._retry_at:
            self._size = image.shape[:2]
            if self._load_from(0):
                self.retry.reset()
                return self.infer(image, codec, exposure)
            self._exhaust()
        self.bypassed += 1
        return image

    def warmup(self, height, width):
        if self.current is not None:
            self.current.warmup(height, width)

    def info(self):
        info = self.current.info() if self.current is not None else {"backend": self.name}
        info.update({"candidate": self.candidate.label if self.candidate else None, "fallbacks": self.fallbacks,
                     "frames_by_backend": dict(self.frames_by_backend), "bypassed": self.bypassed})
        return info

    def close(self):
        self._drop_current()
