"""How hot is the board, and is it throttling? Small readers for the service's statistics.

* every Linux board: ``/sys/class/thermal/thermal_zone*/{type,temp}`` (millidegrees);
* Raspberry Pi: the firmware's throttling bits from ``/sys/devices/platform/soc/soc:firmware/
  get_throttled`` (recent kernels), else ``vcgencmd get_throttled``;
* Jetson: ``tegrastats`` (run once as a child process, its newest line parsed: temperatures per
  rail and the GPU load), besides the thermal zones.

Every reader takes ``root`` (where ``/`` is) and ``command_path`` (the ``PATH`` searched for the
tools), so tests point them at stand-in files and scripts shaped like the real ones; nothing
raises when a board lacks something — it is simply left out. Commands are argument lists, never
shell strings. Python 3.6-safe.

(``edgerestore.devices.detect`` on the benchmarks branch reads the same thermal zones and
``vcgencmd`` bits for bench results; the two can share one implementation once both are merged.)
"""

import glob
import os
import re
import subprocess
import threading

THROTTLED_SYSFS = "/sys/devices/platform/soc/soc:firmware/get_throttled"

# Bits of the Raspberry Pi firmware's throttling word (vcgencmd get_throttled).
THROTTLE_BITS = {
    0: "under-voltage",
    1: "arm-frequency-capped",
    2: "throttled",
    3: "soft-temperature-limit",
    16: "under-voltage-occurred",
    17: "arm-frequency-capped-occurred",
    18: "throttled-occurred",
    19: "soft-temperature-limit-occurred",
}


def _under(root, path):
    return os.path.join(root or "/", path.lstrip("/"))


def _read(path):
    try:
        with open(path, "r") as handle:
            return handle.read().strip()
    except (IOError, OSError, UnicodeDecodeError):
        return None


def _which(program, command_path=None):
    for folder in (command_path if command_path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        candidate = os.path.join(folder, program)
        if folder and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def read_thermal_zones(root="/"):
    """``{zone type: degrees C}`` for every zone that reads; repeated types get ``-2``, ``-3``..."""
    zones = {}
    paths = glob.glob(_under(root, "/sys/class/thermal/thermal_zone*"))
    for path in sorted(paths, key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0)):
        raw = _read(os.path.join(path, "temp"))
        try:
            celsius = int(raw) / 1000.0
        except (TypeError, ValueError):
            continue
        name = _read(os.path.join(path, "type")) or os.path.basename(path)
        key, number = name, 1
        while key in zones:
            number += 1
            key = "%s-%d" % (name, number)
        zones[key] = round(celsius, 1)
    return zones


def decode_throttled(value):
    """The firmware's throttling word -> ``{"raw", "now", "since_boot", "flags"}``."""
    return {
        "raw": "0x%x" % value,
        "now": bool(value & 0xF),
        "since_boot": bool(value & 0xF0000),
        "flags": [name for bit, name in sorted(THROTTLE_BITS.items()) if value & (1 << bit)],
    }


def read_throttled(root="/", command_path=None, timeout=2.0):
    """Raspberry Pi throttling from sysfs, else ``vcgencmd get_throttled``; None elsewhere."""
    raw = _read(_under(root, THROTTLED_SYSFS))
    if raw:
        try:
            return decode_throttled(int(raw, 16))
        except ValueError:
            pass
    program = _which("vcgencmd", command_path)
    if program is None:
        return None
    try:
        out = subprocess.check_output([program, "get_throttled"], stderr=subprocess.STDOUT, timeout=timeout)
    except (subprocess.SubprocessError, OSError):
        return None
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", out.decode("utf-8", "replace"))
    return decode_throttled(int(match.group(1), 16)) if match else None


_TEGRA_TEMP = re.compile(r"\b([A-Za-z0-9_]+)@(-?\d+(?:\.\d+)?)C\b")
_TEGRA_GPU = re.compile(r"\bGR3D_FREQ (\d+)%")


def parse_tegrastats(line):
    """One ``tegrastats`` line -> ``{"temperatures": {rail: C}, "gpu_load_pct": int}`` (what it has)."""
    out = {}
    temps = dict((name.lower(), float(value)) for name, value in _TEGRA_TEMP.findall(line or ""))
    if temps:
        out["temperatures"] = temps
    gpu = _TEGRA_GPU.search(line or "")
    if gpu:
        out["gpu_load_pct"] = int(gpu.group(1))
    return out


class Tegrastats(object):
    """``tegrastats --interval MS`` as a child process; :meth:`latest` parses its newest line."""

    def __init__(self, command_path=None, interval_ms=1000):
        self.program = _which("tegrastats", command_path)
        self.interval_ms = interval_ms
        self._process = None
        self._line = None
        self._thread = None

    @property
    def available(self):
        return self.program is not None

    def start(self):
        if self.program is None or self._process is not None:
            return self
        try:
            self._process = subprocess.Popen([self.program, "--interval", str(int(self.interval_ms))],
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError:
            self.program = None
            return self
        self._thread = threading.Thread(target=self._pump, name="edgerestore-tegrastats")
        self._thread.daemon = True
        self._thread.start()
        return self

    def _pump(self):
        for raw in iter(self._process.stdout.readline, b""):
            self._line = raw.decode("utf-8", "replace").strip()

    def latest(self):
        return parse_tegrastats(self._line) if self._line else {}

    def stop(self):
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


class Telemetry(object):
    """The board's temperatures and throttling, for one statistics line (empty where unknown)."""

    def __init__(self, root="/", command_path=None, tegrastats=True):
        self.root = root
        self.command_path = command_path
        self.tegrastats = Tegrastats(command_path).start() if tegrastats else None

    def snapshot(self):
        zones = read_thermal_zones(self.root)
        out = {}
        if self.tegrastats is not None and self.tegrastats.available:
            tegra = self.tegrastats.latest()
            for name, celsius in tegra.get("temperatures", {}).items():
                zones.setdefault("tegra-" + name, celsius)
            if "gpu_load_pct" in tegra:
                out["gpu_load_pct"] = tegra["gpu_load_pct"]
        if zones:
            out["temperature_c"] = max(zones.values())
            out["temperatures"] = zones
        throttled = read_throttled(self.root, self.command_path)
        if throttled is not None:
            out["throttled"] = throttled
        return out

    def close(self):
        if self.tegrastats is not None:
            self.tegrastats.stop()
