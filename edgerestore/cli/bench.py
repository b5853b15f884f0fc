"""``edgerestore bench``. Python 3.6-safe (it runs on the boards)."""

import os
import sys

import click

from edgerestore.errors import ConfigError

SIZE_ALIASES = {"360p": (640, 360), "480p": (854, 480), "540p": (960, 540), "720p": (1280, 720),
                "1080p": (1920, 1080), "1440p": (2560, 1440), "4k": (3840, 2160)}


def parse_sizes(text):
    """``"720p,1920x1080"`` -> ``[(1280, 720), (1920, 1080)]``."""
    sizes = []
    for item in [t.strip().lower() for t in text.split(",") if t.strip()]:
        if item in SIZE_ALIASES:
            sizes.append(SIZE_ALIASES[item])
            continue
        parts = item.split("x")
        try:
            width, height = int(parts[0]), int(parts[1])
            if len(parts) != 2 or width < 1 or height < 1:
                raise ValueError
        except (ValueError, IndexError):
            raise ConfigError("--sizes: %r is not WIDTHxHEIGHT or one of %s" % (item, ", ".join(SIZE_ALIASES)))
        sizes.append((width, height))
    if not sizes:
        raise ConfigError("--sizes is empty; e.g. --sizes 720p,1080p")
    return sizes


def _names(text):
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _command_line():
    """This command as typed (from ``bench`` on), for the result's ``command`` field."""
    import shlex

    args = sys.argv[1:]
    start = args.index("bench") + 1 if "bench" in args else len(args)
    return " ".join(["edgerestore", "bench"] + [shlex.quote(a) for a in args[start:]])


def _load_evalset(evalset, quiet):
    """``((path, pairs), note)``: the set to score on, or None and why not."""
    from edgerestore.benchmarks.evalset import ensure_default_evalset, load_evalset
    from edgerestore.errors import EdgeRestoreError

    if evalset:
        return (evalset, load_evalset(evalset)), None
    try:
        path = ensure_default_evalset()
    except (EdgeRestoreError, ImportError, SyntaxError) as exc:
        # A board without scikit-image (or Python 3.6, which cannot import the degradations).
        return None, ("no quality block: the default evaluation set cannot be built here (%s); build it on the host "
                      "with `edgerestore bench --make-evalset DIR` and pass --evalset DIR" % exc)
    return (path, load_evalset(path)), None


@click.command()
@click.argument("models", nargs=-1)
@click.option("--sizes", default="720p,1080p", show_default=True,
              help="Frame sizes to time, WIDTHxHEIGHT or 360p/480p/540p/720p/1080p/1440p/4k, comma-separated.")
@click.option("--frames", type=int, default=300, show_default=True, help="Timed frames per row (after warm-up).")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed frames before each row.")
@click.option("--max-seconds", type=float, default=60.0, show_default=True,
              help="Stop a row after this many seconds of timing (it says 'capped'); 0 = never.")
@click.option("--threads", type=int, default=None, help="Inference threads (default: the backend's choice, all cores).")
@click.option("--backends", "backends", default=None,
              help="Only these backends for model files, comma-separated (default: every registered one).")
@click.option("--baselines", default="none,unsharp,bilateral,nlmeans", show_default=True,
              help="OpenCV baselines to include, comma-separated; '' for none.")
@click.option("--teacher", default=None, help="Teacher weights (.onnx, student .pt, or Restormer .pth): adds a teacher row.")
@click.option("--teacher-frames", type=int, default=3, show_default=True, help="Timed frames of the (slow) teacher.")
@click.option("--evalset", default=None,
              help="Evaluation set folder (default: built once in the cache from scikit-image photos + GoPro pairs).")
@click.option("--no-quality", is_flag=True, help="Skip the quality block (speed only).")
@click.option("--parity-db", type=float, default=30.0, show_default=True,
              help="PSNR vs the FP32 reference below which a row is 'exported-but-failed-parity' (❎).")
@click.option("--label", default=None, help="Board label in reports (default: the detected board name).")
@click.option("--out", "-o", default="results", show_default=True, help="Result file (.json) or folder.")
@click.option("--make-evalset", default=None, metavar="DIR",
              help="Only build the evaluation set into DIR (on the host, to copy to a board) and exit.")
@click.option("--print-schema", is_flag=True, help="Print the JSON schema of a result and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def bench(models, sizes, frames, warmup, max_seconds, threads, backends, baselines, teacher, teacher_frames,
          evalset, no_quality, parity_db, label, out, make_evalset, print_schema, quiet):
    """Measure FPS, latency and quality of MODELS on this board; write one JSON result.

    MODELS are model files (.onnx, .tflite), folders or bundles of them, or shipped preset names
    (default: every shipped preset). Each file runs on every registered backend that can run it
    (see `edgerestore backends`), at every size in --sizes, next to the OpenCV baselines. A backend
    that fails gives a failed (❌) row; the others complete. Quality (PSNR/SSIM/MS-SSIM) is scored on
    the evaluation set against the ground truth, and for quantised or other-backend files also
    against the FP32 reference of the same model.

    \b
    Examples:
      edgerestore bench                                   # shipped presets, 720p + 1080p
      edgerestore bench nano.onnx nano_int8.onnx nano_int8.tflite --threads 2
      edgerestore bench bundles/pi4/ --label "Pi 4 (fan)" --out results/
      edgerestore bench small --sizes 640x360 --frames 50 --baselines none
      edgerestore bench --make-evalset evalset/           # on the host; copy to the board
      edgerestore report results/*.json --out report/
    """
    import json

    from edgerestore.benchmarks import schema

    if print_schema:
        click.echo(json.dumps(schema.SCHEMA, indent=2))
        return
    if make_evalset:
        from edgerestore.benchmarks.evalset import build_evalset, load_evalset

        if not os.path.isdir(make_evalset):
            os.makedirs(make_evalset)
        build_evalset(make_evalset)
        pairs = load_evalset(make_evalset)
        click.echo("wrote %d evaluation pairs to %s" % (len(pairs), make_evalset))
        return
    if frames < 1 or warmup < 0 or teacher_frames < 1:
        raise ConfigError("--frames and --teacher-frames must be >= 1 and --warmup >= 0")
    from edgerestore.benchmarks import bench as lib
    from edgerestore.benchmarks.report import markdown_table

    size_list = parse_sizes(sizes)
    specs = list(models) or lib.default_specs()
    notes = []
    if not specs:
        notes.append("no student models: none given and no shipped weights in this install")
    candidates = lib.baseline_candidates(_names(baselines)) + lib.discover(specs, _names(backends) or None)
    if teacher:
        from edgerestore.host import teacher_candidates

        candidates += teacher_candidates(teacher, frames=teacher_frames)
    loaded = None
    if not no_quality:
        loaded, note = _load_evalset(evalset, quiet)
        if note:
            notes.append(note)
            click.echo("note: " + note, err=True)
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(candidates) * len(size_list), unit="row", desc="bench", leave=False, disable=None)

    def on_row(row_id):
        if bar is not None:
            bar.set_postfix_str(row_id)

    def on_row_done(row):
        if bar is not None:
            bar.update(1)

    try:
        result = lib.run_bench(candidates, sizes=size_list, frames=frames, warmup=warmup,
                               max_seconds=max_seconds or None, threads=threads, evalset=loaded, parity_db=parity_db,
                               label=label, command=_command_line(),
                               notes=notes, on_row=on_row, on_row_done=on_row_done)
    finally:
        if bar is not None:
            bar.close()
    path = out if out.lower().endswith(".json") else lib.default_result_path(result, out)
    lib.write_result(result, path)
    click.echo(markdown_table([result]))
    failed = [r for r in result["rows"] if r["status"] == "failed"]
    click.echo("\n%d row(s), %d failed; wrote %s" % (len(result["rows"]), len(failed), path))
    click.echo("make the report: edgerestore report %s --out report/" % path)
