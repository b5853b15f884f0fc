"""``edgerestore run --source URI --sink URI [--sink URI...]``, or as a service:
``edgerestore run --config FILE`` / ``--service``. Python 3.6-safe.

Kept thin: a one-off run goes to :func:`edgerestore.runtime.runner.run`, the service to
:class:`edgerestore.runtime.daemon.Daemon` (same pipeline, resilient parts, config file, signals,
metrics). Imports nothing heavy until it runs.
"""

import click

from edgerestore.cli.flags import flags_object

SOURCE_HELP = ("Where frames come from: a video file or image folder, v4l2:///dev/video0, csi://0, "
               "picam://0, rtsp://..., test://pattern?size=1280x720&fps=30.")
DEBLUR_HELP = ("motion: after the model, sharpen each moving part of a video frame along the camera's motion, "
               "measured between frames (still frames and single images are left alone). Needs a model with a "
               "motion deblur filter: nano-codec.")
EXPOSURE_HELP = ("With --deblur motion: the camera's exposure as a share of the frame interval (1/60 s at 30 fps is "
                 "0.5), which bounds how far a frame can have smeared; auto: what the camera reports (picamera2), "
                 "else 0.5.")
SINK_HELP = ("Where restored frames go (repeatable): display://0, file://out.mp4, http://127.0.0.1:8080, "
             "v4l2loopback:///dev/video10, null://.")


# The flags a service reads (its config file's overrides); the last four mean nothing to a one-off run.
SERVICE_FLAGS = ("--source", "--sink", "--model", "--backend", "--providers", "--threads", "--noise-level", "--deblur", "--exposure",
                 "--stats-every",
                 "--http", "--resolution", "--log-level", "--log-file")
SERVICE_ONLY = SERVICE_FLAGS[-4:]
LISTS = ("--sink", "--backend", "--providers")


def stats_printer():
    """Print each statistics dict as one JSON line on stdout (also with --quiet: it is the output)."""
    from edgerestore.runtime.pipeline import stats_line

    def on_stats(stats):
        click.echo(stats_line(stats))

    return on_stats


@click.command()
@click.option("--source", "-i", default=None, help=SOURCE_HELP)
@click.option("--sink", "-o", "sinks", multiple=True, help=SINK_HELP + "  [default: null://]")
@click.option("--model", "-m", default=None,
              help="A preset with shipped weights, a model file (.onnx, .tflite...), a bundle folder (service), "
                   "or 'none' to pass frames through.  [default: nano]")
@click.option("--backend", "-b", default=None,
              help="Force a backend (default: the first available for the model); with --config/--service a "
                   "comma-separated order to fall back through, e.g. tflite,onnxruntime.")
@click.option("--providers", default=None,
              help="ONNX Runtime providers, best first: tensorrt,cuda,cpu (default: the best this build has).")
@click.option("--threads", type=int, default=None, help="Inference threads (default: all cores).")
@click.option("--noise-level", default=None,
              help="For a model with a noise-level input: auto (measured from the still parts of the picture, "
                   "frame to frame) or your camera's level (`edgerestore noise-level` measures it).  [default: auto]")
@click.option("--deblur", default=None, type=click.Choice(["none", "motion"]), help=DEBLUR_HELP + "  [default: none]")
@click.option("--exposure", default=None, help=EXPOSURE_HELP + "  [default: auto]")
@click.option("--stats-every", type=float, default=None, help="Seconds between JSON statistics lines.  [default: 5]")
@click.option("--frames", "max_frames", type=int, default=None, help="Stop after this many frames.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--loop", is_flag=True, help="Play a video file or image folder in a loop (like a camera).")
@click.option("--config", "-c", "config_path", default=None, type=click.Path(dir_okay=False),
              help="Run as a service with this TOML file (`edgerestore config init` writes one); flags given "
                   "here override it.")
@click.option("--service", is_flag=True,
              help="Run as a service without a file: reconnect the source, fall back between backends, retry "
                   "failed sinks, serve /metrics and /healthz, log JSON lines; never stop by itself.")
@click.option("--http", default=None,
              help="Service: address of the preview/metrics/health server (default 127.0.0.1:8080; 'off').")
@click.option("--resolution", default=None, help="Service: WIDTHxHEIGHT asked of the camera.")
@click.option("--log-level", default=None, type=click.Choice(["debug", "info", "warning", "error"]),
              help="Service: log level.  [default: info]")
@click.option("--log-file", default=None, help="Service: write the JSON-lines log to this file instead of stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@flags_object
def run(flags):
    """Run the restoration pipeline headless: SOURCE -> model -> every SINK.

    Prints one JSON line of statistics every --stats-every seconds (fps, latency p50/p95,
    drops, per-stage ms) and a summary line at the end. Stops when the source ends, after
    --frames/--duration, or on Ctrl-C / SIGTERM; files are always finalised.

    With --config FILE (or --service) it runs as a service instead: it never stops by itself
    (a lost camera is reconnected, a failing backend or sink does not stop the others),
    SIGTERM finalises every sink within 2 s, SIGHUP reloads FILE, the log is JSON lines, and
    http://127.0.0.1:8080 serves the preview, /metrics and /healthz. See docs/daemon.md.

    \b
    Examples:
      edgerestore run -i v4l2:///dev/video0 -o http://127.0.0.1:8080
      edgerestore run -i csi://0 -o display://0 -o file://drive.mp4
      edgerestore run -i picam://0 -o v4l2loopback:///dev/video10        # a webcam for Zoom/Meet
      edgerestore run -i clip.mp4 -o null:// --model nano.onnx --frames 300   # measure FPS
      EDGERESTORE_HTTP_TOKEN=... edgerestore run -i "test://pattern?size=1280x720" -o http://0.0.0.0:8080
      edgerestore run --config /etc/edgerestore/config.toml              # the service
      edgerestore run --service -i rtsp://cam/live -o file:///data/cam.mp4 -b tensorrt,onnxruntime
    """
    if flags.config_path or flags.service:
        from edgerestore.runtime.daemon import Daemon

        Daemon(flags.config_path, service_overrides(flags), max_frames=flags.max_frames, duration=flags.duration).run()
        return
    if not flags.source:
        raise click.UsageError("--source is required (or --config FILE to run as a service)")
    for flag in SERVICE_ONLY:
        if getattr(flags, _field(flag)) is not None:
            raise click.UsageError("%s is a service option: add --service or --config FILE" % flag)
    from edgerestore.runtime.backends.base import parse_noise_level
    from edgerestore.runtime.framefilter import parse_exposure
    from edgerestore.runtime.runner import RunOptions
    from edgerestore.runtime.runner import run as run_pipeline
    from edgerestore.runtime.sources import open_source

    parse_noise_level(flags.noise_level or "auto")  # a bad value fails before the camera opens
    parse_exposure(flags.exposure)

    opened = open_source(flags.source, loop=True) if flags.loop else open_source(flags.source)
    options = RunOptions(backend=flags.backend, threads=flags.threads, providers=flags.providers,
                         stats_interval=5.0 if flags.stats_every is None else flags.stats_every,
                         on_stats=stats_printer(), max_frames=flags.max_frames, duration=flags.duration,
                         handle_signals=True, noise_level=flags.noise_level or "auto",
                         deblur=flags.deblur or "none", exposure=flags.exposure or "auto")
    bar = None
    if not flags.quiet and opened.frame_count and not flags.loop:
        from tqdm import tqdm

        bar = tqdm(total=min(opened.frame_count, flags.max_frames or opened.frame_count), unit="frame",
                   desc="running", leave=False, disable=None)
        options = options._replace(on_frame=lambda frame: bar.update(1))
    try:
        summary = run_pipeline(opened, list(flags.sinks or ("null://",)), model=flags.model or "nano",
                               options=options)
    finally:
        if bar is not None:
            bar.close()
    if not flags.quiet:
        click.echo("%d frame(s), %s FPS, latency p50 %s ms, dropped %d" % (
            summary["frames"], summary["fps"], summary["latency_ms_p50"], summary["dropped"]), err=True)


def _split(value):
    return [part.strip() for part in value.split(",") if part.strip()]


def _field(flag):
    return "sinks" if flag == "--sink" else flag[2:].replace("-", "_")


def service_overrides(flags):
    """The flags that were given (``run``'s flags object), as overrides of the config file
    (``runtime.config.FLAGS``)."""
    overrides = {}
    for flag in SERVICE_FLAGS:
        value = getattr(flags, _field(flag))
        if flag in LISTS:
            value = (list(value) if flag == "--sink" else _split(value)) if value else None
        if value is not None:
            overrides[flag] = value
    return overrides
