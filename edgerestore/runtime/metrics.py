"""``/metrics`` in the Prometheus text format, through prometheus-client. Python 3.6-safe.

The service keeps its own counters (the pipeline's statistics, the source's reconnections, each
sink's failures...); :class:`ServiceCollector` turns a snapshot of them into metric families at
scrape time, so nothing is double-counted and nothing runs between scrapes. The registry is the
service's own (plus the process collector: memory, CPU, open files), not the library's global one.

prometheus-client is optional for the runtime: without it ``/metrics`` answers 501 with the
command that installs it, and everything else works.
"""

PREFIX = "edgerestore_"
MISSING = b"/metrics needs prometheus-client: pip install prometheus-client\n"


def available():
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


def _families(state):
    """Metric families for one state snapshot (see ``Daemon.state``)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    totals = state["totals"]
    interval = state.get("interval") or {}
    backend = state["backend"]

    up = GaugeMetricFamily(PREFIX + "up", "1 while the service runs; its health in the status label",
                           labels=["status"])
    up.add_metric([state["status"]], 1)
    yield up
    yield GaugeMetricFamily(PREFIX + "uptime_seconds", "Seconds since the service started", value=state["uptime_s"])
    yield CounterMetricFamily(PREFIX + "config_reloads", "Configuration reloads (SIGHUP) applied",
                              value=state["reloads"])

    frames = CounterMetricFamily(PREFIX + "frames", "Frames restored, per backend", labels=["backend"])
    for name, count in sorted(backend["frames_by_backend"].items()):
        frames.add_metric([name], count)
    yield frames
    yield CounterMetricFamily(PREFIX + "frames_written", "Frames that reached the sinks", value=totals["frames"])
    yield CounterMetricFamily(PREFIX + "frames_captured", "Frames read from the source", value=totals["captured"])
    dropped = CounterMetricFamily(PREFIX + "frames_dropped",
                                  "Frames dropped because a later stage was busy (live sources drop the oldest)",
                                  labels=["before"])
    dropped.add_metric(["infer"], totals["dropped_infer"])
    dropped.add_metric(["output"], totals["dropped_output"])
    yield dropped
    yield CounterMetricFamily(PREFIX + "frames_corrupt", "Frames skipped because they did not decode",
                              value=state["source"]["corrupt"])
    yield CounterMetricFamily(PREFIX + "frames_passed_through",
                              "Frames sent on unrestored because every backend had failed", value=backend["bypassed"])

    fps = GaugeMetricFamily(PREFIX + "fps", "Frames per second over the last statistics interval",
                            labels=["backend"])
    fps.add_metric([backend["name"]], interval.get("fps") or 0.0)
    yield fps
    latency = GaugeMetricFamily(PREFIX + "latency_seconds",
                                "Capture-to-sink latency over the last statistics interval", labels=["quantile"])
    for quantile, key in (("0.5", "latency_ms_p50"), ("0.95", "latency_ms_p95")):
        if interval.get(key) is not None:
            latency.add_metric([quantile], interval[key] / 1000.0)
    yield latency
    stage = GaugeMetricFamily(PREFIX + "stage_seconds", "Mean time per frame in each stage (last interval)",
                              labels=["stage"])
    for name, ms in sorted((interval.get("stage_ms") or {}).items()):
        if ms is not None:
            stage.add_metric([name], ms / 1000.0)
    yield stage

    info = GaugeMetricFamily(PREFIX + "backend_info", "The backend running now (1)", labels=["backend", "candidate"])
    info.add_metric([backend["name"], backend.get("candidate") or ""], 1)
    yield info
    yield CounterMetricFamily(PREFIX + "backend_fallbacks", "Switches to the next backend after a failure",
                              value=backend["fallbacks"])

    source = state["source"]
    yield GaugeMetricFamily(PREFIX + "source_connected", "1 while frames flow from the source",
                            value=1 if source["state"] == "connected" else 0)
    yield CounterMetricFamily(PREFIX + "source_reconnects", "Times the source delivered frames again after a loss",
                              value=source["reconnects"])
    yield CounterMetricFamily(PREFIX + "source_losses", "Times the source was lost or ended", value=source["losses"])

    sink_up = GaugeMetricFamily(PREFIX + "sink_up", "1 while the sink takes frames", labels=["sink"])
    sink_written = CounterMetricFamily(PREFIX + "sink_frames", "Frames each sink took", labels=["sink"])
    sink_skipped = CounterMetricFamily(PREFIX + "sink_frames_skipped", "Frames a failed sink missed", labels=["sink"])
    sink_failures = CounterMetricFamily(PREFIX + "sink_failures", "Failures of each sink", labels=["sink"])
    for label, sink in sorted(state["sinks"].items()):
        sink_up.add_metric([label], 1 if sink["state"] == "ok" else 0)
        sink_written.add_metric([label], sink["written"])
        sink_skipped.add_metric([label], sink["skipped"])
        sink_failures.add_metric([label], sink["failures"])
    for family in (sink_up, sink_written, sink_skipped, sink_failures):
        yield family

    telemetry = state.get("telemetry") or {}
    if telemetry.get("temperatures"):
        temps = GaugeMetricFamily(PREFIX + "temperature_celsius", "Board temperatures", labels=["zone"])
        for zone, celsius in sorted(telemetry["temperatures"].items()):
            temps.add_metric([zone], celsius)
        yield temps
    if telemetry.get("throttled") is not None:
        yield GaugeMetricFamily(PREFIX + "throttled", "1 while the board throttles or is under-voltage",
                                value=1 if telemetry["throttled"]["now"] else 0)
    if telemetry.get("gpu_load_pct") is not None:
        yield GaugeMetricFamily(PREFIX + "gpu_load_ratio", "GPU load (tegrastats)",
                                value=telemetry["gpu_load_pct"] / 100.0)


class ServiceCollector(object):
    """A prometheus-client collector that reads ``read_state()`` at every scrape."""

    def __init__(self, read_state):
        self.read_state = read_state

    def collect(self):
        for family in _families(self.read_state()):
            yield family


class MetricsEndpoint(object):
    """Call it to answer ``/metrics``: ``(status, content type, body)``."""

    def __init__(self, read_state):
        self.registry = None
        if available():
            from prometheus_client import CollectorRegistry, ProcessCollector

            self.registry = CollectorRegistry(auto_describe=False)
            self.registry.register(ServiceCollector(read_state))
            ProcessCollector(registry=self.registry)

    def __call__(self):
        if self.registry is None:
            return 501, "text/plain", MISSING
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
