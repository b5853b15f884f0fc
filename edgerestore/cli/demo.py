"""``edgerestore demo``."""

import click


@click.command()
@click.option("--out", "out_dir", default="edgerestore-demo", show_default=True, help="Where to write the results.")
@click.option("--model", "-m", default="nano", show_default=True,
              help="A shipped preset (pico, nano, nano-fast, small), a .pt checkpoint or an .onnx file.")
@click.option("--backend", "-b", default=None, help="Force a backend (default: the first available).")
@click.option("--threads", type=int, default=None, help="Inference threads (default: all cores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def demo(out_dir, model, backend, threads, quiet):
    """Degrade a shipped real clip like a bad video call, restore it, and show the difference.

    Works offline right after `pip install edgerestore[cpu]`: writes a side-by-side video
    (degraded | restored | original), a PNG contact sheet and demo_metrics.json into --out,
    and prints PSNR/SSIM before and after and the FPS.
    """
    from edgerestore.cli.restore import progress_hooks
    from edgerestore.demo import SAMPLE_CLIP, run_demo
    on_start, on_frame, close = progress_hooks(quiet, "demo")

    class _Sized(object):
        frame_count = None

    on_start(_Sized())
    try:
        figures = run_demo(out_dir, model, backend=backend, threads=threads, on_frame=on_frame)
    finally:
        close()
    before, after = figures["before"], figures["after"]
    width, height = figures["size"]
    click.echo("clip: %s (%d frames, %dx%d, public domain; see edgerestore/data/sample/ATTRIBUTION.md)" % (
        SAMPLE_CLIP.name, figures["frames"], width, height))
    restored = "restored (%s)" % model
    label = max(len(restored), len("degraded (input)"))
    click.echo("  %-*s  PSNR dB   SSIM    MS-SSIM" % (label, ""))
    click.echo("  %-*s  %7.2f  %6.4f  %6.4f" % (label, "degraded (input)", before["psnr"], before["ssim"], before["ms_ssim"]))
    click.echo("  %-*s  %7.2f  %6.4f  %6.4f" % (label, restored, after["psnr"], after["ssim"], after["ms_ssim"]))
    click.echo("  %-*s  %+7.2f  %+6.4f  %+6.4f" % (label, "gain",
        after["psnr"] - before["psnr"], after["ssim"] - before["ssim"], after["ms_ssim"] - before["ms_ssim"]))
    info = figures["backend"]
    click.echo("speed: %.1f FPS inference (%s, %s threads, %dx%d), %.1f FPS end to end" % (
        figures["fps_inference"] or float("nan"), info["backend"], info["threads"], width, height,
        figures["fps_end_to_end"] or float("nan")))
    click.echo("wrote %s and %s" % (figures["outputs"]["video"], figures["outputs"]["contact_sheet"]))
