"""Restore a file, an image or a folder of images: the offline path of the runtime.

Python 3.6-safe (the same code runs on a board for files).
"""

import os

from edgerestore.errors import UnsupportedInputError
from edgerestore.runtime.artifacts import load_first, resolve
from edgerestore.runtime.backends.base import parse_codec, parse_noise_level
from edgerestore.runtime.framefilter import parse_deblur, parse_exposure
from edgerestore.runtime.pipeline import Pipeline
from edgerestore.runtime.sinks import open_sink
from edgerestore.runtime.sinks.quality import QualitySink
from edgerestore.runtime.sinks.video import VideoFileSink
from edgerestore.runtime.sources import open_source
from edgerestore.runtime.sources.video import VideoFileSource
from edgerestore.runtime.uri import IMAGE_SUFFIXES, parse_uri


def load_backend(model, backend=None, threads=None, frame_size=None):
    """Load the first way to run ``model`` (a preset, file, bundle or checkpoint) that works here;
    ``backend`` forces one, ``frame_size`` (width, height) steers a bundle's choice."""
    return load_first(resolve(model, frame_size=frame_size, backends=backend), threads)[0]


def _output_options(source, output):
    """Sink options that keep the input's fps and file names."""
    options = {"fps": source.fps, "size": source.size}
    names = getattr(source, "paths", None)
    if names and len(names) > 1:
        options["names"] = [os.path.splitext(os.path.basename(p))[0] + ".png" for p in names]
    return options


def _check_pairing(source, output):
    out = parse_uri(output)
    single_image_out = out.scheme == "image" or os.path.splitext(out.location)[1].lower() in IMAGE_SUFFIXES
    if single_image_out and (source.frame_count is None or source.frame_count > 1):
        raise UnsupportedInputError(
            "%s is a single image but the input has %s frames — give a .mp4 or a folder"
            % (output, source.frame_count or "many")
        )


def _add_copy_stream(container, template):
    add = getattr(container, "add_stream_from_template", None)  # PyAV >= 12
    return add(template) if add is not None else container.add_stream(template=template)


def copy_audio(source_path, video_path):
    """Put the audio of ``source_path`` into the restored ``video_path`` beside its video, packets
    copied as they are (no re-encoding), in place. Returns how many audio streams were copied (0:
    the input has none, and the file is untouched)."""
    import av

    with av.open(source_path) as source:
        if not source.streams.audio:
            return 0
    tmp = video_path + ".audio.part"
    try:
        with av.open(source_path) as source, av.open(video_path) as video, \
                av.open(tmp, "w", format=video.format.name.split(",")[0]) as out:
            streams = {}
            video_in = video.streams.video[0]
            streams[("v", video_in.index)] = _add_copy_stream(out, video_in)
            for audio in source.streams.audio:
                streams[("a", audio.index)] = _add_copy_stream(out, audio)
            pending = [("v", video.demux(video_in)), ("a", source.demux(*source.streams.audio))]
            heads = [_next_packet(it) for _, it in pending]
            while any(head is not None for head in heads):
                # the packet that comes first in time, so the file is interleaved
                choice = min((i for i, head in enumerate(heads) if head is not None),
                             key=lambda i: float(heads[i].dts * heads[i].time_base))
                packet = heads[choice]
                packet.stream = streams[(pending[choice][0], packet.stream.index)]
                out.mux(packet)
                heads[choice] = _next_packet(pending[choice][1])
        os.replace(tmp, video_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return len(streams) - 1


def _next_packet(packets):
    for packet in packets:
        if packet.dts is not None:  # demux ends each stream with an empty flush packet
            return packet
    return None


def _same_path(input_path, output):
    """Whether ``output`` names ``input_path`` itself (a file, or the folder of images)."""
    target = parse_uri(output).location
    if not os.path.exists(target):
        return False
    try:
        return os.path.samefile(parse_uri(input_path).location, target)
    except OSError:
        return False


def check_paths(input_path, output):
    """Fail early (before loading a model) on a missing/unreadable input or an impossible output."""
    if _same_path(input_path, output):
        raise UnsupportedInputError("%s is the input itself: restoring would overwrite it; write to another "
                                    "path (e.g. restored_%s)" % (output, os.path.basename(str(output).rstrip("/"))))
    source = open_source(input_path)
    try:
        _check_pairing(source, output)
    finally:
        source.close()


def restore(input_path, output, model, backend=None, threads=None, reference=None,
            metrics_every=1, on_frame=None, on_start=None, audio=True, noise_level="auto", codec="auto",
            deblur="none", exposure="auto"):
    """Restore ``input_path`` into ``output`` with ``model`` (what ``--model`` takes).

    Returns a summary dict: ``frames``, end-to-end ``fps``, ``inference_ms`` (mean per frame),
    ``backend``, and with ``reference`` a ``quality`` block (input and restored vs reference).
    ``on_start(source)`` is called once the input is open (to size a progress bar). A video's
    audio is copied into a video output (``audio=False``: video only); ``audio`` in the summary
    says how many audio streams were. ``noise_level``: what a model with a noise-level input is
    given (:func:`~edgerestore.runtime.backends.base.parse_noise_level`); ``codec``: what a model with a
    codec input is told (:func:`~edgerestore.runtime.backends.base.parse_codec`; ``"auto"``: what the
    source reads off each frame); ``deblur``: ``"motion"`` runs the motion deblur stage after the model
    (:mod:`edgerestore.runtime.framefilter`), told ``exposure`` (``"auto"`` or the share of the frame interval).
    """
    check_paths(input_path, output)
    noise_level = parse_noise_level(noise_level)
    codec = parse_codec(codec)
    deblur = parse_deblur(deblur)
    exposure = parse_exposure(exposure)
    source = open_source(input_path)
    try:
        engine = load_backend(model, backend, threads, frame_size=source.size).set_noise_level(noise_level)
        engine.set_codec(codec)
        engine.set_deblur(deblur)
        engine.set_exposure(exposure)
        _check_pairing(source, output)
        if on_start is not None:
            on_start(source)
        sinks = [open_sink(output, **_output_options(source, output))]
        meter = None
        reference_source = None
        if reference is not None:
            reference_source = open_source(reference)
            meter = QualitySink(reference_source, every=metrics_every)
            sinks.append(meter)
        try:
            summary = Pipeline(source, engine, sinks, live=False, on_frame=on_frame).run()
        finally:
            if reference_source is not None:
                reference_source.close()
    finally:
        source.close()
    corrupt = getattr(source, "corrupt", 0) or 0
    result = {
        "frames": summary["frames"],
        "fps": summary["fps"],
        "inference_ms": engine.info()["mean_ms"],
        "backend": engine.info(),
        "output": getattr(sinks[0], "path", None) or output,  # a video never overwrites: maybe NAME.1.mp4
        "corrupt": corrupt,  # damaged packets of the input that were skipped
        "audio": 0,
    }
    if audio and result["frames"] and isinstance(source, VideoFileSource) and \
            isinstance(sinks[0], VideoFileSink) and os.path.isfile(sinks[0].path):
        result["audio"] = copy_audio(source.path, sinks[0].path)
    if meter is not None:
        result["quality"] = meter.result()
    return result
