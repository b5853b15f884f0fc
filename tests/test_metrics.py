"""Our numpy/OpenCV metrics against independent implementations, on real images."""

import numpy as np
import pytest
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from edgerestore.distill.degrade import degrade
from edgerestore.runtime.quality import ms_ssim, psnr, quality, ssim
from tests.conftest import read_rgb


def _pairs(gopro_pair):
    clean = skdata.astronaut()
    degraded, _ = degrade(clean, 3)
    blurry, sharp = (read_rgb(p) for p in gopro_pair)
    return [(degraded, clean), (blurry, sharp), (skdata.camera()[:200, :300], skdata.camera()[10:210, 5:305])]


def test_psnr_matches_scikit_image(gopro_pair):
    for a, b in _pairs(gopro_pair):
        assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255), abs=1e-9)
    assert psnr(skdata.coffee(), skdata.coffee()) == float("inf")


def test_ssim_matches_scikit_image_gaussian_settings(gopro_pair):
    for a, b in _pairs(gopro_pair):
        kwargs = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
        if a.ndim == 3:
            kwargs["channel_axis"] = -1
        assert ssim(a, b) == pytest.approx(structural_similarity(a, b, **kwargs), abs=1e-6)


def test_ms_ssim_matches_pytorch_msssim(gopro_pair):
    torch = pytest.importorskip("torch")
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    for a, b in _pairs(gopro_pair)[:2]:
        # pytorch_msssim pads odd sizes when it down-samples; compare on sizes divisible by 16.
        h, w = a.shape[0] // 16 * 16, a.shape[1] // 16 * 16
        a, b = a[:h, :w], b[:h, :w]
        ta = torch.from_numpy(a).permute(2, 0, 1)[None].double()
        tb = torch.from_numpy(b).permute(2, 0, 1)[None].double()
        theirs = float(pytorch_msssim.ms_ssim(ta, tb, data_range=255, size_average=True))
        assert ms_ssim(a, b) == pytest.approx(theirs, abs=2e-4)


def test_metrics_order_images_by_degradation():
    clean = skdata.chelsea()
    light, _ = degrade(clean, 0, __import__("edgerestore.distill.degrade", fromlist=["PRESETS"]).PRESETS["noise"])
    heavy = np.clip(light.astype(int) + np.random.default_rng(0).normal(0, 25, light.shape), 0, 255).astype(np.uint8)
    q_light, q_heavy = quality(light, clean), quality(heavy, clean)
    for key in ("psnr", "ssim", "ms_ssim"):
        assert q_light[key] > q_heavy[key]
    assert ssim(clean, clean) == pytest.approx(1.0) and ms_ssim(clean, clean) == pytest.approx(1.0)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
