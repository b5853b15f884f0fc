"""``edgerestore service install`` / ``service status``: run under systemd. Python 3.6-safe."""

import json

import click

from edgerestore.runtime.service import DEFAULT_UNIT_PATH

# health status -> exit code of `service status` (unreachable: 8, from ServiceUnreachableError)
STATUS_EXIT = {"ok": 0, "degraded": 1, "starting": 2, "stalled": 2, "stopping": 2}


@click.group()
def service():
    """Install edgerestore as a systemd service, and ask a running one how it is.

    \b
    Examples:
      edgerestore config init --device rpi4 --output /etc/edgerestore/config.toml
      sudo edgerestore service install --config /etc/edgerestore/config.toml
      edgerestore service status --config /etc/edgerestore/config.toml
    """


@service.command("install")
@click.option("--config", "-c", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The service's config file (validated now; the unit passes its absolute path).")
@click.option("--output", "-o", default=DEFAULT_UNIT_PATH, show_default=True, help="Where to write the unit.")
@click.option("--user", default=None, help="System user to run as  [default: service.user of the config].")
@click.option("--name", default="edgerestore", show_default=True, help="Unit name (several cameras: several units).")
@click.option("--force", is_flag=True, help="Replace an existing unit file.")
def install(config_path, output, user, name, force):
    """Write a systemd unit for `edgerestore run --config FILE` and print how to enable it.

    The unit: Type=notify (ready when the pipeline runs), Restart=on-failure, WatchdogSec from
    service.watchdog_s (the service pings while healthy: a stuck pipeline gets restarted),
    ExecReload sends SIGHUP (reload the config without stopping the stream), a dedicated
    system user in the video group, and a read-only view of /usr, /boot, /etc.
    It runs nothing as root and starts nothing: the printed commands do.

    \b
    Examples:
      sudo edgerestore service install --config /etc/edgerestore/config.toml
      edgerestore service install -c cam2.toml --name edgerestore-cam2 --output ./edgerestore-cam2.service
    """
    import os

    from edgerestore.runtime.config import load_config
    from edgerestore.runtime.service import enable_instructions, install_unit, render_unit, writable_folders

    absolute = os.path.abspath(config_path)
    loaded = load_config(absolute)
    user = user or loaded.service.user
    text = render_unit(absolute, user=user, watchdog_s=loaded.service.watchdog_s,
                       stop_timeout_s=loaded.service.stop_timeout_s, name=name, writable=writable_folders(loaded))
    path = install_unit(text, output, force=force)
    for line in enable_instructions(path, user, name=name, config_path=absolute):
        click.echo(line)


@service.command("status")
@click.option("--config", "-c", "config_path", default=None, type=click.Path(dir_okay=False),
              help="Read the address and token from this config file.")
@click.option("--url", default=None, help="The service's address, e.g. http://127.0.0.1:8080  [default: from --config, "
                                          "else http://127.0.0.1:8080]")
@click.option("--token", default=None, envvar="EDGERESTORE_HTTP_TOKEN",
              help="Token of a service that listens beyond 127.0.0.1 (or $EDGERESTORE_HTTP_TOKEN).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw /healthz JSON.")
@click.pass_context
def status(ctx, config_path, url, token, as_json):
    """Ask a running service for its health (its /healthz endpoint).

    Exit code: 0 ok, 1 degraded (e.g. the camera is being reconnected, a sink retries), 2 starting,
    stalled or stopping, 8 nobody answers.

    \b
    Examples:
      edgerestore service status
      edgerestore service status --config /etc/edgerestore/config.toml --json
    """
    from edgerestore.runtime.service import describe_health, fetch_health, health_url

    if url:
        target = url.rstrip("/") + ("" if url.rstrip("/").endswith("/healthz") else "/healthz")
    elif config_path:
        from edgerestore.errors import ConfigError
        from edgerestore.runtime.config import load_config

        loaded = load_config(config_path)
        if loaded.http.listen is None:
            raise ConfigError("%s sets http.listen = \"off\": the service has no health endpoint to ask" % config_path)
        target = health_url(loaded.http.listen)
        token = token or loaded.token()
    else:
        target = health_url(("127.0.0.1", 8080))
    _code, health = fetch_health(target, token=token)
    if as_json:
        click.echo(json.dumps(health, indent=2, sort_keys=True))
    else:
        for line in describe_health(health):
            click.echo(line)
    ctx.exit(STATUS_EXIT.get(health.get("status"), 2))
