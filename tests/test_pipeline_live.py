"""The pipeline under load: bounded latency with drops counted, statistics, errors, bypass."""

import json
import time

import numpy as np
import pytest

from edgerestore.runtime.pipeline import Pipeline, stats_line
from edgerestore.runtime.runner import open_backend, run
from edgerestore.runtime.sinks.base import Sink
from edgerestore.runtime.sources import open_source


class SlowSink(Sink):
    """Takes ``delay`` seconds per frame, like a display or network link that cannot keep up."""

    name = "slow"

    def __init__(self, delay):
        self.delay = delay
        self.indices = []
        self.closed = False

    def write(self, frame):
        time.sleep(self.delay)
        self.indices.append(frame.index)

    def close(self):
        self.closed = True


class FailingSink(Sink):
    name = "failing"

    def __init__(self, after):
        self.after = after
        self.written = 0

    def write(self, frame):
        if self.written >= self.after:
            raise OSError("disk full")
        self.written += 1


class Collect(Sink):
    name = "collect"

    def __init__(self):
        self.frames = []
        self.closed = False

    def write(self, frame):
        self.frames.append(frame)

    def close(self):
        self.closed = True


def test_slow_sink_keeps_latency_bounded_and_counts_drops(tiny_onnx):
    """A 100 fps camera into a 20 fps sink for 2 s: without dropping, the last frames would be
    ~1.5 s old; with drop-oldest queues of 2 they stay within a few sink periods."""
    sink = SlowSink(0.05)
    lines = []
    summary = run("test://pattern?size=64x48&fps=100", [sink], model=str(tiny_onnx), duration=2.0,
                  stats_interval=0.5, on_stats=lines.append)
    assert sink.closed
    assert summary["dropped"] > 50  # ~200 captured, ~40 shown
    assert summary["captured"] == summary["frames"] + summary["dropped"]  # every frame accounted for
    assert summary["dropped_before"]["output"] > 0  # the sink is the bottleneck
    assert summary["latency_ms_p95"] < 400, summary  # 2 queued + 1 writing at 50 ms, plus slack
    assert 10 < summary["fps"] < 25
    # The newest frames reach the sink: indices jump (drops) instead of crawling through a backlog.
    assert max(np.diff(sink.indices)) > 2 and sink.indices[-1] > 150
    periodic = [s for s in lines if not s.get("summary")]
    assert len(periodic) >= 2 and lines[-1].get("summary")
    for stats in periodic:
        json.loads(stats_line(stats))
        assert stats["backend"] == "onnxruntime"
        assert stats["sink_ms"]["0:slow"] == pytest.approx(50, abs=25)
        assert set(stats["stage_ms"]) == {"capture", "infer", "compose", "output"}


def test_file_sources_are_never_dropped(real_clip, tiny_onnx):
    sink = SlowSink(0.01)
    summary = run(str(real_clip), [sink], model=str(tiny_onnx))
    assert summary["frames"] == 36 and summary["dropped"] == 0
    assert sink.indices == list(range(36))


def test_a_failing_sink_stops_the_run_and_other_sinks_are_finalised(real_clip, tiny_onnx, tmp_path):
    out = tmp_path / "partial.mp4"
    with pytest.raises(OSError, match="disk full"):
        run(str(real_clip), ["file://%s" % out, FailingSink(after=5)], model=str(tiny_onnx))
    from edgerestore.runtime.sources import open_source as reopen

    with reopen(str(out)) as partial:  # the MP4 was finalised: it plays
        frames = list(partial)
    assert 5 <= len(frames) <= 6


def test_bypass_passes_raw_frames_and_is_reported(tiny_onnx):
    engine = open_backend(str(tiny_onnx))
    source = open_source("test://pattern?size=64x48&realtime=0&frames=6")
    collect = Collect()
    pipeline = Pipeline(source, engine, [collect])
    pipeline.bypass = True
    summary = pipeline.run()
    assert summary["bypass"] is True and summary["frames"] == 6
    for frame in collect.frames:
        assert np.array_equal(frame.image, frame.raw)
    source = open_source("test://pattern?size=64x48&realtime=0&frames=2")
    collect = Collect()
    Pipeline(source, engine, [collect]).run()
    assert not np.array_equal(collect.frames[0].image, collect.frames[0].raw)  # the model ran


def test_stop_from_a_frame_callback_ends_a_live_run(tiny_onnx):
    collect = Collect()
    state = {}

    def on_start(pipeline):
        state["pipeline"] = pipeline

    def on_frame(frame):
        if frame.index >= 5:
            state["pipeline"].stop()

    started = time.monotonic()
    summary = run("test://pattern?size=64x48&fps=60", [collect], model=str(tiny_onnx),
                  on_start=on_start, on_frame=on_frame)
    assert time.monotonic() - started < 5
    assert collect.closed and 6 <= summary["frames"] <= 10


def test_camera_errors_end_the_run_with_the_cameras_message(tmp_path):
    """A camera that disconnects mid-run: the DeviceError reaches the caller, sinks are closed."""
    from edgerestore.errors import DeviceError
    from edgerestore.runtime.sources.live import LiveSource

    class Unplugged(LiveSource):
        def __init__(self):
            super(Unplugged, self).__init__("camera /dev/video0", "is it plugged in?")
            self.reads = 0

        def _read(self):
            self.reads += 1
            time.sleep(0.02)  # a camera's pace: nothing needs dropping
            return (np.zeros((8, 8, 3), np.uint8), None) if self.reads <= 3 else None

    collect = Collect()
    with pytest.raises(DeviceError, match="camera /dev/video0 stopped delivering frames"):
        run(Unplugged(), [collect], model="none")
    assert collect.closed and len(collect.frames) == 3
