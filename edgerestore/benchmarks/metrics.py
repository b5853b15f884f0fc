"""Image quality metrics with numpy and OpenCV only (the board imports this; no torch).

* PSNR in dB over all pixels and channels.
* SSIM as in Wang et al. 2004: an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03,
  population covariances, the mean over the map after cropping the 5-pixel border the window can't
  cover; colour images average the per-channel values. These are scikit-image's
  ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=255, channel_axis=-1)`` settings, and the tests compare the two.
* MS-SSIM as in Wang, Simoncelli and Bovik 2003: five scales with 2x2 average down-sampling,
  contrast-structure terms at the first four and SSIM at the last, weighted by
  (0.0448, 0.2856, 0.3001, 0.2363, 0.1333). Images smaller than the five scales need (176 px with
  the 11-px window) use as many scales as fit, with the weights renormalised.

All functions take two arrays of the same shape (HxW or HxWxC), uint8 or float in 0-255.
Python 3.6-safe.
"""

import math

import cv2
import numpy as np

DATA_RANGE = 255.0
_K1, _K2 = 0.01, 0.03
_SIGMA = 1.5
_WINDOW = 11
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _check_pair(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError("images differ in shape: %s vs %s" % (a.shape, b.shape))
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a, b, data_range=DATA_RANGE):
    """Peak signal-to-noise ratio in dB; ``inf`` for identical images."""
    a, b = _check_pair(a, b)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * math.log10(data_range**2 / mse))


def _gaussian_filter(image):
    return cv2.GaussianBlur(image, (_WINDOW, _WINDOW), _SIGMA, borderType=cv2.BORDER_REFLECT)


def _ssim_maps(a, b, data_range):
    """Per-pixel SSIM and contrast-structure maps of two single-channel float64 images."""
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    mu_a, mu_b = _gaussian_filter(a), _gaussian_filter(b)
    var_a = _gaussian_filter(a * a) - mu_a * mu_a
    var_b = _gaussian_filter(b * b) - mu_b * mu_b
    cov = _gaussian_filter(a * b) - mu_a * mu_b
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    luminance = (2 * mu_a * mu_b + c1) / (mu_a * mu_a + mu_b * mu_b + c1)
    return luminance * cs, cs


def _crop(values):
    pad = (_WINDOW - 1) // 2
    return values[pad:-pad, pad:-pad]


def _channels(image):
    return [image] if image.ndim == 2 else [image[:, :, c] for c in range(image.shape[2])]


def ssim(a, b, data_range=DATA_RANGE):
    """Mean structural similarity (Wang et al. 2004), averaged over colour channels."""
    a, b = _check_pair(a, b)
    if min(a.shape[:2]) < _WINDOW:
        raise ValueError("SSIM needs images of at least %dx%d pixels" % (_WINDOW, _WINDOW))
    values = []
    for ca, cb in zip(_channels(a), _channels(b)):
        ssim_map, _ = _ssim_maps(ca, cb, data_range)
        values.append(_crop(ssim_map).mean())
    return float(np.mean(values))


def _downsample(image):
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    image = image[:height, :width]
    return 0.25 * (image[0::2, 0::2] + image[1::2, 0::2] + image[0::2, 1::2] + image[1::2, 1::2])


def ms_ssim(a, b, data_range=DATA_RANGE, weights=MS_SSIM_WEIGHTS):
    """Multi-scale SSIM (Wang, Simoncelli and Bovik 2003), averaged over colour channels."""
    a, b = _check_pair(a, b)
    scales = len(weights)
    while scales > 1 and min(a.shape[:2]) < _WINDOW * 2 ** (scales - 1):
        scales -= 1
    if min(a.shape[:2]) < _WINDOW:
        raise ValueError("MS-SSIM needs images of at least %dx%d pixels" % (_WINDOW, _WINDOW))
    weights = np.asarray(weights[:scales], np.float64)
    weights = weights / weights.sum()
    per_channel = []
    for ca, cb in zip(_channels(a), _channels(b)):
        terms = []
        for scale in range(scales):
            ssim_map, cs_map = _ssim_maps(ca, cb, data_range)
            last = scale == scales - 1
            # Negative contrast-structure (anti-correlated images) would make the power undefined.
            terms.append(max(_crop(ssim_map if last else cs_map).mean(), 0.0))
            if not last:
                ca, cb = _downsample(ca), _downsample(cb)
        per_channel.append(float(np.prod(np.power(terms, weights))))
    return float(np.mean(per_channel))


def quality(restored, reference):
    """PSNR, SSIM and MS-SSIM of ``restored`` against ``reference`` as a dict."""
    return {
        "psnr": psnr(restored, reference),
        "ssim": ssim(restored, reference),
        "ms_ssim": ms_ssim(restored, reference),
    }
