"""How hot is the board, and is it throttling? The readers behind the service's statistics.

* every Linux board: the thermal zones (``/sys/class/thermal``), read by
  :func:`edgerestore.devices.detect.read_temperatures` (the same reader ``edgerestore bench`` uses);
* Raspberry Pi: the firmware's throttling bits from ``/sys/devices/platform/soc/soc:firmware/
  get_throttled`` (recent kernels; no process to start), else ``vcgencmd get_throttled``
  (:func:`edgerestore.devices.detect.read_throttled`);
* Jetson: ``tegrastats``, run once as a child process whose newest line is parsed (temperature of
  each rail, GPU load), besides the thermal zones.

Every reader takes ``root`` (where ``/`` is) and ``command_path`` (the ``PATH`` searched for the
tools), so tests point them at stand-in files and scripts shaped like the real ones; nothing
raises when a board lacks something — it is left out. Commands are argument lists, never shell
strings. Python 3.6-safe.
"""

import re
import shutil
import subprocess
import threading

from edgerestore.devices import detect

THROTTLED_SYSFS = "/sys/devices/platform/soc/soc:firmware/get_throttled"


def read_thermal_zones(root="/"):
    """``{zone type: degrees C}`` for every zone that reads; repeated types get ``-2``, ``-3``..."""
    return detect.read_temperatures(root)


def read_throttled(root="/", command_path=None):
    """Raspberry Pi throttling (``{"raw", "now", "since_boot", "flags"}``) from sysfs, else
    ``vcgencmd``; None on other boards."""
    raw = detect.read_text(THROTTLED_SYSFS, root)
    if raw and re.match(r"^(0x)?[0-9a-fA-F]+$", raw):
        return detect.parse_throttled("throttled=0x%s" % raw[2:] if raw.startswith("0x") else "throttled=0x" + raw)
    return detect.read_throttled(command_path)


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
        self.program = shutil.which("tegrastats", path=command_path)
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
