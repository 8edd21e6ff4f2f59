#!/usr/bin/env bash
# Installs what tests/c-libs needs (idempotent): the system libcurl with headers, libpq
# with headers, and a PostgreSQL server (the tests start a throwaway one).
set -euo pipefail
need=()
pkg-config --exists libcurl 2>/dev/null || need+=(libcurl4-openssl-dev)
command -v pg_config >/dev/null 2>&1 || need+=(libpq-dev)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/c-libs needs: ${need[*]} (run this script as root, or apt-get install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${need[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null; apt-get install -y -q "${need[@]}" >/dev/null; }
echo "installed: ${need[*]}"
