"""Architecture description of a student, without torch (the CLI reads it on machines without torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class StudentConfig:
    """Architecture of one student; every field is saved in the checkpoint."""

    scale: int = 4
    """Patch size and stride of the first layer; frames are padded to a multiple of ``stride``."""
    width: int = 32
    """Channels of the feature maps at ``1/scale`` resolution."""
    blocks: int = 1
    """Residual blocks (two 3x3 convolutions each) at ``1/scale`` resolution."""
    context_width: int = 0
    """Channels of the context branch at ``1/(2*scale)`` resolution (0 = no branch)."""
    context_blocks: int = 0
    """Residual blocks in the context branch."""
    temporal: bool = False
    """A recurrent (temporal) student: it also takes its own previous output frame, and blends it
    into the new output through a per-pixel gate (``StudentNet`` docstring; docs/temporal.md)."""
    motion: bool = False
    """Temporal students: the state (previous output and features) is moved by the optical flow
    between consecutive input frames before it is fed back (:mod:`edgerestore.runtime.motion`), so
    the blend can pass the previous output through where the picture moves, not only where it holds
    still. The network is the same; the trainer and the runtime do the warping."""
    agreement: bool = False
    """Temporal students: the gate also sees how far the frame is from the (moved) previous output,
    the mean absolute difference per ``s x s`` block, so it can close where the two disagree (a
    moving object the flow missed, an uncovered background) and open where they agree."""
    filter_bases: int = 0
    """Full-resolution fixed-shape filters (1: a 3x3 high-pass, 2: and a 5x5 one, depthwise, learned
    from a "delta minus binomial" start) whose responses are added to the output with a weight per pixel that
    the features predict (a transposed convolution per filter, zero at the start: the same
    network). A positive weight sharpens, a negative one smooths: per-pixel denoising and
    deblurring that a correction through ``width`` features per patch cannot express."""
    oriented_bank: int = 0
    """A prototype (docs/distill.md, "Why the students cannot deconvolve"): this many full-resolution
    :data:`edgerestore.models.student.BANK_SIZE`-square filters of the frame's luma, learned from "delta minus a
    line blur" at evenly spaced angles, whose responses are added to every colour with a weight per
    pixel that the features predict (zero at the start: the same network): sharpening along one
    direction over a blur's length, which a 3x3 or 5x5 isotropic basis cannot do. Measured to add
    little for much time (docs). Training and PyTorch evaluation only: the exporter refuses it."""
    level_input: bool = False
    """The network is told each frame's sensor-noise level (:mod:`edgerestore.noiselevel`; 0 = clean)
    as a per-channel bias of the head times the level: what a level plane as a fourth input channel
    gives a stride-``scale`` head. The picture alone does not tell camera noise from detail
    (docs/distill.md, "Noise-level input"). Frame-by-frame students only."""
    codec_input: bool = False
    """The network is also told what the codec did to the frame, (JPEG strength, H.264 strength) of
    :mod:`edgerestore.codecinput`, as two more per-channel biases of the head: a picture alone does
    not tell a codec's texture from noise (docs/distill.md, "`nano-codec` and `small-codec`").
    Frame-by-frame students only."""
    blur_input: bool = False
    """A prototype to measure what knowing the blur is worth (docs/distill.md, "Told the blur"): the
    network is told each crop's blur kernel's second moments (:func:`edgerestore.distill.degrade.blur_descriptor`)
    as three more per-channel biases of the head. Training and PyTorch evaluation only: no export
    and no runtime source knows a frame's blur. Frame-by-frame students only."""
    gate_open: float = field(default=0.0, compare=False)
    """Temporal students with ``agreement``, training only: the gate starts as the hand-set blend
    ``gate_open * exp(-(d / gate_tau)^2)`` of ``benchmarks/motion_ceiling.py`` (``d`` in levels),
    which on real clips already removes much of the flicker; 0 = it starts nearly closed
    (``sigmoid(-2 - (d/16)^2)``). Not part of the architecture: configs that differ only here are
    equal, so a checkpoint trained from either start is still its preset."""
    gate_tau: float = field(default=12.0, compare=False)
    """The disagreement (levels) at which the initial gate has fallen to ``gate_open / e``."""
    gate_learned: bool = field(default=True, compare=False)
    """Temporal students, training only: ``False`` keeps the gate where it starts (the features'
    part of it zero, the hand-set part fixed), so training learns the restoration under a fixed
    blend. Not part of the architecture either."""

    @property
    def stride(self) -> int:
        """Frame sizes must be multiples of this (the context branch doubles it)."""
        return self.scale * (2 if self.context_width > 0 else 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> StudentConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError("unknown student config field(s): " + ", ".join(unknown))
        return cls(**data)
