#!/usr/bin/env bash
# Installs the server binaries the test suite starts (redis-server with Sentinel, MariaDB server and client)
# and the checkers it runs (promtool, PyYAML) when they are missing. Debian/Ubuntu only (apt-get); does
# nothing when everything is present.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v mariadb-install-db >/dev/null 2>&1 || need+=(mariadb-server)
# promtool checks deploy/prometheus/alerts.yml; PyYAML parses deploy/docker-compose.yml in the test suite.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
python3 -c 'import yaml' >/dev/null 2>&1 || need+=(python3-yaml)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "installing missing packages: ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# The packages' own services are not wanted: the tests start private instances on free ports.
$SUDO env RUNLEVEL=1 apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null
