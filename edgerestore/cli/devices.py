"""``edgerestore devices [NAME]``: the boards edgerestore targets. Python 3.6-safe."""

import click


@click.command()
@click.argument("name", required=False)
def devices(name):
    """List the board profiles (or show one): hardware, software, backends and defaults.

    Export targets come from this table: `edgerestore export --target NAME`.

    \b
    Examples:
      edgerestore devices
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
    rows = [header] + summary_rows()
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))
    click.echo("%d boards; details: edgerestore devices NAME" % len(PROFILES))
