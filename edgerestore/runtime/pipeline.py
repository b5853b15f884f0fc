"""source -> backend -> sinks on three threads with bounded queues, and the statistics of it.

Live sources (cameras, streams) must not build a backlog: when a queue is full the *oldest* frame
is dropped and counted, so latency stays bounded however slow inference or a sink is. Files are
processed completely: a full queue makes the reader wait instead. Every few seconds a dict of
statistics (fps, latency p50/p95, drops, per-stage and per-sink ms over the last few seconds)
goes to ``on_stats`` — :func:`stats_line` makes it one JSON line; :meth:`Pipeline.run` returns the
summary of the whole run. Python 3.6-safe.
"""

import json
import queue
import threading
import time
from collections import deque

_END = object()  # end of stream marker travelling through the queues
STAGES = ("capture", "infer", "compose", "output")


class StageTimer(object):
    """Durations of one stage: the last ``window`` values (with their times) plus running totals."""

    def __init__(self, window=600):
        self.recent = deque(maxlen=window)
        self.count = 0
        self.total = 0.0

    def add(self, seconds, now=None):
        self.recent.append((time.monotonic() if now is None else now, seconds))
        self.count += 1
        self.total += seconds

    def mean_ms(self):
        """Mean over the whole run."""
        return 1000.0 * self.total / self.count if self.count else None

    def values(self, since=None):
        return [value for stamp, value in self.recent if since is None or stamp >= since]


def percentile(values, q):
    """The ``q``-th percentile (0-100) of a sequence, nearest-rank on the sorted values."""
    values = sorted(values)
    if not values:
        return None
    rank = min(len(values) - 1, max(0, int(round(q / 100.0 * (len(values) - 1)))))
    return values[rank]


def _mean(values):
    return sum(values) / len(values) if values else None


class Stats(object):
    """Counters and timings shared by the pipeline's threads (guarded by ``lock``)."""

    def __init__(self, backend_name, sink_names=()):
        self.backend = backend_name
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.stages = dict((name, StageTimer()) for name in STAGES)
        self.sinks = dict((name, StageTimer()) for name in sink_names)
        self.latency = StageTimer()
        self.captured = 0
        self.processed = 0
        self.written = 0
        self.dropped = {"before_infer": 0, "before_output": 0}
        self.errors = 0
        self.bypass = False
        self.done_times = deque(maxlen=600)
        self.first_done = None
        self.last_done = None

    def snapshot(self, window_seconds=None):
        """A JSON-ready dict. With ``window_seconds`` the rates and timings cover only that recent
        window (the periodic lines); without, the whole run (the summary)."""
        with self.lock:
            now = time.monotonic()
            since = now - window_seconds if window_seconds else None
            times = [t for t in self.done_times if since is None or t >= since]
            fps = None
            if since is not None:
                # Frames finished in the window over the window's length: a stall reads 0, and a
                # slow model that finishes one frame per window still reads its rate, not nothing.
                span = min(window_seconds, now - self.started)
                fps = len(times) / span if span > 0 else None
            elif len(times) >= 2 and times[-1] > times[0]:
                fps = (len(times) - 1) / (times[-1] - times[0])
            latencies = self.latency.values(since)

            def stage_ms(timer):
                if since is None:
                    return _round(timer.mean_ms())
                return _round(_ms(_mean(timer.values(since))))

            return {
                "backend": self.backend,
                "bypass": self.bypass,
                "elapsed_s": round(now - self.started, 3),
                "fps": _round(fps),
                "frames": self.written,
                "captured": self.captured,
                "dropped": sum(self.dropped.values()),
                "dropped_before": {"infer": self.dropped["before_infer"], "output": self.dropped["before_output"]},
                "errors": self.errors,
                "latency_ms_p50": _round(_ms(percentile(latencies, 50))),
                "latency_ms_p95": _round(_ms(percentile(latencies, 95))),
                "stage_ms": dict((name, stage_ms(timer)) for name, timer in self.stages.items()),
                "sink_ms": dict((name, stage_ms(timer)) for name, timer in self.sinks.items()),
            }


def _ms(seconds):
    return None if seconds is None else 1000.0 * seconds


def _round(value, digits=2):
    return None if value is None else round(value, digits)


class _DropOldestQueue(object):
    """A bounded queue whose ``put`` either waits (files) or drops the oldest item (live)."""

    def __init__(self, size, drop_oldest, on_drop):
        self.queue = queue.Queue(maxsize=max(1, int(size)))
        self.drop_oldest = drop_oldest
        self.on_drop = on_drop

    def _discard_one(self):
        try:
            old = self.queue.get_nowait()
        except queue.Empty:
            return
        if old is not _END:
            self.on_drop()

    def put(self, item, stop_event):
        """Queue ``item``; False (and the item counted as dropped) when the pipeline is stopping.

        Live: never waits — a full queue loses its oldest frame at once. Files: waits for room.
        """
        while not stop_event.is_set():
            try:
                if self.drop_oldest:
                    self.queue.put_nowait(item)
                else:
                    self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                if self.drop_oldest:
                    self._discard_one()
        self.on_drop()
        return False

    def put_end(self, stop_event):
        """Deliver the end marker after every frame (when stopping, queued frames give way to it)."""
        while True:
            try:
                self.queue.put(_END, timeout=0.1)
                return
            except queue.Full:
                if stop_event.is_set():
                    self._discard_one()

    def get(self, timeout=None):
        """The next item; raises ``queue.Empty`` after ``timeout`` seconds (None: wait forever)."""
        return self.queue.get(timeout=timeout)

    def put_end_now(self):
        """Deliver the end marker on behalf of a stage that is stuck (a camera read that does not
        return): queued frames give way to it. Called from the thread that runs the pipeline."""
        while True:
            try:
                self.queue.put_nowait(_END)
                return
            except queue.Full:
                self._discard_one()


def _sink_name(sink, index):
    return "%d:%s" % (index, getattr(sink, "name", type(sink).__name__))


class Pipeline(object):
    """Run ``source`` through ``backend`` into every sink in ``sinks``.

    ``live`` (default: the source's own ``live``) selects drop-oldest queues of ``queue_size``;
    ``max_frames`` stops after that many captured frames; ``on_frame(frame)`` is called after each
    output (a progress bar, the preview's keys); ``on_stats(dict)`` every ``stats_interval``
    seconds and once more with the summary. ``transform(frame, restored)`` composes what the
    sinks receive (the preview's side-by-side view; timed as the ``compose`` stage).
    ``bypass = True`` (settable while running) skips inference: sinks get the raw frames.

    ``drain_timeout`` bounds :meth:`stop`: after that many seconds the sinks are closed even if a
    stage is still stuck (a camera read that never returns); half-way the end marker is sent on
    the stuck stage's behalf. None (the default) waits for every stage. :meth:`replace_sinks`
    swaps the sinks while running.
    """

    def __init__(self, source, backend, sinks, live=None, queue_size=2, max_frames=None,
                 stats_interval=5.0, on_stats=None, on_frame=None, transform=None, drain_timeout=None):
        self.source = source
        self.backend = backend
        self.sinks = list(sinks)
        self.drain_timeout = drain_timeout
        self.live = source.live if live is None else live
        self.max_frames = max_frames
        self.stats_interval = stats_interval
        self.on_stats = on_stats
        self.on_frame = on_frame
        self.transform = transform
        self._sink_names = [_sink_name(sink, i) for i, sink in enumerate(self.sinks)]
        self.stats = Stats(getattr(backend, "name", "none"), self._sink_names)
        self._pending_sinks = None  # (sinks, names) waiting for the output thread to take them
        self._sink_serial = len(self.sinks)  # sinks added later get new numbers in their names
        self.stop_event = threading.Event()
        self.stopped_at = None  # time.monotonic() of the first stop()
        self.error = None  # the first failure of inference or a sink (stops everything)
        self.source_error = None  # the source's failure (frames before it are still written)
        self._q_in = _DropOldestQueue(queue_size, self.live, lambda: self._count_drop("before_infer"))
        self._q_out = _DropOldestQueue(queue_size, self.live, lambda: self._count_drop("before_output"))

    @property
    def bypass(self):
        return self.stats.bypass

    @bypass.setter
    def bypass(self, value):
        self.stats.bypass = bool(value)

    def _count_drop(self, where):
        with self.stats.lock:
            self.stats.dropped[where] += 1

    def stop(self):
        """Ask every stage to finish; :meth:`run` returns soon after, sinks finalised."""
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        self.stop_event.set()

    def replace_sinks(self, sinks):
        """Make ``sinks`` the sinks from the next frame on (a config reload). Sinks of the old list
        that are not in the new one are closed by the output thread once it has switched (never
        while it writes to them); sinks in both lists stay open. Safe from any thread."""
        sinks = list(sinks)
        current = list(zip(self.sinks, self._sink_names))
        names = []
        for sink in sinks:
            known = [name for old, name in current if old is sink]
            if known:
                names.append(known[0])
            else:
                names.append(_sink_name(sink, self._sink_serial))
                self._sink_serial += 1
        with self.stats.lock:
            for name in names:
                self.stats.sinks.setdefault(name, StageTimer())
        self._pending_sinks = (sinks, names)

    def _take_pending_sinks(self):
        pending, self._pending_sinks = self._pending_sinks, None
        if pending is None:
            return
        old = self.sinks
        self.sinks, self._sink_names = pending
        with self.stats.lock:
            for name in list(self.stats.sinks):
                if name not in self._sink_names:
                    del self.stats.sinks[name]
        for sink in old:
            if not any(sink is kept for kept in self.sinks):
                try:
                    sink.close()
                except Exception:  # noqa: BLE001 - a reload must not stop the stream
                    with self.stats.lock:
                        self.stats.errors += 1

    def _fail(self, exc):
        if self.error is None:
            self.error = exc
        with self.stats.lock:
            self.stats.errors += 1
        self.stop_event.set()

    def _capture(self):
        timer = self.stats.stages["capture"]
        try:
            iterator = iter(self.source)
            while not self.stop_event.is_set():
                start = time.monotonic()
                try:
                    frame = next(iterator)
                except StopIteration:
                    break
                frame.captured = time.monotonic()
                timer.add(frame.captured - start, frame.captured)
                with self.stats.lock:
                    self.stats.captured += 1
                    captured = self.stats.captured
                self._q_in.put(frame, self.stop_event)
                if self.max_frames and captured >= self.max_frames:
                    break
        except Exception as exc:  # noqa: BLE001 - reported by run()
            # A camera that fails mid-run: what it delivered before still gets restored and
            # written (the file ends where the camera stopped), then run() raises.
            self.source_error = exc
            with self.stats.lock:
                self.stats.errors += 1
        finally:
            self._q_in.put_end(self.stop_event)

    def _infer(self):
        infer_timer = self.stats.stages["infer"]
        compose_timer = self.stats.stages["compose"]
        reset = getattr(self.backend, "reset", None)  # models with state start afresh after a gap
        bypassed = False
        try:
            while True:
                frame = self._q_in.get()
                if frame is _END:
                    break
                if self.error is not None:
                    continue  # a stage failed: drain until the end marker
                start = time.monotonic()
                if self.backend is None or self.stats.bypass:
                    restored = frame.image
                    bypassed = True
                else:
                    if reset is not None and (frame.discontinuity or bypassed):
                        reset()  # a reconnect, a loop, or the frames skipped while bypassed
                    bypassed = False
                    # a frame's codec strengths, where its source read them, for a codec model
                    # and its exposure, where the camera reported it, for the motion deblur stage
                    restored = self.backend.infer(frame.image, codec=frame.codec, exposure=frame.exposure)
                done = time.monotonic()
                infer_timer.add(done - start, done)
                if self.transform is not None:
                    out = self.transform(frame, restored)
                    compose_timer.add(time.monotonic() - done)
                else:
                    out = frame.with_image(restored)
                with self.stats.lock:
                    self.stats.processed += 1
                self._q_out.put(out, self.stop_event)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
        finally:
            self._q_out.put_end(self.stop_event)

    def _output(self):
        timer = self.stats.stages["output"]
        while True:
            if self._pending_sinks is not None:
                self._take_pending_sinks()
            try:
                frame = self._q_out.get(timeout=0.25)  # wakes up now and then to take new sinks
            except queue.Empty:
                continue
            if frame is _END:
                break
            if self.error is not None:
                continue  # keep draining so that the other stages can finish
            if self._pending_sinks is not None:
                self._take_pending_sinks()
            with self.stats.lock:
                sink_timers = [self.stats.sinks[name] for name in self._sink_names]
            try:
                start = time.monotonic()
                mark = start
                for sink, sink_timer in zip(self.sinks, sink_timers):
                    sink.write(frame)
                    now = time.monotonic()
                    sink_timer.add(now - mark, now)
                    mark = now
                done = mark
                timer.add(done - start, done)
                with self.stats.lock:
                    self.stats.written += 1
                    self.stats.latency.add(done - frame.captured, done)
                    self.stats.done_times.append(done)
                    if self.stats.first_done is None:
                        self.stats.first_done = done
                    self.stats.last_done = done
                if self.on_frame is not None:
                    self.on_frame(frame)
            except Exception as exc:  # noqa: BLE001 - reported by run()
                self._fail(exc)

    def run(self):
        """Run until the source ends, :meth:`stop` is called or a stage fails; returns the summary.

        Sinks are closed (finalised) in every case; a stage's exception is re-raised after that.
        Statistics are reported from this (the calling) thread, so a stuck sink still shows up.
        """
        threads = [threading.Thread(target=target, name="edgerestore-" + target.__name__.strip("_"))
                   for target in (self._capture, self._infer, self._output)]
        for thread in threads:
            thread.daemon = True
            thread.start()
        next_report = time.monotonic() + self.stats_interval
        rescued = set()
        try:
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(timeout=0.05)
                if self.on_stats is not None and time.monotonic() >= next_report:
                    self.on_stats(self.snapshot(self.stats_interval))
                    next_report = time.monotonic() + self.stats_interval
                if self.drain_timeout is not None and self.stopped_at is not None:
                    if self._rescue_stuck_stages(threads, rescued):
                        break
        except KeyboardInterrupt:
            self.stop()
            for thread in threads:
                thread.join(timeout=5.0)
        finally:
            if self._pending_sinks is not None and not threads[2].is_alive():
                self._take_pending_sinks()
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception as exc:  # noqa: BLE001 - keep closing the others
                    if self.error is None:
                        self.error = exc
        summary = self.summary()
        if self.on_stats is not None:
            self.on_stats(summary)
        if self.error is not None:
            raise self.error
        if self.source_error is not None:
            raise self.source_error
        return summary

    def _rescue_stuck_stages(self, threads, rescued):
        """While stopping with a ``drain_timeout``: send the end marker on behalf of a stage that is
        stuck (after half the timeout; what a stage finishes after stop() is dropped anyway), and
        give up waiting (True) when the whole timeout has passed."""
        waited = time.monotonic() - self.stopped_at
        if waited >= self.drain_timeout / 2.0:
            for thread, name, downstream in ((threads[0], "capture", self._q_in), (threads[1], "infer", self._q_out)):
                if thread.is_alive() and name not in rescued:
                    rescued.add(name)
                    downstream.put_end_now()
        return waited >= self.drain_timeout

    def snapshot(self, window_seconds=None):
        """:meth:`Stats.snapshot` with the backend's current name (a fallback can change it)."""
        self.stats.backend = getattr(self.backend, "name", "none")
        return self.stats.snapshot(window_seconds)

    def summary(self):
        """Statistics of the whole run (fps over all written frames)."""
        snap = self.snapshot()
        snap["summary"] = True
        with self.stats.lock:
            first, last, written = self.stats.first_done, self.stats.last_done, self.stats.written
        snap["fps"] = _round((written - 1) / (last - first)) if written >= 2 and last > first else None
        return snap


def stats_line(stats):
    """One JSON line for a stats dict (what the daemon and ``run`` print)."""
    return json.dumps(stats, sort_keys=True)
