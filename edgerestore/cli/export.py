"""``edgerestore export [MODEL] --target T``: a verified bundle for a board."""

import click

from edgerestore.export.targets import FORMATS, PRECISIONS, TARGETS


@click.command()
@click.argument("model", required=False)
@click.option("--target", "-t", default=None, metavar="TARGET",
              help="Board to export for: %s (see `edgerestore devices`); jetson and pi make one bundle for "
                   "every board of the family [default: this board, when it is one; else cpu]." % ", ".join(TARGETS))
@click.option("--out", "-o", default=None, help="Bundle folder [default: bundles/<target>-<model>].")
@click.option("--format", "-f", "formats", multiple=True, metavar="FORMAT",
              help="Only these formats (repeatable): %s. Default: all the target allows." % ", ".join(FORMATS))
@click.option("--precision", "-p", type=click.Choice(PRECISIONS), default=None,
              help="Only formats of this precision (INT8 on a Jetson Nano builds FP16, with a warning).")
@click.option("--size", "-s", default=None, metavar="HxW",
              help="Frame size for fixed-size formats (TFLite, TensorRT), e.g. 720x1280 [default: the board's].")
@click.option("--calib", default=None, metavar="DIR|VIDEO",
              help="Calibrate INT8 on your own frames (a folder of images or a video) instead of the package's.")
@click.option("--calib-method", type=click.Choice(["percentile", "minmax", "entropy"]), default="percentile",
              show_default=True, help="How ONNX Runtime INT8 picks activation ranges.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Run every artifact on held-out real frames and check it against PyTorch.")
@click.option("--threads", type=int, default=None, help="Threads for verification runs (default: all cores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no per-format log lines.")
def export(model, target, out, formats, precision, size, calib, calib_method, verify, threads, quiet):
    """Export MODEL for a board: a folder with manifest.json and the artifacts it runs.

    MODEL is a student checkpoint (.pt) or a preset with shipped weights
    [default: the board's preset]. Every artifact is verified on held-out real frames
    (parity vs PyTorch FP32, PSNR vs ground truth, FPS here); the table's status is
    ✅ ok, ❎ exported but failed parity, or ❌ failed. Copy the folder to the board and run
    it with `edgerestore restore --model BUNDLE ...` (Jetson: `edgerestore build-engine
    BUNDLE` first, or let the first run build the engine).

    \b
    Examples:
      edgerestore export --target rpi4                       # shipped preset of the board
      edgerestore export student.pt --target jetson-nano     # TensorRT FP16 + ONNX
      edgerestore export nano --target jetson                # any Jetson: FP16 on Nano, INT8 on Xavier/Orin
      edgerestore export student.pt --target cpu --precision int8 --calib my_frames/
      edgerestore export student.pt --target rpi5 --size 720x1280 --format tflite-int8
    """
    from edgerestore.export.bundle import export_bundle, parse_size
    from edgerestore.export.targets import get_target, select_formats
    from edgerestore.export.verify import format_table

    if target is None:
        from edgerestore.devices.detect import board_target

        target = board_target() or "cpu"
        click.echo("target %s (this machine; --target names another)" % target, err=True)
    target_row = get_target(target)
    model = model or target_row.device.preset
    out = out or "bundles/%s-%s" % (target_row.name, _stem(model))
    chosen, _ = select_formats(target_row, list(formats) or None, precision)
    bars = []  # created with the first format: errors before it stay one line

    def on_format(fmt):
        if quiet:
            return
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(total=len(chosen), unit="format", desc="exporting", leave=False, disable=None))
        else:
            bars[0].update(1)
        bars[0].set_description("exporting %s" % fmt.name)

    def log(message):
        if message.startswith("warning:"):
            click.echo(message, err=True)
        elif not quiet:
            (bars[0].write if bars else click.echo)(message)

    try:
        result = export_bundle(model, target_row.name, out, formats=list(formats) or None, precision=precision,
                               size=parse_size(size), calib=calib, calib_method=calib_method, verify=verify,
                               threads=threads, log=log, on_format=on_format,
                               native_logs=bool(click.get_current_context().find_root().params.get("debug")))
    finally:
        if bars:
            bars[0].close()
    click.echo(format_table(result.rows))
    ok = sum(row.status == "ok" for row in result.rows)
    click.echo("bundle %s: %d of %d artifact(s) ok (manifest.json lists sizes, hashes and figures)"
               % (result.out_dir, ok, len(result.rows)))
    if ok == 0:
        raise SystemExit(1)


def _stem(model):
    import os

    base = os.path.basename(str(model).rstrip("/"))
    return os.path.splitext(base)[0] or "model"
