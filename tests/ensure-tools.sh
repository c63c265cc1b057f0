#!/usr/bin/env bash
# Makes sure the operations tools the deploy tests drive are on this machine: promtool (from
# Debian's prometheus package) checks and unit-tests the alert rules and lints a live /metrics
# scrape. On a machine without it, CI installs the package; a developer is told what to run.
# The deploy tests never skip in CI: without promtool they fail with this same message.
set -euo pipefail
command -v promtool >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-tools: installing Debian's prometheus package (for promtool)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # --no-install-recommends: only promtool is needed, not the server's web assets.
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package starts a Prometheus server where a service manager runs; the tests need only
  # promtool, so stop it again when it was started (harmless when there is no service manager).
  command -v systemctl >/dev/null 2>&1 && systemctl disable --now prometheus >/dev/null 2>&1 || true
  command -v promtool >/dev/null 2>&1 && exit 0
fi
echo "ensure-tools: promtool not found; install it (apt-get install prometheus)" >&2
[ "${CI:-}" = "true" ] && exit 1
exit 0
