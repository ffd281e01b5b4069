#!/usr/bin/env bash
# Installs Prometheus Alertmanager (Debian package prometheus-alertmanager, 0.25 on bookworm), the anchor of
# bench/notify_fanout_bench.py. Run as root; does nothing when it is already there. Prints the binary's path.
set -euo pipefail
find_binary() { command -v prometheus-alertmanager || command -v alertmanager || true; }
binary="$(find_binary)"
if [ -z "$binary" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-alertmanager.sh: Alertmanager missing; run as root (apt-get install prometheus-alertmanager)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends prometheus-alertmanager >&2
  # The package starts a system service; the bench starts its own instance on free ports instead.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus-alertmanager 2>/dev/null; then
    systemctl stop prometheus-alertmanager || true
  fi
  binary="$(find_binary)"
  echo "install-alertmanager.sh: installed $binary" >&2
fi
echo "$binary"
