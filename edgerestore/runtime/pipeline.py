"""source -> backend -> sinks on three threads with bounded queues, and the statistics of it.

Live sources (cameras, streams) must not build a backlog: when a queue is full the *oldest* frame
is dropped and counted, so latency stays bounded. Files are processed completely: a full queue
makes the reader wait instead. Every few seconds a JSON line of statistics per backend (fps,
latency p50/p95, drops, per-stage ms) goes to ``on_stats``; :meth:`Pipeline.run` returns the
summary of the whole run. Python 3.6-safe.
"""

import json
import threading
import time
from collections import deque

try:
    import queue
except ImportError:  # pragma: no cover
    raise

_END = object()  # end of stream marker travelling through the queues


class StageTimer(object):
    """Durations of one stage, kept for the last ``window`` frames plus running totals."""

    def __init__(self, window=600):
        self.recent = deque(maxlen=window)
        self.count = 0
        self.total = 0.0

    def add(self, seconds):
        self.recent.append(seconds)
        self.count += 1
        self.total += seconds

    def mean_ms(self):
        return 1000.0 * self.total / self.count if self.count else None


def percentile(values, q):
    """The ``q``-th percentile (0-100) of a sequence, nearest-rank on the sorted values."""
    values = sorted(values)
    if not values:
        return None
    rank = min(len(values) - 1, max(0, int(round(q / 100.0 * (len(values) - 1)))))
    return values[rank]


class Stats(object):
    """Counters and timings shared by the pipeline's threads."""

    def __init__(self, backend_name):
        self.backend = backend_name
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.stages = {"capture": StageTimer(), "infer": StageTimer(), "output": StageTimer()}
        self.latency = StageTimer()
        self.captured = 0
        self.processed = 0
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self.done_times = deque(maxlen=600)
        self.first_done = None
        self.last_done = None

    def snapshot(self, window_seconds=None):
        """A JSON-ready dict: fps over the recent window, latency percentiles, drops, stage ms."""
        with self.lock:
            now = time.monotonic()
            times = list(self.done_times)
            latencies = list(self.latency.recent)
            if window_seconds:
                times = [t for t in times if now - t <= window_seconds]
            fps = None
            if len(times) >= 2 and times[-1] > times[0]:
                fps = (len(times) - 1) / (times[-1] - times[0])
            return {
                "backend": self.backend,
                "elapsed_s": round(now - self.started, 3),
                "fps": _round(fps),
                "frames": self.written,
                "captured": self.captured,
                "dropped": self.dropped,
                "errors": self.errors,
                "latency_ms_p50": _round(_ms(percentile(latencies, 50))),
                "latency_ms_p95": _round(_ms(percentile(latencies, 95))),
                "stage_ms": {name: _round(timer.mean_ms()) for name, timer in self.stages.items()},
            }


def _ms(seconds):
    return None if seconds is None else 1000.0 * seconds


def _round(value, digits=2):
    return None if value is None else round(value, digits)


class _DropOldestQueue(object):
    """A bounded queue whose ``put`` either waits (files) or drops the oldest item (live)."""

    def __init__(self, size, drop_oldest, on_drop):
        self.queue = queue.Queue(maxsize=size)
        self.drop_oldest = drop_oldest
        self.on_drop = on_drop

    def put(self, item, stop_event):
        while not stop_event.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                if self.drop_oldest and item is not _END:
                    try:
                        old = self.queue.get_nowait()
                        if old is not _END:
                            self.on_drop()
                    except queue.Empty:
                        pass
        return False

    def put_end(self, stop_event):
        """Deliver the end marker after every frame; when stopping, frames may give way to it."""
        while True:
            try:
                self.queue.put(_END, timeout=0.1)
                return
            except queue.Full:
                if self.drop_oldest or stop_event.is_set():
                    try:
                        self.queue.get_nowait()
                    except queue.Empty:
                        pass

    def get(self):
        return self.queue.get()


class Pipeline(object):
    """Run ``source`` through ``backend`` into every sink in ``sinks``.

    ``live`` (default: the source's own ``live``) selects drop-oldest queues; ``max_frames``
    stops after that many captured frames; ``on_frame(frame)`` is called after each output (a
    progress bar); ``on_stats(dict)`` every ``stats_interval`` seconds. ``transform(raw, restored)``
    can compose what the sinks receive (the preview's side-by-side view).
    """

    def __init__(self, source, backend, sinks, live=None, queue_size=2, max_frames=None,
                 stats_interval=5.0, on_stats=None, on_frame=None, transform=None):
        self.source = source
        self.backend = backend
        self.sinks = list(sinks)
        self.live = source.live if live is None else live
        self.max_frames = max_frames
        self.stats_interval = stats_interval
        self.on_stats = on_stats
        self.on_frame = on_frame
        self.transform = transform
        self.stats = Stats(getattr(backend, "name", "none"))
        self.stop_event = threading.Event()
        self.error = None
        self._q_in = _DropOldestQueue(queue_size, self.live, self._count_drop)
        self._q_out = _DropOldestQueue(queue_size, self.live, self._count_drop)

    def _count_drop(self):
        with self.stats.lock:
            self.stats.dropped += 1

    def stop(self):
        """Ask every stage to finish; :meth:`run` returns soon after, sinks finalised."""
        self.stop_event.set()

    def _fail(self, exc):
        if self.error is None:
            self.error = exc
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
                timer.add(time.monotonic() - start)
                frame.captured = time.monotonic()
                with self.stats.lock:
                    self.stats.captured += 1
                self._q_in.put(frame, self.stop_event)
                if self.max_frames and self.stats.captured >= self.max_frames:
                    break
        except Exception as exc:  # noqa: BLE001 - reported by run()
            self._fail(exc)
        finally:
            self._q_in.put_end(self.stop_event)

    def _infer(self):
        timer = self.stats.stages["infer"]
        try:
            while True:
                frame = self._q_in.get()
                if frame is _END:
                    break
                if self.stop_event.is_set() and self.error is not None:
                    continue
                start = time.monotonic()
                restored = self.backend.infer(frame.image) if self.backend is not None else frame.image
                timer.add(time.monotonic() - start)
                out = self.transform(frame, restored) if self.transform else frame.with_image(restored)
                with self.stats.lock:
                    self.stats.processed += 1
                self._q_out.put(out, self.stop_event)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
        finally:
            self._q_out.put_end(self.stop_event)

    def _output(self):
        timer = self.stats.stages["output"]
        last_report = time.monotonic()
        while True:
            frame = self._q_out.get()
            if frame is _END:
                break
            if self.error is not None:
                continue  # keep draining so that the other stages can finish
            try:
                start = time.monotonic()
                for sink in self.sinks:
                    sink.write(frame)
                done = time.monotonic()
                timer.add(done - start)
                with self.stats.lock:
                    self.stats.written += 1
                    self.stats.latency.add(done - frame.captured)
                    self.stats.done_times.append(done)
                    if self.stats.first_done is None:
                        self.stats.first_done = done
                    self.stats.last_done = done
                if self.on_frame is not None:
                    self.on_frame(frame)
                if self.on_stats is not None and done - last_report >= self.stats_interval:
                    self.on_stats(self.stats.snapshot(self.stats_interval))
                    last_report = done
            except Exception as exc:  # noqa: BLE001 - reported by run()
                self._fail(exc)

    def run(self):
        """Run until the source ends, :meth:`stop` is called or a stage fails; returns the summary.

        Sinks are closed (finalised) in every case; a stage's exception is re-raised after that.
        """
        threads = [threading.Thread(target=target, name="edgerestore-" + target.__name__.strip("_"))
                   for target in (self._capture, self._infer, self._output)]
        for thread in threads:
            thread.daemon = True
            thread.start()
        try:
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(timeout=0.1)
        except KeyboardInterrupt:
            self.stop()
            for thread in threads:
                thread.join(timeout=5.0)
        finally:
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
        return summary

    def summary(self):
        """Statistics of the whole run (fps over all written frames)."""
        snap = self.stats.snapshot()
        snap["summary"] = True
        with self.stats.lock:
            first, last, written = self.stats.first_done, self.stats.last_done, self.stats.written
        if written >= 2 and last > first:
            snap["fps"] = _round((written - 1) / (last - first))
        return snap


def stats_line(stats):
    """One JSON line for a stats dict (what the daemon and ``run`` print)."""
    return json.dumps(stats, sort_keys=True)
