#!/usr/bin/env bash
# Set up a Raspberry Pi 4/5 (Bookworm 64-bit) to run edgerestore bundles; see raspberry-pi.md.
# Usage: bash setup-raspberry-pi.sh [VENV_DIR]   (default ~/edgerestore-venv)
set -euo pipefail
venv="${1:-$HOME/edgerestore-venv}"
grep -q "Raspberry Pi" /proc/device-tree/model 2>/dev/null || { echo "this is not a Raspberry Pi" >&2; exit 1; }
echo "== packages (picamera2 and OpenCV from apt)"
sudo apt-get update
sudo apt-get install -y python3-picamera2 python3-opencv python3-numpy python3-venv v4l-utils
echo "== virtual environment $venv (sees the apt packages)"
python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install 'edgerestore[pi]'
echo "== performance governor (until reboot)"
echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor >/dev/null
vcgencmd measure_temp || true
echo "ready: . $venv/bin/activate && edgerestore backends"
