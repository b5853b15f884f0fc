"""Frames bigger than 4K run in overlapping tiles: the same pixels as whole, in bounded memory."""

import subprocess
import sys

import numpy as np
import pytest

from edgerestore.runtime.backends import base
from edgerestore.runtime.restore import load_backend
from edgerestore.weights import shipped_presets


def _photo(height, width):
    from skimage import data

    tiles = np.tile(data.astronaut(), (height // 512 + 1, width // 512 + 1, 1))
    return np.ascontiguousarray(tiles[:height, :width])


@pytest.mark.parametrize("preset", shipped_presets())
def test_tiles_give_exactly_the_whole_frame_output(preset):
    backend = load_backend(preset)
    if backend.temporal:
        pytest.skip("temporal models run whole frames (their state is per frame)")
    image = _photo(700, 650)  # not a multiple of the tile nor of the stride
    whole = backend.infer(image)
    tiled = backend._infer_tiled(image, tile=256, overlap=base.TILE_OVERLAP)
    assert np.array_equal(whole, tiled)


def test_infer_switches_to_tiles_above_4k(monkeypatch):
    backend = load_backend("nano")
    calls = []
    monkeypatch.setattr(backend, "_infer_tiled", lambda image: calls.append(image.shape) or image)
    backend.infer(np.zeros((2160, 3840, 3), np.uint8))
    assert calls == []
    backend.infer(np.zeros((2161, 3840, 3), np.uint8))
    assert calls == [(2161, 3840, 3)]


@pytest.mark.slow
def test_restoring_an_8000_pixel_square_png_peaks_under_1_5_gb(tmp_path):
    import cv2

    source = tmp_path / "big.png"
    cv2.imwrite(str(source), _photo(8000, 8000))
    # a fresh parent whose only child is the restore: RUSAGE_CHILDREN is then that child's peak
    probe = ("import resource, subprocess, sys; subprocess.run([sys.executable, '-m', 'edgerestore', 'restore', "
             "sys.argv[1], sys.argv[2], '-q'], check=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", probe, str(source), str(tmp_path / "out.png")], check=True,
                          timeout=600, stdout=subprocess.PIPE, text=True)
    peak_kb = int(done.stdout.split()[-1])
    assert peak_kb < 1_500_000, "peak RSS %.2f GB" % (peak_kb / 1e6)
    assert cv2.imread(str(tmp_path / "out.png")).shape == (8000, 8000, 3)
