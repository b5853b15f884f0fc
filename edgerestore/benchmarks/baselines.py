"""What a user would run instead of a student: classic OpenCV filters, in the Backend interface.

Each baseline is a :class:`~edgerestore.runtime.backends.base.Backend` (``infer(frame) -> frame``,
timed by the base class), so ``edgerestore bench`` measures them exactly like a model. Their
parameters are fixed here: the best PSNR of a grid on training photos with the ``mild`` conferencing
degradation (noise sigma <= 6, blur <= 11 px, JPEG q >= 50), never on the evaluation set
(``benchmarks/baseline_sweep.py``; docs/bench.md has its output). numpy + OpenCV only; Python 3.6-safe.
"""

import cv2
import numpy as np

from edgerestore.errors import UnknownNameError
from edgerestore.runtime.backends.base import Backend


class Baseline(Backend):
    """A fixed filter; ``params`` is recorded in the bench result."""

    name = "opencv"
    method = "baseline"
    params = {}

    def __init__(self, threads=None, **params):
        super(Baseline, self).__init__(threads=threads)
        self.params = dict(self.params, **params)

    @classmethod
    def probe(cls):
        return None

    def load(self, model_path=None, **options):
        if self.threads:
            cv2.setNumThreads(int(self.threads))
        self.threads = self.threads or cv2.getNumThreads()
        self.model_path = None
        return self

    def info(self):
        info = super(Baseline, self).info()
        info.update(method=self.method, params=dict(self.params))
        return info


class NoRestoration(Baseline):
    """The degraded frame as it arrives: the floor every method must beat."""

    name = "numpy"
    method = "none"

    def _run(self, image):
        return image


class UnsharpMask(Baseline):
    """out = (1 + amount) * frame - amount * gaussian(frame, sigma): sharpens, and sharpens noise too."""

    method = "unsharp"
    params = {"sigma": 1.0, "amount": 0.2}

    def _run(self, image):
        blurred = cv2.GaussianBlur(image, (0, 0), self.params["sigma"])
        return cv2.addWeighted(image, 1.0 + self.params["amount"], blurred, -self.params["amount"], 0)


class Bilateral(Baseline):
    """Edge-preserving smoothing (cv2.bilateralFilter): denoises, cannot deblur."""

    method = "bilateral"
    params = {"d": 7, "sigma_color": 10.0, "sigma_space": 3.0}

    def _run(self, image):
        p = self.params
        return cv2.bilateralFilter(image, p["d"], p["sigma_color"], p["sigma_space"])


class NonLocalMeans(Baseline):
    """cv2.fastNlMeansDenoisingColored: the strongest classic denoiser in OpenCV, and slow."""

    method = "nlmeans"
    params = {"h": 2.0, "h_color": 2.0, "template": 7, "search": 21}

    def _run(self, image):
        p = self.params
        # OpenCV's colour variant converts BGR -> Lab internally, so hand it BGR.
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        out = cv2.fastNlMeansDenoisingColored(bgr, None, p["h"], p["h_color"], p["template"], p["search"])
        return np.ascontiguousarray(out[:, :, ::-1])


BASELINES = {cls.method: cls for cls in (NoRestoration, UnsharpMask, Bilateral, NonLocalMeans)}


def create_baseline(method, threads=None, **params):
    """A loaded baseline called ``method`` (``none``, ``unsharp``, ``bilateral``, ``nlmeans``)."""
    if method not in BASELINES:
        raise UnknownNameError("baseline", method, BASELINES)
    return BASELINES[method](threads=threads, **params).load()
