"""``edgerestore demo``: the whole idea in one command, offline, on the shipped default model.

1. read the shipped real clip (``edgerestore/data/sample``, public domain, see its ATTRIBUTION);
2. degrade it like a bad video call (camera shake, defocus, sensor noise, compression: the
   ``mild`` preset of :mod:`edgerestore.distill.degrade`, one draw for the whole clip);
3. restore every frame with the shipped student through the runtime (ONNX Runtime here);
4. write a side-by-side video (degraded | restored | original), a PNG contact sheet and a JSON
   file of the figures, and return PSNR/SSIM/MS-SSIM before and after and the FPS.

Needs numpy, OpenCV, PyAV and ONNX Runtime (``pip install edgerestore[cpu]``), not torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from edgerestore.distill.degrade import degrade_sequence, get_preset
from edgerestore.runtime.compose import side_by_side, stack_rows
from edgerestore.runtime.frames import Frame
from edgerestore.runtime.pipeline import Pipeline
from edgerestore.runtime.quality import quality
from edgerestore.runtime.restore import load_backend
from edgerestore.runtime.sinks.base import Sink
from edgerestore.runtime.sinks.images import write_image
from edgerestore.runtime.sinks.video import VideoFileSink
from edgerestore.runtime.sources import open_source
from edgerestore.runtime.sources.base import Source
from edgerestore.runtime.uri import parse_uri

SAMPLE_CLIP = Path(__file__).resolve().parent / "data" / "sample" / "office_320x240.mp4"
DEMO_SEED = 7  # a draw with visible camera shake, noise and compression
LABELS = ("degraded", "restored", "original")


class _ListSource(Source):
    def __init__(self, images, fps):
        self.images = images
        self.fps = fps
        self.size = (images[0].shape[1], images[0].shape[0])
        self.frame_count = len(images)

    def __iter__(self):
        for index, image in enumerate(self.images):
            yield Frame(image, index, index / self.fps if self.fps else None)


class _CollectSink(Sink):
    def __init__(self):
        self.images = {}

    def write(self, frame):
        self.images[frame.index] = frame.image


def _mean(rows):
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def run_demo(out_dir, model, backend=None, threads=None, clip=SAMPLE_CLIP, seed=DEMO_SEED,
             preset="mild", on_frame=None):
    """Run the demo into ``out_dir``; returns the figures (also written to ``demo_metrics.json``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_source(str(clip)) as source:
        originals = [frame.image for frame in source]
        fps = source.fps or 30.0
    degraded, params = degrade_sequence(originals, seed, get_preset(preset))
    engine = load_backend(model, backend, threads, frame_size=(originals[0].shape[1], originals[0].shape[0]))
    engine.warmup(originals[0].shape[0], originals[0].shape[1])
    collect = _CollectSink()
    summary = Pipeline(_ListSource(degraded, fps), engine, [collect], live=False, on_frame=on_frame).run()
    restored = [collect.images[i] for i in range(len(degraded))]

    video_path = out_dir / "demo_side_by_side.mp4"
    writer = VideoFileSink(parse_uri(str(video_path)), fps=fps)
    try:
        for index, triple in enumerate(zip(degraded, restored, originals)):
            writer.write(Frame(side_by_side(triple, LABELS), index))
    finally:
        writer.close()
    video_path = writer.path  # a video is never overwritten: a second demo writes demo_side_by_side.1.mp4
    picks = sorted(set(int(round(x)) for x in np.linspace(0, len(originals) - 1, 4)))
    sheet = stack_rows([side_by_side((degraded[i], restored[i], originals[i]), LABELS) for i in picks])
    sheet_path = out_dir / "demo_contact_sheet.png"
    write_image(str(sheet_path), sheet)

    figures = {
        "clip": os.path.basename(str(clip)),
        "frames": len(originals),
        "size": [originals[0].shape[1], originals[0].shape[0]],
        "degradation": params.to_dict(),
        "model": os.path.basename(str(engine.model_path)),
        "backend": engine.info(),
        "before": _mean([quality(d, o) for d, o in zip(degraded, originals)]),
        "after": _mean([quality(r, o) for r, o in zip(restored, originals)]),
        "fps_end_to_end": summary["fps"],
        "fps_inference": 1000.0 / engine.info()["mean_ms"] if engine.info()["mean_ms"] else None,
        "outputs": {"video": str(video_path), "contact_sheet": str(sheet_path)},
    }
    with open(str(out_dir / "demo_metrics.json"), "w") as handle:
        json.dump(figures, handle, indent=2)
    return figures
