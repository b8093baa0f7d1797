#!/usr/bin/env bash
# The project's one test command (README, CI): installs missing server binaries, then runs the format
# check, clippy with warnings denied, and the whole test suite (unit, property, black-box against real
# redis-server / Sentinel / MariaDB processes started on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

echo "==> promtool check rules deploy/prometheus/alerts.yml"
promtool check rules deploy/prometheus/alerts.yml

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --all-targets --locked "$@"
bash scripts/schemathesis.sh
