"""Quality of the students on images they never trained on (issue #2's quality bar).

    python benchmarks/student_quality.py                       # the shipped presets
    python benchmarks/student_quality.py runs/nano-gt/student.pt runs/nano-kd/student.pt

For every model: PSNR and SSIM of its output against the clean image, and the gain over the
degraded input, on

* scikit-image's photos (astronaut, coffee, chelsea, rocket; public domain / CC0) with several
  seeded draws of each degradation preset: ``mild`` (the conferencing setting of the goals:
  blur <= 11 px, noise sigma <= 6, JPEG q >= 50), and, to see where the gain comes from, ``blur``
  (camera shake + defocus only), ``noise`` (sensor noise only, sigma 3-10) and ``compression``
  (JPEG or H.264 only);
* ``clean``: the same photos undegraded (a good webcam): the output's PSNR against its input, which
  must stay >= 45 dB (the student leaves a good picture alone);
* the real GoPro blur/sharp pairs (CC BY 4.0) and the held-out PolyU real-noise scenes
  (``evalset.POLYU_HELDOUT_SCENES``, never trained on), when ../shared/data is present.

Models run through the runtime's ONNX Runtime backend (the same path as ``edgerestore restore``).
The gain is the mean over images of (output PSNR - input PSNR).

A model with a noise-level input (``level_input``) is given, per image, the level its camera would
be measured at (:func:`eval_levels`): for a synthetic draw, what the runtime's meter reads between
it and a second draw of the same degradation (another draw of the noise, compressed alike: a still
camera's next frame); 0 for a clean photo and for the GoPro pairs (daylight, frames averaged: no
noise to speak of); for a PolyU scene its camera and ISO's level measured on the *training* scenes
of that camera (:func:`polyu_camera_levels`). ``--noise-level`` gives every image one fixed level
instead.

A model with a codec input (``codec_input``) is told, per image, what a decoder reads off it
(:func:`eval_codecs`): a JPEG draw's quality, an H.264 draw's mean QP as PyAV's decoder exports it,
a PolyU crop its file's JPEG quality (75), nothing for the rest (uncompressed).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgerestore import codecinput, noiselevel  # noqa: E402
from edgerestore.benchmarks.evalset import (  # noqa: E402
    SKIMAGE_PHOTOS,
    default_gopro_dir,
    default_polyu_dir,
    load_pairs_dir,
    load_polyu_heldout,
    polyu_heldout_names,
)
from edgerestore.distill.degrade import degrade, get_preset, sample_params  # noqa: E402
from edgerestore.runtime.quality import ms_ssim, psnr, ssim  # noqa: E402
from edgerestore.runtime.restore import load_backend  # noqa: E402
from edgerestore.weights import shipped_presets  # noqa: E402

SUBSETS = ("mild", "blur", "noise", "compression")
SEED = 9100  # nothing in training uses these seeds


PHOTOS_SEED = 9300  # the --photos set's draws (nothing in training uses these seeds either)
MAX_SIDE = 512


def read_photos(folder):
    """``{name: RGB uint8}``: every image of ``folder``, centre-cropped to at most :data:`MAX_SIDE` pixels."""
    from edgerestore.benchmarks.evalset import read_rgb

    photos = {}
    for name in sorted(os.listdir(folder)):
        if os.path.splitext(name)[1].lower() in (".png", ".bmp", ".tif", ".tiff", ".ppm"):
            image = read_rgb(os.path.join(folder, name))
            h, w = image.shape[:2]
            top, left = max(0, (h - MAX_SIDE) // 2), max(0, (w - MAX_SIDE) // 2)
            photos[name] = np.ascontiguousarray(image[top:top + MAX_SIDE, left:left + MAX_SIDE])
    if not photos:
        raise SystemExit("%s holds no lossless images (PNG, BMP, TIFF, PPM): a JPEG would carry its own "
                         "compression into the compression-only subset" % folder)
    return photos


def synthetic(photos, draws, seed, tag=""):
    """``{subset + tag: [(degraded, clean)]}`` and ``{subset + tag: (preset, [seed])}``: each photo
    degraded ``draws`` times by each subset, and ``clean`` + tag: the photos as they are."""
    pairs, seeds = {}, {}
    for subset in SUBSETS:
        config = get_preset(subset)
        keys = [seed + 100 * i + d for i in range(len(photos)) for d in range(draws)]
        pairs[subset + tag] = [(degrade(clean, k, config)[0], clean)
                               for clean, k in zip((c for c in photos.values() for _ in range(draws)), keys)]
        seeds[subset + tag] = (subset, keys)
    pairs["clean" + tag] = [(clean, clean) for clean in photos.values()]
    return pairs, seeds


def eval_pairs(draws, photos_dir=None, with_seeds=False):
    """{subset: [(degraded, clean)]}: the synthetic subsets and the real GoPro pairs; with
    ``photos_dir``, the synthetic subsets of those photos too (``"mild (kodak24)"``...).
    ``with_seeds``: also ``{subset: (preset, [seed])}`` of the synthetic draws."""
    from skimage import data

    photos = {}
    for name in SKIMAGE_PHOTOS:
        image = getattr(data, name)()
        photos[name] = np.ascontiguousarray(image[:, :, :3])
    pairs, seeds = synthetic(photos, draws, SEED)
    gopro = default_gopro_dir()
    if gopro:
        pairs["gopro (real)"] = [(p.degraded, p.clean) for p in load_pairs_dir(gopro, subset="gopro")]
    polyu = default_polyu_dir()
    if polyu:
        pairs["polyu (real noise)"] = [(p.degraded, p.clean) for p in load_polyu_heldout(polyu)]
    if photos_dir:
        tag = " (%s)" % os.path.basename(os.path.normpath(photos_dir))
        more, more_seeds = synthetic(read_photos(photos_dir), draws, PHOTOS_SEED, tag)
        pairs.update(more)
        seeds.update(more_seeds)
    return (pairs, seeds) if with_seeds else pairs


def polyu_setting(stem):
    """``(camera, ISO)`` of a PolyU crop's name (CAMERA_FNUMBER_SHUTTER_ISO_SCENE_INDEX)."""
    parts = stem.split("_")
    return parts[0], int(parts[3])


def polyu_camera_levels(folder):
    """``{held-out crop stem: level}``: what calibrating each camera at each ISO gives, measured
    on the PolyU scenes the students train on (the median :func:`edgerestore.noiselevel.of_pair`
    of that camera's crops at that ISO; a setting with no training crop takes the camera's nearest
    ISO, scaled by the square root of the ISO ratio)."""
    from edgerestore.benchmarks.evalset import POLYU_HELDOUT_SCENES, read_rgb

    measured = {}
    for name in sorted(os.listdir(os.path.join(folder, "noisy"))):
        stem = os.path.splitext(name)[0]
        if stem.rpartition("_")[0] in POLYU_HELDOUT_SCENES:
            continue
        level = noiselevel.of_pair(read_rgb(os.path.join(folder, "noisy", name)),
                                   read_rgb(os.path.join(folder, "clean", name)))
        measured.setdefault(polyu_setting(stem), []).append(level)
    calibrated = {key: float(np.median(values)) for key, values in measured.items()}
    levels = {}
    for name in polyu_heldout_names(folder):
        stem = os.path.splitext(name)[0]
        camera, iso = polyu_setting(stem)
        if (camera, iso) in calibrated:
            levels[stem] = calibrated[(camera, iso)]
            continue
        known = [k for k in calibrated if k[0] == camera]
        if not known:
            raise ValueError("PolyU camera %s has no training scene to calibrate it on" % camera)
        nearest = min(known, key=lambda k: abs(np.log(k[1] / float(iso))))
        levels[stem] = calibrated[nearest] * float(np.sqrt(iso / float(nearest[1])))
    return levels


def eval_levels(pairs, seeds, fixed=None):
    """``{subset: [level]}`` for :func:`eval_pairs`' ``pairs`` and ``seeds`` (see the module
    docstring): each synthetic draw's reading against a second draw of its degradation, 0 for the
    clean photos and the GoPro pairs, the PolyU crops' camera levels; ``fixed``: that level everywhere."""
    if fixed is not None:
        return {subset: [fixed] * len(items) for subset, items in pairs.items()}
    levels = {subset: [0.0] * len(items) for subset, items in pairs.items()}
    for subset, (preset, keys) in seeds.items():
        config = get_preset(preset)
        for k, ((first, clean), seed) in enumerate(zip(pairs[subset], keys)):
            second = degrade(clean, seed, config, noise_draw=1)[0]
            levels[subset][k] = noiselevel.of_two_frames(first, second)
    if "polyu (real noise)" in pairs:
        polyu = default_polyu_dir()
        calibrated = polyu_camera_levels(polyu)
        levels["polyu (real noise)"] = [calibrated[os.path.splitext(n)[0]] for n in polyu_heldout_names(polyu)]
    return levels


def eval_codecs(pairs, seeds, qp="decoded"):
    """``{subset: [(jpeg, h264)]}``: each synthetic draw's codec strengths as a decoder reads them
    (:mod:`edgerestore.codecinput`: a JPEG's quality; an H.264 draw's QP read back, or with
    ``qp="crf"`` its encoder's CRF); a PolyU crop as the runtime reads its file (JPEG quality 75);
    uncompressed for the rest (the GoPro pairs are PNG)."""
    out = {subset: [codecinput.strengths()] * len(items) for subset, items in pairs.items()}
    if "polyu (real noise)" in pairs:
        polyu = default_polyu_dir()
        out["polyu (real noise)"] = [codecinput.file_codec(os.path.join(polyu, "noisy", name)) or codecinput.strengths()
                                     for name in polyu_heldout_names(polyu)]
    for subset, (preset, keys) in seeds.items():
        config = get_preset(preset)
        out[subset] = []
        for (_, clean), k in zip(pairs[subset], keys):
            params = sample_params(config, k)
            if params.codec == "h264" and qp == "decoded":
                qps = []
                degrade(clean, k, config, qps=qps)
                out[subset].append(codecinput.strengths("h264", h264_qp=qps[0]))
            else:
                out[subset].append(codecinput.of_params(params))
    return out


def score(backend, pairs, levels=None, codecs=None):
    """Mean (PSNR, SSIM, MS-SSIM) of the input and of the output against the clean image, the
    worst gain (for identical input and clean, the ``clean`` subset: the worst output PSNR), and
    each image's gain (``clean``: its output PSNR). ``levels``: each image's noise level, for a
    model with a noise-level input; ``codecs``: each image's codec strengths, for one with a codec input."""
    rows = []
    for n, (degraded, clean) in enumerate(pairs):
        # each image starts a fresh stream: a temporal model must not average the draws of one photo
        backend.reset_all()
        if levels is not None:
            backend.set_noise_level(levels[n])
        if codecs is not None:
            backend.set_codec(codecs[n])
        out = backend.infer(degraded)
        same = degraded is clean
        rows.append((np.inf if same else psnr(degraded, clean), psnr(out, clean),
                     1.0 if same else ssim(degraded, clean), ssim(out, clean),
                     1.0 if same else ms_ssim(degraded, clean), ms_ssim(out, clean)))
    rows = np.array(rows)
    each = rows[:, 1] if np.isinf(rows[0, 0]) else rows[:, 1] - rows[:, 0]
    return rows.mean(axis=0), each.min(), each


BARS = {"pico": 0.8, "nano": 1.5, "small": 2.5}
"""Issue 19's bars: mild gain per preset (dB); every preset: clean >= 45 dB, compression >= 0 dB;
nano: GoPro >= +0.5 dB, PolyU >= +1.0 dB."""


def bars(name, results):
    """``[(bar, measured, met)]`` for a preset's results ``{subset: (means, worst)}``."""
    gain = {k: v[0][1] - v[0][0] for k, v in results.items() if not k.startswith("clean")}
    for twin in ("-level", "-codec"):  # a level or codec twin meets its preset's bars
        name = name[:-len(twin)] if name.endswith(twin) else name
    out = []
    if name in BARS and "mild" in gain:
        out.append(("mild >= %+.1f dB" % BARS[name], gain["mild"], gain["mild"] >= BARS[name]))
    for subset in sorted(results):
        if subset.startswith("clean"):
            out.append(("%s >= 45 dB" % subset, results[subset][0][1], results[subset][0][1] >= 45.0))
    for subset in sorted(gain):
        if subset.startswith("compression"):
            out.append(("%s >= 0 dB" % subset, gain[subset], gain[subset] >= 0.0))
    if name == "nano" and "gopro (real)" in gain:
        out.append(("GoPro >= +0.5 dB", gain["gopro (real)"], gain["gopro (real)"] >= 0.5))
    if name == "nano" and "polyu (real noise)" in gain:
        out.append(("PolyU >= +1.0 dB", gain["polyu (real noise)"], gain["polyu (real noise)"] >= 1.0))
    return out


def label(model):
    """A preset's name, or a file with its run folder (runs/nano-kd/student.pt -> nano-kd/student.pt)."""
    if not os.path.exists(model):
        return model
    parts = os.path.abspath(model).split(os.sep)
    return "/".join(parts[-2:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="presets, .pt or .onnx (default: the shipped presets)")
    parser.add_argument("--draws", type=int, default=3, help="degradation draws per photo and subset")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--preset", default=None,
                        help="check the models against this preset's bars (default: a preset's own name)")
    parser.add_argument("--per-image", action="store_true",
                        help="also list each image's gain (clean: output PSNR), in the order photo by photo, "
                             "draw by draw")
    parser.add_argument("--photos", default=None, metavar="DIR",
                        help="also score every subset on these lossless photos (e.g. Kodak24, see "
                             "benchmarks/kodak24.sha256), centre-cropped to 512 px, with their own seeds")
    parser.add_argument("--by-codec", action="store_true",
                        help="also split each compression-only subset by codec (JPEG / H.264)")
    parser.add_argument("--digits", type=int, default=2, help="decimals of the gains and the bar checks")
    parser.add_argument("--noise-level", type=float, default=None,
                        help="give models with a noise-level input this level for every image (default: "
                             "each image's calibrated level, see above)")
    args = parser.parse_args()
    models = args.models or shipped_presets()
    pairs, seeds = eval_pairs(args.draws, args.photos, with_seeds=True)
    levels = eval_levels(pairs, seeds, args.noise_level)
    print("| model | subset | images | input PSNR | output PSNR | gain dB (worst) | input SSIM | output SSIM "
          "| input MS-SSIM | output MS-SSIM |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    checks, per_image, codecs = [], [], []
    gain_format = "%%+.%df" % args.digits
    told = None  # each draw's codec, read once a model with a codec input comes
    for model in models:
        backend = load_backend(model, threads=args.threads)
        if backend.codec_input is not None and told is None:
            told = eval_codecs(pairs, seeds)
        results = {}
        for subset, items in pairs.items():
            (p_in, p_out, s_in, s_out, m_in, m_out), worst, each = score(
                backend, items, levels[subset], told[subset] if backend.codec_input is not None else None)
            results[subset] = ((p_in, p_out, s_in, s_out, m_in, m_out), worst)
            per_image.append((label(model), subset, each))
            if np.isinf(p_in):  # clean input: the output's PSNR against it, and the worst image
                cells = ("-", "%.2f" % p_out, "(worst %.2f)" % worst)
            else:
                cells = ("%.2f" % p_in, "%.2f" % p_out, (gain_format + " (%+.2f)") % (p_out - p_in, worst))
            print("| %s | %s | %d | %s | %s | %s | %.4f | %.4f | %.4f | %.4f |" % (
                (label(model), subset, len(items)) + cells + (s_in, s_out, m_in, m_out)))
            sys.stdout.flush()
            if args.by_codec and subset in seeds and seeds[subset][0] == "compression":
                names = [sample_params(get_preset("compression"), k).codec for k in seeds[subset][1]]
                for codec in sorted(set(names)):
                    mine = [g for g, n in zip(each, names) if n == codec]
                    codecs.append("%s: %s, %s: %d draws, gain %s (worst %+.2f)" % (
                        label(model), subset, codec, len(mine), gain_format % np.mean(mine), min(mine)))
        checks.append((label(model), bars(args.preset or label(model).split("/")[0], results)))
    if args.per_image:
        print()
        for name, subset, each in per_image:
            print("%s: %s: %s" % (name, subset, " ".join("%.2f" % v if subset.startswith("clean") else "%+.2f" % v
                                                         for v in each)))
    if codecs:
        print()
        print("\n".join(codecs))
    print()
    for name, rows in checks:
        for bar, value, met in rows:
            print(("%s: %s: %." + str(args.digits) + "f %s") % (name, bar, value, "met" if met else "MISSED"))


if __name__ == "__main__":
    main()
