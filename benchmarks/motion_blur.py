"""Can video tell a frame's motion blur? The camera's motion between two frames (the runtime's DIS
flow) against the picture-only patch estimator (benchmarks/blur_estimate.py).

A hand-held camera that moves ``v`` pixels per frame smears each frame along ``v`` over the
exposure's share ``s`` of the frame interval: about a line ``|v| s`` pixels long. Each draw takes a
held-out photo, a drift (4-14 px per frame, any direction: a 1-14 px smear, about ``mild``'s 3-11),
a hand's tremor on top of it (:func:`draw`), a share (0.3-1), and renders two consecutive frames,
each smeared by the path during its exposure; then sensor noise and an H.264 round trip. Still
draws (``--stills``) do not move. Each method tells frame 2's blur descriptor
(``degrade.blur_descriptor``):

- ``flow, share known``: a line along ``-median(flow)`` between the two degraded frames, times the
  true share (what a camera that reports its exposure time would give);
- ``flow, share g``: the same with the share guessed (``--share-guess``: a camera that does not
  report its exposure);
- ``flow direction, estimated size``: the direction from the flow, the size from the estimator;
- ``flow-bounded estimate``: the same, its size at most that of a smear over the whole frame
  interval (share 1): a camera that did not move did not smear;
- ``patch estimator``: blur_estimate.py's estimate from the picture alone;
- ``no blur``: the zero descriptor.

It prints each one's RMS error and, with ``--after`` and ``--filter``, the PSNR gain of a student
followed by a told frame filter (global_filter.py ``--save``) given that descriptor. ``--clips``
adds real clips smeared along their own motion (:func:`clip_draw`), ``--tiles`` one filter per tile
told its local flow (:func:`tiled`), ``--train`` filters trained on such draws. Measured: docs/distill.md,
"The camera's motion tells the blur".
"""

import argparse
import glob
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))

import global_filter as gf  # noqa: E402

from edgerestore import codecinput, noiselevel  # noqa: E402
from edgerestore.blurkernel import kernel_size, splat  # noqa: E402
from edgerestore.distill import degrade as deg  # noqa: E402
from edgerestore.runtime.framefilter import bounded, line_descriptor, oriented  # noqa: E402
from edgerestore.runtime.motion import Flow, dense_flow, warp  # noqa: E402
from edgerestore.runtime.quality import psnr  # noqa: E402


def moved(photo, dx, dy):
    """``photo`` moved by ``(dx, dy)`` pixels (Lanczos, reflected borders)."""
    h, w = photo.shape[:2]
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(photo, matrix, (w, h), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)


def smear(path, start, end):
    """The kernel of a camera at ``path(t)`` (``t`` in frame intervals) exposed from ``start`` to
    ``end``, centred on its mean position, and that position."""
    points = path(np.linspace(start, end, 64))
    centre = points.mean(0)
    extent = float(np.abs(points - centre).max())
    if extent < 0.05:
        return np.ones((1, 1), np.float32), centre
    kernel = splat(points - centre, kernel_size(2.0 * extent))
    return (kernel / kernel.sum()).astype(np.float32), centre


def draw(photo, rng, margin=24, still=False, tremor=0.5):
    """Two degraded consecutive frames, a second noise draw of the second, and the truth; ``still``:
    a camera that does not move (no blur: a laptop on a desk). The camera drifts at a steady velocity
    plus a hand's tremor (4-12 Hz at 30 fps, up to ``tremor`` times the drift's speed), so the smear
    during an exposure is neither straight nor exactly the motion between frames."""
    speed, angle = rng.uniform(4.0, 14.0) * (not still), rng.uniform(0.0, 360.0)
    share, sigma, crf = rng.uniform(0.3, 1.0), rng.uniform(2.0, 8.0), int(rng.integers(20, 31))
    vx, vy = speed * math.cos(math.radians(angle)), speed * math.sin(math.radians(angle))
    swing, turn = tremor * speed * rng.uniform(0.0, 1.0), rng.uniform(0.0, 2.0 * math.pi)
    omega, phase = 2.0 * math.pi * rng.uniform(4.0, 12.0) / 30.0, rng.uniform(0.0, 2.0 * math.pi)

    def path(t):  # velocity (vx, vy) + swing * sin(omega t + phase) along ``turn``, integrated
        wobble = swing * (math.cos(phase) - np.cos(omega * t + phase)) / omega
        return np.stack([vx * t + wobble * math.cos(turn), vy * t + wobble * math.sin(turn)], axis=1)

    crop = (slice(margin, -margin), slice(margin, -margin))
    sharp, blurred = [], []
    for k in (0, 1):  # each exposure ends at its frame's time
        kernel, (cx, cy) = smear(path, k - share, k)
        sharp.append(moved(photo, cx, cy))
        blurred.append(cv2.filter2D(sharp[-1].astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT))
    previous, current, second = noisy_pair(blurred, sigma, crf, rng, crop)
    truth = deg.blur_descriptor(deg.blur_moments(kernel)) if kernel.size > 1 else (0.0, 0.0, 0.0)
    return previous, current, second, sharp[1][crop], truth, (vx, vy, share, crf)


def noisy_pair(blurred, sigma, crf, rng, crop=(slice(None), slice(None))):
    """Two blurred frames through sensor noise, ``crop`` and H.264, and another noise draw of the second."""
    draws = []
    for _ in range(2):
        noisy = [np.clip(deg.add_sensor_noise(b, sigma, 0.0, rng) + 0.5, 0, 255).astype(np.uint8)[crop]
                 for b in blurred]
        draws.append(deg.h264_roundtrip(noisy, crf))
    return draws[0][0], draws[0][1], draws[1][1]


def clip_draw(frames, t, rng, steps=16):
    """Frames ``t - 1`` and ``t`` of a real clip smeared along their own motion (a blur that follows
    the clip's real, spatially varying motion: parallax, moving objects), then noise and H.264.

    With ``frame_k(x) ~ frame_{k-1}(x + flow(x))`` and the motion straight over a frame interval,
    pixel ``x`` at ``a`` of an interval before frame ``k`` shows ``frame_k(x - a flow(x))``: the
    exposure (the last ``share`` of the interval) averages those, and the sharp target is the picture
    at the exposure's middle, ``a = share / 2``. ``truth``: a line along the median motion x the share
    (the blur is not one kernel)."""
    share, sigma, crf = rng.uniform(0.3, 1.0), rng.uniform(2.0, 8.0), int(rng.integers(20, 31))
    blurred, sharp = [], None
    h, w = frames[t].shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=2)
    for k in (t - 1, t):
        flow = dense_flow(frames[k], frames[k - 1])  # frames[k](x) ~ frames[k-1](x + flow)
        image = frames[k].astype(np.float32)
        total = np.zeros_like(image)
        for a in np.linspace(0.0, share, steps):  # where each point was during the exposure
            where = (grid - np.float32(a) * flow).astype(np.float32)
            total += cv2.remap(image, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        blurred.append(total / steps)
        middle = (grid - np.float32(share / 2.0) * flow).astype(np.float32)
        sharp = cv2.remap(frames[k], middle, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    fx, fy = -np.median(flow.reshape(-1, 2), axis=0)
    truth = line_descriptor(math.hypot(fx, fy) * share, math.degrees(math.atan2(fy, fx)))
    previous, current, second = noisy_pair(blurred, sigma, crf, rng)
    return previous, current, second, sharp, truth, (fx, fy, share, crf)


def consistent(flow, back, tolerance=1.0):
    """Where the flow is trustworthy: following ``flow`` (current to previous) and then ``back``
    (previous to current) returns within ``tolerance`` px (a forward-backward check; DIS gives no
    confidence of its own)."""
    returned = warp(back, Flow(flow, flow.shape))  # back(x + flow(x)), as the runtime warps state
    return np.linalg.norm(flow + returned, axis=2) < tolerance


def tiled(model, x, flow, tile, told, level, reliable=None):
    """``x`` [1,3,H,W] through one filter per ``tile``-pixel tile, each predicted from
    ``told(speed, angle)`` of the tile's median motion (``flow``: HxWx2, current to previous).
    ``reliable`` (HxW bool, :func:`consistent`): the median over those pixels only, and a tile with
    fewer than half of them is told "no blur"."""
    _, _, h, w = x.shape
    half = model.size // 2
    padded = torch.nn.functional.pad(x, (half, half, half, half), mode="reflect")
    out = torch.empty_like(x)
    level = torch.tensor([level], dtype=torch.float32)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(h, top + tile), min(w, left + tile)
            vectors = flow[top:bottom, left:right].reshape(-1, 2)
            if reliable is not None:
                vectors = vectors[reliable[top:bottom, left:right].reshape(-1)]
            if len(vectors) < 0.5 * (bottom - top) * (right - left):  # under half of the tile trusted
                descriptor = (0.0, 0.0, 0.0)
            else:
                fx, fy = -np.median(vectors, axis=0)
                descriptor = told(math.hypot(fx, fy), math.degrees(math.atan2(fy, fx)))
            with torch.no_grad():
                taps = model(gf.inputs_of("told", None, torch.tensor([descriptor], dtype=torch.float32), level))
                piece = padded[:, :, top:bottom + 2 * half, left:right + 2 * half]
                out[:, :, top:bottom, left:right] = torch.nn.functional.conv2d(
                    piece.reshape(3, 1, *piece.shape[2:]), taps[:, None]).reshape(1, 3, bottom - top, right - left)
    return gf.to_uint8(out)


def told_filter(state):
    """A saved ``--mode told --level`` frame filter (its whitening comes with its state)."""
    size = state["size"]
    model = gf.FilterPredictor(1 + 3, size, precondition=torch.eye(size * size))
    model.load_state_dict(state["state_dict"])
    return model.eval()


def through(model, x, descriptor, level):
    """``x`` [1,3,H,W] through the filter ``model`` predicts from ``descriptor`` and ``level``, as uint8."""
    with torch.no_grad():
        taps = model(gf.inputs_of("told", None, torch.tensor([descriptor], dtype=torch.float32),
                                  torch.tensor([level], dtype=torch.float32)))
        out = gf.apply(x, taps)
    return gf.to_uint8(out)


METHODS = ("flow, share known", "flow direction, estimated size", "flow-bounded estimate", "patch estimator",
           "no blur", "bounded at half the interval")


def describe(previous, current, share, level, estimator, saved, guesses=(), patches=None):
    """``{method: descriptor}`` of frame ``current`` (:data:`METHODS`, then a line along the flow for
    each guessed share); ``share``: the true exposure share; ``patches``: tiles the estimator reads."""
    from blur_estimate import frame_descriptor

    flow = dense_flow(current, previous)
    h, w = flow.shape[:2]
    fx, fy = -np.median(flow[h // 4:-h // 4, w // 4:-w // 4].reshape(-1, 2), axis=0)
    speed, angle = math.hypot(fx, fy), math.degrees(math.atan2(fy, fx))
    patch = frame_descriptor(estimator, current, saved["patch"], patches or saved["patches"], level)
    size = max(0.0, patch[0])
    found = dict(zip(METHODS, (line_descriptor(speed * share, angle), oriented(size, angle),
                               bounded(size, speed, angle), patch, (0.0, 0.0, 0.0), bounded(size, speed * 0.5, angle))))
    found.update(("flow, share %g" % g, line_descriptor(speed * g, angle)) for g in guesses)
    return found


def training_set(folders, count, crop, rng, estimator, saved):
    """``count`` draws (a quarter still) of random ``crop``-pixel pieces of the photos in ``folders``:
    degraded frame 2, sharp frame 2, noise level, CRF, and each method's descriptor (:func:`describe`)."""
    paths = sorted(p for folder in folders for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                   if p.lower().endswith((".png", ".jpg", ".jpeg")))
    if not paths:
        raise SystemExit("no photos under %s" % ", ".join(folders))
    xs, ys, levels, crfs, found = [], [], [], [], []
    margin, started = 24, time.time()
    while len(xs) < count:
        photo = cv2.imread(paths[int(rng.integers(len(paths)))])
        side = crop + 2 * margin
        if photo is None or min(photo.shape[:2]) < side:
            continue
        top, left = int(rng.integers(photo.shape[0] - side + 1)), int(rng.integers(photo.shape[1] - side + 1))
        piece = np.ascontiguousarray(photo[top:top + side, left:left + side, ::-1])
        previous, current, second, sharp, truth, (_, _, share, crf) = draw(piece, rng, margin, rng.random() < 0.25)
        level = noiselevel.of_two_frames(current, second)
        found.append(describe(previous, current, share, level, estimator, saved, patches=4))
        xs.append(current)
        ys.append(sharp)
        levels.append(level)
        crfs.append(crf)
        if len(xs) % 500 == 0:
            print("rendered %d crops (%.0f s)" % (len(xs), time.time() - started), file=sys.stderr, flush=True)
    return np.stack(xs), np.stack(ys), np.asarray(levels, np.float32), crfs, found


def train_filter(xs, ys, levels, descriptors, steps, lr=3e-3, batch=16, size=9, seed=0):
    """A told, whitened ``size x size`` filter (global_filter.py's) trained on these descriptors."""
    model = gf.FilterPredictor(1 + 3, size, precondition=gf.whitening(xs, size))
    optim = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optim, steps)
    rng, margin, started = np.random.default_rng(seed), size // 2, time.time()
    told = torch.tensor(descriptors, dtype=torch.float32)
    for step in range(1, steps + 1):
        picks = rng.integers(len(xs), size=batch)
        x = torch.from_numpy(xs[picks]).permute(0, 3, 1, 2).float() / 255.0
        y = torch.from_numpy(ys[picks]).permute(0, 3, 1, 2).float() / 255.0
        loss = gf.fit_step(model, optim, schedule, x, y,
                           gf.inputs_of("told", x, told[picks], torch.from_numpy(levels[picks])), margin)
        if step % 500 == 0 or step == steps:
            print("step %d loss %.5f (%.0f s)" % (step, loss.item(), time.time() - started), file=sys.stderr, flush=True)
    return model.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", required=True, metavar="DIR", help="held-out photos (runs/kodak/kodak-eval)")
    parser.add_argument("--draws", type=int, default=3, help="draws per photo")
    parser.add_argument("--estimator", required=True, help="blur_estimate.py --save file")
    parser.add_argument("--after", default=None, metavar="STUDENT", help="score this student first")
    parser.add_argument("--filter", default=None, help="global_filter.py --mode told --save file")
    parser.add_argument("--blind-filter", default=None,
                        help="also score this filter (global_filter.py --mode told --estimator ... --save) given "
                             "the patch estimate it was trained on: the picture-only pipeline")
    parser.add_argument("--tremor", type=float, default=0.5,
                        help="the hand tremor's largest speed, as a share of the drift's (0: a steady pan)")
    parser.add_argument("--stills", type=int, default=1, help="draws per photo from a camera that does not move")
    parser.add_argument("--clips", default=None, metavar="DIR",
                        help="also real clips (*.mp4, or folders of numbered PNG frames), each frame smeared along its own "
                             "motion (clip_draw)")
    parser.add_argument("--clip-draws", type=int, default=4, help="frames drawn per clip")
    parser.add_argument("--tiles", type=int, default=0, metavar="PX",
                        help="also score one filter per PX-pixel tile, told the tile's median flow")
    parser.add_argument("--stage", nargs="*", default=[], metavar="FILE",
                        help="also score the runtime's motion deblur stage (edgerestore.runtime.framefilter) with each "
                             "of these .filter.npz files, after --after, per --tiles px tile (default 96)")
    parser.add_argument("--stage-luma", action="store_true",
                        help="also score each --stage with the filter's correction of the luma added to every colour")
    parser.add_argument("--share-guess", default="0.4,0.65,1", metavar="S1,S2,...",
                        help="exposure shares to guess instead of the true one (default: %(default)s)")
    parser.add_argument("--train", nargs="*", default=[], choices=("share", "bounded", "half"),
                        help="also train a told filter on motion-blurred crops of the --data photos, given a "
                             "line along the flow x the true share ('share'), the flow-bounded estimate "
                             "('bounded') or the estimate bounded at half the interval ('half', the runtime "
                             "stage's default), and score it given the same")
    parser.add_argument("--train-after", action="store_true",
                        help="train on the --after student's outputs (what the filter is applied to), not on the "
                             "degraded crops")
    parser.add_argument("--data", nargs="+", default=["../shared/data/train", "../shared/data/train_photos"])
    parser.add_argument("--crops", type=int, default=4000, help="training crops (--train)")
    parser.add_argument("--steps", type=int, default=3000, help="training steps (--train)")
    parser.add_argument("--save", default=None, metavar="PREFIX", help="write each trained filter to PREFIX-<kind>.pt")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if bool(args.after) != bool(args.filter):
        parser.error("--after and --filter go together: a student, then a told filter")
    if (args.tiles or args.blind_filter) and not args.after:
        parser.error("--tiles and --blind-filter score filters after a student: give --after and --filter too")
    for flag in ("photos", "estimator", "after", "filter", "blind_filter", "clips", "stage"):
        for path in getattr(args, flag) if flag == "stage" else [getattr(args, flag)]:
            if path and not os.path.exists(path):
                parser.error("--%s %s does not exist" % (flag.replace("_", "-"), path))
    if args.stage and not args.after:
        parser.error("--stage runs after a student: give --after and --filter too")
    try:
        guesses = [float(g) for g in args.share_guess.split(",") if g.strip()]
    except ValueError:
        parser.error("--share-guess takes shares separated by commas, e.g. 0.4,0.65,1")
    torch.set_num_threads(args.threads)
    from blur_estimate import load_estimator

    estimator, saved = load_estimator(args.estimator)
    trained = {}
    if args.train:
        if not args.after:
            parser.error("--train scores what it trains: give --after and --filter too")
        xs, ys, levels, crfs, found = training_set(args.data, args.crops, 128, np.random.default_rng(7), estimator,
                                                   saved)
        if args.train_after:  # the filter learns to follow the student, as it is scored
            from codec_input import restore

            from edgerestore.models.checkpoint import load_student

            first = load_student(args.after)[0].eval()
            xs = np.stack([restore(first, x, level, codecinput.strengths("h264", h264_qp=float(crf)))
                           for x, level, crf in zip(xs, levels, crfs)])
        for kind in args.train:
            key = {"share": METHODS[0], "bounded": METHODS[2], "half": METHODS[5]}[kind]
            label = "%s, the filter trained on it%s" % (key, " after the student" * args.train_after)
            trained[label] = (train_filter(xs, ys, levels, [f[key] for f in found], args.steps), key)
            if args.save:
                torch.save({"mode": "told", "size": 9, "state_dict": trained[label][0].state_dict()},
                           "%s-%s.pt" % (args.save, kind))
    names = sorted(n for n in os.listdir(args.photos) if n.lower().endswith((".png", ".jpg")))
    if not names:
        parser.error("no photos in %s" % args.photos)
    rng = np.random.default_rng(2026)
    methods = METHODS + tuple("flow, share %g" % g for g in guesses)
    rows = []  # (truth, {method: descriptor}, previous, current, sharp, level, crf, share, group)
    for name in names:
        photo = cv2.imread(os.path.join(args.photos, name))[:, :, ::-1].copy()
        for n in range(args.draws + args.stills):
            still = n >= args.draws
            previous, current, second, sharp, truth, (vx, vy, share, crf) = draw(photo, rng, still=still, tremor=args.tremor)
            level = noiselevel.of_two_frames(current, second)
            found = describe(previous, current, share, level, estimator, saved, guesses)
            rows.append((truth, found, previous, current, sharp, level, crf, share, "still" if still else "moving"))
        print("%s: %d draws" % (name, len(rows)), file=sys.stderr, flush=True)
    clips = []
    if args.clips:  # videos, and folders of numbered frames
        clips = sorted(glob.glob(os.path.join(args.clips, "*.mp4")) + [
            d for d in glob.glob(os.path.join(args.clips, "*")) if os.path.isdir(d) and glob.glob(os.path.join(d, "*.png"))])
    from edgerestore.distill.data import read_video

    for path in clips:
        if os.path.isdir(path):
            frames = [cv2.imread(f)[:, :, ::-1].copy() for f in sorted(glob.glob(os.path.join(path, "*.png")))]
        else:
            frames = read_video(Path(path), 1, 1000)
        for t in np.linspace(2, len(frames) - 1, args.clip_draws).astype(int):
            previous, current, second, sharp, truth, (_, _, share, crf) = clip_draw(frames, int(t), rng)
            level = noiselevel.of_two_frames(current, second)
            found = describe(previous, current, share, level, estimator, saved, guesses)
            rows.append((truth, found, previous, current, sharp, level, crf, share, "real clips"))
        print("%s: %d draws" % (path, len(rows)), file=sys.stderr, flush=True)
    groups = [(label, [r for r in rows if r[-1] == label]) for label in ("moving", "still", "real clips")]
    groups = [(label, group) for label, group in groups if group]
    print("%s (%d photos%s); descriptor RMS error (size, x/y, diagonal; for the real clips against a line along "
          "their median motion):\n" % (" and ".join("%d %s draws" % (len(g), label) for label, g in groups),
                                       len(names), ", %d clips" % len(clips) if clips else ""))
    print("| descriptor | %s |\n|---|%s" % (" | ".join(label for label, _ in groups), "---|" * len(groups)))
    for method in methods:
        cells = []
        for _, group in groups:
            errors = np.array([np.subtract(found[method], truth) for truth, found, *_ in group])
            cells.append("%.3f" % float(np.sqrt((errors ** 2).mean())))
        print("| %s | %s |" % (method, " | ".join(cells)))
    if not args.after:
        return
    from codec_input import restore

    from edgerestore.models.checkpoint import load_student

    student = load_student(args.after)[0].eval()
    state = torch.load(args.filter)
    size = state["size"]
    model = told_filter(state)
    blind = told_filter(torch.load(args.blind_filter)) if args.blind_filter else None
    from edgerestore.runtime.framefilter import TILE, FrameFilter, MotionDeblur

    stages = [(os.path.basename(f) + ", luma" * luma, MotionDeblur(FrameFilter.load(f), args.tiles or TILE, luma=luma))
              for f in args.stage for luma in (False, True)[:1 + args.stage_luma]]
    print("\n| %s, then a told %dx%d filter given | %s |\n|---|%s"
          % (os.path.basename(args.after), size, size, " | ".join("%s: mean gain dB (worst)" % label
                                                                    for label, _ in groups), "---|" * len(groups)))
    gains = {}  # method -> [(gain, group)]
    for truth, found, previous, current, sharp, level, crf, share, group in rows:
        # told its noise level and codec as the level / codec presets' runtime is (the CRF for the QP)
        first = restore(student, current, level, codecinput.strengths("h264", h264_qp=float(crf)))
        x = torch.from_numpy(np.ascontiguousarray(first)).permute(2, 0, 1)[None].float() / 255.0
        base = psnr(current, sharp)
        gains.setdefault("(no filter)", []).append((psnr(first, sharp) - base, group))
        runs = [(model, method, descriptor) for method, descriptor in [("truth", truth)] + list(found.items())]
        if blind is not None:
            runs.append((blind, "patch estimator, --blind-filter", found[methods[3]]))
        runs += [(net, label, found[key]) for label, (net, key) in trained.items()]
        for predictor, method, descriptor in runs:
            restored = through(predictor, x, descriptor, level)
            gains.setdefault(method, []).append((psnr(restored, sharp) - base, group))
        for label, stage in stages:  # the runtime's stage, as a video stream meets it: the previous frame first
            stage.reset("draw")
            stage.motion(previous, "draw")
            restored = stage(first, current, "draw", level)
            gains.setdefault("runtime stage, %s, %d-px tiles" % (label, stage.tile), []).append(
                (psnr(restored, sharp) - base, group))
            stage.reset("draw")  # the same, told the exposure as a camera that reports it tells it
            stage.motion(previous, "draw")
            restored = stage(first, current, "draw", level, exposure=share)
            gains.setdefault("runtime stage, %s, %d-px tiles, told the exposure" % (label, stage.tile), []).append(
                (psnr(restored, sharp) - base, group))
        if args.tiles:  # one filter per tile, told the tile's own motion
            flow = dense_flow(current, previous)
            reliable = consistent(flow, dense_flow(previous, current))
            size = max(0.0, found[METHODS[3]][0])
            per_tile = (("flow x share", lambda length, a, share=share: line_descriptor(length * share, a)),
                        ("flow-bounded", lambda length, a, size=size: bounded(size, length, a)),
                        # the estimate capped by the smear of the exposure, not of the whole interval: what a
                        # camera that reports its exposure time allows
                        ("exposure-bounded", lambda length, a, size=size, share=share: bounded(size, length * share, a)),
                        ("bounded at half the interval", lambda length, a, size=size: bounded(size, length * 0.5, a)))
            for name, told in per_tile:
                method = "%s, per %d-px tile" % (name, args.tiles)
                restored = tiled(model, x, flow, args.tiles, told, level)
                gains.setdefault(method, []).append((psnr(restored, sharp) - base, group))
                restored = tiled(model, x, flow, args.tiles, told, level, reliable)
                gains.setdefault(method + ", checked forward-backward", []).append((psnr(restored, sharp) - base, group))
    for method, values in gains.items():
        cells = []
        for label, _ in groups:
            picked = [gain for gain, group in values if group == label]
            cells.append("%+.3f (%+.2f)" % (float(np.mean(picked)), float(np.min(picked))))
        print("| %s | %s |" % (method, " | ".join(cells)))

if __name__ == "__main__":
    main()
