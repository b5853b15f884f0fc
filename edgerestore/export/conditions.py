"""The inputs a frame-by-frame student's graphs take besides the frame, as one table: the noise
level of a ``level_input`` student (:mod:`edgerestore.noiselevel`) and the codec strengths of a
``codec_input`` one (:mod:`edgerestore.codecinput`). Each is a per-channel head bias per unit of
the input, so every graph adds ``values @ head_weight`` to the head's pre-activation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

from edgerestore.noiselevel import calibration_level


@dataclass(frozen=True)
class Condition:
    name: str
    """The graph input (float32 ``[width]``) and the ONNX metadata key's value."""
    tag: str
    """Short prefix of the INT8 graph's node names, and the manifest's ``io`` key."""
    width: int
    flag: str
    """The :class:`~edgerestore.models.config.StudentConfig` field that gives a student the input."""
    head: str
    """The student's parameter: ``[C]`` (width 1) or ``[width, C]`` head biases per unit."""
    code: float
    """uint8 code per unit where an INT8 graph carries the input as block channels (steps of 1/code)."""
    verify: Tuple[float, ...]
    """The value every export is verified at."""
    meaning: str


LEVEL = Condition("noise_level", "level", 1, "level_input", "level_head", 100.0, (0.5,),
                  "the frame's sensor-noise level (edgerestore.noiselevel), 0 = clean")
CODEC = Condition("codec", "codec", 2, "codec_input", "codec_head", 100.0, (0.0, 1.0),
                  "what the codec did to the frame (edgerestore.codecinput): JPEG (100 - quality) / 50, "
                  "H.264 QP / 30; 0, 0 = an uncompressed frame")
TABLE = (LEVEL, CODEC)

CODEC_CALIBRATION = ((0.0, 0.0), (0.0, 1.0), (0.5, 0.0), (0.0, 0.7), (1.0, 0.0), (0.0, 1.3), (1.6, 0.0),
                     (0.0, 1.6))
"""Codec strengths INT8 calibration frames are given in turn: none, H.264 QP 30, JPEG quality 75,
QP 21, quality 50, QP 39, quality 20, QP 48 (a TFLite INT8 model's codec input clips beyond them)."""


def of(config) -> List[Condition]:
    """The conditions a student (or its config) takes, in the graphs' input order."""
    config = getattr(config, "config", config)
    return [c for c in TABLE if getattr(config, c.flag, False)]


def head_weight(student, cond: Condition):
    """``[width, C]``: ``cond``'s head biases per unit."""
    weight = getattr(student, cond.head).detach()
    return weight.reshape(cond.width, -1)


def weights(student):
    """``[K, C]``: every condition's head biases, stacked in input order."""
    import torch

    return torch.cat([head_weight(student, c) for c in of(student)], 0)


def sample(cond: Condition):
    """The input's example value for tracing."""
    import torch

    return torch.zeros(cond.width)


def calibration_value(cond: Condition, index: int) -> Tuple[float, ...]:
    """The value calibration frame ``index`` is given (each condition cycles through its own list)."""
    if cond is LEVEL:
        return (calibration_level(index),)
    return CODEC_CALIBRATION[index % len(CODEC_CALIBRATION)]


def uint8_code(cond: Condition, values: Sequence[float]):
    """The uint8 codes of ``values`` in an INT8 graph (as its QuantizeLinear rounds: half to even)."""
    import numpy as np

    return np.clip(np.round(np.asarray(values, np.float32) * np.float32(cond.code)), 0, 255)
