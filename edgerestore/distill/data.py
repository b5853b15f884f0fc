"""Training data: real images, pairs and videos in memory, degraded crops in a refreshed pool.

Why a pool: degrading a crop (blur, Poisson noise, a JPEG or H.264 round trip) costs 15-30 ms of CPU,
as much as a training step of a small student, and a teacher like Restormer costs seconds per crop on
a CPU. So the images are loaded once; worker processes degrade *crops* (``data.crop`` pixels, default
192) in the background; a pool of ``data.pool`` crops lives in memory and ``data.refresh`` fresh crops
replace the oldest after every step; each step cuts ``train.batch`` random patches (``data.patch``)
out of the pool, flipped and rotated. The teacher runs once per crop, not once per patch.

Everything is a pure function of the seed and the step: sample ``n`` of process ``rank`` is global
sample ``k = rank + world * n``; its image, crop box and degradation seed are drawn from
``(seed, k)``; the pool before step ``t`` holds samples ``[t*refresh, t*refresh + pool)``; the patches
of step ``t`` come from ``(seed, rank, t)``. A resumed run rebuilds the same pool and draws the same
patches, and the teacher cache can key every crop by ``(image, box, degradation seed)``.

Sources (:func:`load_items`):

* a folder of clean images (PNG, JPEG, TIFF, ...), degraded on the fly with distill/degrade.py;
* a paired folder: an image whose relative path contains ``blur`` and has a twin with ``sharp`` in
  its place (the GoPro layout ``SEQ/blur/0001.png`` <-> ``SEQ/sharp/0001.png``, or
  ``Istanbul_blur1.png`` <-> ``Istanbul_sharp1.png``) is a real degraded/clean pair, used as it is;
* video files (every ``video_stride``-th frame, at most ``video_max_frames`` per video).

**Sequences** (``data.sequence`` > 1, for temporal students): a sample is a *clip* of that many
frames instead of one crop: the same box cut from consecutive frames of a real clip (videos, and
the videos and frame folders of ``data.clips``, read frame by frame), or a clip rendered from a
still image by a moving camera (:mod:`edgerestore.distill.sequences`); either is degraded like one
call (:func:`~edgerestore.distill.degrade.degrade_sequence`: one set of lens, shake and codec
parameters per clip drifting by ``data.vary``, fresh noise every frame). Arrays then carry a
leading frame axis: ``[T, H, W, 3]``.

The validation split is fixed by the seed: ``val_count`` images (or videos) are held out, and each
is scored on its centre crop, degraded with a seed derived from the image's content hash.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import signal
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from edgerestore import codecinput, noiselevel
from edgerestore.distill import degrade as deg
from edgerestore.distill import sequences as seq
from edgerestore.errors import ConfigError, InputNotFoundError, UnsupportedInputError
from edgerestore.files import file_sha256

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")
MARGIN = 16
"""Crops are degraded with this many extra pixels around them (then trimmed), so that blur near
their edges sees real neighbours instead of a reflected border."""
KEY_VERSION = "edgerestore-sample-v1"
CLIP_KEY_VERSION = "edgerestore-clip-v1"


class LazyImage:
    """An image file that is decoded when a crop is cut from it (``data.memory_mb`` keeps the
    images in memory only up to a budget): ``shape``, slicing and ``numpy.asarray`` work as on the
    array. The last decoded images of each process stay in a small cache (:data:`CACHE_BYTES`)."""

    __slots__ = ("path", "shape")

    def __init__(self, path: str, shape: Tuple[int, ...]):
        self.path = str(path)
        self.shape = tuple(shape)

    def load(self) -> np.ndarray:
        image = _CACHE.get(self.path)
        if image is None:
            image = read_image(self.path)
            if image.shape != self.shape:
                raise UnsupportedInputError("%s changed on disk during training (%s, was %s)" % (
                    self.path, image.shape, self.shape))
            _CACHE[self.path] = image
            total = sum(a.nbytes for a in _CACHE.values())
            while total > CACHE_BYTES and len(_CACHE) > 1:
                total -= _CACHE.popitem(last=False)[1].nbytes
        else:
            _CACHE.move_to_end(self.path)
        return image

    def __getitem__(self, index):
        return self.load()[index]

    def __array__(self, dtype=None, copy=None):
        image = self.load()
        return image if dtype is None else image.astype(dtype)

    @property
    def nbytes(self) -> int:
        return 0


CACHE_BYTES = 64 << 20
"""Decoded lazy images each process keeps (least recently used first out)."""
_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()


class MemoryBudget:
    """Keeps decoded images in memory until ``limit_mb`` is used, then hands out :class:`LazyImage`."""

    def __init__(self, limit_mb: Optional[float]):
        self.left = float("inf") if limit_mb is None or limit_mb <= 0 else float(limit_mb) * (1 << 20)
        self.lazy = 0

    def keep(self, path, image: np.ndarray):
        if image.nbytes <= self.left:
            self.left -= image.nbytes
            return image
        self.left = 0.0  # once over, stay lazy: memory is bounded, not first-fit
        self.lazy += 1
        return LazyImage(str(path), image.shape)


@dataclass
class Item:
    """One training image in memory (a video frame, a clean image or a real pair)."""

    name: str
    """Where it came from (relative path, ``#frame`` for videos), for messages."""
    key: str
    """Content identity (sha256 of the file(s), plus the frame index): the teacher cache keys on it."""
    group: str
    """Items of one group (the frames of a video) are held out together."""
    clean: np.ndarray
    """The clean image (a :class:`LazyImage` beyond ``data.memory_mb``)."""
    degraded: Optional[np.ndarray] = None
    """The real degraded twin of a pair (``None``: degrade ``clean`` on the fly)."""
    teacher: Optional[np.ndarray] = None
    """A precomputed teacher output of ``degraded`` (``folder:`` teachers of paired data)."""
    frame: Optional[int] = None
    """Position in its video or frame folder (``None``: a still image or a pair)."""
    source: int = 0
    """Which entry of ``data.train`` it came from (for ``data.weights``)."""
    codec: Optional[Tuple[float, float]] = None
    """A real pair's degraded file's codec strengths as the runtime reads them
    (:func:`edgerestore.codecinput.file_codec`: the PolyU crops are JPEGs of quality 75)."""

    @property
    def paired(self) -> bool:
        return self.degraded is not None


# --------------------------------------------------------------------------- loading


def read_image(path) -> np.ndarray:
    """An image file as RGB uint8 ``HxWx3`` (grayscale, alpha and 16-bit are converted)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UnsupportedInputError("cannot read image %s (not an image, or a format OpenCV lacks)" % path)
    return np.ascontiguousarray(image[:, :, ::-1])


def file_key(path) -> str:
    return file_sha256(path)[:24]


def _files(root: Path, suffixes: Sequence[str]) -> List[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


PAIR_WORDS = (("blur", "sharp"), ("noisy", "clean"))
"""How a degraded image names its clean twin: the GoPro layout ``SEQ/blur/x.png`` <-> ``SEQ/sharp/x.png``
and the PolyU layout ``noisy/x.jpg`` <-> ``clean/x.jpg`` (the last occurrence of the word is replaced)."""


def _twin(relative: str) -> Optional[str]:
    """``SEQ/blur/x.png`` -> ``SEQ/sharp/x.png``, ``noisy/x.jpg`` -> ``clean/x.jpg``; ``None`` when the
    path names no degradation."""
    for degraded, clean in PAIR_WORDS:
        at = relative.rfind(degraded)
        if at >= 0:
            return relative[:at] + clean + relative[at + len(degraded):]
    return None


def scene_of(relative: str) -> str:
    """The scene a pair belongs to, for splitting: the name without a trailing ``_INDEX``
    (PolyU's ``CAMERA_..._SCENE_11.jpg`` -> ``CAMERA_..._SCENE``), whose crops are not independent."""
    stem, _, _ = relative.rpartition(".")
    head, sep, tail = (stem or relative).rpartition("_")
    return head if sep and tail.isdigit() else (stem or relative)


def find_pairs(root: Path, images: List[Path]) -> Tuple[List[Tuple[Path, Path]], List[Path]]:
    """(blurred, sharp) pairs under ``root`` and the images that belong to no pair."""
    by_relative = {p.relative_to(root).as_posix(): p for p in images}
    pairs, used = [], set()
    for relative, path in by_relative.items():
        twin = _twin(relative)
        if twin is not None and twin in by_relative and twin != relative:
            pairs.append((path, by_relative[twin]))
            used.update((relative, twin))
    rest = [p for r, p in by_relative.items() if r not in used]
    return pairs, rest


def read_video(path: Path, stride: int, max_frames: int) -> List[np.ndarray]:
    """Every ``stride``-th frame of a video (RGB uint8), at most ``max_frames``."""
    import av

    frames = []
    try:
        with av.open(str(path)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index % stride == 0:
                    frames.append(deg.frame_rgb(frame))
                    if len(frames) >= max_frames:
                        break
    except av.error.FFmpegError as exc:
        raise UnsupportedInputError("cannot decode video %s: %s" % (path, exc)) from exc
    if not frames:
        raise UnsupportedInputError("video %s has no frames" % path)
    return frames


def excluded(name: str, patterns: Sequence[str]) -> bool:
    """Whether a relative name matches one of the ``data.exclude`` glob patterns."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def load_items(paths: Iterable[str], video_stride: int = 1, video_max_frames: int = 300,
               on_file: Optional[Callable[[str], None]] = None,
               exclude: Sequence[str] = (), memory_mb: Optional[float] = None) -> Tuple[List[Item], Dict[str, int]]:
    """Load every image, pair and video frame under ``paths``, leaving out the files whose
    relative name matches an ``exclude`` glob (held-out scenes). Images stay decoded in memory up
    to ``memory_mb`` (None or 0: no limit); past it they are read from disk when used
    (:class:`LazyImage`; video frames always stay in memory).

    Returns ``(items, counts)``; ``counts`` says how many images, pairs, videos, frames and
    ignored unpaired images there were. A path with nothing usable raises an error saying so.
    """
    items: List[Item] = []
    counts = {"images": 0, "pairs": 0, "videos": 0, "frames": 0, "unpaired_ignored": 0, "excluded": 0}
    budget = MemoryBudget(memory_mb)
    for source, spec in enumerate(paths):
        root = Path(spec)
        if not root.exists():
            raise InputNotFoundError("training data %s does not exist" % root)
        before = len(items)
        if root.is_file():
            base, images, videos = root.parent, [], []
            if root.suffix.lower() in IMAGE_SUFFIXES:
                images = [root]
            elif root.suffix.lower() in VIDEO_SUFFIXES:
                videos = [root]
            else:
                raise UnsupportedInputError("%s is neither an image (%s) nor a video (%s)" % (
                    root, " ".join(IMAGE_SUFFIXES), " ".join(VIDEO_SUFFIXES)))
        else:
            base, images, videos = root, _files(root, IMAGE_SUFFIXES), _files(root, VIDEO_SUFFIXES)
        pairs, singles = find_pairs(base, images)
        if pairs:
            counts["unpaired_ignored"] += len(singles)
            singles = []
        if exclude:
            kept = [(b, s) for b, s in pairs if not excluded(b.relative_to(base).as_posix(), exclude)]
            kept_singles = [p for p in singles if not excluded(p.relative_to(base).as_posix(), exclude)]
            kept_videos = [v for v in videos if not excluded(v.relative_to(base).as_posix(), exclude)]
            counts["excluded"] += len(pairs) - len(kept) + len(singles) - len(kept_singles) + len(videos) - len(kept_videos)
            pairs, singles, videos = kept, kept_singles, kept_videos
        for blurred, sharp in pairs:
            if on_file:
                on_file(str(blurred))
            clean, degraded = read_image(sharp), read_image(blurred)
            if clean.shape != degraded.shape:
                raise UnsupportedInputError("pair %s / %s: sizes differ (%s vs %s)" % (
                    blurred, sharp, clean.shape[:2], degraded.shape[:2]))
            name = blurred.relative_to(base).as_posix()
            key = file_key(blurred) + file_key(sharp)[:8]
            items.append(Item(name, key, scene_of(name), budget.keep(sharp, clean), budget.keep(blurred, degraded),
                              source=source, codec=codecinput.file_codec(str(blurred))))
            counts["pairs"] += 1
        for path in singles:
            if on_file:
                on_file(str(path))
            name = path.relative_to(base).as_posix()
            items.append(Item(name, file_key(path), name, budget.keep(path, read_image(path)), source=source))
            counts["images"] += 1
        for path in videos:
            if on_file:
                on_file(str(path))
            name = path.relative_to(base).as_posix()
            video_key = file_key(path)
            frames = read_video(path, video_stride, video_max_frames)
            for index, frame in enumerate(frames):
                frame_index = index * video_stride
                items.append(Item("%s#%d" % (name, frame_index), "%s#%d" % (video_key, frame_index), name, frame,
                                  frame=frame_index, source=source))
            counts["videos"] += 1
            counts["frames"] += len(frames)
        if len(items) == before:
            raise InputNotFoundError("training data %s has no images or videos (looked for %s and %s)" % (
                root, " ".join(IMAGE_SUFFIXES), " ".join(VIDEO_SUFFIXES)))
    if not items:
        raise InputNotFoundError("no training data given: pass image folders, paired folders or videos")
    if budget.lazy:
        counts["lazy"] = budget.lazy
    return items, counts


def source_table(items: Sequence[Item], weights: Sequence[float]) -> Optional[List[Tuple[float, List[int]]]]:
    """``data.weights`` as ``[(probability, item indices)]`` per ``data.train`` entry (``None``: no
    weights, every item equally likely, so big folders dominate)."""
    if not weights:
        return None
    by_source: Dict[int, List[int]] = {}
    for index, item in enumerate(items):
        by_source.setdefault(item.source, []).append(index)
    if max(by_source) >= len(weights):
        raise ConfigError("data.weights has %d value(s) but data.train has more entries; give one weight per "
                          "entry" % len(weights))
    table = [(float(weights[s]), members) for s, members in sorted(by_source.items()) if weights[s] > 0]
    if not table:
        raise ConfigError("data.weights gives every training source weight 0; at least one must be > 0")
    total = sum(w for w, _ in table)
    return [(w / total, members) for w, members in table]


def _clip_folders(root: Path) -> List[Path]:
    """``root`` and the folders under it that hold image files directly (one clip each)."""
    folders = [root] + sorted(p for p in root.rglob("*") if p.is_dir())
    return [f for f in folders if any(c.is_file() and c.suffix.lower() in IMAGE_SUFFIXES for c in f.iterdir())]


def load_clips(paths: Iterable[str], max_frames: int = 300,
               on_file: Optional[Callable[[str], None]] = None) -> Tuple[List[Item], Dict[str, int]]:
    """Real clips for sequence training: every frame of each video, and every image of each
    folder of frames (name order), at most ``max_frames`` per clip. Each clip is one group
    (held out whole), each shot of a clip with scene cuts (:func:`scene_cuts`) its own; its items
    carry their position in ``frame``."""
    items: List[Item] = []
    counts = {"clips": 0, "clip_frames": 0}
    for spec in paths:
        root = Path(spec)
        if not root.exists():
            raise InputNotFoundError("clip %s does not exist" % root)
        sources: List[Tuple[str, List[np.ndarray], str]] = []
        if root.is_file():
            if root.suffix.lower() not in VIDEO_SUFFIXES:
                raise UnsupportedInputError("clip %s is not a video (%s) or a folder of frames"
                                            % (root, " ".join(VIDEO_SUFFIXES)))
            if on_file:
                on_file(str(root))
            sources.append((root.name, read_video(root, 1, max_frames), file_key(root)))
        else:
            for video in _files(root, VIDEO_SUFFIXES):
                if on_file:
                    on_file(str(video))
                sources.append((video.relative_to(root.parent).as_posix(), read_video(video, 1, max_frames),
                                file_key(video)))
            for folder in _clip_folders(root):
                files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
                files = files[:max_frames]
                if on_file:
                    on_file(str(folder))
                frames = [read_image(f) for f in files]
                shapes = {f.shape for f in frames}
                if len(shapes) > 1:
                    raise UnsupportedInputError("frames of clip %s differ in size (%s); a clip's frames must "
                                                "all have one size" % (folder, ", ".join(sorted(str(s[:2]) for s in shapes))))
                digest = hashlib.sha256("".join(file_key(f) for f in files).encode()).hexdigest()[:24]
                sources.append((folder.relative_to(root.parent).as_posix(), frames, digest))
        if not sources:
            raise InputNotFoundError("clip %s holds no video and no folder of frames" % root)
        for name, frames, key in sources:
            first_of_shot = set(scene_cuts(frames))
            shot = 0
            for index, frame in enumerate(frames):
                shot += index in first_of_shot
                group = "clip:%s" % name if not first_of_shot else "clip:%s@shot%d" % (name, shot)
                items.append(Item("%s#%d" % (name, index), "%s#%d" % (key, index), group, frame, frame=index))
            counts["clips"] += 1
            counts["clip_frames"] += len(frames)
            if first_of_shot:
                counts["scene_cuts"] = counts.get("scene_cuts", 0) + len(first_of_shot)
    return items, counts


def scene_cuts(frames: Sequence[np.ndarray]) -> List[int]:
    """Indices of the frames that start a new shot, by the runtime's scene-cut test
    (:func:`edgerestore.runtime.backends.base.is_cut`), so that no training clip spans a cut, as no
    stream state does on the board."""
    from edgerestore.runtime.backends.base import is_cut, thumbnail

    shots = [thumbnail(frame) for frame in frames]
    return [t for t in range(1, len(shots)) if is_cut(shots[t], shots[t - 1])]


def describe_counts(counts: Dict[str, int]) -> str:
    parts = []
    for key, label in (("images", "clean images"), ("pairs", "real pairs"), ("frames", "video frames")):
        if counts.get(key):
            parts.append("%d %s" % (counts[key], label))
    if counts.get("videos"):
        parts[-1] += " from %d video(s)" % counts["videos"]
    if counts.get("clips"):
        parts.append("%d clip(s) of %d frames" % (counts["clips"], counts["clip_frames"]))
        if counts.get("scene_cuts"):
            parts[-1] += " (split at %d scene cut(s))" % counts["scene_cuts"]
    if counts.get("unpaired_ignored"):
        parts.append("%d unpaired image(s) in paired folders ignored" % counts["unpaired_ignored"])
    if counts.get("lazy"):
        parts.append("%d image(s) read from disk when used (past data.memory_mb)" % counts["lazy"])
    if counts.get("excluded"):
        parts.append("%d left out by data.exclude" % counts["excluded"])
    return ", ".join(parts)


def check_sizes(items: Sequence[Item], patch: int) -> None:
    for item in items:
        h, w = item.clean.shape[:2]
        if min(h, w) < patch:
            raise ConfigError("%s is %dx%d, smaller than the %d px training patches; lower data.patch "
                              "or remove it" % (item.name, w, h, patch))


def representatives(items: List[Item]) -> List[Item]:
    """One item per group: every image, and the middle frame of every video."""
    groups: Dict[str, List[Item]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    return [members[len(members) // 2] for _, members in sorted(groups.items())]


def split_items(items: List[Item], val_count: int, seed: int,
                whole_groups: bool = False) -> Tuple[List[Item], List[Item]]:
    """Hold out ``val_count`` groups (images, or whole videos) chosen by ``seed``; one item per
    held-out group is scored (a video's middle frame), or every item of it with ``whole_groups``
    (sequence runs score a clip). One group only: its last items."""
    if val_count <= 0:
        return list(items), []
    groups: Dict[str, List[Item]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    names = sorted(groups)
    if len(names) >= 2:
        order = np.random.default_rng([seed, 5]).permutation(len(names))
        held = {names[i] for i in order[:min(val_count, len(names) - 1)]}
        if whole_groups:
            val = [item for g in names if g in held for item in groups[g]]
        else:
            val = [groups[g][len(groups[g]) // 2] for g in names if g in held]
        train = [item for g in names if g not in held for item in groups[g]]
        return train, val
    if len(items) < 2:
        raise ConfigError("one image is not enough to both train and validate; add images or pass --val DATA")
    count = min(val_count, len(items) // 2)
    return list(items[:-count]), list(items[-count:])


# --------------------------------------------------------------------------- samples


def _one_degradation(value, where: str) -> deg.DegradationConfig:
    if isinstance(value, str):
        return deg.get_preset(value)
    if isinstance(value, dict):
        fields = dict(value)
        base = deg.get_preset(str(fields.pop("base", "mild")))
        try:
            return deg.with_ranges(base, **fields)
        except TypeError as exc:
            raise ConfigError("%s: %s; valid fields: %s" % (
                where, exc, ", ".join(deg.DegradationConfig().to_dict()))) from exc
    raise ConfigError("%s must be a preset name or a mapping, not %r" % (where, value))


def resolve_degradation(value):
    """``data.degradation`` -> ``(config, plain dict for cache keys)``. It is a preset name, a dict
    of fields with an optional ``base`` preset, or ``{mix: {PRESET: WEIGHT, ...}}`` (each sample
    takes one preset, in proportion to the weights: a :class:`~edgerestore.distill.degrade.DegradationMix`)."""
    if isinstance(value, dict) and "mix" in value:
        mix = value["mix"]
        if set(value) != {"mix"} or not isinstance(mix, dict) or not mix:
            raise ConfigError("data.degradation: a mix is {mix: {PRESET: WEIGHT, ...}} "
                              "(e.g. {mix: {mild: 0.7, none: 0.15, compression: 0.15}}), not %r" % (value,))
        components = []
        for name, weight in mix.items():
            try:
                weight = float(weight)
            except (TypeError, ValueError):
                raise ConfigError("data.degradation mix: the weight of %s must be a number, not %r" % (name, weight))
            if weight < 0:
                raise ConfigError("data.degradation mix: the weight of %s must be >= 0, not %g" % (name, weight))
            components.append((str(name), weight, _one_degradation(str(name), "data.degradation mix")))
        if sum(w for _, w, _ in components) <= 0:
            raise ConfigError("data.degradation mix: at least one weight must be > 0")
        config = deg.DegradationMix(tuple(components))
        return config, config.to_dict()
    config = _one_degradation(value, "data.degradation")
    return config, {k: list(v) if isinstance(v, tuple) else v for k, v in config.to_dict().items()}


def validation_degradation(data) -> object:
    """``data.val_degradation``, or ``data.degradation`` (a mix: its heaviest component)."""
    if data.val_degradation is not None:
        return data.val_degradation
    value = data.degradation
    if isinstance(value, dict) and isinstance(value.get("mix"), dict) and value["mix"]:
        return max(value["mix"].items(), key=lambda kv: float(kv[1]))[0]
    return value


@dataclass(frozen=True)
class Spec:
    """Which crop of which item, degraded with which seed: everything a sample depends on."""

    item: int
    top: int
    left: int
    height: int
    width: int
    seed: int


def train_spec(items: Sequence[Item], k: int, crop: int, seed: int,
               sources: Optional[List[Tuple[float, List[int]]]] = None) -> Spec:
    """The crop of global training sample ``k`` (its source drawn by :func:`source_table`'s weights
    when there are any, then an item of it)."""
    rng = np.random.default_rng([seed, 7, k])
    if sources is None:
        index = int(rng.integers(len(items)))
    else:
        members = sources[int(rng.choice(len(sources), p=[w for w, _ in sources]))][1]
        index = members[int(rng.integers(len(members)))]
    h, w = items[index].clean.shape[:2]
    ch, cw = min(crop, h), min(crop, w)
    top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
    return Spec(index, top, left, ch, cw, int(rng.integers(2**31 - 1)))


def val_spec(items: Sequence[Item], index: int, crop: int, multiple: int, seed: int) -> Spec:
    """The centre crop of held-out item ``index`` (sizes rounded down to ``multiple``)."""
    item = items[index]
    h, w = item.clean.shape[:2]
    ch, cw = (min(crop, h), min(crop, w)) if crop else (h, w)
    ch, cw = max(multiple, ch - ch % multiple), max(multiple, cw - cw % multiple)
    ch, cw = min(ch, h), min(cw, w)
    digest = int(hashlib.sha256(item.key.encode()).hexdigest()[:8], 16)
    return Spec(index, (h - ch) // 2, (w - cw) // 2, ch, cw, int(np.random.default_rng([seed, 13, digest]).integers(2**31 - 1)))


class Renderer:
    """Turns a :class:`Spec` into arrays: the clean crop, its degraded twin, a teacher output if the
    item carries one. Picklable: DataLoader workers get a copy (the images are shared by fork)."""

    def __init__(self, items: Sequence[Item], degradation, weights: Sequence[float] = (), levels: bool = False,
                 align: int = 1, codecs: bool = False, codec_qp: str = "crf", blurs: bool = False):
        self.items = list(items)
        self.degradation, self.degradation_dict = resolve_degradation(degradation)
        self.sources = source_table(self.items, weights)
        self.levels = levels  # a level_input student's trainer: measure each sample's level
        self.codecs = codecs  # a codec_input student's trainer: each sample's codec strengths
        self.codec_qp = codec_qp  # an H.264 crop's QP: its CRF, or as decoded (data.codec_qp)
        self.align = align  # the crop starts on the compression grid of what is degraded (data.align)
        self.blurs = blurs  # a blur_input student's trainer: each sample's blur kernel's moments

    def key(self, spec: Spec) -> str:
        """Cache key of a sample: the item's content, the box, the degradation and its seed."""
        item = self.items[spec.item]
        payload = {
            "v": KEY_VERSION, "item": item.key, "box": [spec.top, spec.left, spec.height, spec.width],
            "seed": None if item.paired else spec.seed,
            "degradation": None if item.paired else self.degradation_dict,
        }
        if self.align > 1 and not item.paired:
            payload["align"] = self.align
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]

    def clean(self, spec: Spec) -> np.ndarray:
        item = self.items[spec.item]
        return item.clean[spec.top:spec.top + spec.height, spec.left:spec.left + spec.width]

    def teacher(self, spec: Spec) -> Optional[np.ndarray]:
        item = self.items[spec.item]
        if item.teacher is None:
            return None
        return np.ascontiguousarray(item.teacher[spec.top:spec.top + spec.height, spec.left:spec.left + spec.width])

    def degraded(self, spec: Spec, noise_draw: int = 0, qps: Optional[list] = None) -> np.ndarray:
        item = self.items[spec.item]
        if item.paired:
            return item.degraded[spec.top:spec.top + spec.height, spec.left:spec.left + spec.width]
        h, w = item.clean.shape[:2]
        top, left = max(0, spec.top - MARGIN), max(0, spec.left - MARGIN)
        # the codec's blocks start at the degraded region's corner: put the crop's corner on them
        top, left = top + (spec.top - top) % self.align, left + (spec.left - left) % self.align
        bottom, right = min(h, spec.top + spec.height + MARGIN), min(w, spec.left + spec.width + MARGIN)
        out, _ = deg.degrade(np.ascontiguousarray(item.clean[top:bottom, left:right]), spec.seed, self.degradation,
                             noise_draw, qps)
        dy, dx = spec.top - top, spec.left - left
        return np.ascontiguousarray(out[dy:dy + spec.height, dx:dx + spec.width])

    def component(self, spec: Spec) -> str:
        """What degraded this sample: ``pairs`` (a real pair), a mix component's name, or ``all``."""
        if self.items[spec.item].paired:
            return "pairs"
        if isinstance(self.degradation, deg.DegradationMix):
            return self.degradation.pick_name(spec.seed)
        return "all"

    def sample(self, spec: Spec, lookup: Optional[Callable] = None) -> dict:
        """``{"key", "clean", "degraded", "teacher", "component"}``; ``lookup(key)`` may supply a
        cached ``(degraded, teacher)`` (then nothing is degraded: exactly what the teacher saw)."""
        key = self.key(spec)
        cached = lookup(key) if lookup is not None else None
        qps: List[float] = []  # the H.264 QP of the encode below, read back (data.codec_qp: decoded)
        if cached is not None:
            degraded, teacher = cached
        else:
            reading = self.codecs and self.codec_qp == "decoded"
            degraded, teacher = self.degraded(spec, qps=qps if reading else None), self.teacher(spec)
        clean = np.ascontiguousarray(self.clean(spec))
        sample = {"key": key, "clean": clean, "degraded": degraded,
                  "teacher": teacher, "component": self.component(spec), "level": self.noise_level(spec, degraded, clean)}
        if self.codecs:
            sample["codec"] = self.codec(spec, qps)
        if self.blurs:
            sample["blur"] = self.blur(spec)
        return sample

    def blur(self, spec: Spec) -> Tuple[float, float, float]:
        """The second moments of a synthetic sample's blur kernel (:func:`~edgerestore.distill.degrade.blur_moments`);
        a real pair's are unknown and read as none."""
        if self.items[spec.item].paired:
            return 0.0, 0.0, 0.0
        return deg.blur_moments(deg.blur_kernel(deg.sample_params(self.degradation, spec.seed)))

    def codec(self, spec: Spec, qps: Sequence[float] = ()) -> Tuple[float, float]:
        """What the codec did to a synthetic sample (:mod:`edgerestore.codecinput`; an H.264 one's QP
        as :attr:`codec_qp` says: ``qps`` read back from its encode, or it is encoded again); a real
        pair's as the runtime reads its degraded file (a JPEG's quality; anything else untouched),
        or, for every other sample seed, nothing: a USB camera's MJPG frames are JPEGs the runtime
        cannot read, and the real noise in them must be removed all the same (docs/distill.md,
        "`nano-codec` and `small-codec`")."""
        if self.items[spec.item].paired:
            read = self.items[spec.item].codec
            return read if read and spec.seed % 2 == 0 else codecinput.strengths()
        params = deg.sample_params(self.degradation, spec.seed)
        if params.codec == "h264" and self.codec_qp == "decoded":
            if not qps:  # a cached sample: the same encode again (deterministic), read back
                qps = []
                self.degraded(spec, qps=qps)
            return codecinput.strengths("h264", h264_qp=qps[0])
        return codecinput.of_params(params)

    def noise_level(self, spec: Spec, degraded: np.ndarray, clean: np.ndarray) -> float:
        """The sample's noise level (:mod:`edgerestore.noiselevel`) as the runtime's meter would read
        it on a still scene: a synthetic sample's from a second draw of its degradation (another
        draw of the noise, compressed alike: :func:`~edgerestore.noiselevel.of_two_frames`), a real
        pair's from its fine error. 0 unless :attr:`levels` is set."""
        if not self.levels:
            return 0.0
        if self.items[spec.item].paired:
            return noiselevel.of_pair(degraded, clean)
        params = deg.sample_params(self.degradation, spec.seed)
        if not params.gaussian_sigma and not params.poisson_peak:
            return 0.0
        return noiselevel.of_two_frames(degraded, self.degraded(spec, noise_draw=1))


# --------------------------------------------------------------------------- the stream and the pool


def global_index(n: int, rank: int, world: int) -> int:
    """Global sample id of the ``n``-th sample of process ``rank``."""
    return rank + world * n


def _identity(sample):
    return sample


def _worker_init(_worker_id: int) -> None:
    # Only the training process handles Ctrl-C/SIGTERM (it saves a checkpoint); workers would
    # otherwise die first and turn a clean stop into a DataLoader error.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


class SampleStream(Dataset):
    """Global sample ids ``world*first .. world*(first+count)-1`` as rendered samples; a
    :class:`DistributedSampler` gives each process its share (``rank + world*n``)."""

    def __init__(self, renderer: Renderer, crop: int, seed: int, first: int, count: int, rank: int, world: int,
                 lookup: Optional[Callable] = None):
        self.renderer, self.crop, self.seed = renderer, crop, seed
        self.first, self.count, self.rank, self.world = first, count, rank, world
        self.lookup = lookup

    def __len__(self) -> int:
        return self.world * self.count

    def __getitem__(self, index: int) -> dict:
        k = self.world * self.first + index
        if isinstance(self.renderer, ClipRenderer):
            spec = clip_spec(self.renderer, k, self.crop, self.seed)
        else:
            spec = train_spec(self.renderer.items, k, self.crop, self.seed, self.renderer.sources)
        sample = self.renderer.sample(spec, self.lookup)
        sample["k"], sample["n"] = k, (k - self.rank) // self.world
        return sample


WORKER_TIMEOUT_S = 600  # far above one sample's time on a loaded 2-core machine (~0.1 s)


def sample_stream(renderer: Renderer, crop: int, seed: int, first: int, count: int, rank: int, world: int,
                  workers: int, lookup: Optional[Callable] = None, prefetch: int = 8):
    """Iterate, in order, over local samples ``first .. first+count-1`` of process ``rank``, rendered
    by ``workers`` background processes; each is a :meth:`Renderer.sample` dict plus ``"n"`` (local
    index) and ``"k"`` (global id). Under ``torchrun`` every process degrades different crops.
    """
    dataset = SampleStream(renderer, crop, seed, first, count, rank, world, lookup)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)
    options = {}
    if workers > 0:
        # a worker that hangs (a library that does not survive the fork) stops the run with an
        # error after ``WORKER_TIMEOUT_S`` instead of stalling it for ever
        options = {"worker_init_fn": _worker_init, "prefetch_factor": max(2, prefetch // workers),
                   "timeout": WORKER_TIMEOUT_S}
        if "fork" in torch.multiprocessing.get_all_start_methods():
            options["multiprocessing_context"] = "fork"  # the images are shared, not pickled
            # OpenCV's pthread pool does not survive a fork: a worker that inherits the pool of a
            # parent which already ran a parallel OpenCV call (e.g. the Lanczos warps of the
            # validation clips) hangs in its first parallel call. One thread in the parent
            # before forking leaves no pool behind (the workers use one thread anyway).
            # PyAV's swscale pool is the same trap: the workers convert with deg.frame_rgb.
            cv2.setNumThreads(1)
    loader = DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=workers,
                        collate_fn=_identity, **options)
    return iter(loader)


class Pool:
    """The crops training patches are cut from: sample ``n`` lives in slot ``n % size``."""

    def __init__(self, size: int):
        self.size = size
        self.slots: List[Optional[dict]] = [None] * size

    def put(self, sample: dict) -> None:
        self.slots[sample["n"] % self.size] = sample

    def full(self) -> bool:
        return all(s is not None for s in self.slots)

    def draw(self, rng: np.random.Generator, batch: int, patch: int, augment: bool,
             with_teacher: bool, align: int = 1) -> Dict[str, np.ndarray]:
        """``batch`` random patches (NHWC uint8, or NTHWC for clips): ``degraded``, ``clean`` and
        ``teacher``, at offsets that are multiples of ``align``. A clip's frames share one box, flip
        and rotation."""
        out = {"degraded": [], "clean": []}
        if with_teacher:
            out["teacher"] = []
        levels, codecs, blurs = [], [], []
        for _ in range(batch):
            sample = self.slots[int(rng.integers(self.size))]
            levels.append(sample.get("level", 0.0))
            codecs.append(sample.get("codec", codecinput.strengths()))
            h, w = sample["clean"].shape[-3:-1]
            top = int(rng.integers((h - patch) // align + 1)) * align
            left = int(rng.integers((w - patch) // align + 1)) * align
            code = int(rng.integers(8)) if augment else 0
            blurs.append(deg.blur_descriptor(deg.augmented_moments(sample.get("blur", (0.0, 0.0, 0.0)), code)))
            for name in out:
                piece = sample[name][..., top:top + patch, left:left + patch, :]
                if code & 4:
                    piece = piece[..., ::-1, :]
                out[name].append(np.rot90(piece, code & 3, axes=(-3, -2)))
        arrays = {name: np.stack(pieces) for name, pieces in out.items()}
        arrays["level"] = np.asarray(levels, dtype=np.float32)
        arrays["codec"] = np.asarray(codecs, dtype=np.float32)
        arrays["blur"] = np.asarray(blurs, dtype=np.float32)
        return arrays


class ClipRenderer(Renderer):
    """Clips instead of crops (``data.sequence`` frames, see the module docstring). A spec whose
    item is a frame of a real clip starts there; a still image is filmed by a moving camera."""

    def __init__(self, items: Sequence[Item], degradation, length: int, motion: Optional[dict] = None,
                 vary: float = 0.0, clip_share: float = 0.5):
        super().__init__(items, degradation)
        if length < 2:
            raise ConfigError("clips need at least 2 frames (data.sequence), got %d" % length)
        self.length = length
        self.motion_dict = dict(motion or {})
        try:
            self.motion = seq.CameraMotion.from_dict(self.motion_dict)
        except TypeError as exc:
            raise ConfigError("data.motion: %s; valid fields: %s" % (
                exc, ", ".join(seq.CameraMotion().to_dict()))) from exc
        self.vary = float(vary)
        self.clip_share = float(clip_share)
        self.starts = clip_starts(self.items, length)
        self.stills = [i for i, item in enumerate(self.items) if item.frame is None and not item.paired]
        if not self.starts and not self.stills:
            raise ConfigError("no clips of %d frames and no still images to film: sequence training needs videos, "
                              "frame folders (data.clips) or clean images" % length)

    def key(self, spec: Spec) -> str:
        item = self.items[spec.item]
        payload = {
            "v": CLIP_KEY_VERSION, "item": item.key, "box": [spec.top, spec.left, spec.height, spec.width],
            "seed": spec.seed, "degradation": self.degradation_dict, "length": self.length, "vary": self.vary,
            "motion": None if item.frame is not None else self.motion.to_dict(),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]

    def _clean_frames(self, spec: Spec, margin: int) -> List[np.ndarray]:
        """The clip's clean frames with ``margin`` extra pixels around the box where the picture has them."""
        item = self.items[spec.item]
        top, left = spec.top - margin, spec.left - margin
        height, width = spec.height + 2 * margin, spec.width + 2 * margin
        if item.frame is None:
            return seq.render_clip(np.asarray(item.clean), top, left, height, width, self.length, spec.seed,
                                   self.motion)
        h, w = item.clean.shape[:2]
        t0, l0 = max(0, top), max(0, left)
        b0, r0 = min(h, top + height), min(w, left + width)
        return [np.ascontiguousarray(self.items[spec.item + i].clean[t0:b0, l0:r0]) for i in range(self.length)]

    def _offset(self, spec: Spec) -> Tuple[int, int]:
        """Where the box starts inside the frames of :meth:`_clean_frames` with ``MARGIN``."""
        if self.items[spec.item].frame is None:
            return MARGIN, MARGIN
        # real frames: the margin was cut only where the picture has it
        return spec.top - max(0, spec.top - MARGIN), spec.left - max(0, spec.left - MARGIN)

    def _crop(self, frames: List[np.ndarray], spec: Spec) -> np.ndarray:
        dy, dx = self._offset(spec)
        return np.ascontiguousarray(np.stack([f[dy:dy + spec.height, dx:dx + spec.width] for f in frames]))

    def clean(self, spec: Spec) -> np.ndarray:
        # rendered with the margin, like :meth:`_render`: the moving object's path depends on the box
        return self._crop(self._clean_frames(spec, MARGIN), spec)

    def teacher(self, spec: Spec) -> Optional[np.ndarray]:
        return None

    def degraded(self, spec: Spec) -> np.ndarray:
        return self._render(spec)[1]

    def _render(self, spec: Spec) -> Tuple[np.ndarray, np.ndarray]:
        frames = self._clean_frames(spec, MARGIN)
        out, _ = deg.degrade_sequence(frames, spec.seed, self.degradation, vary=self.vary)
        return self._crop(frames, spec), self._crop(out, spec)

    def sample(self, spec: Spec, lookup: Optional[Callable] = None) -> dict:
        key = self.key(spec)
        cached = lookup(key) if lookup is not None else None
        if cached is not None:
            degraded, teacher = cached
            clean = self.clean(spec)
        else:
            clean, degraded = self._render(spec)
            teacher = None
        return {"key": key, "clean": clean, "degraded": degraded, "teacher": teacher,
                "component": self.component(spec)}


def clip_starts(items: Sequence[Item], length: int) -> List[int]:
    """Indices of the items that begin ``length`` consecutive frames of one clip."""
    starts = []
    for i in range(len(items) - length + 1):
        first = items[i]
        if first.frame is None:
            continue
        run = items[i:i + length]
        if all(r.group == first.group and r.frame is not None for r in run) and \
                all(b.frame > a.frame for a, b in zip(run, run[1:])):
            starts.append(i)
    return starts


def clip_spec(renderer: ClipRenderer, k: int, crop: int, seed: int) -> Spec:
    """The clip of global training sample ``k``: a real clip (``clip_share`` of the time when there
    are any) or a still filmed by a moving camera."""
    rng = np.random.default_rng([seed, 17, k])
    real = bool(renderer.starts) and (not renderer.stills or rng.random() < renderer.clip_share)
    pool = renderer.starts if real else renderer.stills
    index = pool[int(rng.integers(len(pool)))]
    h, w = renderer.items[index].clean.shape[:2]
    ch, cw = min(crop, h), min(crop, w)
    top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
    return Spec(index, top, left, ch, cw, int(rng.integers(2**31 - 1)))


def validation_clips(renderer: ClipRenderer, crop: int, multiple: int, seed: int,
                     lookup: Optional[Callable] = None) -> List[dict]:
    """The fixed validation clips: per held-out group, the centre crop of a clip starting in the
    middle of a real clip (or at its start when it is short), or of a still filmed by the camera."""
    groups: Dict[str, List[int]] = {}
    for index, item in enumerate(renderer.items):
        groups.setdefault(item.group, []).append(index)
    starts = set(renderer.starts)
    samples = []
    for n, (_, members) in enumerate(sorted(groups.items())):
        candidates = [i for i in members if i in starts]
        if candidates:
            index = candidates[len(candidates) // 2]
        elif renderer.items[members[0]].frame is None and not renderer.items[members[0]].paired:
            index = members[0]
        else:
            continue  # a clip shorter than data.sequence, or a pair
        sample = renderer.sample(val_spec(renderer.items, index, crop, multiple, seed), lookup)
        sample["n"] = n
        samples.append(sample)
    return samples


def validation_samples(renderer: Renderer, crop: int, multiple: int, seed: int,
                       lookup: Optional[Callable] = None) -> List[dict]:
    """The fixed validation set: one degraded centre crop per held-out item (one clip per held-out
    group for a :class:`ClipRenderer`)."""
    if isinstance(renderer, ClipRenderer):
        return validation_clips(renderer, crop, multiple, seed, lookup)
    samples = []
    for index in range(len(renderer.items)):
        sample = renderer.sample(val_spec(renderer.items, index, crop, multiple, seed), lookup)
        sample["n"] = index
        samples.append(sample)
    return samples
