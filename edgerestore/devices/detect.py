"""Which board is this, and how hot and throttled is it? Python 3.6-safe, torch-free.

* Raspberry Pi: the model string from ``/proc/device-tree/model`` ("Raspberry Pi 4 Model B Rev 1.4");
  throttling from ``vcgencmd get_throttled`` when the command exists.
* Jetson: ``/etc/nv_tegra_release`` gives the L4T release (hence the JetPack version), the model
  string and ``/proc/device-tree/compatible`` the SoC, ``nvpmodel -q`` (or nvpmodel's status
  file) the power mode.
* Anything else: the CPU model from ``/proc/cpuinfo``, the cpufreq governor and clocks.

Temperatures come from ``/sys/class/thermal/thermal_zone*`` on every Linux board.

Every function takes ``root`` (where ``/`` is) and ``command_path`` (the ``PATH`` searched for
``vcgencmd`` / ``nvpmodel``), so tests point them at stand-in files and scripts shaped like the
real ones. Nothing here raises on a missing file: what a board does not expose is ``None``.
"""

import glob
import os
import platform
import re
import shutil
import socket
import subprocess
import sys

# The SoC in each Raspberry Pi, by the model string's prefix (longest prefix wins).
PI_SOCS = {
    "Raspberry Pi 5": "BCM2712",
    "Raspberry Pi 500": "BCM2712",
    "Raspberry Pi Compute Module 5": "BCM2712",
    "Raspberry Pi 4": "BCM2711",
    "Raspberry Pi 400": "BCM2711",
    "Raspberry Pi Compute Module 4": "BCM2711",
    "Raspberry Pi 3": "BCM2837",
    "Raspberry Pi Zero 2": "BCM2710A1",
    "Raspberry Pi 2": "BCM2836",
}

# Tegra SoC by the device tree's "compatible" entry.
TEGRA_SOCS = {
    "nvidia,tegra210": "Tegra X1 (T210)",
    "nvidia,tegra186": "Tegra X2 (T186)",
    "nvidia,tegra194": "Xavier (T194)",
    "nvidia,tegra234": "Orin (T234)",
    "nvidia,tegra264": "Thor (T264)",
}

# L4T release -> JetPack version (NVIDIA's release notes); unknown releases keep only the L4T number.
L4T_TO_JETPACK = {
    "32.6.1": "4.6", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4",
    "32.7.5": "4.6.5", "32.7.6": "4.6.6",
    "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3",
    "35.6.0": "5.1.4",
    "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2",
}

# ARM "CPU part" ids in /proc/cpuinfo, for boards whose cpuinfo has no "model name".
ARM_CORES = {
    "0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd41": "Cortex-A78", "0xd42": "Cortex-A78AE",
    "0xd4b": "Cortex-A78C", "0x004": "Carmel (NVIDIA)",
}

# Bits of `vcgencmd get_throttled` (Raspberry Pi firmware documentation).
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


def _path(root, path):
    return os.path.join(root or "/", path.lstrip("/"))


def read_text(path, root="/"):
    """The stripped text of ``root/path`` (NULs removed, as device-tree strings end in one) or None."""
    try:
        with open(_path(root, path), "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data.replace(b"\x00", b"\n").decode("utf-8", "replace").strip() or None


def run_command(argv, command_path=None, timeout=5.0):
    """stdout of ``argv`` if the program exists on ``command_path`` (default PATH) and succeeds, else None."""
    program = shutil.which(argv[0], path=command_path)
    if program is None:
        return None
    try:
        out = subprocess.check_output([program] + list(argv[1:]), stderr=subprocess.STDOUT, timeout=timeout)
    except (subprocess.SubprocessError, OSError):
        return None
    return out.decode("utf-8", "replace").strip()


def _cpuinfo_fields(root):
    """First value of each ``key : value`` line in /proc/cpuinfo, plus the processor count."""
    text = read_text("/proc/cpuinfo", root) or ""
    fields = {}
    processors = 0
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, value = [part.strip() for part in line.split(":", 1)]
        if key == "processor":
            processors += 1
        fields.setdefault(key, value)
    return fields, processors


VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "neon", "asimd", "asimddp", "fphp")
"""The CPU features FP32 and INT8 inference speed hangs on (x86 ``flags``, ARM ``Features``)."""


def vector_flags(root="/"):
    """Which of :data:`VECTOR_FLAGS` this CPU reports in /proc/cpuinfo (an empty list where it says none)."""
    fields, _ = _cpuinfo_fields(root)
    have = set((fields.get("flags") or fields.get("Features") or "").split())
    return [flag for flag in VECTOR_FLAGS if flag in have]


def _khz_to_mhz(text):
    try:
        return int(text) // 1000
    except (TypeError, ValueError):
        return None


def cpu_info(root="/"):
    """CPU model, core count, cpufreq governor and clocks (MHz) where exposed."""
    fields, processors = _cpuinfo_fields(root)
    model = fields.get("model name") or fields.get("Processor")
    if not model and fields.get("CPU part"):
        core = ARM_CORES.get(fields["CPU part"].lower())
        model = core and ("ARM " + core)
    if not model:
        model = fields.get("Hardware") or platform.processor() or platform.machine() or "unknown"
    cpufreq = "/sys/devices/system/cpu/cpu0/cpufreq/"
    is_real_root = os.path.abspath(root or "/") == "/"
    cores = processors or (os.cpu_count() if is_real_root else None)
    return {
        "model": model,
        "cores": cores,
        "governor": read_text(cpufreq + "scaling_governor", root),
        "max_mhz": _khz_to_mhz(read_text(cpufreq + "cpuinfo_max_freq", root)),
        "cur_mhz": _khz_to_mhz(read_text(cpufreq + "scaling_cur_freq", root)),
    }


def ram_mb(root="/"):
    """Total memory in MB from /proc/meminfo, or None."""
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", read_text("/proc/meminfo", root) or "", re.M)
    return int(match.group(1)) // 1024 if match else None


def os_name(root="/"):
    """PRETTY_NAME from /etc/os-release, or None."""
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', read_text("/etc/os-release", root) or "", re.M)
    return match.group(1) if match else None


def parse_l4t(text):
    """``"# R32 (release), REVISION: 7.1, ..."`` -> ``"32.7.1"``; None when it does not parse."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text or "")
    if not match:
        return None
    parts = [match.group(1)] + match.group(2).split(".")
    while len(parts) < 3:
        parts.append("0")
    return ".".join(parts[:3])


def jetpack_for_l4t(l4t):
    """JetPack version of an L4T release, or None when our table does not know it."""
    return L4T_TO_JETPACK.get(l4t) if l4t else None


def parse_nvpmodel_query(text):
    """``nvpmodel -q`` prints ``NV Power Mode: MAXN`` and the mode id; returns {"name", "id"}."""
    if not text:
        return None
    name = re.search(r"NV Power Mode:\s*(\S+)", text)
    ident = re.search(r"^\s*(\d+)\s*$", text, re.M)
    if not name and not ident:
        return None
    return {"name": name.group(1) if name else None, "id": int(ident.group(1)) if ident else None}


def nvpmodel_mode(root="/", command_path=None):
    """The Jetson power mode: ``nvpmodel -q``, else nvpmodel's status file and its config's names."""
    mode = parse_nvpmodel_query(run_command(["nvpmodel", "-q"], command_path))
    if mode:
        return mode
    status = re.search(r"pmode:\s*(\d+)", read_text("/var/lib/nvpmodel/status", root) or "")
    if not status:
        return None
    ident = int(status.group(1))
    names = dict(
        (int(i), n) for i, n in re.findall(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>",
                                           read_text("/etc/nvpmodel.conf", root) or "")
    )
    return {"name": names.get(ident), "id": ident}


def _pi_soc(model):
    best = None
    for prefix, soc in PI_SOCS.items():
        if model.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, soc)
    return best[1] if best else None


def _tegra_soc(root):
    compatible = read_text("/proc/device-tree/compatible", root) or ""
    for entry in compatible.split():
        if entry in TEGRA_SOCS:
            return TEGRA_SOCS[entry]
    return None


def detect_board(root="/", command_path=None):
    """Describe this machine: kind (raspberry-pi / jetson / generic), name, SoC, CPU, RAM, OS, versions."""
    dt_model = read_text("/proc/device-tree/model", root)
    tegra_release = read_text("/etc/nv_tegra_release", root)
    cpu = cpu_info(root)
    board = {
        "kind": "generic",
        "name": None,
        "model": dt_model,
        "soc": None,
        "cpu": cpu,
        "ram_mb": ram_mb(root),
        "os": os_name(root),
        "kernel": read_text("/proc/sys/kernel/osrelease", root),
        "machine": platform.machine(),
        "hostname": socket.gethostname() if os.path.abspath(root or "/") == "/" else None,
        "python": platform.python_version(),
        "l4t": None,
        "jetpack": None,
        "nvpmodel": None,
    }
    if tegra_release or (dt_model and "jetson" in dt_model.lower()):
        board["kind"] = "jetson"
        board["l4t"] = parse_l4t(tegra_release)
        board["jetpack"] = jetpack_for_l4t(board["l4t"])
        board["soc"] = _tegra_soc(root)
        board["nvpmodel"] = nvpmodel_mode(root, command_path)
        board["name"] = dt_model or "NVIDIA Jetson"
    elif dt_model and dt_model.startswith("Raspberry Pi"):
        board["kind"] = "raspberry-pi"
        board["soc"] = _pi_soc(dt_model)
        board["name"] = re.sub(r"\s+Rev\s+[\d.]+$", "", dt_model)
    else:
        cores = cpu["cores"]
        board["name"] = cpu["model"] + (" (%d cores)" % cores if cores else "")
    return board


def board_target(board=None, root="/"):
    """The target name of this machine (``jetson-nano``, ``rpi5``...): a known board, the family
    when the model is not one of ours (``jetson``, ``pi``), else ``None`` (a laptop or desktop)."""
    board = board or detect_board(root)
    model = (board.get("model") or board.get("name") or "").lower()
    if board["kind"] == "jetson":
        # "Orin Nano" is an Orin: look for orin first
        for word, target in (("orin", "jetson-orin"), ("xavier", "jetson-xavier-nx"), ("nano", "jetson-nano")):
            if word in model:
                return target
        return "jetson"
    if board["kind"] == "raspberry-pi":
        for word, target in (("pi 4", "rpi4"), ("pi 5", "rpi5")):
            if word in model:
                return target
        return "pi"
    return None


def read_temperatures(root="/"):
    """``{zone type: degrees C}`` of every thermal zone that reads (types repeat -> suffixed)."""
    temps = {}
    zones = sorted(glob.glob(_path(root, "/sys/class/thermal/thermal_zone*")),
                   key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0))
    for zone in zones:
        raw = read_text(os.path.join(zone, "temp"), "/")
        try:
            value = int(raw) / 1000.0
        except (TypeError, ValueError):
            continue
        name = read_text(os.path.join(zone, "type"), "/") or os.path.basename(zone)
        key, n = name, 1
        while key in temps:
            n += 1
            key = "%s-%d" % (name, n)
        temps[key] = round(value, 1)
    return temps


def parse_throttled(text):
    """``"throttled=0x50005"`` -> {"raw", "now", "since_boot", "flags"}; None when it does not parse."""
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", text or "")
    if not match:
        return None
    value = int(match.group(1), 16)
    flags = [name for bit, name in sorted(THROTTLE_BITS.items()) if value & (1 << bit)]
    return {
        "raw": match.group(1),
        "now": bool(value & 0xF),
        "since_boot": bool(value & 0xF0000),
        "flags": flags,
    }


def read_throttled(command_path=None):
    """Raspberry Pi throttling state from ``vcgencmd get_throttled``; None where there is no vcgencmd."""
    return parse_throttled(run_command(["vcgencmd", "get_throttled"], command_path))


def thermal_snapshot(root="/", command_path=None):
    """Hottest zone, every zone, CPU clock and throttling now: taken before and after each bench row."""
    temps = read_temperatures(root)
    return {
        "temperature_c": max(temps.values()) if temps else None,
        "zones": temps,
        "cpu_mhz": _khz_to_mhz(read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", root)),
        "throttled": read_throttled(command_path),
    }


def describe(board):
    """One line for logs: ``Raspberry Pi 4 Model B (BCM2711), 4 cores, governor ondemand``."""
    parts = [board.get("name") or "unknown board"]
    if board.get("soc"):
        parts[0] += " (%s)" % board["soc"]
    if board.get("jetpack") or board.get("l4t"):
        parts.append("JetPack %s / L4T %s" % (board.get("jetpack") or "?", board.get("l4t") or "?"))
    if board.get("nvpmodel"):
        parts.append("nvpmodel %s" % (board["nvpmodel"].get("name") or board["nvpmodel"].get("id")))
    cpu = board.get("cpu") or {}
    if cpu.get("governor"):
        parts.append("governor %s" % cpu["governor"])
    return ", ".join(parts)


if __name__ == "__main__":  # pragma: no cover - a quick look on a board
    import json

    json.dump({"board": detect_board(), "thermal": thermal_snapshot()}, sys.stdout, indent=2)
    sys.stdout.write("\n")
