"""Video files through PyAV (RGB straight from the decoder), OpenCV when PyAV is absent.

A damaged file is read to its end: a packet that does not decode is skipped and counted in
``corrupt`` (the restore summary, the service's stats and ``/metrics`` show the count), and a
demuxer that stumbles is asked for the next packet, up to :data:`MAX_DEMUX_ERRORS` times in a row.
Python 3.6-safe.
"""

import os

from edgerestore.codecinput import frame_codec
from edgerestore.errors import InputNotFoundError, UnsupportedInputError
from edgerestore.runtime.frames import Frame, as_rgb
from edgerestore.runtime.sources.base import Source

MAX_DEMUX_ERRORS = 50
"""Consecutive demuxer errors after which the rest of a file counts as unreadable."""


def _open_error(path, exc):
    return UnsupportedInputError(
        "cannot decode %s as a video (%s) — is it a video file? images and image folders work too"
        % (path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    )


class VideoFileSource(Source):
    """Frames of a video file, in order, with their presentation times."""

    def __init__(self, uri, loop=False, **_):
        self.path = uri.location
        self.loop = loop or uri.params.get("loop") in ("1", "true", "yes")
        if not os.path.isfile(self.path):
            raise InputNotFoundError("input %s does not exist" % self.path)
        self._container = None
        self._cap = None
        self.h264 = False
        self.corrupt = 0  # packets that did not decode (skipped)
        try:
            import av  # noqa: F401

            self._open_av()
        except ImportError:
            self._open_cv()

    def _open_av(self):
        import av

        try:
            self._container = av.open(self.path)
            if not self._container.streams.video:
                raise ValueError("no video stream")
        except Exception as exc:
            if self._container is not None:
                self._container.close()
                self._container = None
            raise _open_error(self.path, exc)
        stream = self._container.streams.video[0]
        # slice threads, not frame threads: with frame threads the frames in flight around a damaged
        # packet are lost, and on 2 cores slice threads decode 1080p H.264 as fast (docs/runtime.md)
        stream.thread_type = "SLICE"
        self.h264 = stream.codec_context.name == "h264"
        if self.h264:  # each frame's QP, for models with a codec input (edgerestore.codecinput)
            stream.codec_context.options = {"export_side_data": "venc_params"}
        self.fps = float(stream.average_rate) if stream.average_rate else None
        self.size = (stream.codec_context.width, stream.codec_context.height)
        self.frame_count = stream.frames or None

    def _open_cv(self):
        import cv2

        self._cap = cv2.VideoCapture(self.path)
        if not self._cap.isOpened():
            raise _open_error(self.path, ValueError("OpenCV cannot open it"))
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or None
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None

    def _decoded_av(self):
        """Every frame that decodes, packet by packet: a damaged packet is skipped and counted, a
        demuxer error retried, so one bad byte never ends the file early."""
        import av

        stream = self._container.streams.video[0]
        demux_errors = 0
        packets = self._container.demux(stream)
        while True:
            try:
                packet = next(packets)
                demux_errors = 0
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                demux_errors += 1
                self.corrupt += 1
                if demux_errors > MAX_DEMUX_ERRORS:
                    self.last_error = exc
                    return
                packets = self._container.demux(stream)  # carry on after the bad spot
                continue
            try:
                frames = packet.decode()  # an empty packet at the end flushes the decoder
            except av.error.FFmpegError as exc:
                self.corrupt += 1
                self.last_error = exc
                continue
            for frame in frames:
                yield frame

    def _frames_av(self):
        index = 0
        looped = False
        self.last_error = None
        while True:
            for frame in self._decoded_av():
                pts = float(frame.pts * frame.time_base) if frame.pts is not None else None
                yield Frame(frame.to_ndarray(format="rgb24"), index, pts, discontinuity=looped,
                            codec=frame_codec(frame) if self.h264 else None)
                looped = False
                index += 1
            if index == 0 and self.last_error is not None:
                raise _open_error(self.path, self.last_error)
            if not self.loop or index == 0:
                return
            self._container.seek(0)
            looped = True  # the clip starts over: a cut for models with state

    def _frames_cv(self):
        import cv2

        index = 0
        looped = False
        while True:
            ok, bgr = self._cap.read()
            if not ok:
                if self.loop and index:
                    self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    looped = True
                    continue
                return
            pts = index / self.fps if self.fps else None
            yield Frame(as_rgb(bgr, "bgr"), index, pts, discontinuity=looped)
            looped = False
            index += 1

    def __iter__(self):
        return self._frames_av() if self._container is not None else self._frames_cv()

    def close(self):
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None
