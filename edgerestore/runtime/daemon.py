"""``edgerestore run --config FILE``: the pipeline as a service that never loses the stream.

:class:`Daemon` builds the ordinary pipeline from a configuration file (+ flags) out of resilient
parts (:mod:`edgerestore.runtime.resilience`): a source that reconnects with exponential backoff,
a chain of backends that fall back, sinks that fail alone and retry. Around it:

* signals — SIGTERM/SIGINT drain the queues and finalise every sink within
  ``service.stop_timeout_s`` (2 s); SIGHUP re-reads the file and applies what changed without
  stopping the stream (a new source, model, sink or log level; unchanged sinks stay open);
* systemd — ``READY=1`` once running, ``WATCHDOG=1`` while healthy, ``RELOADING=1``/``STOPPING=1``;
* observability — a JSON-lines log (statistics every ``logging.stats_every`` seconds with fps per
  backend, latency, drops, reconnections, temperatures and throttling) and, on the local HTTP
  port, the preview page, ``/stats.json``, ``/metrics`` (Prometheus) and ``/healthz``.

Python 3.6-safe, torch-free.
"""

import os
import signal
import threading
import time

from edgerestore import __version__
from edgerestore.errors import BackendUnavailableError, EdgeRestoreError
from edgerestore.runtime import service
from edgerestore.runtime.config import load_config
from edgerestore.runtime.jsonlog import JsonLog
from edgerestore.runtime.metrics import MetricsEndpoint
from edgerestore.runtime.pipeline import Pipeline
from edgerestore.runtime.resilience import Backoff, FallbackBackend, GuardedSink, ReconnectingSource
from edgerestore.runtime.uri import parse_uri, redact

FRAGMENT_SUFFIXES = (".mp4", ".m4v", ".mov")


def service_sink_uri(uri):
    """Recordings of the service are fragmented MP4 (playable after a power cut) unless the URI
    says ``fragment=0``."""
    parsed = parse_uri(uri)
    if parsed.scheme != "file" or "fragment" in parsed.params:
        return uri
    if os.path.splitext(parsed.location)[1].lower() not in FRAGMENT_SUFFIXES:
        return uri
    return uri + ("&" if "?" in uri else "?") + "fragment=1"


def build_candidates(model_config, log, frame_size=None):
    """``(candidates, rejected)`` for ``[model]``: every (backend, model file) to try, in order.

    Each entry of ``model.path`` goes through :func:`edgerestore.runtime.artifacts.resolve` (a
    bundle is checked against its manifest); ``model.backends`` sets the order (and leaves out the
    others).
    """
    from edgerestore.runtime.artifacts import NO_MODEL, resolve

    candidates, rejected = [], []
    for spec in model_config.path:
        if spec == NO_MODEL:
            return [], []
        try:
            found = resolve(spec, frame_size=frame_size, backends=model_config.backends,
                            settings=model_config,
                            on_skipped=lambda bundle, name: log.warning(
                                "artifact_skipped", "failed verification at export", bundle=bundle, file=name))
        except EdgeRestoreError as exc:
            rejected.append("%s: %s" % (spec, exc))
            log.warning("model_rejected", "cannot use this model; trying the next one", model=spec, error=str(exc))
            continue
        if os.path.isdir(spec):
            log.info("bundle_verified", "every file matches the manifest", bundle=spec)
        candidates.extend(found)
    return candidates, rejected


def start_backend(config, log, size=None):
    """A started :class:`FallbackBackend` for ``config.model``; raises when nothing can run."""
    candidates, rejected = build_candidates(config.model, log, size)
    chain = FallbackBackend(candidates, threads=config.model.threads or None, log=log,
                            noise_level=config.model.noise_level, deblur=config.model.deblur,
                            exposure=config.model.exposure)
    if not candidates and rejected:
        raise BackendUnavailableError("no usable model: %s" % "; ".join(rejected))
    return chain.start(size if config.model.warmup else None)


class Daemon(object):
    """One service process. ``run()`` returns the summary after SIGTERM/SIGINT (or ``duration`` /
    ``max_frames``); it raises only for a configuration that cannot start."""

    def __init__(self, config_path=None, overrides=None, max_frames=None, duration=None, environ=None,
                 telemetry_root="/", command_path=None, log_stream=None):
        self.config_path = config_path
        self.overrides = dict(overrides or {})
        self.config = load_config(config_path, self.overrides)
        self.max_frames = max_frames
        self.duration = duration
        self.environ = os.environ if environ is None else environ
        self.telemetry_root = telemetry_root
        self.command_path = command_path
        self.log = JsonLog(self.config.logging.level, self.config.logging.file or None, stream=log_stream)
        self.started = time.monotonic()
        self.reloads = 0
        self.source = None
        self.backend = None
        self.pipeline = None
        self.guards = {}  # sink URI -> GuardedSink
        self.control = None  # the GuardedSink of the HTTP server (http.listen)
        self.telemetry = None
        self.telemetry_data = {}
        self.summary = None
        self.failure = None
        self.stop_began = None
        self._stop_requested = None
        self._reload_requested = False
        self._stalled_logged = False
        self._metrics = MetricsEndpoint(self.state)

    # --- signals ---------------------------------------------------------------------------

    def request_stop(self, reason="request"):
        """Stop soon (safe from a signal handler: sets a flag the main loop reads)."""
        if self._stop_requested is None:
            self._stop_requested = reason

    def request_reload(self):
        self._reload_requested = True

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}

        def on_stop(signum, _frame):
            self.request_stop(signal.Signals(signum).name)

        def on_hup(_signum, _frame):
            self.request_reload()

        for signum, handler in ((signal.SIGTERM, on_stop), (signal.SIGINT, on_stop), (signal.SIGHUP, on_hup)):
            previous[signum] = signal.signal(signum, handler)
        return previous

    # --- building the parts ------------------------------------------------------------------

    def _open_sink(self, uri):
        from edgerestore.runtime.sinks import open_sink

        return open_sink(uri, fps=self.source.fps, size=self.source.size)

    def _open_control(self, uri):
        from edgerestore.runtime.sinks.http import HttpSink

        return HttpSink(parse_uri(uri), token=self.config.token(),
                        routes={"/metrics": self._metrics, "/healthz": self._healthz})

    def _sink_list(self, config):
        """The guards for ``config``'s sinks, reusing open ones whose URI did not change."""
        output = config.output
        wanted = []
        listen = config.http.listen
        control_uri = "http://%s:%d" % listen if listen else None
        for raw in output.sinks:
            uri = service_sink_uri(raw)
            parsed = parse_uri(uri)
            if control_uri and parsed.scheme == "http" and _same_address(parsed.location, listen):
                self.log.info("sink_merged", "this http sink is the service's own HTTP server (http.listen)", sink=uri)
                continue
            wanted.append(uri)
        guards = {}
        for uri in wanted:
            guard = self.guards.get(uri)
            if guard is None:
                guard = GuardedSink(uri, self._open_sink, Backoff(output.retry_min_s, output.retry_max_s), self.log)
            guard.backoff.initial, guard.backoff.maximum = output.retry_min_s, output.retry_max_s
            guards[uri] = guard
        if control_uri:
            if self.control is not None and self.control.uri == control_uri:
                control = self.control
                if control.sink is not None:
                    control.sink.token = config.token()
            else:
                control = GuardedSink(control_uri, self._open_control, Backoff(output.retry_min_s, output.retry_max_s),
                                      self.log)
                if control.sink is not None:
                    self.log.info("http", "serving the preview, /metrics and /healthz", url=control.sink.url)
        else:
            control = None
        return guards, control

    def _apply_sinks(self, guards, control):
        self.guards, self.control = guards, control
        return list(guards.values()) + ([control] if control is not None else [])

    def _start(self):
        config = self.config
        self.log.info("starting", "edgerestore service starting", pid=os.getpid(), version=__version__,
                      config=config.path, source=redact(config.source_uri()),
                      sinks=[redact(s) for s in config.output.sinks], models=config.model.path,
                      backends=config.model.backends)
        self.source = ReconnectingSource(config.source_uri(), backoff=Backoff(config.source.reconnect_min_s,
                                                                               config.source.reconnect_max_s),
                                         log=self.log)
        self.source.open_now()
        self.backend = start_backend(config, self.log, self.source.size)
        sinks = self._apply_sinks(*self._sink_list(config))
        if config.logging.telemetry:
            from edgerestore.runtime.telemetry import Telemetry

            self.telemetry = Telemetry(self.telemetry_root, self.command_path)
            self.telemetry_data = self.telemetry.snapshot()
        self.pipeline = Pipeline(self.source, self.backend, sinks, live=self.source.live,
                                 queue_size=config.output.queue, max_frames=self.max_frames,
                                 stats_interval=config.logging.stats_every, on_stats=self._on_stats,
                                 drain_timeout=config.service.stop_timeout_s)
        self.pipeline_started = time.monotonic()

    # --- running -----------------------------------------------------------------------------

    def run(self):
        previous = self._install_signals()
        try:
            self._start()
            thread = threading.Thread(target=self._pipeline_main, name="edgerestore-pipeline")
            thread.daemon = True
            thread.start()
            service.notify("READY=1\nSTATUS=running %s" % self.backend.name, self.environ)
            self.log.info("running", "the pipeline runs", backend=self.backend.name, live=self.source.live)
            self._loop(thread)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._shutdown()
        if self.failure is not None:
            raise self.failure
        return self.summary

    def _pipeline_main(self):
        try:
            self.summary = self.pipeline.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised by run() in the main thread
            self.failure = exc

    def _loop(self, thread):
        watchdog = service.watchdog_seconds(self.environ)
        next_ping = 0.0
        next_telemetry = time.monotonic() + self.config.logging.stats_every
        while thread.is_alive():
            thread.join(0.1)
            now = time.monotonic()
            if self.duration and now - self.pipeline_started >= self.duration:
                self.request_stop("duration")
            if self._stop_requested is not None and self.stop_began is None:
                self._begin_stop()
            if self._reload_requested and self.stop_began is None:
                self._reload_requested = False
                self.reload()
            if self.telemetry is not None and now >= next_telemetry:
                self.telemetry_data = self.telemetry.snapshot()
                next_telemetry = now + self.config.logging.stats_every
            if watchdog and now >= next_ping and self.stop_began is None:
                next_ping = now + watchdog / 3.0
                health = self.health()
                if health["status"] != "stalled":
                    service.notify("WATCHDOG=1", self.environ)
                    self._stalled_logged = False
                elif not self._stalled_logged:
                    self._stalled_logged = True
                    self.log.error("stalled", "%s; no watchdog ping, systemd will restart the service"
                                   % health["reason"])

    def _begin_stop(self):
        self.stop_began = time.monotonic()
        service.notify("STOPPING=1", self.environ)
        self.log.info("stopping", "draining the queues and finalising the sinks", reason=self._stop_requested,
                      timeout_s=self.config.service.stop_timeout_s)
        self.pipeline.stop()
        self.source.close()  # cuts a reconnection wait short

    def _shutdown(self):
        drain_s = round(time.monotonic() - self.stop_began, 3) if self.stop_began else None
        if self.source is not None:
            self.source.close()
        if self.backend is not None:
            self.backend.close()
        if self.telemetry is not None:
            self.telemetry.close()
        if self.pipeline is not None:
            self.log.info("stopped", "every sink finalised", drain_s=drain_s,
                          frames=self.pipeline.stats.written, sinks=self._sink_status(),
                          error=str(self.failure) if self.failure else None)
        self.log.close()

    # --- statistics, health, metrics ----------------------------------------------------------

    def _sink_status(self):
        guards = list(self.guards.values()) + ([self.control] if self.control is not None else [])
        return dict((guard.label, guard.status()) for guard in guards)

    def _source_status(self):
        source = self.source
        return {"uri": source.label, "state": source.state, "reconnects": source.reconnects,
                "stream_reconnects": source.inner_reconnects, "losses": source.losses, "corrupt": source.corrupt,
                "error": source.last_error}

    def _backend_status(self):
        backend = self.backend
        candidate = backend.candidate
        return {"name": backend.name, "candidate": candidate.label if candidate else None,
                "fallbacks": backend.fallbacks, "frames_by_backend": dict(backend.frames_by_backend),
                "bypassed": backend.bypassed}

    def _on_stats(self, stats):
        try:
            self._publish_stats(stats)
        except Exception as exc:  # noqa: BLE001 - statistics must never stop the stream
            self.log.error("stats_failed", "could not publish the statistics", error=repr(exc))

    def _publish_stats(self, stats):
        record = dict(stats)
        record["source"] = self._source_status()
        record["sinks"] = self._sink_status()
        record["backend_info"] = self._backend_status()
        telemetry = self.telemetry_data
        if telemetry:
            record["telemetry"] = telemetry
            if telemetry.get("temperature_c") is not None:
                record["temperature_c"] = telemetry["temperature_c"]
            if telemetry.get("throttled") is not None:
                record["throttled"] = telemetry["throttled"]["flags"]
        self.log.info("stats", **record)
        for guard in list(self.guards.values()) + ([self.control] if self.control is not None else []):
            guard.set_stats(record)

    def state(self):
        """A snapshot of every counter (``/metrics`` reads it at each scrape)."""
        if self.pipeline is None:
            raise RuntimeError("starting up: no statistics yet")
        stats = self.pipeline.stats
        with stats.lock:
            totals = {"captured": stats.captured, "frames": stats.written, "errors": stats.errors,
                      "dropped_infer": stats.dropped["before_infer"], "dropped_output": stats.dropped["before_output"]}
        return {
            "status": self.health()["status"],
            "uptime_s": time.monotonic() - self.started,
            "reloads": self.reloads,
            "totals": totals,
            "interval": self.pipeline.snapshot(self.config.logging.stats_every),
            "backend": self._backend_status(),
            "source": self._source_status(),
            "sinks": self._sink_status(),
            "telemetry": self.telemetry_data,
        }

    def health(self):
        """``{"status": ok|degraded|starting|stalled|stopping, "reason": ...}`` and the figures behind it.

        *stalled* (the watchdog stops, systemd restarts us) means the pipeline itself is stuck:
        frames come in but none go out, or a read from the source has not returned for
        ``service.stall_s``. A missing camera is *degraded*: restarting would not bring it back.
        """
        now = time.monotonic()
        stall_s = self.config.service.stall_s
        source, pipeline = self.source, self.pipeline
        last_out = pipeline.stats.last_done
        reasons = []
        status = "ok"
        if self.stop_began is not None:
            status, reasons = "stopping", ["stopping"]
        elif source._reading and now - source.read_started > stall_s:
            status, reasons = "stalled", ["a read from the source has not returned for %.0f s" % (now - source.read_started)]
        elif source.last_frame_at is not None and now - source.last_frame_at < stall_s / 2.0 and \
                now - (last_out or self.pipeline_started) > stall_s:
            status, reasons = "stalled", ["frames come in but none reached the sinks for %.0f s"
                                          % (now - (last_out or self.pipeline_started))]
        else:
            if last_out is None and source.state != "reconnecting" and now - self.pipeline_started < stall_s:
                status, reasons = "starting", ["waiting for the first frame"]
            if source.state == "reconnecting":
                reasons.append("source lost (%s), reconnecting" % source.last_error)
            elif source.last_frame_at is not None and now - source.last_frame_at > stall_s:
                reasons.append("no frame from the source for %.0f s" % (now - source.last_frame_at))
            for label, sink in self._sink_status().items():
                if sink["state"] != "ok":
                    reasons.append("sink %s %s (%s)" % (label, sink["state"], sink["error"]))
            if self.backend.exhausted:
                reasons.append("every backend failed: frames pass through unrestored")
            elif self.backend.index:
                reasons.append("running the fallback %s" % self.backend.candidate.label)
            if reasons and status == "ok":
                status = "degraded"
        snapshot = pipeline.snapshot(self.config.logging.stats_every)
        return {
            "status": status, "reason": "; ".join(reasons) or "frames flow", "pid": os.getpid(),
            "uptime_s": round(now - self.started, 1), "config": self.config.path, "reloads": self.reloads,
            "fps": snapshot["fps"], "latency_ms_p50": snapshot["latency_ms_p50"], "frames": snapshot["frames"],
            "captured": snapshot["captured"], "dropped": snapshot["dropped"],
            "backend": self._backend_status(), "source": self._source_status(), "sinks": self._sink_status(),
            "telemetry": self.telemetry_data,
        }

    def _healthz(self):
        import json

        if self.pipeline is None:  # the HTTP server opens just before the pipeline
            return 503, "application/json", b'{"status": "starting", "reason": "starting up"}'
        health = self.health()
        code = 200 if health["status"] in ("ok", "degraded") else 503
        return code, "application/json", json.dumps(health, sort_keys=True).encode("utf-8")

    # --- reload ------------------------------------------------------------------------------

    def reload(self):
        """Re-read the config file (SIGHUP) and apply what changed; a bad file changes nothing."""
        service.notify("RELOADING=1\n" + service.monotonic_usec(), self.environ)
        try:
            new = load_config(self.config_path, self.overrides)
        except EdgeRestoreError as exc:
            self.log.error("reload_failed", "the config has a problem; nothing changed", error=str(exc))
            service.notify("READY=1", self.environ)
            return False
        old = self.config
        changed = [table for table in new.values if new.values[table] != old.values[table]]
        try:
            self.log.reopen(new.logging.file or "")
        except (IOError, OSError) as exc:
            self.log.error("reload_failed", "cannot open logging.file; nothing changed",
                           error="%s: %s" % (new.logging.file, exc.strerror or exc))
            service.notify("READY=1", self.environ)
            return False
        self.log.level = new.logging.level
        if new.source_uri() != old.source_uri():
            self.source.switch(new.source_uri())
        self.source.backoff.initial = new.source.reconnect_min_s
        self.source.backoff.maximum = new.source.reconnect_max_s
        if new.values["model"] != old.values["model"]:
            try:
                replacement = start_backend(new, self.log, self.source.size)
            except EdgeRestoreError as exc:
                self.log.error("reload_failed", "the new model does not run; keeping the old one", error=str(exc))
                new.values["model"] = old.values["model"]
                new.model = old.model
            else:
                self.backend.replace(replacement)
        if new.output.queue != old.output.queue:
            self.log.warning("restart_needed", "output.queue takes effect when the service restarts")
        self.config = new  # the control server's token comes from here
        if new.values["output"] != old.values["output"] or new.values["http"] != old.values["http"]:
            self.pipeline.replace_sinks(self._apply_sinks(*self._sink_list(new)))
        self.pipeline.stats_interval = new.logging.stats_every
        self.pipeline.drain_timeout = new.service.stop_timeout_s
        if new.logging.telemetry and self.telemetry is None:
            from edgerestore.runtime.telemetry import Telemetry

            self.telemetry = Telemetry(self.telemetry_root, self.command_path)
        elif not new.logging.telemetry and self.telemetry is not None:
            self.telemetry.close()
            self.telemetry, self.telemetry_data = None, {}
        self.reloads += 1
        self.log.info("reloaded", "configuration applied", changed=changed)
        service.notify("READY=1", self.environ)
        return True


def _same_address(location, listen):
    host, _sep, port = location.split("/", 1)[0].rpartition(":")
    return port.isdigit() and int(port) == listen[1] and (host or "127.0.0.1") == listen[0]
