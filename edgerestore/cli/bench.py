"""``edgerestore bench``. Python 3.6-safe (it runs on the boards)."""

import os
import sys

import click

from edgerestore.cli.flags import flags_object
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
@click.option("--deblur", type=click.Choice(["none", "motion"]), default="none", show_default=True,
              help="'motion': the students also run the motion deblur stage of the filter beside them "
                   "(nano-codec ships one), timed on a camera panning 6 px/frame so every tile moves; "
                   "a student without a filter gets a failed row.")
@click.option("--parity-db", type=float, default=30.0, show_default=True,
              help="PSNR vs the FP32 reference below which a row is 'exported-but-failed-parity' (❎).")
@click.option("--label", default=None, help="Board label in reports (default: the detected board name).")
@click.option("--out", "-o", default="results", show_default=True, help="Result file (.json) or folder.")
@click.option("--make-evalset", default=None, metavar="DIR",
              help="Only build the evaluation set into DIR (on the host, to copy to a board) and exit.")
@click.option("--print-schema", is_flag=True, help="Print the JSON schema of a result and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@flags_object
def bench(flags):
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
      edgerestore bench nano-codec --deblur motion --sizes 1080p --baselines none   # what the stage costs
      edgerestore bench --make-evalset evalset/           # on the host; copy to the board
      edgerestore report results/*.json --out report/
    """
    import json

    from edgerestore.benchmarks import schema

    if flags.print_schema:
        click.echo(json.dumps(schema.SCHEMA, indent=2))
        return
    if flags.make_evalset:
        _make_evalset(flags.make_evalset)
        return
    if flags.frames < 1 or flags.warmup < 0 or flags.teacher_frames < 1:
        raise ConfigError("--frames and --teacher-frames must be >= 1 and --warmup >= 0")
    from edgerestore.benchmarks import bench as lib
    from edgerestore.benchmarks.report import markdown_table

    size_list = parse_sizes(flags.sizes)
    candidates, notes = _candidates(flags)
    loaded = None
    if not flags.no_quality:
        loaded, note = _load_evalset(flags.evalset, flags.quiet)
        if note:
            notes.append(note)
            click.echo("note: " + note, err=True)
    bar = None
    progress = {}
    if not flags.quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(candidates) * len(size_list), unit="row", desc="bench", leave=False, disable=None)
        progress = {"on_row": bar.set_postfix_str, "on_row_done": lambda row: bar.update(1)}
    try:
        result = lib.run_bench(candidates, sizes=size_list, frames=flags.frames, warmup=flags.warmup,
                               max_seconds=flags.max_seconds or None, threads=flags.threads, evalset=loaded,
                               parity_db=flags.parity_db, label=flags.label, command=_command_line(), notes=notes,
                               deblur=flags.deblur, **progress)
    finally:
        if bar is not None:
            bar.close()
    out = flags.out
    path = out if out.lower().endswith(".json") else lib.default_result_path(result, out)
    lib.write_result(result, path)
    click.echo(markdown_table([result]))
    failed = [r for r in result["rows"] if r["status"] == "failed"]
    click.echo("\n%d row(s), %d failed; wrote %s" % (len(result["rows"]), len(failed), path))
    click.echo("make the report: edgerestore report %s --out report/" % path)


def _make_evalset(folder):
    from edgerestore.benchmarks.evalset import build_evalset, load_evalset

    if not os.path.isdir(folder):
        os.makedirs(folder)
    build_evalset(folder)
    click.echo("wrote %d evaluation pairs to %s" % (len(load_evalset(folder)), folder))


def _candidates(flags):
    """``(candidates, notes)``: the baselines, every (file, backend) of the models, the teacher."""
    from edgerestore.benchmarks import bench as lib

    specs = list(flags.models) or lib.default_specs()
    notes = [] if specs else ["no student models: none given and no shipped weights in this install"]
    candidates = lib.baseline_candidates(_names(flags.baselines)) + lib.discover(specs, _names(flags.backends) or None)
    if flags.teacher:
        from edgerestore.host import teacher_candidates

        candidates += teacher_candidates(flags.teacher, frames=flags.teacher_frames)
    return candidates, notes
