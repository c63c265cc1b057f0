#!/usr/bin/env bash
# Makes sure the operations tools the deploy tests drive are on this machine:
#   promtool        (Debian's prometheus package) checks and unit-tests the alert rules and lints
#                   a live /metrics scrape;
#   docker-compose  (Debian's docker-compose package, 1.29) validates and resolves
#                   deploy/docker-compose.yml with `docker-compose config`, with no engine;
#   chromium        (Debian's chromium package, with fonts-dejavu-core) renders the load test's HTML report headless,
#                   and tests/actors/test_loadtest_report.py reads the screenshot's pixels.
# On a machine without them, CI installs the packages; a developer is told what to run. The
# tests never skip in CI: without these tools they fail with the same message.
set -euo pipefail
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# A font for the report's text: the package only recommends one (fonts-liberation).
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-tools: installing Debian's ${missing[*]} for the deploy and report tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # --no-install-recommends: only the command-line tools are needed, not a server's web assets
  # (nor chromium's optional extras: its headless mode needs none of them).
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The prometheus package starts a server where a service manager runs; the tests need only
  # promtool, so stop it again (harmless when there is no service manager).
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  command -v promtool >/dev/null 2>&1 && command -v docker-compose >/dev/null 2>&1 &&
    command -v chromium >/dev/null 2>&1 && exit 0
fi
echo "ensure-tools: missing ${missing[*]}; as root: apt-get install --no-install-recommends ${missing[*]}" >&2
[ "${CI:-}" = "true" ] && exit 1
exit 0
