"""Board detection against stand-in files and commands shaped like the real boards'."""

import os
import stat
from pathlib import Path

import pytest

from edgerestore.devices import detect


def _tree(root: Path, files: dict) -> Path:
    for rel, content in files.items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def _command(bin_dir: Path, name: str, output: str) -> Path:
    """A stand-in executable printing what the real tool prints."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n" % output)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return bin_dir


PI4_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
CPU implementer\t: 0x41
CPU part\t: 0xd08
processor\t: 1
CPU part\t: 0xd08
processor\t: 2
processor\t: 3
Hardware\t: BCM2835
Revision\t: c03114
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""


def test_raspberry_pi_4(tmp_path):
    root = _tree(tmp_path / "root", {
        "/proc/device-tree/model": b"Raspberry Pi 4 Model B Rev 1.4\x00",
        "/proc/cpuinfo": PI4_CPUINFO,
        "/proc/meminfo": "MemTotal:        3884096 kB\nMemFree: 1 kB\n",
        "/etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian"\n',
        "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "ondemand\n",
        "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": "1800000\n",
        "/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": "600000\n",
        "/sys/class/thermal/thermal_zone0/type": "cpu-thermal\n",
        "/sys/class/thermal/thermal_zone0/temp": "51608\n",
    })
    bin_dir = _command(tmp_path / "bin", "vcgencmd", "throttled=0x50005")
    board = detect.detect_board(str(root), command_path=str(bin_dir))
    assert board["kind"] == "raspberry-pi"
    assert board["name"] == "Raspberry Pi 4 Model B"
    assert board["model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert board["soc"] == "BCM2711"
    assert board["cpu"]["model"] == "ARM Cortex-A72"
    assert board["cpu"]["cores"] == 4
    assert board["cpu"]["governor"] == "ondemand"
    assert board["cpu"]["max_mhz"] == 1800
    assert board["ram_mb"] == 3793
    assert board["os"] == "Debian GNU/Linux 12 (bookworm)"
    assert board["l4t"] is None and board["jetpack"] is None

    snap = detect.thermal_snapshot(str(root), command_path=str(bin_dir))
    assert snap["temperature_c"] == pytest.approx(51.6)
    assert snap["zones"] == {"cpu-thermal": pytest.approx(51.6)}
    assert snap["cpu_mhz"] == 600
    throttled = snap["throttled"]
    assert throttled["raw"] == "0x50005"
    assert throttled["now"] and throttled["since_boot"]
    assert throttled["flags"] == ["under-voltage", "throttled", "under-voltage-occurred", "throttled-occurred"]
    assert "BCM2711" in detect.describe(board) and "ondemand" in detect.describe(board)


def test_raspberry_pi_5_soc_prefers_the_longest_match(tmp_path):
    root = _tree(tmp_path, {"/proc/device-tree/model": b"Raspberry Pi 5 Model B Rev 1.0\x00"})
    board = detect.detect_board(str(root), command_path=str(tmp_path / "nobin"))
    assert (board["kind"], board["soc"], board["name"]) == ("raspberry-pi", "BCM2712", "Raspberry Pi 5 Model B")
    root400 = _tree(tmp_path / "r400", {"/proc/device-tree/model": b"Raspberry Pi 400 Rev 1.0\x00"})
    assert detect.detect_board(str(root400))["soc"] == "BCM2711"


def test_jetson_nano_with_nvpmodel_command(tmp_path):
    root = _tree(tmp_path / "root", {
        "/proc/device-tree/model": b"NVIDIA Jetson Nano Developer Kit\x00",
        "/proc/device-tree/compatible": b"nvidia,p3450-0000\x00nvidia,jetson-nano\x00nvidia,tegra210\x00",
        "/etc/nv_tegra_release": "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
                                 "DATE: Sat Feb 19 17:05:08 UTC 2022\n",
        "/proc/cpuinfo": "processor\t: 0\nmodel name\t: ARMv8 Processor rev 1 (v8l)\nprocessor\t: 1\n"
                         "processor\t: 2\nprocessor\t: 3\n",
        "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "schedutil\n",
        "/sys/class/thermal/thermal_zone0/type": "AO-therm\n",
        "/sys/class/thermal/thermal_zone0/temp": "38500\n",
        "/sys/class/thermal/thermal_zone1/type": "CPU-therm\n",
        "/sys/class/thermal/thermal_zone1/temp": "41000\n",
        "/sys/class/thermal/thermal_zone10/type": "CPU-therm\n",
        "/sys/class/thermal/thermal_zone10/temp": "bogus\n",
    })
    bin_dir = _command(tmp_path / "bin", "nvpmodel", "NV Power Mode: 5W\n1")
    board = detect.detect_board(str(root), command_path=str(bin_dir))
    assert board["kind"] == "jetson"
    assert board["name"] == "NVIDIA Jetson Nano Developer Kit"
    assert board["soc"] == "Tegra X1 (T210)"
    assert board["l4t"] == "32.7.1"
    assert board["jetpack"] == "4.6.1"
    assert board["nvpmodel"] == {"name": "5W", "id": 1}
    assert board["cpu"]["cores"] == 4
    assert "JetPack 4.6.1 / L4T 32.7.1" in detect.describe(board)
    temps = detect.read_temperatures(str(root))
    assert temps == {"AO-therm": 38.5, "CPU-therm": 41.0}  # the unreadable zone is skipped
    assert detect.thermal_snapshot(str(root), command_path=str(bin_dir))["throttled"] is None  # no vcgencmd


def test_jetson_nvpmodel_from_status_file_when_the_command_is_missing(tmp_path):
    root = _tree(tmp_path, {
        "/etc/nv_tegra_release": "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref\n",
        "/proc/device-tree/model": b"NVIDIA Orin Nano Developer Kit\x00",
        "/proc/device-tree/compatible": b"nvidia,p3768-0000+p3767-0005\x00nvidia,tegra234\x00",
        "/var/lib/nvpmodel/status": "pmode:0001 fmode:quiet\n",
        "/etc/nvpmodel.conf": "< POWER_MODEL ID=0 NAME=15W >\nCPU_ONLINE CORE_0 1\n< POWER_MODEL ID=1 NAME=7W >\n",
    })
    board = detect.detect_board(str(root), command_path=str(tmp_path / "empty-bin"))
    assert (board["soc"], board["l4t"], board["jetpack"]) == ("Orin (T234)", "35.4.1", "5.1.2")
    assert board["nvpmodel"] == {"name": "7W", "id": 1}


def test_generic_pc_and_missing_everything(tmp_path):
    root = _tree(tmp_path, {
        "/proc/cpuinfo": "processor\t: 0\nmodel name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz\nprocessor\t: 1\n",
        "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "powersave\n",
    })
    board = detect.detect_board(str(root))
    assert board["kind"] == "generic"
    assert board["name"] == "Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz (2 cores)"
    assert board["cpu"]["governor"] == "powersave"
    empty = detect.detect_board(str(tmp_path / "nothing"))
    assert empty["kind"] == "generic" and empty["ram_mb"] is None and empty["os"] is None
    assert detect.thermal_snapshot(str(tmp_path / "nothing"), command_path=str(tmp_path / "nobin")) == {
        "temperature_c": None, "zones": {}, "cpu_mhz": None, "throttled": None}


def test_vector_flags_of_an_x86_and_an_arm_cpu(tmp_path):
    """The CPU features speed is reported with (benchmarks print them beside their figures)."""
    x86 = _tree(tmp_path / "x86", {"/proc/cpuinfo": "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f "
                                                     "avx512bw avx512_vnni\n"})
    arm = _tree(tmp_path / "arm", {"/proc/cpuinfo": "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"})
    assert detect.vector_flags(str(x86)) == ["avx2", "fma", "avx512f", "avx512_vnni"]
    assert detect.vector_flags(str(arm)) == ["asimd"]
    assert detect.vector_flags(str(tmp_path / "nothing")) == []


@pytest.mark.parametrize("text, expected", [
    ("# R32 (release), REVISION: 6.1, GCID: 27863751", "32.6.1"),
    ("# R36 (release), REVISION: 4.3, GCID: 38968081", "36.4.3"),
    ("# R36 (release), REVISION: 3", "36.3.0"),
    ("garbage", None),
])
def test_parse_l4t(text, expected):
    assert detect.parse_l4t(text) == expected


def test_parse_throttled():
    assert detect.parse_throttled("throttled=0x0") == {"raw": "0x0", "now": False, "since_boot": False, "flags": []}
    assert detect.parse_throttled("error") is None
    assert detect.parse_throttled("throttled=0x80000")["flags"] == ["soft-temperature-limit-occurred"]


def test_this_machine(tmp_path):
    """On the real machine: a named board with a CPU, and a snapshot that never raises."""
    board = detect.detect_board()
    assert board["name"] and board["cpu"]["cores"] == os.cpu_count()
    snap = detect.thermal_snapshot()
    assert set(snap) == {"temperature_c", "zones", "cpu_mhz", "throttled"}
