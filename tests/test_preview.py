"""The preview: composition (side-by-side, split wipe, overlay), keys, and the real window."""

import numpy as np
import pytest

from edgerestore.runtime.frames import Frame
from edgerestore.runtime.preview import PreviewView, overlay_text, split_wipe


def _pair(height=120, width=160):
    rng = np.random.RandomState(0)
    raw = rng.randint(0, 256, (height, width, 3)).astype(np.uint8)
    restored = rng.randint(0, 256, (height, width, 3)).astype(np.uint8)
    return raw, restored


class FakeStats(object):
    def __init__(self):
        self.bypass = False

    def snapshot(self, window):
        return {"fps": 24.4, "latency_ms_p50": 41.2, "dropped": 3, "bypass": self.bypass}


class FakePipeline(object):
    """What the view uses of a running pipeline: stats, bypass, stop(), sinks."""

    def __init__(self, sinks=()):
        self.stats = FakeStats()
        self.stopped = False
        self.sinks = list(sinks)
        self.backend = None

    @property
    def bypass(self):
        return self.stats.bypass

    @bypass.setter
    def bypass(self, value):
        self.stats.bypass = value

    def stop(self):
        self.stopped = True


def test_side_by_side_shows_raw_left_and_restored_right_with_the_overlay():
    raw, restored = _pair()
    view = PreviewView(mode="side", backend_name="onnxruntime")
    view.attach(FakePipeline())
    out = view.transform(Frame(raw, 7, 0.25, 1.0), restored)
    assert out.image.shape == (120, 2 * 160 + 4, 3)
    assert out.index == 7 and out.captured == 1.0 and out.raw is raw
    middle = slice(40, 80)  # between the labels at the top and the overlay at the bottom
    assert np.array_equal(out.image[middle, :160], raw[middle])
    assert np.array_equal(out.image[middle, 164:], restored[middle])
    assert not out.image[middle, 160:164].any()  # the gap
    assert not np.array_equal(out.image[-8:, :60], raw[-8:, :60])  # overlay drawn bottom-left
    assert overlay_text(view.pipeline.stats.snapshot(2), "onnxruntime") == "onnxruntime  24.4 FPS  41 ms  dropped 3"


def test_split_wipe_puts_the_divider_where_asked():
    raw, restored = _pair()
    out = split_wipe(raw, restored, 0.25)
    assert out.shape == raw.shape
    assert np.array_equal(out[:, :39], raw[:, :39]) and np.array_equal(out[:, 41:], restored[:, 41:])
    assert (out[:, 39:41] == 255).all()
    assert np.array_equal(split_wipe(raw, restored, 0.0)[:, 1:], restored[:, 1:])


def test_split_mode_wipes_across_over_time():
    raw, restored = _pair()
    clock = {"t": 0.0}
    view = PreviewView(mode="split", wipe_period=8.0, clock=lambda: clock["t"])
    positions = []
    for t in (0.0, 2.0, 6.0):
        clock["t"] = t
        positions.append(view.wipe_position())
    assert positions == pytest.approx([0.5, 0.85, 0.15])
    out = view.transform(Frame(raw, 0), restored)
    assert out.image.shape == raw.shape


def test_keys_switch_mode_bypass_and_quit():
    class KeySink(object):
        def __init__(self):
            self.pending = []

        def poll_keys(self):
            keys, self.pending = self.pending, []
            return keys

    sink = KeySink()
    pipeline = FakePipeline([sink])
    view = PreviewView(mode="side")
    view.attach(pipeline)
    sink.pending = ["s"]
    view.on_frame(None)
    assert view.mode == "split"
    sink.pending = ["b", "s"]
    view.on_frame(None)
    assert pipeline.bypass is True and view.mode == "side"
    raw, restored = _pair()
    view._stats_at = -10  # refresh the cached statistics now
    out = view.transform(Frame(raw, 0), raw)
    assert out.image.shape[1] == 324
    sink.pending = ["x", "q"]
    view.on_frame(None)
    assert pipeline.stopped


def test_unknown_mode_lists_the_modes():
    from edgerestore.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="side, split"):
        PreviewView(mode="wipe")


@pytest.mark.display
def test_preview_in_a_real_window_answers_keys(tmp_path, monkeypatch, tiny_onnx):
    """preview on display://0 under Xvfb: s switches to split, b bypasses, q quits."""
    import shutil
    import threading
    import time

    from edgerestore.runtime.preview import run_preview
    from edgerestore.runtime.sinks.base import Sink
    from tests.test_sinks_display import Xvfb, type_keys

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt install xvfb)")
    pytest.importorskip("tkinter", reason="Tkinter is missing (apt install python3-tk)")
    server = Xvfb(tmp_path)
    monkeypatch.setenv("DISPLAY", server.display)

    class Record(Sink):
        name = "record"

        def __init__(self):
            self.shapes = []
            self.bypassed = []

        def write(self, frame):
            self.shapes.append(frame.image.shape)
            # The right edge shows the restored side in both modes (the wipe stays within 15-85%).
            self.bypassed.append(np.array_equal(frame.image[40:70, -16:], frame.raw[40:70, -16:]))

    record = Record()

    def typist():
        time.sleep(1.5)
        type_keys(server.display, "s")
        time.sleep(1.0)
        type_keys(server.display, "b")
        time.sleep(1.0)
        type_keys(server.display, "q")

    thread = threading.Thread(target=typist)
    thread.start()
    try:
        summary = run_preview("test://pattern?size=128x96&fps=20", ["display://0", record],
                              model=str(tiny_onnx), mode="side", duration=30)
    finally:
        thread.join()
        server.close()
    assert summary["frames"] > 20 and summary["bypass"] is True
    assert record.shapes[0] == (96, 260, 3) and record.shapes[-1] == (96, 128, 3)  # s: side -> split
    assert record.bypassed[-1] and not record.bypassed[0]
