"""``edgerestore report``."""

import click


@click.command()
@click.argument("results", nargs=-1, required=True)
@click.option("--out", "-o", "out_dir", default="report", show_default=True, help="Folder for report.md/.html and plots/.")
@click.option("--size", default=None,
              help="Frame size for the quality-vs-speed and latency plots, e.g. 1080p or 1280x720 (default: the largest).")
@click.option("--title", default="edgerestore benchmark report", show_default=True, help="Page title.")
def report(results, out_dir, size, title):
    """Merge bench RESULTS (JSON files, folders or globs; many boards) into a report.

    Writes OUT/report.md (tables + PNG plots in OUT/plots/) and OUT/report.html, one self-contained
    page (plots embedded) to open in any browser: FPS per backend per board, quality vs speed with
    the Pareto front, latency distributions, and one table per board (✅/❎/❌ status, size, PSNR,
    ms/frame and FPS per frame size).

    \b
    Examples:
      edgerestore report results/*.json --out report/
      edgerestore report pi4.json pi5.json orin.json --size 720p
    """
    import matplotlib  # noqa: F401 - first: a missing extra must fail before any folder is made

    from edgerestore.benchmarks.report import load_results, markdown_table, render_report
    from edgerestore.cli.bench import parse_sizes

    loaded = load_results(results)
    chosen = parse_sizes(size)[0] if size else None
    paths = render_report(loaded, out_dir, size=chosen, title=title)
    click.echo(markdown_table(loaded))
    click.echo("\nwrote %s and %s (%d plots in %s/plots)" % (paths["html"], paths["markdown"], len(paths["plots"]),
                                                             out_dir))
