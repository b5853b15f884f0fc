"""Quality and flicker of students on real video clips they never trained on.

Each clip (a folder of frames or a video) is the ground truth; it is degraded like a video call
(``--degradation mild``: one set of blur / noise-level / codec parameters per clip, fresh sensor
noise every frame, one H.264 encode of the whole clip or a JPEG per frame) with ``--seeds`` draws.
Every model restores every draw frame after frame (a temporal student carries its state from
frame to frame, reset at the start of each clip) and is scored per frame (PSNR, SSIM) and per
clip (flicker and temporal error, :mod:`edgerestore.runtime.quality`). The input row is the
degraded clip itself.

Models: student checkpoints (``.pt``, run with PyTorch exactly as the exported graphs compute:
uint8 frames in and out, the fed-back frame rounded to 8 bits, the state kept and motion-compensated
by the runtime's code) or runnable model files / bundles
(``.onnx``, ``.tflite``: run by the runtime's backends, which keep the state themselves).

    nice -n 10 python benchmarks/temporal_quality.py runs/nano/student.pt runs/nano-t/student.pt \\
        --clip ../shared/data/video/tram_640x360 --seeds 3
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from edgerestore.runtime import quality as metrics  # noqa: E402


class TorchRunner(object):
    """A student checkpoint with the runtime's interface (``infer`` uint8 frames, ``reset``), its
    state kept (and motion-compensated) by the runtime's own :class:`Backend` machinery."""

    def __init__(self, path, threads=None):
        import torch

        from edgerestore.export.onnx import state_spec
        from edgerestore.models.checkpoint import load_student
        from edgerestore.runtime.backends.base import Backend

        if threads:
            torch.set_num_threads(threads)
        model, _ = load_student(path)
        model.eval()

        class TorchBackend(Backend):
            name = "torch"

            def _tensor(self, image):
                return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0

            def _frame(self, out):
                out = torch.round(out.clamp(0, 1) * 255.0)
                return out[0].permute(1, 2, 0).to(torch.uint8).numpy()

            def _run(self, image):
                with torch.no_grad():
                    return self._frame(model(self._tensor(image)))

            def _run_state(self, image, state):
                previous = state["previous"]
                previous = previous if previous.ndim == 3 else previous[0]
                with torch.no_grad():
                    x = self._tensor(image)
                    hidden = torch.from_numpy(np.ascontiguousarray(state["hidden"]))
                    out, (_, head) = model.step(x, (self._tensor(previous), hidden))
                frame = self._frame(out)
                return frame, {"previous": frame[None], "hidden": head.numpy()}

        self.backend = TorchBackend()
        self.backend.stride = model.stride
        self.backend.scene_cuts = False  # the clips have no cuts; score the model, not the detector
        if model.temporal:
            self.backend.state_spec = state_spec(model)

    def reset(self, stream=None):
        self.backend.reset()

    def infer(self, frame):
        return self.backend.infer(frame)


class BackendRunner(object):
    """A model file or bundle run by the runtime (its backend keeps a temporal model's state)."""

    def __init__(self, path, threads=None):
        from edgerestore.runtime.runner import open_backend

        self.backend = open_backend(path, threads=threads)
        self.backend.scene_cuts = False  # the clips have no cuts; score the model, not the detector

    def reset(self, stream=None):
        self.backend.reset()

    def infer(self, frame):
        return self.backend.infer(frame)


class Identity(object):
    def reset(self, stream=None):
        pass

    def infer(self, frame):
        return frame


def read_clip(path, max_frames):
    """Frames of a folder of images (name order) or a video, RGB uint8."""
    from edgerestore.runtime.sources import open_source

    source = open_source(path)
    try:
        frames = []
        for frame in source:
            frames.append(frame.image)
            if len(frames) >= max_frames:
                break
    finally:
        source.close()
    return frames


def score(runner, clean, degraded, reference):
    runner.reset()
    outputs = [runner.infer(frame) for frame in degraded]
    quality = [metrics.quality(o, c) for o, c in zip(outputs, clean)]
    row = dict((k, float(np.mean([q[k] for q in quality]))) for k in ("psnr", "ssim", "ms_ssim"))
    row.update(reference.score(outputs))
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="student .pt checkpoints, .onnx/.tflite files or bundles")
    parser.add_argument("--clip", action="append", required=True, help="clip: folder of frames or a video (repeatable)")
    parser.add_argument("--degradation", default="mild")
    parser.add_argument("--seeds", type=int, default=3, help="degradation draws per clip (seeds 7200...)")
    parser.add_argument("--first-seed", type=int, default=7200)
    parser.add_argument("--max-frames", type=int, default=60)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)

    from edgerestore.distill.degrade import degrade_sequence, get_preset

    config = get_preset(args.degradation)
    runners = [("input (degraded)", Identity())]
    for path in args.models:
        runner = TorchRunner(path, args.threads) if path.endswith((".pt", ".pth")) else BackendRunner(path, args.threads)
        runners.append((path, runner))
    rows = {}
    started = time.time()
    for clip in args.clip:
        clean = read_clip(clip, args.max_frames)
        reference = metrics.TemporalReference(clean)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            degraded, params = degrade_sequence(clean, seed, config)
            for name, runner in runners:
                row = score(runner, clean, degraded, reference)
                rows.setdefault(name, []).append(dict(row, clip=os.path.basename(os.path.normpath(clip)), seed=seed,
                                                      codec=params.codec))
    keys = ("psnr", "ssim", "flicker", "temporal_mad", "temporal_error")
    print("%d clip(s) x %d draw(s) of '%s'; flicker = motion-compensated temporal MAD / the ground truth's "
          "(%.2f)" % (len(args.clip), args.seeds, args.degradation, reference.reference_mad))
    print("%-44s %8s %7s %8s %8s %8s" % ("model", "PSNR dB", "SSIM", "flicker", "t-MAD", "t-error"))
    summary = {}
    for name, runs in rows.items():
        means = dict((k, float(np.mean([r[k] for r in runs]))) for k in keys)
        summary[name] = {"mean": means, "runs": runs}
        label = name if len(name) <= 44 else "..." + name[-41:]
        print("%-44s %8.2f %7.4f %8.3f %8.2f %8.2f" % (label, means["psnr"], means["ssim"], means["flicker"],
                                                     means["temporal_mad"], means["temporal_error"]))
    print("(%.0f s)" % (time.time() - started))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"clips": args.clip, "seeds": args.seeds, "degradation": args.degradation, "models": summary},
                      handle, indent=1)
    return summary


if __name__ == "__main__":
    main()
