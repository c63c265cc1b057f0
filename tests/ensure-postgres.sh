#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, pg_ctl, postgres) are on this machine so the
# test suite can start its own throwaway server. On a machine without them, CI installs Debian's
# package; a developer is told what to run. The suite itself never skips PostgreSQL tests in CI.
set -euo pipefail
for dir in "" /usr/lib/postgresql/*/bin; do
  if [ -z "$dir" ]; then command -v initdb >/dev/null 2>&1 && exit 0; continue; fi
  [ -x "$dir/initdb" ] && exit 0
done
if [ "$(id -u)" = 0 ]; then
  echo "ensure-postgres: installing Debian's postgresql package for the test suite" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
  exit 0
fi
echo "ensure-postgres: initdb not found; install PostgreSQL (apt-get install postgresql)" >&2
[ "${CI:-}" = "true" ] && exit 1
exit 0
