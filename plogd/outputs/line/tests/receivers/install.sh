#!/usr/bin/env bash
# Install the real receivers the line output's tests send to: carbon-cache (graphite-carbon,
# with whisper-fetch from python3-whisper) and InfluxDB 1.x (influxdb). Debian bookworm, as
# root; idempotent and quiet: installs only what is missing. The packages' own services are
# not used: the test fixtures (carbon.py, influx.py) run their own instances on 127.0.0.1.
set -euo pipefail
need=()
command -v carbon-cache >/dev/null || need+=(graphite-carbon)
command -v whisper-fetch >/dev/null || need+=(python3-whisper)
command -v influxd >/dev/null || need+=(influxdb)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "install.sh: run as root to install ${need[*]}" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get -qq update
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
