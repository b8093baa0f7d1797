#!/usr/bin/env bash
# Property-based API test: schemathesis generates requests from the gateway's own OpenAPI document and checks
# every answer against it (status codes, headers, bodies, and schema-valid requests not being rejected).
#
#   scripts/schemathesis.sh [extra schemathesis run options]
#
# Creates .venv-schemathesis/ (gitignored) with the pinned schemathesis, builds target/debug/maple-gateway
# (with the black-box tests; a no-op when they are up to date; MAPLE_BIN=path uses that binary instead), starts it on the embedded default
# (in-process simulator, SQLite in a temp data dir, no Redis) on a free 127.0.0.1 port, runs
# `schemathesis run --checks all` against /openapi.json, stops the gateway by PID and removes the temp dir.
# Bounded: SCHEMATHESIS_TIMEOUT_S (default 600) for the whole run, MAX_EXAMPLES (default 30) per operation.
# Exit status: schemathesis's (0 = no failure), 2 when the run could not be made.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV=.venv-schemathesis
die() { echo "schemathesis.sh: $*" >&2; exit 2; }

if [ ! -x "$VENV/bin/schemathesis" ] || [ "$(cat "$VENV/.version" 2>/dev/null)" != "$SCHEMATHESIS_VERSION" ]; then
  echo "creating $VENV (schemathesis==$SCHEMATHESIS_VERSION)" >&2
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian/Ubuntu: apt-get install python3-venv)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
    || die "pip install schemathesis==$SCHEMATHESIS_VERSION failed"
  echo "$SCHEMATHESIS_VERSION" >"$VENV/.version"
fi

if [ -n "${MAPLE_BIN:-}" ]; then
  BIN=$MAPLE_BIN
  [ -x "$BIN" ] || die "MAPLE_BIN=$BIN is not an executable"
else
  # Built as the black-box tests build it (their dependency features): fresh right after `cargo test`.
  cargo test --locked --no-run --test api >&2 || die "cargo build failed"
  BIN=target/debug/maple-gateway
fi
# A setting of this script, not of the gateway (which warns about MAPLE_* variables it does not know).
unset MAPLE_BIN

WORK=$(mktemp -d)
GW_PID=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$GW_PID" ]; then
    kill "$GW_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$GW_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
BASE="http://127.0.0.1:$PORT"
# The embedded default, without the per-client rate limit (schemathesis is one client sending many requests).
env -u NEXON_API_KEY RUST_LOG=${RUST_LOG:-warn} MAPLE_LISTEN=127.0.0.1:$PORT MAPLE_DATA_DIR="$WORK/data" \
  MAPLE_CLIENT_RPS=0 "$BIN" serve >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
deadline=$((SECONDS + 60))
until curl -fs -m 2 -o /dev/null "$BASE/health/ready"; do
  kill -0 "$GW_PID" 2>/dev/null || { cat "$WORK/gateway.log" >&2; die "the gateway exited during start-up"; }
  [ "$SECONDS" -lt "$deadline" ] || { cat "$WORK/gateway.log" >&2; die "the gateway did not become ready"; }
  sleep 0.1
done

echo "==> schemathesis $SCHEMATHESIS_VERSION against $BASE/openapi.json" >&2
set +e
timeout "${SCHEMATHESIS_TIMEOUT_S:-600}" "$VENV/bin/schemathesis" run "$BASE/openapi.json" \
  --checks all --max-examples "${MAX_EXAMPLES:-30}" --workers 2 --request-timeout 30 \
  --no-color "$@"
RC=$?
set -e
[ "$RC" = 124 ] && echo "schemathesis did not finish within ${SCHEMATHESIS_TIMEOUT_S:-600} s" >&2
if [ "$RC" != 0 ]; then
  echo "--- gateway log (last 40 lines) ---" >&2
  tail -n 40 "$WORK/gateway.log" >&2
fi
exit "$RC"
