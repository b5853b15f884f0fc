"""Board profiles: ONE table of the boards edgerestore targets, and what each one can run.

Every fact the exporter and the engine builder need about a board lives in one row here:
SoC, CPU cores, memory, GPU compute capability and whether that GPU has INT8 tensor cores,
the JetPack / TensorRT / CUDA / Python versions its OS ships, the backends to try in order,
the default precision, camera resolution and student preset. Export targets
(:mod:`edgerestore.export.targets`) point at these rows; nothing else branches on board names.

Torch-free and Python 3.6-safe: ``edgerestore devices`` and ``edgerestore build-engine`` run on a
Jetson Nano (JetPack 4.6 = Python 3.6).
"""

import os

from edgerestore.errors import UnknownNameError

SETUP_DIR = os.path.dirname(os.path.abspath(__file__))


class DeviceProfile(object):
    """One board. Versions are what the board's stock OS image ships (strings, for display)."""

    __slots__ = (
        "name", "title", "soc", "cpu", "cores", "memory_gb", "gpu", "compute_capability", "gpu_int8",
        "jetpack", "tensorrt", "cuda", "python", "os_name", "backends", "precision", "resolution", "preset",
        "workspace_mb", "setup", "notes",
    )

    def __init__(self, name, title, soc, cpu, cores, memory_gb, python, os_name, backends, precision,
                 resolution, preset, gpu=None, compute_capability=None, gpu_int8=False, jetpack=None,
                 tensorrt=None, cuda=None, workspace_mb=None, setup=None, notes=""):
        self.name = name
        self.title = title
        self.soc = soc
        self.cpu = cpu
        self.cores = cores
        self.memory_gb = memory_gb
        self.gpu = gpu
        self.compute_capability = compute_capability
        self.gpu_int8 = gpu_int8
        """Whether the GPU runs INT8 convolutions (sm_53 Maxwell does not; Volta/Ampere do)."""
        self.jetpack = jetpack
        self.tensorrt = tensorrt
        self.cuda = cuda
        self.python = python
        self.os_name = os_name
        self.backends = tuple(backends)
        """Inference backends to try, preferred first."""
        self.precision = precision
        """Default precision of the preferred backend."""
        self.resolution = tuple(resolution)
        """Default (height, width): what the board's usual camera delivers and we export for."""
        self.preset = preset
        self.workspace_mb = workspace_mb
        """TensorRT builder workspace limit (shared CPU/GPU memory on Jetson is small)."""
        self.setup = setup
        self.notes = notes

    @property
    def setup_path(self):
        """The board's setup notes (apt packages, performance mode...), or None."""
        return os.path.join(SETUP_DIR, self.setup) if self.setup else None

    def to_dict(self):
        return dict((key, getattr(self, key)) for key in self.__slots__)

    def __repr__(self):
        return "DeviceProfile(%r)" % self.name


PROFILES = dict((profile.name, profile) for profile in (
    DeviceProfile(
        "jetson-nano", "NVIDIA Jetson Nano Developer Kit (4 GB)", soc="Tegra X1 (T210)",
        cpu="4x Cortex-A57 @ 1.43 GHz", cores=4, memory_gb=4, gpu="128-core Maxwell",
        compute_capability="5.3", gpu_int8=False, jetpack="4.6.x (L4T R32.7)", tensorrt="8.2",
        cuda="10.2", python="3.6", os_name="Ubuntu 18.04", backends=("tensorrt", "onnxruntime"),
        precision="fp16", resolution=(720, 1280), preset="nano", workspace_mb=512,
        setup="jetson.md",
        notes="sm_53 has no INT8 tensor cores: INT8 requests build FP16. TensorRT 8.2 parses ONNX "
              "opset <= 13 and has no uint8 I/O (float I/O + adapter).",
    ),
    DeviceProfile(
        "jetson-xavier-nx", "NVIDIA Jetson Xavier NX (8 GB)", soc="Tegra194 (Xavier)",
        cpu="6x Carmel ARMv8.2 @ 1.9 GHz", cores=6, memory_gb=8, gpu="384-core Volta, 48 tensor cores",
        compute_capability="7.2", gpu_int8=True, jetpack="5.1.x (L4T R35)", tensorrt="8.5",
        cuda="11.4", python="3.8", os_name="Ubuntu 20.04", backends=("tensorrt", "onnxruntime"),
        precision="int8", resolution=(1080, 1920), preset="small", workspace_mb=1024,
        setup="jetson.md",
        notes="INT8 through an entropy calibration cache built on the host.",
    ),
    DeviceProfile(
        "jetson-orin", "NVIDIA Jetson Orin Nano / Orin NX (8 GB)", soc="Tegra234 (Orin)",
        cpu="6x Cortex-A78AE @ 1.5 GHz", cores=6, memory_gb=8, gpu="1024-core Ampere, 32 tensor cores",
        compute_capability="8.7", gpu_int8=True, jetpack="6.x (L4T R36)", tensorrt="10.3",
        cuda="12.6", python="3.10", os_name="Ubuntu 22.04", backends=("tensorrt", "onnxruntime"),
        precision="int8", resolution=(1080, 1920), preset="small", workspace_mb=2048,
        setup="jetson.md",
        notes="TensorRT 10 still accepts implicit INT8 calibration caches (deprecated API).",
    ),
    DeviceProfile(
        "rpi4", "Raspberry Pi 4 Model B", soc="Broadcom BCM2711", cpu="4x Cortex-A72 @ 1.8 GHz",
        cores=4, memory_gb=4, python="3.11", os_name="Raspberry Pi OS Bookworm (64-bit)",
        backends=("tflite", "onnxruntime"), precision="int8", resolution=(480, 640), preset="pico",
        setup="raspberry-pi.md",
        notes="No usable GPU for inference: XNNPACK on the four A72 cores. picamera2 comes from apt.",
    ),
    DeviceProfile(
        "rpi5", "Raspberry Pi 5", soc="Broadcom BCM2712", cpu="4x Cortex-A76 @ 2.4 GHz", cores=4,
        memory_gb=8, python="3.11", os_name="Raspberry Pi OS Bookworm (64-bit)",
        backends=("tflite", "onnxruntime"), precision="int8", resolution=(720, 1280), preset="nano",
        setup="raspberry-pi.md",
        notes="A76 has dot-product INT8 and FP16 arithmetic; XNNPACK uses both.",
    ),
    DeviceProfile(
        "cpu", "Laptop or desktop (x86-64 or ARM64)", soc="any", cpu="x86-64 with AVX2, or ARM64",
        cores=None, memory_gb=None, python="3.8+", os_name="Linux / macOS / Windows",
        backends=("onnxruntime",), precision="int8", resolution=(720, 1280), preset="nano",
        notes="ONNX Runtime on the CPU; INT8 (QDQ) runs ~2-3x faster than FP32 on AVX-VNNI / ARM dot-product cores.",
    ),
))


FAMILIES = {
    "jetson": ("jetson-nano", "jetson-xavier-nx", "jetson-orin"),
    "pi": ("rpi4", "rpi5"),
}
"""Targets that stand for several boards: one bundle every member can use (``export --target
jetson``: the ONNX + INT8 calibration that ``build-engine`` turns into FP16 on a Nano and INT8 on
Xavier/Orin)."""


def accepts(bundle_target, board):
    """Whether a bundle made for ``bundle_target`` runs on ``board`` (itself, or a member of its family)."""
    return bundle_target == board or board in FAMILIES.get(bundle_target, ())


def profile_for(target, board=None):
    """The profile to plan for: the target's own, or for a family the board's (when it is a member)
    or its first member (the most limited: a Jetson Nano, a Raspberry Pi 4)."""
    if target in PROFILES:
        return PROFILES[target]
    members = FAMILIES.get(target)
    if not members:
        return None
    return PROFILES[board] if board in members else PROFILES[members[0]]


def get_profile(name):
    """The profile called ``name``; an unknown name lists the valid ones."""
    if name not in PROFILES:
        raise UnknownNameError("device", name, PROFILES)
    return PROFILES[name]


def summary_rows():
    """``[(name, title, soc/cpu, memory, gpu, software, backends, default)]`` for ``edgerestore devices``."""
    rows = []
    for profile in PROFILES.values():
        gpu = "-"
        if profile.gpu:
            gpu = "%s (sm_%s, INT8 %s)" % (profile.gpu, profile.compute_capability.replace(".", ""),
                                           "yes" if profile.gpu_int8 else "no")
        software = "Python %s" % profile.python
        if profile.jetpack:
            software = "JetPack %s, TensorRT %s, CUDA %s, %s" % (profile.jetpack, profile.tensorrt,
                                                                 profile.cuda, software)
        memory = "%d GB" % profile.memory_gb if profile.memory_gb else "-"
        default = "%s %s @ %dx%d" % (profile.preset, profile.precision, profile.resolution[1],
                                     profile.resolution[0])
        rows.append((profile.name, profile.title, profile.cpu, memory, gpu, software,
                     " > ".join(profile.backends), default))
    return rows
