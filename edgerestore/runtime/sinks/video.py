"""MP4/MKV files through PyAV (H.264 when libx264 is there), finalised whatever happens.

``close()`` flushes the encoder and writes the container trailer, so a run stopped by Ctrl-C,
SIGTERM or an exception still leaves a playable file. Odd frame sizes are padded by one
replicated row/column (4:2:0 needs even sizes). Python 3.6-safe.

``?fragment=1`` writes a fragmented MP4, a fragment every second, each flushed to the file as it
is made: a file cut short by a power loss, a SIGKILL or a full disk still plays up to its last
fragment (at most about 2 s are lost), where a classic MP4 — whose index is written at the end —
does not play at all. ``?format=mp4`` names the container when the path has no telling suffix
(``/dev/full`` in tests, a named pipe).

**A recording is never overwritten.** When the file exists (a restart after a crash, a reboot,
the watchdog), the new recording takes the first free name ``NAME.1.mp4``, ``NAME.2.mp4``...
beside it (the name is reserved atomically); :attr:`VideoFileSink.path` is the one written.
Device files (``/dev/...``) and pipes are written as they are.
"""

import os
from fractions import Fraction

import numpy as np

from edgerestore.errors import BackendUnavailableError, UnsupportedInputError
from edgerestore.runtime.sinks.base import Sink

CODECS = ("libx264", "h264", "mpeg4")  # first one this PyAV build can encode
FRAGMENTED_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
FRAGMENT_SECONDS = 1.0  # keyframe interval, hence fragment length, of fragmented files


def free_name(path):
    """``path`` if no file is there, else the first free ``stem.N.suffix`` beside it; the name is
    created (empty) at once, so two writers never pick the same one. Device files and pipes are
    returned as they are."""
    if os.path.exists(path) and not os.path.isfile(path):
        return path
    stem, suffix = os.path.splitext(path)
    candidate, number = path, 0
    while True:
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            return candidate
        except FileExistsError:
            number += 1
            candidate = "%s.%d%s" % (stem, number, suffix)


class VideoFileSink(Sink):
    name = "file"

    def __init__(self, uri, fps=None, size=None, crf=None, **_):
        try:
            import av
        except ImportError:
            raise BackendUnavailableError("writing video needs PyAV — pip install av")
        self._av = av
        self.requested = uri.location
        parent = os.path.dirname(os.path.abspath(self.requested))
        if not os.path.isdir(parent):
            os.makedirs(parent)
        self.path = free_name(self.requested)
        self.fps = Fraction(fps or uri.param("fps", 30.0, float)).limit_denominator(1001)
        self.crf = crf if crf is not None else uri.param("crf", 18, int)
        self.fragmented = uri.flag("fragment", False)
        # fragmented: every packet's bytes go to the file at once (not when a 256 KiB buffer fills)
        options = {"movflags": FRAGMENTED_MOVFLAGS, "flush_packets": "1"} if self.fragmented else {}
        try:
            self._container = av.open(self.path, mode="w", format=uri.params.get("format"), options=options)
        except Exception as exc:
            raise UnsupportedInputError("cannot write %s: %s" % (self.path, exc))
        self._stream = None
        self._failed = None  # the write error after which the muxer is left alone
        self.frames = 0

    def _open_stream(self, width, height):
        last_error = None
        for codec in CODECS:
            try:
                stream = self._container.add_stream(codec, rate=self.fps)
            except Exception as exc:  # codec not in this FFmpeg build
                last_error = exc
                continue
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            if self.fragmented:
                stream.codec_context.gop_size = max(1, int(round(float(self.fps) * FRAGMENT_SECONDS)))
            if codec == "libx264":
                stream.options = {"crf": str(self.crf), "preset": "veryfast"}
                if self.fragmented:  # no look-ahead: a frame reaches its fragment when it is made
                    stream.options["tune"] = "zerolatency"
            else:
                stream.bit_rate = 8000000
            self._stream = stream
            return
        raise BackendUnavailableError("no H.264/MPEG-4 encoder in this PyAV build: %s" % last_error)

    def write(self, frame):
        image = frame.image
        height, width = image.shape[:2]
        if self._stream is None:
            self._open_stream(width, height)
        if height % 2 or width % 2:
            image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        video_frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        video_frame.pts = self.frames
        video_frame.time_base = 1 / self.fps
        self._mux(self._stream.encode(video_frame))
        self.frames += 1

    def _mux(self, packets):
        """Write packets; after the first failure (a full disk) never touch the muxer again:
        PyAV (FFmpeg) crashes the process when muxing into an output whose write failed."""
        if self._failed is not None:
            raise UnsupportedInputError("%s cannot be written any more (%s)" % (self.path, self._failed))
        try:
            for packet in packets:
                self._container.mux(packet)
        except Exception as exc:
            self._failed = exc
            raise

    def close(self):
        if self._container is None:
            return
        try:
            if self._stream is not None and self._failed is None:
                self._mux(self._stream.encode())
        finally:
            self._container.close()
            self._container = None
