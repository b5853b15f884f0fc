"""``edgerestore mos prepare`` and ``edgerestore mos score``."""

import os

import click


@click.group()
def mos():
    """Blind mean-opinion-score (MOS) test: make a rating page, then score the ratings.

    \b
    1. edgerestore mos prepare nano small --out mos/      # page/ for raters, key.json for you
    2. send mos/page/ (zip it); raters open page/index.html offline, rate, download a CSV
    3. edgerestore mos score ratings-*.csv --key mos/key.json
    """


def _image_pairs(images, degradation, seed):
    """Clean images from files/folders, degraded with the named preset (one seed per image)."""
    from edgerestore.benchmarks.evalset import IMAGE_SUFFIXES, EvalPair, read_rgb
    from edgerestore.distill.degrade import degrade, get_preset
    from edgerestore.errors import InputNotFoundError

    files = []
    for spec in images:
        if os.path.isdir(spec):
            files.extend(sorted(os.path.join(spec, f) for f in os.listdir(spec) if f.lower().endswith(IMAGE_SUFFIXES)))
        elif os.path.isfile(spec):
            files.append(spec)
        else:
            raise InputNotFoundError("image %s does not exist" % spec)
    config = get_preset(degradation)
    pairs = []
    for index, path in enumerate(files):
        clean = read_rgb(path)
        degraded, _ = degrade(clean, seed + index, config)
        pairs.append(EvalPair(degradation, os.path.splitext(os.path.basename(path))[0], degraded, clean))
    return pairs


@mos.command()
@click.argument("models", nargs=-1)
@click.option("--out", "-o", "out_dir", default="mos", show_default=True, help="Folder for page/ and key.json.")
@click.option("--baselines", default="none,unsharp,nlmeans", show_default=True,
              help="OpenCV baselines to include, comma-separated ('none' = the degraded input).")
@click.option("--evalset", default=None, help="Evaluation set folder (default: the bench's default set).")
@click.option("--images", multiple=True, help="Rate these clean images instead (files or folders), degraded with --degradation.")
@click.option("--degradation", default="mild", show_default=True, help="Degradation preset for --images.")
@click.option("--subset", default=None, help="Only this subset of the evaluation set (e.g. gopro).")
@click.option("--max-images", type=int, default=None, help="Use at most this many images.")
@click.option("--backends", default=None, help="Only these backends for model files (default: the first that loads).")
@click.option("--no-reference", is_flag=True, help="Do not add the clean picture as a hidden reference.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of stimulus ids and page order.")
@click.option("--title", default="Picture quality test", show_default=True, help="Title raters see.")
def prepare(models, out_dir, baselines, evalset, images, degradation, subset, max_images, backends, no_reference,
            seed, title):
    """Restore the images with every method and write a blind rating page.

    MODELS are model files or shipped preset names, as for `edgerestore bench` (default: the
    shipped presets); each is rated once, on the first backend that loads it.

    \b
    Examples:
      edgerestore mos prepare nano small --out mos/
      edgerestore mos prepare nano.onnx --images my_photos/ --baselines none,unsharp
    """
    from edgerestore.benchmarks import bench as lib
    from edgerestore.benchmarks import mos as kit
    from edgerestore.benchmarks.evalset import ensure_default_evalset, load_evalset
    from edgerestore.errors import InputNotFoundError

    if images:
        pairs = _image_pairs(images, degradation, seed)
    else:
        pairs = load_evalset(evalset or ensure_default_evalset())
    if subset:
        pairs = [p for p in pairs if p.subset == subset]
        if not pairs:
            raise InputNotFoundError("no images in subset %r" % subset)
    pairs = pairs[:max_images] if max_images else pairs
    names = [n.strip() for n in baselines.split(",") if n.strip()]
    methods = []
    for cand in lib.baseline_candidates(names):
        methods.append((cand.method, cand.factory(None).infer))
    wanted = [b.strip() for b in (backends or "").split(",") if b.strip()] or None
    specs = list(models) or lib.default_specs()
    for spec in specs:
        loaded, reasons = None, []
        for cand in lib.discover([spec], wanted):
            if cand.error:
                reasons.append(cand.error)
                continue
            try:
                loaded = (cand.method, cand.factory(None))
                break
            except Exception as exc:  # the next backend may load it
                reasons.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if loaded is None:
            raise InputNotFoundError("no backend could load %s: %s" % (spec, "; ".join(reasons) or "no candidates"))
        name = loaded[0]
        while name in [m[0] for m in methods]:
            name += "'"
        methods.append((name, loaded[1].infer))
    key = kit.prepare(out_dir, pairs, methods, seed=seed, include_reference=not no_reference, title=title)
    click.echo("%d stimuli (%d images x %d methods: %s)" % (len(key["stimuli"]), len(pairs), len(key["methods"]),
                                                          ", ".join(key["methods"])))
    click.echo("give raters %s (works offline); keep %s" % (os.path.join(out_dir, "page"),
                                                          os.path.join(out_dir, "key.json")))
    click.echo("then: edgerestore mos score ratings-*.csv --key %s" % os.path.join(out_dir, "key.json"))


@mos.command()
@click.argument("ratings", nargs=-1, required=True)
@click.option("--key", "key_path", default=None,
              help="key.json from `mos prepare` (default: beside the CSVs or one folder up).")
@click.option("--json", "json_out", default=None, help="Also write the scores to this JSON file.")
def score(ratings, key_path, json_out):
    """MOS with a 95% confidence interval per method from the raters' CSV files.

    \b
    Example:
      edgerestore mos score ratings-*.csv --key mos/key.json
    """
    import json

    from edgerestore.benchmarks import mos as kit
    from edgerestore.errors import InputNotFoundError

    key_path = key_path or kit.find_key(ratings)
    if key_path is None:
        raise InputNotFoundError("no key.json beside %s — pass --key mos/key.json" % ratings[0])
    key = kit.load_key(key_path)
    rows = kit.score(kit.read_ratings(ratings, key))
    click.echo(kit.format_scores(rows))
    click.echo("\n%d rating file(s); MOS on the ACR scale 1 (bad) - 5 (excellent); 95%% CI from Student's t"
               % len(ratings))
    if json_out:
        with open(json_out, "w") as handle:
            json.dump({"key": key_path, "session": key["session"], "methods": rows}, handle, indent=1)
        click.echo("wrote %s" % json_out)
