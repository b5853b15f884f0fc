"""The evaluation set of ``edgerestore bench``: images no student ever trained on.

Two subsets, each a list of (degraded, clean) pairs:

* ``mild`` - scikit-image's bundled public-domain / CC0 photos (astronaut, coffee, chelsea, rocket)
  with the synthetic conferencing degradation ``mild`` of :mod:`edgerestore.distill.degrade`, one
  fixed seed per photo;
* ``gopro`` - real camera-shake blur with its sharp ground truth (GoPro dataset, Nah et al. 2017,
  CC BY 4.0), when the pairs are available (``../shared/data/real_blur/gopro_pairs`` in a checkout).

and, for temporal consistency (flicker), **clips** degraded like a call (``mild``: one set of blur,
noise level and codec per clip, fresh sensor noise every frame, :func:`degrade_sequence`):

* ``desk-coffee`` - a still camera and an object moving across the picture (the video-call case),
  ``handheld-astronaut`` - a hand-held camera drifting and shaking, both filmed from the
  scikit-image photos by :mod:`edgerestore.distill.sequences` (never used in training);
* ``tram`` - 31 frames of a real street clip (``../shared/data/video/tram_640x360``), when present.

Clips are written as ``<dir>/clips/<name>/blur/00000.png`` + ``sharp/00000.png`` (one folder per
clip, frames in name order) and read by :func:`load_clips`.

:func:`build_evalset` (host: needs scikit-image and the degradation module) writes the set in the
GoPro dataset's layout, ``<dir>/<subset>/blur/<name>.png`` + ``<dir>/<subset>/sharp/<name>.png``,
plus ``evalset.json`` (sources, licences, the exact degradation of every image). Copy that folder
to a board: :func:`load_evalset` needs only OpenCV and also reads the GoPro dataset's own layout
(``<seq>/blur/*.png`` + ``<seq>/sharp/*.png``) and flat ``X_blur1.png`` / ``X_sharp1.png`` pairs.
Python 3.6-safe (the builder imports its host-only modules when called).
"""

import json
import os
import re

import cv2
import numpy as np

from edgerestore.errors import InputNotFoundError, UnsupportedInputError
from edgerestore.files import cache_root

EVALSET_VERSION = 2  # 2: clips for flicker
MANIFEST = "evalset.json"
DEFAULT_SEED = 7100  # seeds 7100.. are used by nothing in training

# scikit-image's bundled photos: name -> (description, licence as scikit-image states it).
SKIMAGE_PHOTOS = {
    "astronaut": ("Eileen Collins, NASA portrait", "public domain (NASA)"),
    "coffee": ("a cup of coffee, Rachel Michetti", "CC0"),
    "chelsea": ("Chelsea the cat, Stefan van der Walt", "CC0"),
    "rocket": ("a Falcon 9 launch, SpaceX", "CC0 / public domain (SpaceX)"),
}
GOPRO_LICENCE = "CC BY 4.0 (GoPro dataset, Nah et al., CVPR 2017; SeungjunNah/DeepDeblur_release)"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


# Synthetic clips: name -> (photo, CameraMotion fields, seed). Fixed: every board scores the same frames.
SYNTHETIC_CLIPS = {
    "desk-coffee": ("coffee", {"static_prob": 1.0, "object_prob": 1.0, "object_speed": [2.0, 2.0]}, 11),
    "handheld-astronaut": ("astronaut", {"static_prob": 0.0, "speed": [1.0, 1.0], "object_prob": 0.0}, 12),
}
CLIP_FRAMES = 24
CLIP_SIZE = (240, 320)  # height, width


class EvalClip(object):
    """One evaluation clip: ``degraded`` and ``clean`` frames (RGB uint8), in order."""

    def __init__(self, name, degraded, clean):
        if len(degraded) != len(clean) or not clean:
            raise UnsupportedInputError("clip %s: %d degraded and %d clean frames" % (name, len(degraded), len(clean)))
        self.name = name
        self.degraded = degraded
        self.clean = clean

    def __repr__(self):
        return "EvalClip(%s, %d frames)" % (self.name, len(self.clean))


class EvalPair(object):
    """One evaluation image: ``degraded`` (the input) and ``clean`` (ground truth), RGB uint8."""

    def __init__(self, subset, name, degraded, clean):
        if degraded.shape != clean.shape:
            raise UnsupportedInputError("evaluation pair %s/%s: degraded %s and clean %s differ in size"
                                        % (subset, name, degraded.shape, clean.shape))
        self.subset = subset
        self.name = name
        self.degraded = degraded
        self.clean = clean

    def __repr__(self):
        return "EvalPair(%s/%s, %dx%d)" % (self.subset, self.name, self.clean.shape[1], self.clean.shape[0])


def read_rgb(path):
    """An image file as contiguous RGB uint8."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UnsupportedInputError("cannot read image %s" % path)
    return np.ascontiguousarray(image[:, :, ::-1])


def write_rgb(path, image):
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1])):
        raise OSError("could not write %s" % path)


def default_gopro_dir():
    """The shared GoPro pairs: ``$EDGERESTORE_SHARED/data/real_blur/gopro_pairs``, else the first
    ``shared/data/real_blur/gopro_pairs`` beside a folder above the package; None when absent."""
    tail = os.path.join("data", "real_blur", "gopro_pairs")
    candidates = []
    if os.environ.get("EDGERESTORE_SHARED"):
        candidates.append(os.path.join(os.environ["EDGERESTORE_SHARED"], tail))
    folder = os.path.dirname(os.path.abspath(__file__))
    for _ in range(4):
        folder = os.path.dirname(folder)
        candidates.append(os.path.join(folder, "shared", tail))
    for path in candidates:
        if os.path.isdir(path):
            return os.path.normpath(path)
    return None


POLYU_HELDOUT_SCENES = (
    "Canon5D2_5_160_3200_chair", "Canon600D_4-5_125_1600_toy", "Canon80D_8_8_3200_ball",
    "NikonD800_5_100_4000_flower", "NikonD800_8_100_6400_bulletin", "Sony_4-5_125_3200_plant",
)
"""The PolyU real-noise scenes the students never train on (28 of the 78 crops, five cameras):
training excludes them with :data:`POLYU_EXCLUDE`, the benchmarks score them."""

POLYU_EXCLUDE = tuple("*%s_*" % scene for scene in POLYU_HELDOUT_SCENES)
"""``data.exclude`` patterns that leave the held-out PolyU scenes out of training."""


def _shared_data_dir(*parts, marker=None):
    """``data/<parts>`` of the shared folder ($EDGERESTORE_SHARED, else beside the GoPro pairs'
    data folder) when it is a folder (holding ``marker``, when given); else None."""
    gopro = default_gopro_dir()
    candidates = []
    if os.environ.get("EDGERESTORE_SHARED"):
        candidates.append(os.path.join(os.environ["EDGERESTORE_SHARED"], "data", *parts))
    if gopro:
        candidates.append(os.path.join(os.path.dirname(os.path.dirname(gopro)), *parts))
    for path in candidates:
        if os.path.isdir(os.path.join(path, marker) if marker else path):
            return os.path.normpath(path)
    return None


def default_polyu_dir():
    """The shared PolyU pairs (``data/real_noise/polyu``: ``noisy/`` + ``clean/``) or None."""
    return _shared_data_dir("real_noise", "polyu", marker="noisy")


def polyu_heldout_names(folder):
    """File names of the held-out PolyU scenes' crops that have both ``noisy/`` and ``clean/``, in order."""
    return [name for name in sorted(os.listdir(os.path.join(folder, "noisy")))
            if os.path.splitext(name)[0].rpartition("_")[0] in POLYU_HELDOUT_SCENES
            and os.path.isfile(os.path.join(folder, "clean", name))]


def load_polyu_heldout(folder):
    """The held-out PolyU scenes' ``noisy/`` + ``clean/`` pairs as :class:`Pair` (subset ``polyu``)."""
    return [EvalPair("polyu", os.path.splitext(name)[0], read_rgb(os.path.join(folder, "noisy", name)),
                     read_rgb(os.path.join(folder, "clean", name))) for name in polyu_heldout_names(folder)]


def default_video_dir():
    """The shared real clip ``tram_640x360`` (a folder of frames), or None."""
    return _shared_data_dir("video", "tram_640x360")


def default_evalset_dir(degradation="mild"):
    """Where the default evaluation set is built once: ``<cache>/evalset-v<N>-<hash>``, the hash of the
    degradation's ranges, so a changed degradation module builds a new set instead of reusing a stale one."""
    import hashlib

    from edgerestore.distill.degrade import get_preset

    ranges = json.dumps(get_preset(degradation).to_dict(), sort_keys=True)
    digest = hashlib.sha256(ranges.encode("utf-8")).hexdigest()[:8]
    return cache_root("evalset-v%d-%s" % (EVALSET_VERSION, digest))


def _skimage_photo(name):
    try:
        from skimage import data
    except ImportError:
        raise InputNotFoundError("building the evaluation set needs scikit-image (pip install scikit-image), "
                                 "or pass --evalset DIR with a set built elsewhere")
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3]).astype(np.uint8)


def build_evalset(out_dir, degradation="mild", seed=DEFAULT_SEED, photos=tuple(SKIMAGE_PHOTOS), draws=2,
                  gopro_dir="default", clips=True, video_dir="default", clip_frames=CLIP_FRAMES):
    """Write the evaluation set into ``out_dir`` and return its manifest (see the module docstring).

    Every photo is degraded ``draws`` times with its own seed (``<photo>-<draw>``), so one lucky or
    unlucky draw does not decide a preset's score. ``gopro_dir="default"`` looks for the shared
    GoPro pairs; ``None`` leaves the subset out. ``clips`` adds the clips (``video_dir``: the real
    clip's folder of frames, ``"default"`` the shared one, ``None`` none) of ``clip_frames`` frames
    each (the synthetic ones; a real clip keeps its own length).
    """
    from edgerestore.distill.degrade import degrade, get_preset

    config = get_preset(degradation)
    manifest = {"format": "edgerestore-evalset", "version": EVALSET_VERSION, "subsets": {}}
    synthetic = []
    for index, name in enumerate(photos):
        if name not in SKIMAGE_PHOTOS:
            raise InputNotFoundError("unknown scikit-image photo %r; choose from %s" % (name, ", ".join(SKIMAGE_PHOTOS)))
        clean = _skimage_photo(name)
        description, licence = SKIMAGE_PHOTOS[name]
        for draw in range(draws):
            degraded, params = degrade(clean, seed + index * draws + draw, config)
            label = "%s-%d" % (name, draw)
            _write_pair(out_dir, degradation, label, degraded, clean)
            synthetic.append({"name": label, "source": "skimage.data.%s (%s)" % (name, description),
                              "licence": licence, "size": [int(clean.shape[1]), int(clean.shape[0])],
                              "degradation": params.to_dict()})
    if synthetic:
        manifest["subsets"][degradation] = {"kind": "synthetic", "degradation": degradation, "images": synthetic}
    if gopro_dir == "default":
        gopro_dir = default_gopro_dir()
    if gopro_dir:
        real = []
        for pair in load_pairs_dir(gopro_dir, subset="gopro"):
            _write_pair(out_dir, "gopro", pair.name, pair.degraded, pair.clean)
            real.append({"name": pair.name, "source": "GoPro dataset (%s)" % os.path.basename(os.path.normpath(gopro_dir)),
                         "licence": GOPRO_LICENCE, "size": [int(pair.clean.shape[1]), int(pair.clean.shape[0])]})
        if real:
            manifest["subsets"]["gopro"] = {"kind": "real-blur", "images": real}
    if clips:
        manifest["clips"] = _build_clips(out_dir, config, seed, video_dir, clip_frames)
    if not manifest["subsets"]:
        raise InputNotFoundError("the evaluation set would be empty: no photos and no GoPro pairs")
    tmp = os.path.join(out_dir, MANIFEST + ".part")
    with open(tmp, "w") as handle:
        json.dump(manifest, handle, indent=2)
    os.replace(tmp, os.path.join(out_dir, MANIFEST))  # the manifest last: its presence means complete
    return manifest


def _build_clips(out_dir, config, seed, video_dir="default", clip_frames=CLIP_FRAMES):
    """Render, degrade and write the clips; returns their manifest entries."""
    from edgerestore.distill.degrade import degrade_sequence
    from edgerestore.distill.sequences import CameraMotion, render_clip

    entries = []
    sources = []
    for name, (photo, motion, clip_seed) in sorted(SYNTHETIC_CLIPS.items()):
        image = _skimage_photo(photo)
        height, width = CLIP_SIZE
        top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
        frames = render_clip(image, top, left, height, width, clip_frames, clip_seed, CameraMotion.from_dict(motion))
        description, licence = SKIMAGE_PHOTOS[photo]
        sources.append((name, frames, "skimage.data.%s (%s) filmed by a synthetic camera %s" % (photo, description, motion),
                        licence))
    if video_dir == "default":
        video_dir = default_video_dir()
    if video_dir:
        names = _images(video_dir)
        frames = [read_rgb(os.path.join(video_dir, n)) for n in names]
        if frames:
            sources.append(("tram", frames, "ckkelvinchan/RealBasicVSR demo data (%s)" % os.path.basename(video_dir),
                            "not stated by the source; evaluation only"))
    for index, (name, frames, source, licence) in enumerate(sources):
        degraded, params = degrade_sequence(frames, seed + 100 + index, config)
        for kind, images in (("blur", degraded), ("sharp", frames)):
            folder = os.path.join(out_dir, "clips", name, kind)
            if not os.path.isdir(folder):
                os.makedirs(folder)
            for number, image in enumerate(images):
                write_rgb(os.path.join(folder, "%05d.png" % number), image)
        entries.append({"name": name, "source": source, "licence": licence, "frames": len(frames),
                        "size": [int(frames[0].shape[1]), int(frames[0].shape[0])], "degradation": params.to_dict()})
    return entries


def load_clips(path):
    """The clips of an evaluation set (``<path>/clips/<name>/blur|sharp/*.png``); [] when it has none."""
    root = os.path.join(str(path), "clips")
    if not os.path.isdir(root):
        return []
    clips = []
    for name in sorted(os.listdir(root)):
        blur, sharp = os.path.join(root, name, "blur"), os.path.join(root, name, "sharp")
        if not (os.path.isdir(blur) and os.path.isdir(sharp)):
            continue
        frames = [n for n in _images(blur) if os.path.isfile(os.path.join(sharp, n))]
        clips.append(EvalClip(name, [read_rgb(os.path.join(blur, n)) for n in frames],
                              [read_rgb(os.path.join(sharp, n)) for n in frames]))
    return clips


def _write_pair(out_dir, subset, name, degraded, clean):
    for kind, image in (("blur", degraded), ("sharp", clean)):
        folder = os.path.join(out_dir, subset, kind)
        if not os.path.isdir(folder):
            os.makedirs(folder)
        write_rgb(os.path.join(folder, name + ".png"), image)


def _images(folder):
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES))


def load_pairs_dir(folder, subset=None):
    """Pairs in one folder: ``blur/`` + ``sharp/`` subfolders (GoPro layout) or flat ``X_blur*`` / ``X_sharp*``."""
    subset = subset or os.path.basename(os.path.normpath(folder))
    blur_dir, sharp_dir = os.path.join(folder, "blur"), os.path.join(folder, "sharp")
    pairs = []
    if os.path.isdir(blur_dir) and os.path.isdir(sharp_dir):
        sharp = set(_images(sharp_dir))
        for name in _images(blur_dir):
            if name in sharp:
                pairs.append(EvalPair(subset, os.path.splitext(name)[0], read_rgb(os.path.join(blur_dir, name)),
                                      read_rgb(os.path.join(sharp_dir, name))))
        return pairs
    if os.path.basename(os.path.normpath(folder)) == "clips":
        return pairs  # the clips are scored as clips (load_clips), not as single frames
    files = _images(folder)
    for name in files:
        match = re.match(r"(.*)_blur(\w*)(\.\w+)$", name)
        if not match:
            continue
        sharp_name = "%s_sharp%s%s" % match.groups()
        if sharp_name in files:
            pairs.append(EvalPair(subset, match.group(1) + match.group(2), read_rgb(os.path.join(folder, name)),
                                  read_rgb(os.path.join(folder, sharp_name))))
    return pairs


def load_evalset(path):
    """Every (degraded, clean) pair under ``path``; subsets are the folders that hold pairs."""
    if not os.path.isdir(str(path)):
        raise InputNotFoundError("evaluation set %s does not exist — build one with "
                                 "`edgerestore bench --make-evalset DIR`" % path)
    path = str(path)
    pairs = load_pairs_dir(path)
    if not pairs:
        for entry in sorted(os.listdir(path)):
            sub = os.path.join(path, entry)
            if os.path.isdir(sub):
                pairs.extend(load_pairs_dir(sub, subset=entry))
    if not pairs:
        raise UnsupportedInputError("no image pairs in %s: expected <subset>/blur/*.png + <subset>/sharp/*.png "
                                    "or X_blur1.png + X_sharp1.png" % path)
    return pairs


def read_manifest(path):
    """``evalset.json`` of a built set, or None for a plain folder of pairs."""
    manifest = os.path.join(str(path), MANIFEST)
    if not os.path.isfile(manifest):
        return None
    with open(manifest) as handle:
        return json.load(handle)


def ensure_default_evalset():
    """The default set's folder, built on first use (host); raises with the fix when it cannot be."""
    folder = default_evalset_dir()
    if read_manifest(folder) is None:
        if not os.path.isdir(folder):
            os.makedirs(folder)
        build_evalset(folder)
    return folder


def describe_evalset(path, pairs):
    """The ``evalset`` block of a bench result: where, which subsets, how many images each."""
    subsets = {}
    for pair in pairs:
        subsets[pair.subset] = subsets.get(pair.subset, 0) + 1
    manifest = read_manifest(path) or {}
    return {
        "path": str(path),
        "version": manifest.get("version"),
        "subsets": subsets,
        "manifest": manifest.get("subsets"),
        "clips": manifest.get("clips"),
    }
