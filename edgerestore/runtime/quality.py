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


# --------------------------------------------------------------------------- temporal consistency
#
# Flicker is what changes from one frame to the next that the picture's own motion does not
# explain. Consecutive frames are aligned with dense optical flow (OpenCV's Farneback) computed
# on the *ground truth* (clean frames give the most reliable motion, and every method is judged
# with the same flow); pixels whose motion fails a forward-backward consistency check
# (occlusions, the borders a pan uncovers, flow errors) are left out.
#
# * ``temporal_mad``: mean |y_t - warp(y_t-1)| over the valid pixels (0-255 levels);
# * ``flicker``: the output's temporal_mad divided by the ground truth's: 1.0 = as steady as the
#   real video (which has its own sensor noise and compression), below 1 = steadier (also what a
#   blurred or frozen picture gets, which is why it is reported next to PSNR), above = flickers;
# * ``temporal_error``: mean |(y_t - warp(y_t-1)) - (g_t - warp(g_t-1))|: the change of the error
#   from frame to frame (0 = the output moves exactly like the ground truth; a frozen picture
#   scores the ground truth's own motion, a noisy one its noise).

_FLOW_ARGS = dict(pyr_scale=0.5, levels=4, winsize=21, iterations=3, poly_n=5, poly_sigma=1.1, flags=0)


def _gray(image):
    image = np.asarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image.astype(np.uint8)), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(image.astype(np.uint8))


def optical_flow(target, source):
    """Dense flow ``f`` (HxWx2, pixels) with ``target(x) ~ source(x + f(x))`` (Farneback)."""
    levels = max(1, min(_FLOW_ARGS["levels"], int(math.log2(max(2, min(np.asarray(target).shape[:2]) // 8)))))
    args = dict(_FLOW_ARGS, levels=levels)
    return cv2.calcOpticalFlowFarneback(_gray(target), _gray(source), None, args["pyr_scale"], args["levels"],
                                        args["winsize"], args["iterations"], args["poly_n"], args["poly_sigma"],
                                        args["flags"])


def warp(image, flow):
    """``image`` resampled at ``x + flow(x)`` (bilinear, float32; borders replicated)."""
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(np.asarray(image, np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def flow_validity(backward, forward):
    """Pixels of frame t whose flow to t-1 (``backward``) agrees with t-1's flow back to t
    (``forward``) and lands inside the frame (the usual consistency test: |fb + fw(x+fb)|^2 <
    0.01 (|fb|^2 + |fw|^2) + 0.5)."""
    height, width = backward.shape[:2]
    back = warp(forward, backward)
    error = np.sum((backward + back) ** 2, axis=2)
    bound = 0.01 * (np.sum(backward ** 2, axis=2) + np.sum(back ** 2, axis=2)) + 0.5
    grid_x, grid_y = np.meshgrid(np.arange(width), np.arange(height))
    x, y = grid_x + backward[..., 0], grid_y + backward[..., 1]
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    return (error < bound) & inside


class TemporalReference(object):
    """The motion of a ground-truth clip, computed once and used to score any number of outputs."""

    def __init__(self, references):
        self.references = [np.asarray(r) for r in references]
        if len(self.references) < 2:
            raise ValueError("temporal metrics need at least 2 frames, got %d" % len(self.references))
        shapes = set(r.shape for r in self.references)
        if len(shapes) != 1:
            raise ValueError("the clip's frames differ in shape: %s" % sorted(shapes))
        self.flows, self.masks = [], []
        for t in range(1, len(self.references)):
            backward = optical_flow(self.references[t], self.references[t - 1])
            forward = optical_flow(self.references[t - 1], self.references[t])
            self.flows.append(backward)
            self.masks.append(flow_validity(backward, forward))
        self.valid_fraction = float(np.mean([m.mean() for m in self.masks]))
        self.reference_mad = self._mad(self.references)

    def _changes(self, frames):
        """Per step t: (y_t - warp(y_t-1)) on the valid pixels, channels averaged later."""
        for t in range(1, len(frames)):
            current = np.asarray(frames[t], np.float32)
            moved = warp(frames[t - 1], self.flows[t - 1])
            if moved.ndim < current.ndim:
                moved = moved[..., None]
            yield t, (current - moved)[self.masks[t - 1]]

    def _mad(self, frames):
        return float(np.mean([np.abs(change).mean() for _, change in self._changes(frames)]))

    def score(self, outputs):
        """``{"flicker", "temporal_mad", "reference_mad", "temporal_error", "valid_fraction", "frames"}``."""
        if len(outputs) != len(self.references):
            raise ValueError("%d outputs for a clip of %d frames" % (len(outputs), len(self.references)))
        for out, ref in zip(outputs, self.references):
            if np.asarray(out).shape != ref.shape:
                raise ValueError("output %s and reference %s differ in shape" % (np.asarray(out).shape, ref.shape))
        reference = dict(self._changes(self.references))
        mad, error = [], []
        for t, change in self._changes(outputs):
            mad.append(np.abs(change).mean())
            error.append(np.abs(change - reference[t]).mean())
        output_mad = float(np.mean(mad))
        return {
            "flicker": output_mad / self.reference_mad if self.reference_mad > 0 else float("inf"),
            "temporal_mad": output_mad,
            "reference_mad": self.reference_mad,
            "temporal_error": float(np.mean(error)),
            "valid_fraction": self.valid_fraction,
            "frames": len(outputs),
        }


def flicker(outputs, references):
    """Temporal consistency of a restored clip against its ground truth (see above)."""
    return TemporalReference(references).score(outputs)
