"""``edgerestore config init`` / ``config check``: the service's configuration file. Python 3.6-safe."""

import click


@click.group()
def config():
    """Write and check the configuration file of `edgerestore run --config FILE` (the service).

    \b
    Examples:
      edgerestore config init --device rpi4 --output /etc/edgerestore/config.toml
      edgerestore config init > edgerestore.toml
      edgerestore config check /etc/edgerestore/config.toml
    """


@config.command("init")
@click.option("--device", "-d", default=None,
              help="Board profile whose defaults to write (camera, resolution, backend order, preset); "
                   "`edgerestore devices` lists them.")
@click.option("--output", "-o", default="-", show_default=True, help="Where to write it ('-' = stdout).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(device, output, force):
    """Write a complete, commented default configuration (TOML).

    Every setting is there with a comment saying what it does and what it accepts; --device fills
    in a board's camera, resolution, backend order and model preset.

    \b
    Examples:
      edgerestore config init --device rpi4 --output /etc/edgerestore/config.toml
      edgerestore config init --device jetson-nano > jetson.toml
    """
    from edgerestore.runtime.config import load_profile, render_config, write_config

    profile = load_profile(device) if device else None
    if output == "-":
        click.echo(render_config(profile), nl=False)
        return
    write_config(output, profile, force=force)
    click.echo("wrote %s — check it with `edgerestore config check %s`" % (output, output), err=True)


@config.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="Only the verdict.")
def check(path, quiet):
    """Validate PATH; print every setting and where its value came from.

    A problem is one line naming the key, the line and what is accepted (exit code 6).

    \b
    Example:
      edgerestore config check /etc/edgerestore/config.toml
    """
    from edgerestore.runtime.config import load_config
    from edgerestore.runtime.uri import redact

    loaded = load_config(path)
    if not quiet:
        for line in loaded.describe():
            click.echo(redact(line))
    click.echo("ok: %s" % path, err=True)
