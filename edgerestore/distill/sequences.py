"""Video clips made from still photos: a camera that drifts, shakes and zooms a little, and an
object that crosses the picture. numpy + OpenCV, no torch, deterministic in the seed.

Temporal students learn when their previous output still fits the new frame. Real clips teach
that best, but there are few of them; stills are plenty. A synthetic clip is rendered by warping
one photo with a smooth camera path (a random walk on the velocity, like a hand-held camera, or
no motion at all, like a laptop on a desk), optionally with a second piece of the photo moving
across it on its own (a person in front of a still background: the gate must close there and
stay open elsewhere). The frames are then degraded like one call with
:func:`edgerestore.distill.degrade.degrade_sequence`.

Warps use Lanczos interpolation: bilinear interpolation blurs a frame more at half-pixel offsets
than at whole ones, which would make the *ground truth* flicker in sharpness.
"""


import math
from dataclasses import asdict, dataclass
from typing import List, Tuple

import cv2
import numpy as np

Range = Tuple[float, float]


@dataclass(frozen=True)
class CameraMotion:
    """How synthetic clips move (pixels and degrees per frame)."""

    static_prob: float = 0.3
    """Clips without any camera motion (a camera on a desk or a tripod)."""
    speed: Range = (0.0, 4.0)
    """Initial speed of the camera's drift, px per frame."""
    shake: float = 0.6
    """Standard deviation of the per-frame change of velocity (hand shake), px per frame."""
    rotation: float = 0.3
    """Largest rotation per frame, degrees."""
    zoom: float = 0.01
    """Largest relative change of scale per frame (walking towards the scene, zooming)."""
    object_prob: float = 0.5
    """Clips with an object moving on its own across the picture."""
    object_size: Range = (0.25, 0.6)
    """Size of the object relative to the crop's shorter side."""
    object_speed: Range = (1.0, 6.0)
    """Speed of the object, px per frame."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CameraMotion":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def camera_path(frames: int, seed: int, motion: CameraMotion = CameraMotion()) -> List[Tuple[float, float, float, float]]:
    """``(dx, dy, angle_deg, scale)`` of the camera at each frame, relative to frame 0."""
    rng = np.random.default_rng([seed, 21])
    if rng.random() < motion.static_prob:
        return [(0.0, 0.0, 0.0, 1.0)] * frames
    speed = rng.uniform(*motion.speed)
    heading = rng.uniform(0.0, 2.0 * math.pi)
    velocity = np.array([math.cos(heading), math.sin(heading)]) * speed
    spin = rng.uniform(-motion.rotation, motion.rotation)
    growth = rng.uniform(-motion.zoom, motion.zoom)
    path, position, angle, scale = [], np.zeros(2), 0.0, 1.0
    for _ in range(frames):
        path.append((float(position[0]), float(position[1]), angle, scale))
        velocity = velocity + rng.normal(0.0, motion.shake, 2)
        position = position + velocity
        angle += spin
        scale *= 1.0 + growth
    return path


def _affine(center: Tuple[float, float], dx: float, dy: float, angle: float, scale: float,
            out_center: Tuple[float, float]) -> np.ndarray:
    """2x3 matrix mapping output pixel coordinates to source coordinates."""
    theta = math.radians(angle)
    c, s = math.cos(theta) / scale, math.sin(theta) / scale
    cx, cy = center
    ox, oy = out_center
    # src = R/scale * (p - out_center) + center + (dx, dy)
    return np.array([[c, -s, cx + dx - c * ox + s * oy], [s, c, cy + dy - s * ox - c * oy]], np.float64)


def _ellipse_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged ellipse filling most of a ``height x width`` box (float32 0..1)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    ry, rx = height / 2.0 * rng.uniform(0.8, 1.0), width / 2.0 * rng.uniform(0.8, 1.0)
    r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    return np.clip((1.0 - r) * 6.0, 0.0, 1.0)


def render_clip(image: np.ndarray, top: int, left: int, height: int, width: int, frames: int, seed: int,
                motion: CameraMotion = CameraMotion()) -> List[np.ndarray]:
    """``frames`` RGB uint8 frames of ``height x width``: the camera starts on the box at
    (``top``, ``left``) of ``image`` and follows :func:`camera_path`; outside the photo the picture
    is mirrored. Deterministic in ``seed``."""
    rng = np.random.default_rng([seed, 22])
    path = camera_path(frames, seed, motion)
    center = (left + (width - 1) / 2.0, top + (height - 1) / 2.0)
    out_center = ((width - 1) / 2.0, (height - 1) / 2.0)
    flags = cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP
    sprite = None
    if rng.random() < motion.object_prob:
        h, w = image.shape[:2]
        side = min(height, width) * rng.uniform(*motion.object_size)
        oh, ow = max(4, int(side * rng.uniform(0.7, 1.3))), max(4, int(side * rng.uniform(0.7, 1.3)))
        oh, ow = min(oh, h), min(ow, w)
        sy, sx = int(rng.integers(h - oh + 1)), int(rng.integers(w - ow + 1))
        speed = rng.uniform(*motion.object_speed)
        heading = rng.uniform(0.0, 2.0 * math.pi)
        start = np.array([rng.uniform(0, max(1, width - ow)), rng.uniform(0, max(1, height - oh))])
        sprite = (np.ascontiguousarray(image[sy:sy + oh, sx:sx + ow]).astype(np.float32),
                  _ellipse_mask(oh, ow, rng)[:, :, None], start,
                  np.array([math.cos(heading), math.sin(heading)]) * speed)
    out = []
    for index, (dx, dy, angle, scale) in enumerate(path):
        matrix = _affine(center, dx, dy, angle, scale, out_center)
        frame = cv2.warpAffine(image, matrix, (width, height), flags=flags, borderMode=cv2.BORDER_REFLECT)
        if sprite is not None:
            pixels, mask, start, velocity = sprite
            at = start + velocity * index
            shift = np.array([[1.0, 0.0, at[0]], [0.0, 1.0, at[1]]])
            # the object's own pixels and mask, moved to ``at`` (sub-pixel, same interpolation)
            moved = cv2.warpAffine(pixels, shift, (width, height), flags=cv2.INTER_LANCZOS4,
                                   borderMode=cv2.BORDER_CONSTANT)
            alpha = cv2.warpAffine(mask, shift, (width, height), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT)[:, :, None]
            frame = frame.astype(np.float32) * (1.0 - alpha) + moved * alpha
            frame = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        out.append(np.ascontiguousarray(frame))
    return out
