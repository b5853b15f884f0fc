"""``edgerestore run --source URI --sink URI [--sink URI...]``, or as a service:
``edgerestore run --config FILE`` / ``--service``. Python 3.6-safe.

Kept thin: a one-off run goes to :func:`edgerestore.runtime.runner.run`, the service to
:class:`edgerestore.runtime.daemon.Daemon` (same pipeline, resilient parts, config file, signals,
metrics). Imports nothing heavy until it runs.
"""

import click

SOURCE_HELP = ("Where frames come from: a video file or image folder, v4l2:///dev/video0, csi://0, "
               "picam://0, rtsp://..., test://pattern?size=1280x720&fps=30.")
SINK_HELP = ("Where restored frames go (repeatable): display://0, file://out.mp4, http://127.0.0.1:8080, "
             "v4l2loopback:///dev/video10, null://.")


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
def run(source, sinks, model, backend, providers, threads, stats_every, max_frames, duration, loop, config_path,
        service, http, resolution, log_level, log_file, quiet):
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
    if config_path or service:
        overrides = service_overrides(source=source, sinks=sinks, model=model, backend=backend, providers=providers,
                                      threads=threads, stats_every=stats_every, http=http, resolution=resolution,
                                      log_level=log_level, log_file=log_file)
        from edgerestore.runtime.daemon import Daemon

        Daemon(config_path, overrides, max_frames=max_frames, duration=duration).run()
        return
    if not source:
        raise click.UsageError("--source is required (or --config FILE to run as a service)")
    for flag, value in (("--http", http), ("--resolution", resolution), ("--log-level", log_level),
                        ("--log-file", log_file)):
        if value is not None:
            raise click.UsageError("%s is a service option: add --service or --config FILE" % flag)
    sinks = sinks or ("null://",)
    model = model or "nano"
    stats_every = 5.0 if stats_every is None else stats_every
    from edgerestore.runtime.runner import run as run_pipeline
    from edgerestore.runtime.sources import open_source

    opened = open_source(source, loop=True) if loop else open_source(source)
    bar = None
    on_frame = None
    if not quiet and opened.frame_count and not loop:
        from tqdm import tqdm

        bar = tqdm(total=min(opened.frame_count, max_frames or opened.frame_count), unit="frame",
                   desc="running", leave=False, disable=None)

        def on_frame(frame):
            bar.update(1)

    try:
        summary = run_pipeline(opened, list(sinks), model=model, backend=backend, threads=threads,
                               providers=providers, stats_interval=stats_every, on_stats=stats_printer(),
                               on_frame=on_frame, max_frames=max_frames, duration=duration, handle_signals=True)
    finally:
        if bar is not None:
            bar.close()
    if not quiet:
        click.echo("%d frame(s), %s FPS, latency p50 %s ms, dropped %d" % (
            summary["frames"], summary["fps"], summary["latency_ms_p50"], summary["dropped"]), err=True)


def _split(value):
    return [part.strip() for part in value.split(",") if part.strip()]


def service_overrides(source=None, sinks=(), model=None, backend=None, providers=None, threads=None,
                      stats_every=None, http=None, resolution=None, log_level=None, log_file=None):
    """The flags that were given, as overrides of the config file (``runtime.config.FLAGS``)."""
    given = {
        "--source": source,
        "--sink": list(sinks) if sinks else None,
        "--model": model,
        "--backend": _split(backend) if backend else None,
        "--providers": _split(providers) if providers else None,
        "--threads": threads,
        "--stats-every": stats_every,
        "--http": http,
        "--resolution": resolution,
        "--log-level": log_level,
        "--log-file": log_file,
    }
    return dict((flag, value) for flag, value in given.items() if value is not None)
