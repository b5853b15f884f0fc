"""``edgerestore preview``. Python 3.6-safe."""

import click

from edgerestore.cli.run import DEBLUR_HELP, EXPOSURE_HELP, SOURCE_HELP


@click.command()
@click.option("--source", "-i", default="test://pattern?size=1280x720&fps=30", show_default=True, help=SOURCE_HELP)
@click.option("--sink", "-o", "sinks", multiple=True, default=("display://0",), show_default=True,
              help="Where the preview goes (repeatable): display://0 (window or framebuffer), http://127.0.0.1:8080...")
@click.option("--model", "-m", default="nano", show_default=True,
              help="A preset with shipped weights, a model file, or 'none'.")
@click.option("--backend", "-b", default=None, help="Force a backend (default: the first available).")
@click.option("--threads", type=int, default=None, help="Inference threads (default: all cores).")
@click.option("--mode", type=click.Choice(["side", "split"]), default="side", show_default=True,
              help="side: raw | restored next to each other; split: one picture, a divider wipes across.")
@click.option("--deblur", type=click.Choice(["none", "motion"]), default="none", show_default=True, help=DEBLUR_HELP)
@click.option("--exposure", default="auto", show_default=True, help=EXPOSURE_HELP)
@click.option("--stats/--no-stats", default=False, help="Also print JSON statistics lines.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def preview(source, sinks, model, backend, threads, mode, deblur, exposure, stats, duration):
    """Show the camera raw and restored, live, with backend, FPS and latency.

    \b
    Keys (in the window; on a framebuffer console, in the terminal):
      q  quit
      s  side-by-side <-> split wipe
      b  bypass the model (raw on both sides), again to restore

    \b
    Examples:
      edgerestore preview --source csi://0                 # HDMI screen of a Jetson or Pi
      edgerestore preview --source v4l2:///dev/video0 --mode split
      edgerestore preview --source test://pattern --sink http://127.0.0.1:8080   # in a browser
      edgerestore preview --source picam://0 --model nano-codec --deblur motion   # a hand-held camera
    """
    from edgerestore.cli.run import stats_printer
    from edgerestore.runtime.preview import run_preview

    summary = run_preview(source, sinks, model=model, backend=backend, threads=threads, mode=mode,
                          on_stats=stats_printer() if stats else None, duration=duration,
                          handle_signals=True, deblur=deblur, exposure=exposure)
    click.echo("%d frame(s), %s FPS, latency p50 %s ms, dropped %d" % (
        summary["frames"], summary["fps"], summary["latency_ms_p50"], summary["dropped"]), err=True)
