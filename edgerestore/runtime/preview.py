"""The live preview: raw | restored side by side, or a split that wipes across the picture,
with an overlay of the backend, FPS and latency. Python 3.6-safe.

Keys (in the preview window, or the terminal when drawing on the framebuffer):
``q`` quit, ``s`` switch between side-by-side and split, ``b`` bypass the model (raw on both
sides: what the camera alone looks like, and how fast the pipeline runs without inference).
"""

import math
import time

import numpy as np

from edgerestore.runtime.compose import label, side_by_side
from edgerestore.runtime.frames import Frame

MODES = ("side", "split")


def split_wipe(raw, restored, position):
    """``raw`` left of ``position`` (0..1 of the width), ``restored`` right of it, a white divider."""
    height, width = raw.shape[:2]
    x = int(round(min(1.0, max(0.0, position)) * width))
    out = np.array(restored, dtype=np.uint8, copy=True)
    out[:, :x] = raw[:, :x]
    line = max(1, width // 400)
    out[:, max(0, x - line):min(width, x + line)] = 255
    return out


def overlay_text(stats, backend_name):
    """``onnxruntime  24.3 FPS  38 ms`` (or ``bypass``) from a statistics dict."""
    fps = stats.get("fps")
    latency = stats.get("latency_ms_p50")
    return "%s  %s FPS  %s ms%s" % (
        "bypass" if stats.get("bypass") else backend_name,
        "-" if fps is None else "%.1f" % fps,
        "-" if latency is None else "%.0f" % latency,
        "  dropped %d" % stats["dropped"] if stats.get("dropped") else "",
    )


class PreviewView(object):
    """Composes what the preview shows and reacts to its keys.

    ``transform`` is the pipeline's compose hook; ``on_frame`` reads keys from the sinks after
    each shown frame; ``attach(pipeline)`` gives the view the running pipeline (for its
    statistics and to stop it / switch bypass).
    """

    def __init__(self, mode="side", backend_name="none", wipe_period=8.0, sinks=(), clock=time.monotonic):
        if mode not in MODES:
            from edgerestore.errors import UnknownNameError

            raise UnknownNameError("preview mode", mode, MODES)
        self.mode = mode
        self.backend_name = backend_name
        self.wipe_period = wipe_period
        self.sinks = list(sinks)
        self.pipeline = None
        self._clock = clock
        self._started = clock()
        self._stats = {}
        self._stats_at = 0.0

    def attach(self, pipeline):
        self.pipeline = pipeline
        self.sinks = list(pipeline.sinks)

    def _current_stats(self):
        now = self._clock()
        if self.pipeline is not None and now - self._stats_at >= 0.5:
            self._stats = self.pipeline.stats.snapshot(2.0)
            self._stats_at = now
        return self._stats

    def wipe_position(self):
        """Where the split is now: it sweeps slowly from side to side (between 15% and 85%)."""
        phase = 2.0 * math.pi * (self._clock() - self._started) / self.wipe_period
        return 0.5 + 0.35 * math.sin(phase)

    def transform(self, frame, restored):
        raw = frame.image
        stats = self._current_stats()
        right = "bypass" if stats.get("bypass") else "restored"
        if self.mode == "side":
            image = side_by_side([raw, restored], labels=["raw", right])
        else:
            image = split_wipe(raw, restored, self.wipe_position())
            label(image, "raw | " + right)
        _bottom_label(image, overlay_text(stats, self.backend_name))
        return Frame(image, frame.index, frame.pts, frame.captured, raw=raw)

    def handle_key(self, key):
        if key == "q" and self.pipeline is not None:
            self.pipeline.stop()
        elif key == "s":
            self.mode = "split" if self.mode == "side" else "side"
        elif key == "b" and self.pipeline is not None:
            self.pipeline.bypass = not self.pipeline.bypass

    def on_frame(self, frame):
        for sink in self.sinks:
            poll = getattr(sink, "poll_keys", None)
            if poll is not None:
                for key in poll():
                    self.handle_key(key)


def _bottom_label(image, text):
    """The overlay line in the bottom-left corner."""
    import cv2

    height, width = image.shape[:2]
    scale = max(0.35, min(1.0, width / 1280.0))
    thickness = 1 if scale < 0.7 else 2
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, int(4 * scale))
    top = max(0, height - th - base - 2 * pad)
    right = min(width, tw + 2 * pad)
    image[top:, :right] = (image[top:, :right] * 0.35).astype(np.uint8)
    cv2.putText(image, text, (pad, height - base - pad), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)


def run_preview(source, sinks=("display://0",), model="nano", backend=None, threads=None,
                mode="side", on_stats=None, **options):
    """Open everything, show the preview until ``q`` / Ctrl-C / the source ends; returns the summary."""
    from edgerestore.runtime.runner import run

    view = PreviewView(mode=mode)

    def on_start(pipeline):
        view.attach(pipeline)
        view.backend_name = getattr(pipeline.backend, "name", "none")

    return run(source, list(sinks), model=model, backend=backend, threads=threads, transform=view.transform,
               on_frame=view.on_frame, on_start=on_start, on_stats=on_stats, **options)
