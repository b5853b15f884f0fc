"""``edgerestore devices [NAME]``: the boards edgerestore targets. Python 3.6-safe."""

import click

WIDTH = 100
"""Characters the default table fits in (``--wide`` shows every column at full width)."""


@click.command()
@click.argument("name", required=False)
@click.option("--wide", is_flag=True, help="Every column (CPU, GPU, software) at full width.")
def devices(name, wide):
    """List the board profiles (or show one): hardware, software, backends and defaults.

    Export targets come from this table: `edgerestore export --target NAME`.

    \b
    Examples:
      edgerestore devices
      edgerestore devices --wide
      edgerestore devices jetson-nano
    """
    from edgerestore.devices.profiles import PROFILES, get_profile, summary_rows

    if name:
        profile = get_profile(name)
        for key in profile.__slots__:
            value = getattr(profile, key)
            if isinstance(value, tuple):
                value = ", ".join(str(v) for v in value)
            if value not in (None, ""):
                click.echo("%-19s %s" % (key, value))
        if profile.setup_path:
            click.echo("%-19s %s" % ("setup notes", profile.setup_path))
        return
    header = ("name", "board", "CPU", "RAM", "GPU", "software", "backends", "default")
    rows = [header] + [tuple(str(v) for v in row) for row in summary_rows()]
    if not wide:  # name, board (shortened to fit), RAM, backends, default
        keep = (0, 1, 3, 6, 7)
        rows = [tuple(row[i] for i in keep) for row in rows]
        others = sum(max(len(row[i]) for row in rows) for i in (0, 2, 3, 4)) + 2 * 4
        room = max(12, WIDTH - others)
        rows = [(row[0], row[1] if len(row[1]) <= room else row[1][:room - 3] + "...") + row[2:] for row in rows]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))
    click.echo("%d boards; details: edgerestore devices NAME%s" % (len(PROFILES), "" if wide else " (or --wide)"))
