"""``edgerestore restore INPUT OUTPUT``."""

import os
import sys

import click

from edgerestore.cli.run import DEBLUR_HELP, EXPOSURE_HELP


def print_quality(quality, echo=click.echo):
    """The before/after table of a quality block (``restore --reference`` and the demo)."""
    if not quality or not quality.get("restored"):
        return
    echo("quality vs reference (%d frames)      PSNR dB   SSIM    MS-SSIM" % quality["frames"])
    for label, key in (("input (degraded)", "input"), ("restored", "restored")):
        row = quality.get(key)
        if row:
            echo("  %-34s %7.2f  %6.4f  %6.4f" % (label, row["psnr"], row["ssim"], row["ms_ssim"]))
    if quality.get("input"):
        gain = quality["restored"]["psnr"] - quality["input"]["psnr"]
        echo("  %-34s %+7.2f" % ("gain", gain))


def progress_hooks(quiet, label):
    """``(on_start, on_frame, close)`` driving a tqdm bar sized from the source."""
    state = {}

    def on_start(source):
        if not quiet and sys.stderr.isatty():  # piped: no bar text glued to the output's lines
            from tqdm import tqdm

            state["bar"] = tqdm(total=source.frame_count, unit="frame", desc=label, leave=False)

    def on_frame(frame):
        if "bar" in state:
            state["bar"].update(1)

    def close():
        if "bar" in state:
            state["bar"].close()

    return on_start, on_frame, close


@click.command()
@click.argument("input_path", metavar="INPUT")
@click.argument("output", metavar="OUTPUT")
@click.option("--model", "-m", default="nano", show_default=True,
              help="A preset with shipped weights (pico, nano, nano-fast, small, nano-level or small-level for a noisy camera, nano-codec or small-codec for compressed video and JPEGs, nano-t for video), a .pt checkpoint, an .onnx file or a bundle folder.")
@click.option("--backend", "-b", default=None, help="Force a backend (default: the first available).")
@click.option("--threads", type=int, default=None, help="Inference threads (default: all cores).")
@click.option("--reference", "-r", default=None,
              help="The clean version of INPUT: prints PSNR/SSIM/MS-SSIM of input and output against it.")
@click.option("--metrics-every", type=int, default=1, show_default=True,
              help="With --reference, score every Nth frame (metrics are slow at 1080p).")
@click.option("--noise-level", default="auto", show_default=True,
              help="For a model with a noise-level input: auto (measured from the still parts of consecutive "
                   "video frames; a single image reads 0, a clean camera) or your camera's level (`edgerestore "
                   "noise-level` measures it). Other models ignore it.")
@click.option("--codec", default="auto", show_default=True,
              help="For a model with a codec input: auto (read off the input: an H.264 video's QP per frame, a "
                   "JPEG's quality; anything else is uncompressed), none, jpeg:QUALITY or h264:QP (what the "
                   "frames went through before, e.g. h264:30 for a video call's frames saved losslessly). Other "
                   "models ignore it.")
@click.option("--deblur", default="none", show_default=True, type=click.Choice(["none", "motion"]), help=DEBLUR_HELP)
@click.option("--exposure", default="auto", show_default=True, help=EXPOSURE_HELP)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--no-audio", is_flag=True, help="Leave the input's audio out (by default a video's audio is "
              "copied into the restored video as it is, not re-encoded).")
def restore(input_path, output, model, backend, threads, reference, metrics_every, noise_level, codec, deblur, exposure,
            quiet,
            no_audio):
    """Restore INPUT (a video, an image or a folder of images) into OUTPUT.

    \b
    OUTPUT is a video file (.mp4/.mkv), an image file (for a single image) or a folder
    (one PNG per frame). Frames keep their size: sizes that are not a multiple of the
    model's stride are padded and cropped, never resized.

    \b
    Examples:
      edgerestore restore call.mp4 call_restored.mp4
      edgerestore restore frames/ restored/ --model small
      edgerestore restore blurry.png sharp.png --reference clean.png
      edgerestore restore shaky.mp4 out.mp4 --model nano-codec --deblur motion
    """
    from edgerestore.runtime.restore import check_paths
    from edgerestore.runtime.restore import restore as run_restore

    check_paths(input_path, output)  # input problems are reported before the model is loaded
    on_start, on_frame, close = progress_hooks(quiet, "restoring")
    try:
        result = run_restore(input_path, output, model, backend=backend, threads=threads,
                             reference=reference, metrics_every=metrics_every,
                             on_start=on_start, on_frame=on_frame, audio=not no_audio, noise_level=noise_level,
                             codec=codec, deblur=deblur, exposure=exposure)
    finally:
        close()
    info = result["backend"]
    if result.get("corrupt"):
        click.echo("warning: %d damaged packet(s) of %s did not decode and were skipped; the frames around "
                   "them may be missing or show artefacts" % (result["corrupt"], input_path), err=True)
    if result["output"] != output:
        click.echo("%s exists and is kept; wrote %s" % (output, result["output"]), err=True)
    click.echo("restored %d frame(s) -> %s%s" % (result["frames"], result["output"],
                                                   " (with the input's audio)" if result.get("audio") else ""))
    if result["frames"] >= 2 and result["fps"] and info["mean_ms"]:
        click.echo("model %s on %s (%s threads): %.1f FPS end to end, %.1f FPS inference (%.1f ms/frame)" % (
            os.path.basename(info["model"]), info["backend"], info["threads"], result["fps"], 1000.0 / info["mean_ms"],
            info["mean_ms"]))
    else:  # one frame (an image): a rate would be noise, or nan
        click.echo("model %s on %s (%s threads): %s" % (
            os.path.basename(info["model"]), info["backend"], info["threads"],
            "%.1f ms for the frame" % info["mean_ms"] if info["mean_ms"] else "no frame restored"))
    if info.get("noise_level"):
        click.echo("noise level: %s (last frame's %.2f)" % (info["noise_level"]["setting"], info["noise_level"]["last"]))
        if info["noise_level"]["setting"] == "auto" and result["frames"] < 2:
            click.echo("note: one picture gives auto nothing to measure (it reads 0: left as it is); give the "
                       "camera's level with --noise-level N (`edgerestore noise-level` measures it)", err=True)
    if info.get("codec"):
        click.echo("codec: %s (last frame's strengths %s)" % (info["codec"]["setting"], info["codec"]["last"]))
    if info.get("frame_filter"):
        stage = info["frame_filter"]
        click.echo("motion deblur: %d of %d frame(s) moved and were sharpened (%d tile(s) of %d px)"
                   % (stage["frames_filtered"], result["frames"], stage["tiles_filtered"], stage["tile"]))
        if result["frames"] < 2:
            click.echo("note: one picture has no motion to measure: --deblur motion leaves it as the model made it",
                       err=True)
    print_quality(result.get("quality"))
