"""The student presets: one row each, defined by their cost in MACs per output pixel.

A preset's ``budget`` is the ceiling its architecture must stay under (the tests count the MACs of
every preset from its layers); ``board`` says which class of hardware it is sized for. The
architectures were chosen by measured sweeps (README, "Student design").
"""

from __future__ import annotations

from dataclasses import dataclass

from edgerestore.errors import UnknownNameError
from edgerestore.models.config import StudentConfig


@dataclass(frozen=True)
class Preset:
    name: str
    budget: int
    """Maximum MACs per output pixel."""
    board: str
    """The class of hardware the preset is sized for."""
    config: StudentConfig
    shipped: bool = True
    """Whether trained weights ship in ``edgerestore/weights``."""


PRESETS = {
    preset.name: preset
    for preset in (
        Preset("pico", 250, "Raspberry Pi 4 (0.5 GMAC per 1080p frame)",
               StudentConfig(scale=4, width=12, blocks=1)),
        # nano-fast's body plus one filter basis: a per-pixel weighted 3x3 high-pass of the frame,
        # which lets a stride-4 network denoise (docs/distill.md, "Filter bases"); as fast as the
        # stride-2 nano it replaced (FP32 ONNX, 1080p).
        Preset("nano", 1_000, "Jetson Nano / Raspberry Pi 5",
               StudentConfig(scale=4, width=24, blocks=1, filter_bases=1)),
        # nano told each frame's sensor-noise level (docs/distill.md, "Noise-level input"): it
        # denoises as much as the camera's noise asks and leaves noise-free frames exactly alone,
        # but sharpens and deblocks less than nano on the call setting.
        Preset("nano-level", 1_000, "Jetson Nano / Raspberry Pi 5 with a noisy camera",
               StudentConfig(scale=4, width=24, blocks=1, filter_bases=1, level_input=True)),
        # nano's budget at stride 4 with 24 channels (a multiple of the 8/16-channel SIMD blocks of
        # ONNX Runtime and XNNPACK): faster than nano, but it does not denoise (docs/distill.md,
        # "nano-fast: stride 4 instead of stride 2").
        # nano-level also told what the codec did to each frame (docs/distill.md, "nano-codec"): an
        # H.264 frame's QP, a JPEG's quality, read by the runtime's decoder; it deblocks what it knows
        # is compressed and leaves the rest alone.
        Preset("nano-codec", 1_000, "Jetson Nano / Raspberry Pi 5 restoring compressed video (calls, streams)",
               StudentConfig(scale=4, width=24, blocks=1, filter_bases=1, level_input=True, codec_input=True)),
        Preset("nano-fast", 1_000, "Jetson Nano / Raspberry Pi 5 when frame rate matters more than denoising",
               StudentConfig(scale=4, width=24, blocks=1)),
        # Stride 4 with 32 channels and two blocks plus one filter basis (docs/distill.md, "Filter
        # bases"): faster than the stride-2 small it replaced (FP32), and it denoises.
        Preset("small", 4_000, "Jetson Orin / laptop",
               StudentConfig(scale=4, width=32, blocks=2, filter_bases=1)),
        # small told each frame's sensor-noise level, like nano-level (docs/distill.md, "small-level"):
        # it denoises more and leaves noise-free frames, compressed ones included, alone, but sharpens
        # less than small.
        Preset("small-level", 4_000, "Jetson Orin / laptop with a noisy camera",
               StudentConfig(scale=4, width=32, blocks=2, filter_bases=1, level_input=True)),
        # small-level also told what the codec did to each frame, like nano-codec.
        Preset("small-codec", 4_000, "Jetson Orin / laptop restoring compressed video (calls, streams)",
               StudentConfig(scale=4, width=32, blocks=2, filter_bases=1, level_input=True, codec_input=True)),
        # Temporal (recurrent) students: the same budgets and boards, shaped so that the state and
        # the full-resolution blend cost about what the frame-by-frame preset costs. nano-t trades
        # width for depth: ONNX Runtime runs channels in blocks of 16 on AVX-512 (8 on AVX2), so
        # 22 channels cost what 24 (= 32) do, while 16 channels in two blocks cost about half
        # (docs/temporal.md has the measured speeds). Their state is motion-compensated by the runtime
        # (optical flow between the input frames): on real video, which moves almost everywhere, an
        # uncompensated blend barely reduces flicker (docs/temporal.md, "Motion compensation").
        # Their gate starts as the hand-set blend that loses no PSNR on the training clips (k 0.9,
        # tau 12 levels: docs/temporal.md, "Where the gate starts").
        Preset("pico-t", 250, "Raspberry Pi 4 (0.5 GMAC per 1080p frame)",
               StudentConfig(scale=4, width=11, blocks=1, temporal=True, motion=True, agreement=True,
                             gate_open=0.9, gate_tau=12.0), shipped=False),
        Preset("nano-t", 1_000, "Jetson Nano / Raspberry Pi 5",
               StudentConfig(scale=4, width=16, blocks=2, temporal=True, motion=True, agreement=True,
                             gate_open=0.9, gate_tau=12.0)),
        Preset("small-t", 4_000, "Jetson Orin / laptop",
               StudentConfig(scale=4, width=38, blocks=2, temporal=True, motion=True, agreement=True,
                             gate_open=0.9, gate_tau=12.0), shipped=False),
        # Not for boards: the teacher we distil the presets from when Restormer's weights are absent.
        Preset("large", 15_000, "teacher (workstation / GPU)",
               StudentConfig(scale=2, width=24, blocks=1, context_width=64, context_blocks=2),
               shipped=False),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name lists the valid ones."""
    if name not in PRESETS:
        raise UnknownNameError("preset", name, PRESETS)
    return PRESETS[name]
