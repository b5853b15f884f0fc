"""``edgerestore backends``. Python 3.6-safe."""

import click


@click.command()
def backends():
    """List inference backends and whether each can run here (and, if not, how to fix it)."""
    from edgerestore.runtime.backends import list_backends

    for name, available, reason in list_backends():
        mark = "available" if available else "unavailable: " + reason
        click.echo("%-12s %s" % (name, mark))
