#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real: Prometheus (prometheus, promtool), PostgreSQL, and
# Chromium with its chromedriver (the console's browser tests drive it; no test tool downloads a browser).
# Run as root; does nothing when both are already there.
set -euo pipefail
missing=()
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system.sh: prometheus, postgresql, chromium and chromium-driver are installed" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system.sh: ${missing[*]} missing; run this script as root to install them" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# The Debian packages start system services; the tests start their own instances on free ports instead.
for unit in prometheus postgresql; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$unit" 2>/dev/null; then
    systemctl stop "$unit" || true
  fi
done
echo "install-system.sh: installed ${missing[*]}" >&2
