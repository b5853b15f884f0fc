"""Decode speed of PyAV's thread types on video files (why the video source uses slice threads).

    python benchmarks/decode_threads.py CLIP [CLIP ...] [--rounds 3]

Rounds interleave the thread types so a busy machine slows each alike.
"""

import argparse
import time


def decode_fps(clips, thread_type):
    import av

    start, frames = time.perf_counter(), 0
    for clip in clips:
        with av.open(clip) as container:
            stream = container.streams.video[0]
            if thread_type == "NONE":
                stream.thread_count = 1
            else:
                stream.thread_type = thread_type
            for frame in container.decode(stream):
                frame.to_ndarray(format="rgb24")
                frames += 1
    return frames / (time.perf_counter() - start), frames


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", help="video files")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    kinds = ("SLICE", "FRAME", "AUTO", "NONE")
    best = {kind: 0.0 for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            fps, frames = decode_fps(args.clips, kind)
            best[kind] = max(best[kind], fps)
    print("%d frames; best of %d rounds (frames/s, RGB out):" % (frames, args.rounds))
    for kind in kinds:
        print("  %-5s %6.1f  (%.2fx slice)" % (kind, best[kind], best[kind] / best["SLICE"]))


if __name__ == "__main__":
    main()
