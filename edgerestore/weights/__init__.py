"""The shipped default students: ``<preset>.pt`` (PyTorch checkpoint) and ``<preset>.onnx``.

The ONNX files carry the uint8 RGB ``[1,H,W,3]`` contract, so a laptop runs them with ONNX Runtime
alone (no torch). How they were trained: README, "Shipped students". Python 3.6-safe.
"""

import os

WEIGHTS_DIR = os.path.dirname(os.path.abspath(__file__))


def shipped_path(preset, suffix):
    """Path of the shipped ``<preset><suffix>`` file, or ``None`` when it is not shipped."""
    path = os.path.join(WEIGHTS_DIR, preset + suffix)
    return path if os.path.isfile(path) else None


def shipped_presets():
    """Names of the presets with a shipped ONNX model."""
    return sorted(name[:-5] for name in os.listdir(WEIGHTS_DIR) if name.endswith(".onnx"))
