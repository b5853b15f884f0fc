"""What video calls really suffer, synthesised from clean frames: seeded, deterministic, documented.

The chain follows a webcam: optics and motion first, then the sensor, then the encoder.

1. **Camera-shake motion blur** (probability ``motion_prob``): a kernel traced by a random walk
   with inertia (hand shake during the exposure; ``trajectory_prob`` of the time) or a straight
   line at a random angle (a pan), its extent ``motion_length`` pixels.
2. **Slight defocus** (``defocus_prob``): a pillbox (disc) kernel of radius ``defocus_radius``
   pixels, the shape of an out-of-focus lens, convolved with the motion kernel.
3. **Sensor noise**: Poisson shot noise with ``poisson_peak`` photo-electrons at full scale (lower =
   noisier, a dim room) plus Gaussian read noise of ``gaussian_sigma`` (0-255 units).
4. **Compression**: JPEG at ``jpeg_quality`` (OpenCV; an MJPG webcam or a snapshot) or H.264 at
   ``h264_crf`` (libx264 through PyAV, 4:2:0 chroma; a video call); one of them, chosen with
   ``jpeg_prob`` / ``h264_prob``, or neither.

Every range is ``(low, high)`` and sampled uniformly. :func:`degrade` with the same image, seed and
config always returns the same pixels. Presets live in :data:`PRESETS`; ``mild`` is the
"conferencing" setting the quality goals are measured on (blur <= 11 px, noise sigma <= 6, JPEG
quality >= 50): its read noise (sigma <= 4.5) and shot noise (<= 3.6 at mid-grey, peak >= 2500
electrons) add up to a standard deviation of at most 5.8 at mid-grey. Only numpy, OpenCV and PyAV: the demo runs this on a laptop without torch.
"""


import io
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from edgerestore.blurkernel import BLUR_UNIT, blur_descriptor, blur_moments, linear_kernel  # noqa: F401 (re-exported)
from edgerestore.blurkernel import kernel_size as _kernel_size
from edgerestore.blurkernel import splat as _splat

Range = Tuple[float, float]


@dataclass(frozen=True)
class DegradationConfig:
    """Ranges of every degradation; see the module docstring for what each one models."""

    motion_prob: float = 0.7
    motion_length: Range = (3.0, 11.0)
    trajectory_prob: float = 0.6
    defocus_prob: float = 0.4
    defocus_radius: Range = (0.5, 1.5)
    gaussian_sigma: Range = (1.0, 4.5)
    poisson_peak: Range = (2500.0, 10000.0)
    jpeg_prob: float = 0.45
    jpeg_quality: Range = (50.0, 90.0)
    h264_prob: float = 0.35
    h264_crf: Range = (20.0, 30.0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DegradationConfig":
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)


@dataclass(frozen=True)
class DegradationParams:
    """One draw from a :class:`DegradationConfig`: exactly what :func:`apply_degradation` does."""

    seed: int
    motion: str = "none"  # "none" | "trajectory" | "linear"
    motion_length: float = 0.0
    motion_angle: float = 0.0
    defocus_radius: float = 0.0
    gaussian_sigma: float = 0.0
    poisson_peak: float = 0.0
    codec: str = "none"  # "none" | "jpeg" | "h264"
    jpeg_quality: int = 0
    h264_crf: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    # The conferencing setting of the quality goals: blur <= 11 px, noise <= 6, JPEG q >= 50.
    "mild": DegradationConfig(),
    # Only sensor noise and compression: a steady camera in a dim room.
    "noise": DegradationConfig(
        motion_prob=0.0, defocus_prob=0.0, gaussian_sigma=(3.0, 10.0), poisson_peak=(300.0, 3000.0)
    ),
    # Only blur: camera shake and defocus on a clean sensor, no compression.
    "blur": DegradationConfig(
        motion_prob=1.0, defocus_prob=0.5, gaussian_sigma=(0.0, 0.0), poisson_peak=(0.0, 0.0),
        jpeg_prob=0.0, h264_prob=0.0,
    ),
    # Only compression: a clean, steady picture through a JPEG (MJPG webcam) or H.264 encoder.
    "compression": DegradationConfig(
        motion_prob=0.0, defocus_prob=0.0, gaussian_sigma=(0.0, 0.0), poisson_peak=(0.0, 0.0),
        jpeg_prob=0.5, h264_prob=0.5,
    ),
    # A bad day: longer shakes, more noise, harder compression (what training should also see).
    "strong": DegradationConfig(
        motion_prob=0.85, motion_length=(5.0, 21.0), defocus_radius=(0.5, 2.5),
        gaussian_sigma=(2.0, 12.0), poisson_peak=(60.0, 1000.0), jpeg_quality=(30.0, 80.0),
        h264_crf=(24.0, 36.0),
    ),
    "none": DegradationConfig(
        motion_prob=0.0, defocus_prob=0.0, gaussian_sigma=(0.0, 0.0), poisson_peak=(0.0, 0.0),
        jpeg_prob=0.0, h264_prob=0.0,
    ),
}


def get_preset(name: str) -> DegradationConfig:
    """The named degradation preset; unknown names list the valid ones."""
    from edgerestore.errors import UnknownNameError

    if name not in PRESETS:
        raise UnknownNameError("degradation preset", name, PRESETS)
    return PRESETS[name]


# --------------------------------------------------------------------------- sampling


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    low, high = bounds
    return float(low) if high <= low else float(rng.uniform(low, high))


@dataclass(frozen=True)
class DegradationMix:
    """Several degradations in proportion: each sample takes one of ``components`` (``(name, weight,
    config)``), chosen by its seed. Training on clean and compression-only frames in proportion is
    what teaches a student to leave a good picture alone."""

    components: Tuple[Tuple[str, float, DegradationConfig], ...]

    def __post_init__(self):
        if not self.components or any(w < 0 for _, w, _ in self.components) or \
                sum(w for _, w, _ in self.components) <= 0:
            raise ValueError("a degradation mix needs at least one component and positive weights")

    def _index(self, seed: int) -> int:
        weights = np.array([w for _, w, _ in self.components], np.float64)
        return int(np.random.default_rng([int(seed), 11]).choice(len(weights), p=weights / weights.sum()))

    def pick(self, seed: int) -> DegradationConfig:
        return self.components[self._index(seed)][2]

    def pick_name(self, seed: int) -> str:
        """The name of the component sample ``seed`` takes (``teacher.route`` routes by it)."""
        return self.components[self._index(seed)][0]

    def to_dict(self) -> dict:
        return {"mix": [[name, float(w), config.to_dict()] for name, w, config in self.components]}


def sample_params(config, seed: int) -> DegradationParams:
    """Draw one set of degradation parameters, deterministically from ``seed`` (a
    :class:`DegradationMix` first picks its component with the seed)."""
    if isinstance(config, DegradationMix):
        config = config.pick(seed)
    rng = np.random.default_rng(seed)
    motion, length, angle = "none", 0.0, 0.0
    if rng.random() < config.motion_prob:
        motion = "trajectory" if rng.random() < config.trajectory_prob else "linear"
        length = _uniform(rng, config.motion_length)
        angle = float(rng.uniform(0.0, 180.0))
    radius = _uniform(rng, config.defocus_radius) if rng.random() < config.defocus_prob else 0.0
    sigma = _uniform(rng, config.gaussian_sigma)
    peak = _uniform(rng, config.poisson_peak)
    pick = rng.random()
    codec, quality, crf = "none", 0, 0
    if pick < config.jpeg_prob:
        codec, quality = "jpeg", int(round(_uniform(rng, config.jpeg_quality)))
    elif pick < config.jpeg_prob + config.h264_prob:
        codec, crf = "h264", int(round(_uniform(rng, config.h264_crf)))
    return DegradationParams(
        seed=int(seed), motion=motion, motion_length=length, motion_angle=angle,
        defocus_radius=radius, gaussian_sigma=sigma, poisson_peak=peak,
        codec=codec, jpeg_quality=quality, h264_crf=crf,
    )


# --------------------------------------------------------------------------- kernels


def trajectory_kernel(length: float, rng: np.random.Generator) -> np.ndarray:
    """Hand shake: a random walk with inertia, rescaled so its largest extent is ``length`` px.

    The camera's velocity is kept from step to step with small random turns and occasional jerks,
    the way a hand drifts during an exposure; then the path is centred on its mean (the picture is
    not shifted) and splatted with equal time per step.
    """
    steps = 64
    velocity = rng.normal(size=2)
    velocity /= np.linalg.norm(velocity) + 1e-12
    position = np.zeros(2)
    path = [position.copy()]
    for _ in range(steps - 1):
        turn = rng.normal(scale=0.35, size=2)
        if rng.random() < 0.05:  # a jerk
            turn *= 4.0
        velocity = 0.8 * velocity + turn
        position = position + velocity
        path.append(position.copy())
    path = np.asarray(path)
    path -= path.mean(axis=0)
    extent = max(np.ptp(path[:, 0]), np.ptp(path[:, 1]), 1e-6)
    path *= length / extent
    # Oversample the path so long steps leave no gaps.
    fine = np.linspace(0, steps - 1, steps * 8)
    points = np.stack(
        [np.interp(fine, np.arange(steps), path[:, 0]), np.interp(fine, np.arange(steps), path[:, 1])],
        axis=1,
    )
    kernel = _splat(points, _kernel_size(length))
    return (kernel / kernel.sum()).astype(np.float32)


def defocus_kernel(radius: float) -> np.ndarray:
    """A pillbox (disc) of ``radius`` pixels, anti-aliased by 8x supersampling."""
    size = _kernel_size(2 * radius)
    sub = 8
    coords = (np.arange(size * sub) + 0.5) / sub - size / 2.0
    xx, yy = np.meshgrid(coords, coords)
    disc = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    kernel = disc.reshape(size, sub, size, sub).mean(axis=(1, 3))
    return (kernel / kernel.sum()).astype(np.float32)


def blur_kernel(params: DegradationParams) -> Optional[np.ndarray]:
    """The combined motion + defocus kernel of ``params`` (``None`` when there is no blur)."""
    rng = np.random.default_rng([params.seed, 1])
    kernel = None
    if params.motion == "trajectory":
        kernel = trajectory_kernel(params.motion_length, rng)
    elif params.motion == "linear":
        kernel = linear_kernel(params.motion_length, params.motion_angle)
    if params.defocus_radius > 0:
        disc = defocus_kernel(params.defocus_radius)
        if kernel is None:
            kernel = disc
        else:
            pad = disc.shape[0] // 2
            big = np.pad(kernel, pad)
            kernel = cv2.filter2D(big, -1, disc[::-1, ::-1], borderType=cv2.BORDER_CONSTANT)
            kernel = (kernel / kernel.sum()).astype(np.float32)
    return kernel


def augmented_moments(moments: Sequence[float], code: int) -> Tuple[float, float, float]:
    """:func:`blur_moments` of a patch mirrored left-right (``code & 4``) and then turned by
    ``code & 3`` quarter turns (``np.rot90``), as a training patch is augmented."""
    cxx, cyy, cxy = (float(v) for v in moments)
    if code & 4:
        cxy = -cxy
    if code & 1:  # a quarter turn swaps the axes and mirrors one
        cxx, cyy, cxy = cyy, cxx, -cxy
    return cxx, cyy, cxy


# --------------------------------------------------------------------------- the chain


def add_sensor_noise(image: np.ndarray, sigma: float, peak: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson shot noise (``peak`` electrons at white) plus Gaussian read noise (0-255 units)."""
    out = image.astype(np.float32)
    if peak > 0:
        out = rng.poisson(np.clip(out, 0, 255) * (peak / 255.0)).astype(np.float32) * (255.0 / peak)
    if sigma > 0:
        out = out + rng.normal(0.0, sigma, size=out.shape).astype(np.float32)
    return out


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode an RGB uint8 image as JPEG (4:2:0, like webcams' MJPG)."""
    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode JPEG")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1]


def frame_rgb(frame) -> np.ndarray:
    """A PyAV video frame as RGB uint8, converted on this thread. PyAV 18 gives swscale a thread pool by
    default, and a DataLoader worker forked after the parent converted a frame hangs in it for ever."""
    try:
        return frame.to_ndarray(format="rgb24", threads=1)
    except TypeError:  # older PyAV has no ``threads`` and converts on the calling thread
        return frame.to_ndarray(format="rgb24")


def h264_roundtrip(frames: list, crf: int, qps: Optional[list] = None) -> list:
    """Encode and decode RGB uint8 frames with libx264 at ``crf`` (4:2:0), the way a call does.

    Odd sizes are padded by edge replication for the encoder and cropped back. ``qps``: a list that
    gets each decoded frame's mean QP (:func:`edgerestore.codecinput.frame_h264_qp`).
    """
    import av  # PyAV; imported here so that numpy-only users of this module don't need it

    height, width = frames[0].shape[:2]
    pad_h, pad_w = height % 2, width % 2
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="h264") as container:
        stream = container.add_stream("libx264", rate=Fraction(30, 1))
        stream.width, stream.height = width + pad_w, height + pad_h
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(int(crf)), "preset": "veryfast", "tune": "zerolatency"}
        for rgb in frames:
            if pad_h or pad_w:
                rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    decoded = []
    buffer.seek(0)
    with av.open(buffer, mode="r", format="h264") as container:
        stream = container.streams.video[0]
        if qps is not None:
            from edgerestore.codecinput import frame_h264_qp

            stream.codec_context.options = {"export_side_data": "venc_params"}
        for frame in container.decode(stream):
            decoded.append(frame_rgb(frame)[:height, :width])
            if qps is not None:
                qps.append(frame_h264_qp(frame))
    if len(decoded) != len(frames):
        raise RuntimeError("H.264 round trip returned %d frames for %d" % (len(decoded), len(frames)))
    return decoded


def apply_degradation(image: np.ndarray, params: DegradationParams, noise_draw: int = 0,
                      qps: Optional[list] = None) -> np.ndarray:
    """Degrade one RGB uint8 frame exactly as ``params`` say (deterministic). ``noise_draw`` > 0:
    another draw of the sensor noise, everything else the same (a still camera's next frame).
    ``qps``: a list that gets the frame's H.264 QP as its decoder reads it (H.264 only)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("expected an RGB uint8 image HxWx3, got %s %s" % (image.dtype, image.shape))
    out = image.astype(np.float32)
    kernel = blur_kernel(params)
    if kernel is not None:
        # filter2D correlates; flip to convolve (matters for asymmetric trajectories).
        out = cv2.filter2D(out, -1, kernel[::-1, ::-1], borderType=cv2.BORDER_REFLECT)
    rng = np.random.default_rng([params.seed, 2] + ([int(noise_draw)] if noise_draw else []))
    out = add_sensor_noise(out, params.gaussian_sigma, params.poisson_peak, rng)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if params.codec == "jpeg":
        out = jpeg_roundtrip(out, params.jpeg_quality)
    elif params.codec == "h264":
        out = h264_roundtrip([out], params.h264_crf, qps)[0]
    return np.ascontiguousarray(out)


def degrade(
    image: np.ndarray, seed: int, config: DegradationConfig = PRESETS["mild"], noise_draw: int = 0,
    qps: Optional[list] = None,
) -> Tuple[np.ndarray, DegradationParams]:
    """Sample parameters from ``config`` with ``seed`` and apply them; returns (degraded, params).
    ``qps``: as :func:`apply_degradation`."""
    params = sample_params(config, seed)
    return apply_degradation(image, params, noise_draw, qps), params


def with_ranges(config: DegradationConfig, **overrides) -> DegradationConfig:
    """A copy of ``config`` with some fields replaced (lists become tuples)."""
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return replace(config, **fixed)


def frame_params(params: DegradationParams, index: int, vary: float) -> DegradationParams:
    """The parameters of frame ``index`` of a clip degraded with ``params``, drifting by ``vary``.

    ``vary`` = 0 gives ``params`` itself. Otherwise, around the clip's values: the blur's length
    scales by up to ``1 ± vary`` and its angle turns by up to ``±30°·vary`` (a hand shakes
    differently during each exposure; trajectory kernels get a new path), the defocus radius scales
    by ``1 ± vary/2`` (focus hunting), read noise and the shot-noise peak by ``1 ± vary`` (auto gain)
    and the JPEG quality moves by up to ``±15·vary``. Frame 0 keeps the clip's values; the
    drift is a random walk, so neighbouring frames stay close. Deterministic in (seed, index).
    """
    if vary <= 0 or index == 0:
        return params
    walk = np.zeros(5)
    for step in range(1, index + 1):
        walk += np.random.default_rng([params.seed, 3, step]).uniform(-1.0, 1.0, 5) * 0.5
    walk = np.clip(walk, -1.0, 1.0) * vary
    length = params.motion_length * (1.0 + walk[0]) if params.motion != "none" else 0.0
    quality = int(np.clip(round(params.jpeg_quality + 15.0 * walk[4]), 1, 100)) if params.codec == "jpeg" else params.jpeg_quality
    return replace(
        params, seed=int(np.random.default_rng([params.seed, 4, index]).integers(2**31 - 1)),
        motion_length=max(1.0, length) if params.motion != "none" else 0.0,
        motion_angle=(params.motion_angle + 30.0 * walk[1]) % 180.0,
        defocus_radius=params.defocus_radius * (1.0 + 0.5 * walk[2]),
        gaussian_sigma=max(0.0, params.gaussian_sigma * (1.0 + walk[3])),
        poisson_peak=params.poisson_peak / (1.0 + walk[3]) if params.poisson_peak > 0 else 0.0,
        jpeg_quality=quality,
    )


def degrade_sequence(frames: list, seed: int, config: DegradationConfig = PRESETS["mild"],
                     vary: float = 0.0) -> Tuple[list, DegradationParams]:
    """Degrade consecutive video frames the way one call would: the same lens and shake
    parameters for the clip, fresh sensor noise every frame, and one H.264 (or per-frame JPEG)
    encode of the whole clip.

    ``vary`` > 0 lets the blur, noise and JPEG quality drift from frame to frame around the clip's
    parameters (:func:`frame_params`); the returned parameters are the clip's (frame 0's).
    """
    params = sample_params(config, seed)
    kernel = blur_kernel(params)
    out = []
    for index, image in enumerate(frames):
        current = frame_params(params, index, vary)
        if current is not params:
            kernel = blur_kernel(current)
        work = image.astype(np.float32)
        if kernel is not None:
            work = cv2.filter2D(work, -1, kernel[::-1, ::-1], borderType=cv2.BORDER_REFLECT)
        rng = np.random.default_rng([params.seed, 2, index])
        work = add_sensor_noise(work, current.gaussian_sigma, current.poisson_peak, rng)
        work = np.clip(np.rint(work), 0, 255).astype(np.uint8)
        if params.codec == "jpeg":
            work = jpeg_roundtrip(work, current.jpeg_quality)
        out.append(work)
    if params.codec == "h264":
        out = h264_roundtrip(out, params.h264_crf)
    return [np.ascontiguousarray(f) for f in out], params
