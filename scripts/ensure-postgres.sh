#!/usr/bin/env bash
# Makes sure the local PostgreSQL the storage tests use (127.0.0.1:5432, database `test`)
# is running; starts the Debian cluster when it is installed but stopped.
set -uo pipefail
if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then exit 0; fi
if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done
fi
echo "PostgreSQL is not reachable on 127.0.0.1:5432; PostgreSQL tests will fail" >&2
exit 0
