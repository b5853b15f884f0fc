"""Running under systemd: the unit file, readiness and watchdog notifications, and asking a
running service how it is. Python 3.6-safe, no systemd library needed.

* :func:`notify` speaks systemd's notification protocol: one datagram (``READY=1``,
  ``WATCHDOG=1``, ``RELOADING=1``, ``STOPPING=1``, ``STATUS=...``) to the socket in
  ``$NOTIFY_SOCKET``. Outside systemd it does nothing.
* :func:`render_unit` writes a ``Type=notify`` unit with ``Restart=on-failure``, a watchdog, a
  dedicated system user and ``ExecReload`` (SIGHUP); arguments are quoted for systemd, never
  put through a shell.
* :func:`fetch_health` reads ``/healthz`` of a running service (``edgerestore service status``).
"""

import json
import os
import re
import socket
import sys
import time

from edgerestore.errors import ConfigError, EdgeRestoreError

DEFAULT_UNIT_PATH = "/etc/systemd/system/edgerestore.service"
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.@-]+$")


class ServiceUnreachableError(EdgeRestoreError):
    """No edgerestore service answers at the address (not running, another port, firewall)."""

    exit_code = 8


# --- sd_notify -------------------------------------------------------------------------------

def notify(state, environ=None):
    """Send ``state`` (e.g. ``"READY=1"``) to systemd; False when not under systemd or it fails."""
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(address)
        sock.sendall(state.encode("utf-8"))
        return True
    except (IOError, OSError):
        return False
    finally:
        sock.close()


def watchdog_seconds(environ=None):
    """The watchdog period systemd asks for (``$WATCHDOG_USEC``), or None without a watchdog."""
    environ = os.environ if environ is None else environ
    usec = environ.get("WATCHDOG_USEC")
    pid = environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6 or None
    except ValueError:
        return None


def monotonic_usec():
    """``MONOTONIC_USEC=`` that systemd wants with ``RELOADING=1`` (CLOCK_MONOTONIC, microseconds)."""
    return "MONOTONIC_USEC=%d" % int(time.monotonic() * 1e6)


# --- the unit file ---------------------------------------------------------------------------

def systemd_quote(arg):
    """One ExecStart argument as systemd reads it: specifiers (%) and variables ($) taken literally."""
    arg = str(arg)
    if any(ord(char) < 32 for char in arg):
        raise ConfigError("%r contains a control character (a newline?) — it cannot go into a unit file" % arg)
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if re.match(r"[A-Za-z0-9_@%+=:,./-]+$", escaped) and escaped:
        return escaped
    return '"%s"' % escaped.replace("\\", "\\\\").replace('"', '\\"')


UNIT_TEMPLATE = """\
# edgerestore as a service — written by `edgerestore service install`.
# Enable:   sudo systemctl daemon-reload && sudo systemctl enable --now {name}
# Reload the config without stopping the stream:   sudo systemctl reload {name}
# Health:   edgerestore service status --config {config_comment}
[Unit]
Description=edgerestore: real-time video restoration
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
# the first start on a Jetson may build a TensorRT engine (minutes); READY=1 comes after it
TimeoutStartSec=900
{watchdog}TimeoutStopSec={stop_timeout}
User={user}
Group={user}
# cameras, the framebuffer and Jetson's GPU devices belong to the video group
SupplementaryGroups=video
Environment=PYTHONUNBUFFERED=1
Environment=EDGERESTORE_CACHE=/var/cache/{name}
CacheDirectory={name}
StateDirectory={name}
WorkingDirectory=/var/lib/{name}
# Sandbox (systemd-analyze security rates it "OK"; tests/test_service.py checks the score). Kept:
# the camera, framebuffer and Jetson GPU device nodes (no PrivateDevices/DevicePolicy), the
# network (cameras, streams, the HTTP server), W+X memory (ONNX Runtime and TensorRT JIT code).
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=read-only
{writable}ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
KeyringMode=private
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
SystemCallArchitectures=native
CapabilityBoundingSet=
AmbientCapabilities=
UMask=0027

[Install]
WantedBy=multi-user.target
"""


def render_unit(config_path, user="edgerestore", watchdog_s=30.0, stop_timeout_s=2.0, name="edgerestore",
                python=None, writable=()):
    """The text of a systemd unit that runs ``edgerestore run --config CONFIG_PATH``; ``writable``
    lists the folders it writes besides its own (recordings, the log file): the rest of the file
    system is read-only to it (``ProtectSystem=strict``)."""
    if not os.path.isabs(config_path):
        raise ConfigError("the config path in a unit must be absolute, got %s" % config_path)
    if not re.match(r"[a-z_][a-z0-9_-]{0,31}$", user):
        raise ConfigError("%r is not a valid user name — lower-case letters, digits, _ and -" % user)
    if not _UNIT_NAME.match(name):
        raise ConfigError("%r is not a valid unit name — letters, digits, _ . @ -" % name)
    argv = [python or sys.executable, "-m", "edgerestore", "run", "--config", config_path]
    watchdog = "WatchdogSec=%d\n" % max(1, int(round(watchdog_s))) if watchdog_s else ""
    # systemd waits TimeoutStopSec for the drain before it kills: the drain's budget plus startup slack.
    stop_timeout = int(max(10, stop_timeout_s + 8))
    folders = []
    for folder in writable:
        if not os.path.isabs(folder) or "\n" in folder:
            raise ConfigError("a writable folder in a unit must be an absolute path, got %r" % (folder,))
        if folder not in folders:
            folders.append(folder)
    writable_line = ("ReadWritePaths=%s\n" % " ".join("-" + systemd_quote(f) for f in folders)) if folders else ""
    return UNIT_TEMPLATE.format(
        name=name, exec_start=" ".join(systemd_quote(arg) for arg in argv), watchdog=watchdog, writable=writable_line,
        stop_timeout=stop_timeout, user=user, config_comment=systemd_quote(config_path).replace("%%", "%"),
    )


def writable_folders(config):
    """The folders a service with ``config`` writes outside its own state/cache directories: those
    of its ``file://`` recordings and image folders, and of its log file."""
    from edgerestore.runtime.uri import parse_uri

    folders = []
    for sink in config.output.sinks:
        uri = parse_uri(sink)
        if uri.scheme in ("file", "image", "images"):
            location = os.path.abspath(uri.location)
            folders.append(location if uri.scheme == "images" else os.path.dirname(location))
    if config.logging.file:
        folders.append(os.path.dirname(os.path.abspath(config.logging.file)))
    return [f for f in folders if not f.startswith("/dev")]


def install_unit(text, path=DEFAULT_UNIT_PATH, force=False):
    """Write the unit to ``path`` (atomically; an existing one only with ``force``)."""
    if os.path.exists(path) and not force:
        raise ConfigError("%s exists — pass --force to replace it" % path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError("%s does not exist — is systemd installed? (--output writes the unit elsewhere)" % folder)
    tmp = path + ".part"
    try:
        with open(tmp, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except (IOError, OSError) as exc:
        raise ConfigError("cannot write %s (%s) — run it with sudo, or pass --output" % (path, exc.strerror or exc))
    return path


def enable_instructions(path, user, name="edgerestore", config_path=None):
    """What to run next, as lines (printed by ``edgerestore service install``)."""
    unit = os.path.basename(path)
    lines = ["wrote %s" % path, "next:"]
    lines.append("  sudo useradd --system --no-create-home --shell /usr/sbin/nologin %s   # once" % user)
    if config_path:
        lines.append("  sudo chown root:%s %s && sudo chmod 640 %s   # the service reads it"
                     % (user, config_path, config_path))
    if os.path.dirname(os.path.abspath(path)) != os.path.dirname(DEFAULT_UNIT_PATH):
        lines.append("  sudo cp %s /etc/systemd/system/%s" % (path, unit))
    lines += [
        "  sudo systemctl daemon-reload",
        "  sudo systemctl enable --now %s" % (unit[:-len(".service")] if unit.endswith(".service") else unit),
        "  journalctl -u %s -f          # the JSON-lines log" % name,
        "  edgerestore service status%s" % (" --config %s" % config_path if config_path else ""),
    ]
    return lines


# --- asking a running service ------------------------------------------------------------------

def health_url(listen):
    """``/healthz`` URL for an ``http.listen`` ``(host, port)``; a wildcard address is asked on loopback."""
    host, port = listen
    if host in ("0.0.0.0", "", "::", "[::]"):
        host = "127.0.0.1"
    return "http://%s:%d/healthz" % (host, port)


def fetch_health(url, token=None, timeout=3.0):
    """``(http status, health dict)`` from a running service; ServiceUnreachableError if none answers."""
    from urllib.error import HTTPError, URLError
    from urllib.request import Request, urlopen

    request = Request(url, headers={"Authorization": "Bearer %s" % token} if token else {})
    try:
        response = urlopen(request, timeout=timeout)
        code, body = response.status, response.read()
    except HTTPError as exc:  # 503: stalled or starting — the body still says why
        code, body = exc.code, exc.read()
    except (URLError, socket.error, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceUnreachableError("no edgerestore service answers at %s (%s) — is it running? "
                                      "`systemctl status edgerestore` and `journalctl -u edgerestore` tell"
                                      % (url, reason))
    try:
        return code, json.loads(body.decode("utf-8"))
    except ValueError:
        raise ServiceUnreachableError("%s answered %d but not with edgerestore's health JSON — another program "
                                      "on that port?" % (url, code))


def describe_health(health):
    """Human lines for ``edgerestore service status``."""
    lines = ["%s — %s" % (health.get("status", "?"), health.get("reason") or "")]
    lines.append("uptime %.0f s, pid %s, config %s, reloads %s" % (
        health.get("uptime_s") or 0, health.get("pid"), health.get("config") or "-", health.get("reloads", 0)))
    backend = health.get("backend") or {}
    lines.append("backend %s (%s), %s FPS, latency p50 %s ms, fallbacks %s" % (
        backend.get("name"), backend.get("candidate") or "-", health.get("fps"), health.get("latency_ms_p50"),
        backend.get("fallbacks", 0)))
    source = health.get("source") or {}
    lines.append("source %s: %s, reconnects %s, corrupt frames %s%s" % (
        source.get("uri"), source.get("state"), source.get("reconnects"), source.get("corrupt"),
        ", last error: %s" % source["error"] if source.get("error") and source.get("state") != "connected" else ""))
    lines.append("frames %s, dropped %s" % (health.get("frames"), health.get("dropped")))
    for label, sink in sorted((health.get("sinks") or {}).items()):
        lines.append("sink %s: %s, %s written, %s skipped, %s failures%s" % (
            label, sink.get("state"), sink.get("written"), sink.get("skipped"), sink.get("failures"),
            ", last error: %s" % sink["error"] if sink.get("error") and sink.get("state") != "ok" else ""))
    telemetry = health.get("telemetry") or {}
    if telemetry.get("temperature_c") is not None:
        throttled = telemetry.get("throttled") or {}
        lines.append("temperature %.1f °C%s" % (telemetry["temperature_c"],
                                                 ", throttled: %s" % ", ".join(throttled.get("flags", []))
                                                 if throttled.get("flags") else ""))
    return lines
