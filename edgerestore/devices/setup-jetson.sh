#!/usr/bin/env bash
# Set up a Jetson (JetPack 4.6 / 5 / 6) to run edgerestore bundles; see jetson.md beside this file.
# Usage: bash setup-jetson.sh [--no-perf] [--swap-gb N]
set -euo pipefail
perf=1
swap_gb=4
while [ $# -gt 0 ]; do
  case "$1" in
    --no-perf) perf=0 ;;
    --swap-gb) swap_gb="$2"; shift ;;
    *) echo "unknown option $1 (use --no-perf, --swap-gb N)" >&2; exit 2 ;;
  esac
  shift
done
[ -f /etc/nv_tegra_release ] || { echo "this is not a Jetson (no /etc/nv_tegra_release)" >&2; exit 1; }
echo "== packages"
sudo apt-get update
sudo apt-get install -y python3-pip python3-dev python3-numpy python3-libnvinfer v4l-utils
export PATH=/usr/local/cuda/bin:$PATH
python3 -m pip install --user pycuda
if [ "$perf" = 1 ]; then
  echo "== performance mode (MAXN, clocks pinned until reboot)"
  sudo nvpmodel -m 0
  sudo jetson_clocks
fi
swap_kb=$(awk '/SwapTotal/ {print $2}' /proc/meminfo)
if [ "$swap_kb" -lt $((swap_gb * 1024 * 1024 / 2)) ] && [ ! -f /var/swapfile ]; then
  echo "== ${swap_gb} GB swap file (TensorRT engine builds need memory)"
  sudo fallocate -l "${swap_gb}G" /var/swapfile
  sudo chmod 600 /var/swapfile
  sudo mkswap /var/swapfile
  sudo swapon /var/swapfile
fi
python3 -c "import tensorrt, pycuda.driver; print('TensorRT', tensorrt.__version__, 'and pycuda are ready')"
