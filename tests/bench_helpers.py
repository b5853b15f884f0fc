"""Helpers shared by the bench / report / MOS tests: tiny real models, a small real evaluation set,
and headless Chromium."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np


def make_tiny_models(folder: Path, width: int = 8, seed: int = 0) -> dict:
    """A randomly initialised tiny student exported with export_onnx, its INT8 (QDQ) version made with
    onnxruntime.quantization (tests only: the package's own INT8 path is `edgerestore export`), its
    checkpoint, and a corrupt .onnx that ONNX Runtime refuses to load."""
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from edgerestore.export.onnx import export_onnx
    from edgerestore.models.checkpoint import save_student
    from edgerestore.models.config import StudentConfig
    from edgerestore.models.student import StudentNet

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    student = StudentNet(StudentConfig(scale=4, width=width, blocks=1))
    with torch.no_grad():
        student.tail.weight.normal_(0.0, 0.02)  # not the identity, so outputs differ from inputs
    fp32 = export_onnx(student, folder / "tiny.onnx", metadata={"preset": "tiny"})

    class Frames(CalibrationDataReader):
        def __init__(self):
            rng = np.random.RandomState(seed)
            self.items = iter([{"frame": rng.randint(0, 256, (1, 32, 48, 3)).astype(np.uint8)} for _ in range(4)])

        def get_next(self):
            return next(self.items, None)

    int8 = folder / "tiny_int8.onnx"
    quantize_static(str(fp32), str(int8), Frames(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    corrupt = folder / "corrupt.onnx"
    corrupt.write_bytes(b"this is not a protobuf" * 20)
    checkpoint = save_student(folder / "tiny.pt", student, preset="tiny")
    return {"fp32": fp32, "int8": int8, "corrupt": corrupt, "checkpoint": Path(checkpoint), "student": student}


def make_small_evalset(folder: Path, data_dir: Path, crop: int = 192) -> Path:
    """One scikit-image photo with the mild degradation + centre crops of the real GoPro pairs
    (flat X_blur1.png / X_sharp1.png layout, as in ../shared) and the two synthetic clips (8 frames each), built by
    the real builder (without the real 640x360 clip: scoring it was most of the bench tests' time)."""
    import cv2

    from edgerestore.benchmarks.evalset import build_evalset

    gopro = folder.parent / (folder.name + "-gopro")
    gopro.mkdir(parents=True, exist_ok=True)
    source = data_dir / "real_blur" / "gopro_pairs"
    for name in sorted(os.listdir(source)):
        image = cv2.imread(str(source / name))
        h, w = image.shape[:2]
        top, left = (h - crop) // 2, (w - crop) // 2
        cv2.imwrite(str(gopro / name), image[top:top + crop, left:left + crop])
    folder.mkdir(parents=True, exist_ok=True)
    build_evalset(str(folder), photos=("chelsea",), draws=1, gopro_dir=str(gopro), video_dir=None, clip_frames=8)
    return folder


def chromium() -> str:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_args(profile: Path) -> list:
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=%s" % profile]


def screenshot(url: str, out: Path, profile: Path, size=(1400, 2400)) -> np.ndarray:
    """Headless Chromium's screenshot of ``url`` as an RGB array."""
    import cv2

    args = chromium_args(profile) + ["--window-size=%d,%d" % size, "--hide-scrollbars",
                                     "--virtual-time-budget=5000", "--screenshot=%s" % out, url]
    subprocess.run(args, capture_output=True, timeout=120, check=False)
    assert out.is_file(), "chromium wrote no screenshot"
    return cv2.imread(str(out))[:, :, ::-1]


def dump_dom(url: str, profile: Path) -> str:
    """The DOM after the page's scripts ran (headless Chromium --dump-dom)."""
    args = chromium_args(profile) + ["--virtual-time-budget=8000", "--dump-dom", url]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    return result.stdout
