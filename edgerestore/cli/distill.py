"""``edgerestore distill``: train a student from a teacher (or from ground truth alone).

``edgerestore distill DATA... [options]`` is short for ``edgerestore distill train DATA...``;
``edgerestore distill cache-teacher`` precomputes teacher outputs (on a GPU box) to copy elsewhere.
"""

import sys

import click


class _TrainByDefault(click.Group):
    """A group whose first argument, when it is not a sub-command, starts ``train``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["train"] + list(args)
        return super(_TrainByDefault, self).parse_args(ctx, args)


def _options(func):
    """Options shared by ``train`` and ``cache-teacher`` (both must see the same config)."""
    decorators = [
        click.argument("data", nargs=-1, metavar="[DATA]..."),
        click.option("--config", "-c", "config_path", default=None,
                     help="YAML or TOML config (sections student, teacher, data, loss, optim, train)."),
        click.option("--student", "-s", default=None,
                     help="Student preset: pico, nano, nano-fast, small, large; with a noise-level input: nano-level, small-level; also told the codec: nano-codec, small-codec; temporal: pico-t, nano-t, small-t."),
        click.option("--teacher", "-t", default=None,
                     help="none | restormer:W.pth | student:CKPT.pt | module:pkg.mod:factory | folder:DIR"),
        click.option("--out", "-o", default=None, help="Run folder (checkpoints, config.yaml, log.csv, tb/)."),
        click.option("--steps", type=int, default=None, help="Training steps (train.steps)."),
        click.option("--batch-size", type=int, default=None, help="Patches per step per process (train.batch)."),
        click.option("--patch", type=int, default=None, help="Patch size in pixels (data.patch)."),
        click.option("--lr", type=float, default=None, help="Peak learning rate (optim.lr)."),
        click.option("--degradation", "-d", default=None,
                     help="Degradation of clean images: mild, noise, blur, strong, none, or a mapping "
                          "like '{base: mild, gaussian_sigma: [2, 8]}'."),
        click.option("--val", "val", multiple=True, help="Held-out data for validation (repeatable)."),
        click.option("--sequence", type=int, default=None,
                     help="Train on clips of this many frames (data.sequence; temporal students need >= 2)."),
        click.option("--clips", "clips", multiple=True,
                     help="A video or folder of frames to train on as a clip (data.clips; repeatable)."),
        click.option("--workers", type=int, default=None, help="Background processes degrading crops."),
        click.option("--device", default=None, help="auto, cpu, cuda or cuda:N (train.device)."),
        click.option("--seed", type=int, default=None, help="Seed of the data stream and the split."),
        click.option("--cache", default=None, help="Teacher cache: auto, none or a folder (teacher.cache)."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Any config value, e.g. --set loss.ms_ssim=0.2 --set optim.warmup=500 (repeatable)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bars."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _load(data, config_path, student, teacher, out, steps, batch_size, patch, lr, degradation, val, sequence,
          clips, workers, device, seed, cache, overrides, resume=False):
    from edgerestore.distill.config import load_config, load_resume_config

    if degradation and degradation.strip().startswith("{"):
        from edgerestore.distill.config import parse_override

        degradation = parse_override("data.degradation=" + degradation)[1]  # an inline mapping
    options = {
        "data.train": list(data) or None, "student.preset": student, "teacher.spec": teacher, "out": out,
        "train.steps": steps, "train.batch": batch_size, "data.patch": patch, "optim.lr": lr,
        "data.degradation": degradation, "data.val": list(val) or None, "data.workers": workers,
        "data.sequence": sequence, "data.clips": list(clips) or None,
        "train.device": device, "train.seed": seed, "teacher.cache": cache,
    }
    if resume:
        return load_resume_config(config_path, options, overrides)
    return load_config(config_path, options, overrides)


@click.group(cls=_TrainByDefault)
def distill():
    """Distil a teacher into a student (or train one on ground truth alone).

    \b
    DATA are folders of clean images (degraded on the fly), paired folders
    (SEQ/blur/x.png <-> SEQ/sharp/x.png, or name_blur1.png <-> name_sharp1.png) and video
    files. `edgerestore distill DATA...` is short for `edgerestore distill train DATA...`.

    \b
    Examples:
      # a teacher of our own, on ground truth only
      edgerestore distill ../shared/data/train --student large --teacher none --out runs/large
      # the nano preset distilled from it
      edgerestore distill ../shared/data/train --student nano --teacher student:runs/large/best.pt --out runs/nano
      # from the official Restormer weights, 4 GPUs
      torchrun --nproc-per-node 4 -m edgerestore distill data/ --teacher restormer:motion_deblurring.pth
      # continue after Ctrl-C / SIGTERM / a crash
      edgerestore distill --out runs/nano --resume
      # precompute teacher outputs on a GPU box, train elsewhere from them
      edgerestore distill cache-teacher data/ -c run.yaml --teacher restormer:motion_deblurring.pth --cache tcache/
      edgerestore distill data/ -c run.yaml --teacher folder:tcache/
    """


@distill.command()
@_options
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt (same config and schedule).")
def train(data, config_path, student, teacher, out, steps, batch_size, patch, lr, degradation, val, sequence,
          clips, workers, device, seed, cache, overrides, quiet, resume):
    """Train a student; checkpoints, config.yaml and logs go to --out.

    \b
    Settings come from, in order: defaults < --config file < options < --set KEY=VALUE.
    The run folder gets last.pt (every train.checkpoint_every steps and on Ctrl-C/SIGTERM),
    best.pt (best validation PSNR), student.pt (the final weights), config.yaml, log.csv
    and tb/ (TensorBoard). Every .pt works with `edgerestore restore --model` and export.
    Under torchrun every process trains on its own crops (DDP); without it, one process.

    \b
    Examples:
      edgerestore distill ../shared/data/train --student nano --steps 4000 --out runs/nano
      edgerestore distill train data/ -c distill.yaml --set loss.ms_ssim=0.2 --set optim.lr=1e-3
      edgerestore distill --out runs/nano --resume
      torchrun --nproc-per-node 2 -m edgerestore distill data/ --student small --out runs/small
      # a temporal student on 5-frame clips: real clips + stills filmed by a moving camera
      edgerestore distill ../shared/data/train --student nano-t --sequence 5 --clips street/ \
          --set loss.temporal=0.5 --out runs/nano-t
    """
    from edgerestore.distill.trainer import train as run_training

    config = _load(data, config_path, student, teacher, out, steps, batch_size, patch, lr, degradation, val,
                   sequence, clips, workers, device, seed, cache, overrides, resume=resume)
    summary = run_training(config, resume=resume, progress=not quiet, echo=click.echo)
    if summary["rank"] != 0:
        return
    _report(summary)
    if summary["interrupted"]:
        import signal

        sys.exit(128 + int(getattr(signal, summary["interrupted"])))


def _report(summary):
    def db(value):
        return "-" if value is None or value != value else "%.2f dB" % value

    if summary["interrupted"]:
        click.echo("stopped by %s at step %d of %d; saved %s — continue with: edgerestore distill --out %s --resume"
                   % (summary["interrupted"], summary["step"], summary["steps"], summary["last"], summary["out"]))
        return
    click.echo("done: %d steps in %.0f s | validation PSNR %s (input %s, teacher %s, best %s)" % (
        summary["step"], summary["seconds"], db(summary["val_psnr"]), db(summary["input_psnr"]),
        db(summary["teacher_psnr"]), db(summary["best_val_psnr"])))
    click.echo("teacher: %d crop(s) computed, %d from the cache" % (summary["teacher_calls"], summary["cache_hits"]))
    click.echo("student: %s (best: %s)" % (summary["checkpoint"], summary["best"]))
    click.echo("try it:  edgerestore restore INPUT OUTPUT --model %s" % summary["checkpoint"])


@distill.command("cache-teacher")
@_options
@click.option("--processes", type=int, default=1, show_default=True,
              help="Processes (torchrun --nproc-per-node x nodes) the training run will use.")
def cache_teacher(data, config_path, student, teacher, out, steps, batch_size, patch, lr, degradation, val,
                  sequence, clips, workers, device, seed, cache, overrides, quiet, processes):
    """Precompute the teacher's output for every crop a training run will draw.

    Give it the same DATA and config as the training run (the crops depend on the data, seed,
    crop/pool/refresh sizes, steps, degradation and the number of processes). Copy the folder it
    prints to the training machine and train with --teacher folder:THAT_FOLDER: the teacher is
    then never run there.

    \b
    Examples:
      edgerestore distill cache-teacher data/ -c run.yaml --teacher restormer:motion_deblurring.pth --cache tcache
      rsync -a tcache/ cpu-box:tcache/
      edgerestore distill data/ -c run.yaml --teacher folder:tcache --out runs/nano     # on cpu-box
    """
    from edgerestore.distill.trainer import cache_teacher as run_cache
    from edgerestore.errors import ConfigError

    if processes < 1:
        raise ConfigError("--processes must be >= 1")
    config = _load(data, config_path, student, teacher, out, steps, batch_size, patch, lr, degradation, val,
                   sequence, clips, workers, device, seed, cache, overrides)
    result = run_cache(config, world_size=processes, progress=not quiet, echo=click.echo)
    click.echo("teacher outputs: %d computed, %d already cached, %d in all -> %s" % (
        result["computed"], result["cached"], result["total"], result["folder"]))
    click.echo("train from them: edgerestore distill ... --teacher folder:%s" % result["folder"])


@distill.command()
@click.argument("checkpoints", nargs=-1, required=True, metavar="CHECKPOINT...")
@click.option("--run", "run_dir", default=None,
              help="A run folder: use its config.yaml (data, seed, degradation, validation split).")
@click.option("--config", "-c", "config_path", default=None, help="A config file instead of --run.")
@click.option("--data", "data", multiple=True, help="Training data the split is drawn from (repeatable).")
@click.option("--val", "val", multiple=True, help="Held-out data to score on instead (repeatable).")
@click.option("--teacher", "-t", default=None, help="Also score this teacher (e.g. student:runs/large/best.pt).")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Any config value, e.g. --set data.val_crop=0 (whole images).")
def evaluate(checkpoints, run_dir, config_path, data, val, teacher, device, overrides):
    """Score checkpoints on a run's held-out validation crops (PSNR, SSIM, MS-SSIM).

    The crops and their degradations are exactly those the run validates on, so runs on the
    same data and seed compare fairly (distilled vs trained on ground truth alone, at the same
    number of steps). Rows: the degraded input, the teacher if one is given, each checkpoint.

    \b
    Examples:
      edgerestore distill evaluate runs/nano-gt/student.pt runs/nano-kd/student.pt --run runs/nano-kd
      edgerestore distill evaluate runs/nano/student.pt --run runs/nano --set data.val_crop=0
    """
    from pathlib import Path

    from edgerestore.distill.config import load_config, read_config_file
    from edgerestore.distill.evaluate import evaluate as run_evaluate
    from edgerestore.distill.trainer import pick_device

    base = None
    if run_dir:
        base = read_config_file(Path(run_dir) / "config.yaml")
    options = {"data.train": list(data) or None, "data.val": list(val) or None, "teacher.spec": teacher,
               "train.device": device}
    if not teacher and base is not None:
        options["teacher.spec"] = "none"  # score the students; the teacher only when asked
    config = load_config(config_path, options, overrides, base=base)
    rows = run_evaluate(config, list(checkpoints), pick_device(config.train.device), echo=lambda s: None)
    clips = "temporal" in rows[0]
    click.echo("%d held-out %s                         PSNR dB   SSIM    MS-SSIM%s" % (
        rows[0]["crops"], "clip(s)" if clips else "crop(s)", "  temporal" if clips else ""))
    for row in rows:
        name = row["name"] if len(row["name"]) <= 40 else "..." + row["name"][-37:]
        click.echo("  %-40s %7.2f  %6.4f  %6.4f%s" % (name, row["psnr"], row["ssim"], row["ms_ssim"],
                                                      "  %8.2f" % row["temporal"] if clips else ""))


@distill.command()
@click.argument("checkpoint")
@click.option("--images", required=True,
              help="A folder of clean photos the student never trained on, and not the quality benchmark's.")
@click.option("--out", "-o", "out", required=True, help="Where to write the tuned checkpoint (.pt; never overwritten).")
@click.option("--draws", type=int, default=3, show_default=True, help="Degraded draws of each photo per subset.")
@click.option("--clean-bar", type=float, default=45.0, show_default=True,
              help="Clean frames' output PSNR against the input must stay at least this (dB).")
@click.option("--threads", type=int, default=2, show_default=True, help="Torch threads.")
@click.option("--strength", "fixed", type=float, default=None,
              help="Write it at this strength (0 < s <= 1) whatever the bars say; the table still shows the sweep.")
def strength(checkpoint, images, out, draws, clean_bar, threads, fixed):
    """Scale a student's correction until it does no harm, and save it.

    The student's output becomes x + s * (f(x) - x), for the largest s in 1.0, 0.95 ... 0.5 whose
    compression-only gain is >= 0 dB and whose clean frames stay >= --clean-bar on --images
    (each photo degraded --draws times by mild, blur, noise and compression). s is folded into the
    last layers' weights: the exported graphs and their speed are unchanged. The table shows
    what each s costs on the other subsets.

    \b
    Example:
      edgerestore distill strength runs/small/student.pt --images tune_photos/ --out runs/small/tuned.pt
    """
    from pathlib import Path

    import torch

    from edgerestore.distill import strength as S
    from edgerestore.errors import OutputError
    from edgerestore.models.checkpoint import load_student, save_student

    target = Path(out)
    if target.exists():
        raise OutputError("%s exists; give --out a new file name" % target)
    if draws < 1:
        raise click.BadParameter("at least 1", param_hint="--draws")
    if fixed is not None and not 0.0 < fixed <= 1.0:
        raise click.BadParameter("a strength in (0, 1], e.g. 0.8", param_hint="--strength")
    torch.set_num_threads(threads)
    model, info = load_student(checkpoint)
    photos = S.read_images(images)
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(photos) * (4 * draws + 1), unit="frame", desc="student", leave=False)
    frames = S.residuals(model, photos, draws, progress=(lambda done, total: bar.update(1)) if bar else None)
    if bar:
        bar.close()
    if fixed is None:
        rows = S.sweep(frames)
        chosen = S.pick(rows, clean_bar)
    else:
        rows = S.sweep(frames, sorted(set(S.STRENGTHS) | {fixed}, reverse=True))
        chosen = next(row for row in rows if row["strength"] == fixed)
    click.echo("%d photos x %d draws; gain over the input (dB), clean: output PSNR vs input" % (len(photos), draws))
    click.echo("  strength    mild    blur   noise  compression  clean")
    for row in rows:
        mark = ("  <- given" if fixed is not None else "  <- chosen") if chosen is row else ""
        click.echo("  %8.2f  %+6.2f  %+6.2f  %+6.2f  %+11.3f  %5.1f%s" % (
            row["strength"], row["mild"], row["blur"], row["noise"], row["compression"], row["clean"], mark))
    if chosen is None:
        click.echo("no strength down to %.2f does no harm here; nothing written" % S.STRENGTHS[-1], err=True)
        sys.exit(1)
    model.scale_residual(chosen["strength"])
    meta = dict(info.get("meta") or {})
    meta.pop("train_state", None)
    meta["strength"] = {"value": chosen["strength"], "of": str(checkpoint), "images": str(images), "draws": draws,
                        "tuning": {k: round(v, 4) for k, v in chosen.items()}}
    save_student(target, model, preset=info.get("preset"), meta=meta)
    click.echo("wrote %s (strength %.2f)" % (target, chosen["strength"]))
