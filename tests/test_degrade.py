"""The degradation chain: seeded, deterministic, in range, and each stage does what it says."""

import numpy as np
import pytest
from skimage import data as skdata

from edgerestore.distill import degrade as dg
from edgerestore.errors import UnknownNameError
from edgerestore.runtime.quality import psnr


@pytest.fixture(scope="module")
def clean():
    return np.ascontiguousarray(skdata.astronaut()[100:292, 150:406])


def test_same_seed_same_pixels_other_seed_other_pixels(clean):
    a, pa = dg.degrade(clean, 11)
    b, pb = dg.degrade(clean, 11)
    c, _ = dg.degrade(clean, 12)
    assert np.array_equal(a, b) and pa == pb
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", sorted(dg.PRESETS))
def test_parameters_stay_in_the_preset_ranges(name):
    config = dg.PRESETS[name]
    for seed in range(60):
        p = dg.sample_params(config, seed)
        if p.motion != "none":
            assert config.motion_length[0] <= p.motion_length <= config.motion_length[1]
        if p.defocus_radius:
            assert config.defocus_radius[0] <= p.defocus_radius <= config.defocus_radius[1]
        assert config.gaussian_sigma[0] <= p.gaussian_sigma <= max(config.gaussian_sigma)
        if p.codec == "jpeg":
            assert config.jpeg_quality[0] <= p.jpeg_quality <= config.jpeg_quality[1]
        if p.codec == "h264":
            assert config.h264_crf[0] <= p.h264_crf <= config.h264_crf[1]


def test_mild_preset_is_the_conferencing_setting():
    mild = dg.PRESETS["mild"]
    assert mild.motion_length[1] <= 11 and mild.jpeg_quality[0] >= 50
    # Total noise at mid-grey, worst case of the ranges, measured: sigma <= 6.
    grey = np.full((256, 256, 3), 128, np.uint8)
    worst = dg.DegradationParams(seed=1, gaussian_sigma=mild.gaussian_sigma[1], poisson_peak=mild.poisson_peak[0])
    assert 4.0 < dg.apply_degradation(grey, worst).astype(float).std() <= 6.0


@pytest.mark.parametrize("length,angle", [(5.0, 0.0), (9.0, 35.0), (11.0, 120.0)])
def test_linear_kernel_is_normalised_and_as_long_as_asked(length, angle):
    k = dg.linear_kernel(length, angle)
    assert k.sum() == pytest.approx(1.0, abs=1e-5) and (k >= 0).all()
    ys, xs = np.nonzero(k > 1e-3)
    extent = np.hypot(xs.max() - xs.min(), ys.max() - ys.min())
    assert length - 2 <= extent <= length + 2


def test_trajectory_kernel_extent_and_mass():
    for seed in range(5):
        k = dg.trajectory_kernel(9.0, np.random.default_rng(seed))
        assert k.sum() == pytest.approx(1.0, abs=1e-5)
        ys, xs = np.nonzero(k > 1e-4)
        assert 7 <= max(xs.max() - xs.min(), ys.max() - ys.min()) <= 11


def test_defocus_kernel_is_a_disc():
    k = dg.defocus_kernel(1.5)
    c = k.shape[0] // 2
    assert k[c, c] == k.max() and k.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1])


def _params(**kw):
    return dg.DegradationParams(seed=5, **kw)


def test_each_stage_changes_the_picture_the_right_way(clean):
    blurred = dg.apply_degradation(clean, _params(motion="linear", motion_length=9.0, motion_angle=0.0))
    # Horizontal blur smooths horizontal gradients much more than vertical ones.
    gx = lambda im: np.abs(np.diff(im.astype(float), axis=1)).mean()  # noqa: E731
    gy = lambda im: np.abs(np.diff(im.astype(float), axis=0)).mean()  # noqa: E731
    assert gx(blurred) < 0.6 * gx(clean) and gy(blurred) > 0.6 * gy(clean)

    noisy = dg.apply_degradation(clean, _params(gaussian_sigma=6.0))
    residual = noisy.astype(float) - clean
    assert 4.5 < residual[(clean > 20).all(2) & (clean < 235).all(2)].std() < 7.0

    jpeg = dg.apply_degradation(clean, _params(codec="jpeg", jpeg_quality=50))
    h264 = dg.apply_degradation(clean, _params(codec="h264", h264_crf=30))
    for out in (jpeg, h264):
        assert 25 < psnr(out, clean) < 45 and out.shape == clean.shape

    none = dg.apply_degradation(clean, _params())
    assert np.array_equal(none, clean)


def test_h264_roundtrip_handles_odd_sizes_and_sequences(clean):
    frames = [clean[:101, :77], clean[1:102, 1:78], clean[2:103, 2:79]]
    out = dg.h264_roundtrip(frames, 23)
    assert len(out) == 3 and all(o.shape == (101, 77, 3) for o in out)
    assert psnr(out[1], frames[1]) > 28


def test_h264_roundtrip_works_in_a_process_forked_after_one():
    """DataLoader workers fork after the parent decoded video; PyAV >= 18's default swscale thread
    pool hung the child's next conversion forever (it stalled CI)."""
    import subprocess
    import sys

    script = ("import os, numpy as np\n"
              "from edgerestore.distill.degrade import h264_roundtrip\n"
              "frames = [np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)]\n"
              "h264_roundtrip(frames, 30, qps=[])\n"
              "pid = os.fork()\n"
              "if pid == 0:\n"
              "    h264_roundtrip(frames, 30, qps=[])\n"
              "    os._exit(0)\n"
              "_, status = os.waitpid(pid, 0)\n"
              "raise SystemExit(os.waitstatus_to_exitcode(status))\n")
    import os
    import signal

    # its own process group, no shared pipes: a hung child is killed with its parent, never left behind
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert proc.wait(timeout=60) == 0
    except subprocess.TimeoutExpired:
        pytest.fail("h264_roundtrip hung in a forked process")
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None


def test_degrade_sequence_shares_blur_but_not_noise(clean):
    frames = [clean] * 3
    config = dg.with_ranges(dg.PRESETS["mild"], motion_prob=1.0, jpeg_prob=0.0, h264_prob=0.0,
                            gaussian_sigma=(2.0, 2.0), poisson_peak=(0.0, 0.0))
    out, params = dg.degrade_sequence(frames, 4, config)
    assert params.motion != "none"
    assert len(out) == 3
    assert not np.array_equal(out[0], out[1])  # fresh sensor noise per frame
    assert psnr(out[0], out[1]) > 36  # same lens and shake: they differ by the noise alone
    assert psnr(out[0], clean) < 30


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(UnknownNameError, match="mild"):
        dg.get_preset("terrible")


def test_rejects_non_rgb_input():
    with pytest.raises(ValueError, match="RGB uint8"):
        dg.apply_degradation(np.zeros((8, 8), np.uint8), _params())
