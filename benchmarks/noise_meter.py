"""What the runtime's ``auto`` noise level reads on real clips, clean and with white noise added.

    python benchmarks/noise_meter.py                      # the clean clips of ../shared/data
    python benchmarks/noise_meter.py clip.mp4 --frames 60 --sigmas 0,3,5,10
    python benchmarks/noise_meter.py --timing            # ms per 1080p frame, as the runtime runs it

For each clip and noise sigma (levels of 255, added to every frame): the level
:class:`edgerestore.noiselevel.StaticNoiseMeter` reads after ``--frames`` frames (as the runtime
runs it: one reading every 10 frames), how many readings it had, and its time per frame. A
perfect meter reads sigma / 10 on a clean clip with noise added (plus the clip's own noise, in
quadrature).
"""

import argparse
import glob
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edgerestore.benchmarks.evalset import _shared_data_dir  # noqa: E402
from edgerestore.noiselevel import StaticNoiseMeter  # noqa: E402


def default_clips():
    clean, degraded = _shared_data_dir("video_clean"), _shared_data_dir("video")
    return sorted(glob.glob(os.path.join(clean, "*", "*.mp4")) if clean else []) + \
        sorted(glob.glob(os.path.join(degraded, "*.mp4")) if degraded else [])


def read_frames(path, count):
    import av

    with av.open(path) as container:
        return [f.to_ndarray(format="rgb24") for _, f in zip(range(count), container.decode(video=0))]


def timing(every, frames=100):
    from edgerestore.export import calibration

    photo = calibration.build((1080, 1920)).holdout[0][0]
    rng = np.random.default_rng(0)
    noisy = [np.clip(photo + rng.normal(0.0, 5.0, photo.shape), 0, 255).astype(np.uint8) for _ in range(4)]
    meter = StaticNoiseMeter(every=every)
    times = []
    for n in range(frames):
        start = time.perf_counter()
        meter.update(noisy[n % 4])
        times.append(1000.0 * (time.perf_counter() - start))
    reading = [t for n, t in enumerate(times) if n % every == 1]
    print("1080p, %d frames: %.2f ms per frame on average, %.1f ms on a frame that reads; level %.2f (sigma 5 added)"
          % (frames, float(np.mean(times)), float(np.mean(reading)), meter.level))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", help="video files (default: the clean and degraded clips of ../shared)")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--sigmas", default="0,3,5,10", help="white noise added to each frame (levels of 255)")
    parser.add_argument("--every", type=int, default=10, help="one reading every N frames (the runtime's: 10)")
    parser.add_argument("--timing", action="store_true",
                        help="only time the meter on 100 noisy 1080p frames (the package's calibration photo)")
    args = parser.parse_args()
    if args.timing:
        return timing(args.every)
    clips = args.clips or default_clips()
    if not clips:
        parser.error("no clips given and none found in ../shared/data")
    rng = np.random.default_rng(0)
    print("| clip | size | sigma added | level read | readings | ms per frame |")
    print("|---|---|---|---|---|---|")
    for path in clips:
        frames = read_frames(path, args.frames)
        for sigma in [float(s) for s in args.sigmas.split(",")]:
            meter = StaticNoiseMeter(every=args.every)
            seconds = 0.0
            for frame in frames:
                if sigma:
                    frame = np.clip(frame + rng.normal(0.0, sigma, frame.shape) + 0.5, 0, 255).astype(np.uint8)
                start = time.perf_counter()
                meter.update(frame)
                seconds += time.perf_counter() - start
            print("| %s | %dx%d | %g | %.2f | %d | %.2f |" % (
                os.path.basename(path), frames[0].shape[1], frames[0].shape[0], sigma, meter.level,
                meter.readings, 1000.0 * seconds / len(frames)))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
