"""``edgerestore run --source URI --sink URI [--sink URI...]``. Python 3.6-safe.

Kept thin over :func:`edgerestore.runtime.runner.run` (the daemon adds configuration files
and service management on top of the same function). Imports nothing heavy until it runs.
"""

import click

SOURCE_HELP = ("Where frames come from: a video file or image folder, v4l2:///dev/video0, csi://0, "
               "picam://0, rtsp://..., test://pattern?size=1280x720&fps=30.")
SINK_HELP = ("Where restored frames go (repeatable): display://0, file://out.mp4, http://127.0.0.1:8080, "
             "v4l2loopback:///dev/video10, null://.")


def model_file(model):
    """``--model``: a preset, a model file, ``none``; a .pt checkpoint is exported first (needs torch)."""
    if model and model.lower().endswith((".pt", ".pth")):
        from edgerestore.models.resolve import resolve_model

        return str(resolve_model(model))
    return model


def stats_printer():
    """Print each statistics dict as one JSON line on stdout (also with --quiet: it is the output)."""
    from edgerestore.runtime.pipeline import stats_line

    def on_stats(stats):
        click.echo(stats_line(stats))

    return on_stats


@click.command()
@click.option("--source", "-i", required=True, help=SOURCE_HELP)
@click.option("--sink", "-o", "sinks", multiple=True, default=("null://",), show_default=True, help=SINK_HELP)
@click.option("--model", "-m", default="nano", show_default=True,
              help="A preset with shipped weights, a model file (.onnx, .tflite...), or 'none' to pass frames through.")
@click.option("--backend", "-b", default=None, help="Force a backend (default: the first available for the model).")
@click.option("--providers", default=None,
              help="ONNX Runtime providers, best first: tensorrt,cuda,cpu (default: the best this build has).")
@click.option("--threads", type=int, default=None, help="Inference threads (default: all cores).")
@click.option("--stats-every", type=float, default=5.0, show_default=True,
              help="Seconds between JSON statistics lines.")
@click.option("--frames", "max_frames", type=int, default=None, help="Stop after this many frames.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--loop", is_flag=True, help="Play a video file or image folder in a loop (like a camera).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def run(source, sinks, model, backend, providers, threads, stats_every, max_frames, duration, loop, quiet):
    """Run the restoration pipeline headless: SOURCE -> model -> every SINK.

    Prints one JSON line of statistics every --stats-every seconds (fps, latency p50/p95,
    drops, per-stage ms) and a summary line at the end. Stops when the source ends, after
    --frames/--duration, or on Ctrl-C / SIGTERM; files are always finalised.

    \b
    Examples:
      edgerestore run -i v4l2:///dev/video0 -o http://127.0.0.1:8080
      edgerestore run -i csi://0 -o display://0 -o file://drive.mp4
      edgerestore run -i picam://0 -o v4l2loopback:///dev/video10        # a webcam for Zoom/Meet
      edgerestore run -i clip.mp4 -o null:// --model nano.onnx --frames 300   # measure FPS
      edgerestore run -i "test://pattern?size=1280x720&fps=30" -o http://0.0.0.0:8080
    """
    from edgerestore.runtime.runner import run as run_pipeline
    from edgerestore.runtime.sources import open_source

    opened = open_source(source, loop=True) if loop else open_source(source)
    bar = None
    on_frame = None
    if not quiet and opened.frame_count and not loop:
        from tqdm import tqdm

        bar = tqdm(total=min(opened.frame_count, max_frames or opened.frame_count), unit="frame",
                   desc="running", leave=False)

        def on_frame(frame):
            bar.update(1)

    try:
        summary = run_pipeline(opened, list(sinks), model=model_file(model), backend=backend, threads=threads,
                               providers=providers, stats_interval=stats_every, on_stats=stats_printer(),
                               on_frame=on_frame, max_frames=max_frames, duration=duration, handle_signals=True)
    finally:
        if bar is not None:
            bar.close()
    if not quiet:
        click.echo("%d frame(s), %s FPS, latency p50 %s ms, dropped %d" % (
            summary["frames"], summary["fps"], summary["latency_ms_p50"], summary["dropped"]), err=True)
