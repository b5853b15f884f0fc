"""Run a source through a model into sinks until the source ends or someone stops it.

:func:`run` is what ``edgerestore run`` (and the preview, and later the daemon) call: URIs in,
summary out, a statistics dict every few seconds in between. Everything it opens it closes:
sinks are finalised and the source released whatever happens. Python 3.6-safe.
"""

import signal
import threading
from collections import namedtuple

from edgerestore.runtime.artifacts import DEFAULT_MODEL, load_first, resolve
from edgerestore.runtime.pipeline import Pipeline
from edgerestore.runtime.sinks import open_sink
from edgerestore.runtime.sources import open_source


def open_backend(model, backend=None, threads=None, frame_size=None, **options):
    """A loaded backend for ``model`` (anything :func:`~edgerestore.runtime.artifacts.resolve`
    takes), or None for ``model="none"``. ``frame_size`` (width, height) steers a bundle's choice;
    ``options`` reach the backends that declare them."""
    candidates = resolve(model, frame_size=frame_size, backends=backend, settings=options)
    if not candidates:
        return None
    return load_first(candidates, threads)[0]


class _StatsFanout(object):
    """Send each statistics dict to the caller and to sinks that show statistics (http)."""

    def __init__(self, sinks, on_stats):
        self.targets = [sink.set_stats for sink in sinks if hasattr(sink, "set_stats")]
        if on_stats is not None:
            self.targets.append(on_stats)

    def __call__(self, stats):
        for target in self.targets:
            target(stats)


RunOptions = namedtuple("RunOptions", [
    "backend", "threads", "providers",                 # which backend runs the model, with what
    "stats_interval", "on_stats", "on_frame", "on_start",  # what the caller hears, and when
    "transform", "live", "queue_size", "warmup", "bypass",  # how the pipeline runs
    "max_frames", "duration", "handle_signals",        # when it stops
    "noise_level",                                     # what a noise-level model is told
    "deblur", "exposure",                              # the stage after the model, and its exposure
])
"""How :func:`run` runs; every field has a default (``RunOptions()._replace(threads=2)``)."""
RunOptions.__new__.__defaults__ = (None, None, None, 5.0, None, None, None, None, None, 2, True, False,
                                   None, None, False, "auto", "none", "auto")


def run(source, sinks, model=DEFAULT_MODEL, options=None, **changes):
    """Run ``source`` (a URI or an open source) through ``model`` into ``sinks`` (URIs or open sinks),
    as ``options`` (a :data:`RunOptions`, with ``changes`` to its fields on top) say.

    The source and the sinks are closed at the end, also those passed in already open.

    Returns the summary statistics plus ``backend_info``. ``on_start(pipeline)`` is called once
    everything is open (the preview keeps the pipeline to switch bypass on and off); ``duration``
    stops after that many seconds; ``handle_signals`` makes SIGTERM/SIGINT stop cleanly (only
    from the main thread).
    """
    opts = (options or RunOptions())._replace(**changes)
    if isinstance(sinks, str):
        sinks = [sinks]
    opened_source = open_source(source) if isinstance(source, str) else source
    opened_sinks = []
    try:
        settings = {"providers": opts.providers} if opts.providers else {}
        engine = open_backend(model, opts.backend, opts.threads, frame_size=opened_source.size, **settings)
        if engine is not None:
            engine.set_noise_level(opts.noise_level)
            engine.set_deblur(opts.deblur)
            engine.set_exposure(opts.exposure)
        for sink in sinks:
            opened_sinks.append(
                open_sink(sink, fps=opened_source.fps, size=opened_source.size) if isinstance(sink, str) else sink)
        if engine is not None and opts.warmup and opened_source.size:
            width, height = opened_source.size
            engine.warmup(height, width)
        pipeline = Pipeline(opened_source, engine, opened_sinks, live=opts.live, queue_size=opts.queue_size,
                            max_frames=opts.max_frames, stats_interval=opts.stats_interval,
                            on_stats=_StatsFanout(opened_sinks, opts.on_stats), on_frame=opts.on_frame,
                            transform=opts.transform)
        pipeline.bypass = opts.bypass
        if opts.on_start is not None:
            opts.on_start(pipeline)
        timer = None
        if opts.duration:
            timer = threading.Timer(opts.duration, pipeline.stop)
            timer.daemon = True
            timer.start()
        previous = _install_signals(pipeline) if opts.handle_signals else {}
        try:
            summary = pipeline.run()
        finally:
            if timer is not None:
                timer.cancel()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    except BaseException:
        for sink in opened_sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
        raise
    finally:
        opened_source.close()
    summary["backend_info"] = engine.info() if engine is not None else {"backend": "none"}
    return summary


def _install_signals(pipeline):
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}

    def stop(signum, _frame):
        pipeline.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, stop)
    return previous
