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
        Preset("nano", 1_000, "Jetson Nano / Raspberry Pi 5",
               StudentConfig(scale=2, width=12, blocks=0, context_width=24, context_blocks=1)),
        Preset("small", 4_000, "Jetson Orin / laptop",
               StudentConfig(scale=2, width=16, blocks=0, context_width=48, context_blocks=1)),
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
