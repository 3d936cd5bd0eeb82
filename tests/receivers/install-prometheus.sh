#!/usr/bin/env bash
# Install the real receivers of the prometheus output's tests: Debian's Prometheus (2.42 on
# bookworm; tests/receivers/prometheus.py) and node_exporter (1.5; node_exporter.py).
# Idempotent and quiet; run as root. The tests start their own servers on free ports; the
# packages' own services (where systemd runs them: :9090, :9100) are left as Debian sets them.
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
[ ${#need[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get -qq update
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
