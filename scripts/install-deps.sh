#!/usr/bin/env bash
# Installs the Debian packages Assay builds and tests with, only those missing:
# librdkafka-dev (Kafka client + mock cluster), libpq-dev (PostgreSQL client) and a
# PostgreSQL server (initdb/pg_ctl for the throwaway clusters of `make demo`/`make test`).
set -euo pipefail

need=()
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists rdkafka 2>/dev/null || need+=(librdkafka-dev)
pkg-config --exists libpq 2>/dev/null || need+=(libpq-dev)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
  sudo=sudo
fi

echo "install-deps: installing ${need[*]}" >&2
# Assay starts its own throwaway clusters; Debian's default 'main' cluster is not needed.
if [ -d /etc/postgresql-common ] || $sudo mkdir -p /etc/postgresql-common; then
  if ! grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
    echo "create_main_cluster = false" | $sudo tee -a /etc/postgresql-common/createcluster.conf >/dev/null
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
