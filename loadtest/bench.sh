#!/usr/bin/env bash
# Raw throughput of the gateway against the bare-server limit, on this machine, over loopback.
#
#   loadtest/bench.sh [DURATION_S] [CONNECTIONS]      (defaults: 10 s, 64 connections)
#
# 1. warm L1 hit: the expectation endpoint with gzip, vs `examples/bare_server.rs` answering the same bytes;
#    both driven by wrk with the same threads/connections/duration in the same run;
# 2. cold path: every request a new character (simulator at 0 latency): characters per second end to end;
# 3. L1 memory per cached character (expectation + its raw equipment + ocid entries), from /health/ready.
# Starts everything it needs on free loopback ports, stops it by PID on exit, writes a copy of the
# summary under loadtest/results/. Installs wrk with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS="${2:-64}"
THREADS=2

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk </dev/null
fi

cargo build --release --quiet --bin maple-gateway --example bare_server
BIN=target/release/maple-gateway
BARE=target/release/examples/bare_server

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { for _ in $(seq 1 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done; echo "timed out waiting for $1" >&2; exit 1; }

SIM_PORT=$(free_port)
RUST_LOG=warn "$BIN" sim --listen "127.0.0.1:$SIM_PORT" --seed 1 >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$SIM_PORT/_sim/stats"

GW_PORT=$(free_port)
MAPLE_LISTEN=127.0.0.1:$GW_PORT MAPLE_DATA_DIR=$WORK/gw MAPLE_INSTANCE_ID=bench RUST_LOG=warn \
  MAPLE_UPSTREAM_URL="http://127.0.0.1:$SIM_PORT" NEXON_API_KEY=bench-key MAPLE_CUBE_TABLE=data/sim-cube-table.csv \
  "$BIN" serve >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$GW_PORT/health/ready"

# Warm one character and keep its stored gzip body for the baseline.
URL="http://127.0.0.1:$GW_PORT/api/v4/characters/BenchHot/expectation"
curl -fs -H 'Accept-Encoding: gzip' -o "$WORK/body.gz" "$URL"
curl -fs -H 'Accept-Encoding: gzip' -o /dev/null -D "$WORK/headers" "$URL"
grep -qi '^x-cache: HIT' "$WORK/headers" || { echo "warm request was not a hit" >&2; cat "$WORK/headers"; exit 1; }

BARE_PORT=$(free_port)
"$BARE" "127.0.0.1:$BARE_PORT" "$WORK/body.gz" 2>"$WORK/bare.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$BARE_PORT/"

run_wrk() { wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H 'Accept-Encoding: gzip' "$@"; }
rps() { awk '/^Requests\/sec/ {print $2}' "$1"; }
pct() { awk -v p="$2" '$1==p {print $2}' "$1"; }

run_wrk "http://127.0.0.1:$BARE_PORT/api/v4/characters/BenchHot/expectation" >"$WORK/bare.txt"
run_wrk "$URL" >"$WORK/warm.txt"

cat >"$WORK/cold.lua" <<'LUA'
local n = 0
function setup(thread) n = n + 1; thread:set("tid", n) end
function init(args) i = 0 end
function request()
  i = i + 1
  return wrk.format("GET", "/api/v4/characters/c" .. tid .. "n" .. i .. "/expectation", {["Accept-Encoding"] = "gzip"})
end
LUA
curl -fs -X POST "http://127.0.0.1:$SIM_PORT/_sim/stats/reset" >/dev/null
run_wrk -s "$WORK/cold.lua" "http://127.0.0.1:$GW_PORT" >"$WORK/cold.txt"
READY=$(curl -fs "http://127.0.0.1:$GW_PORT/health/ready")
SIMSTATS=$(curl -fs "http://127.0.0.1:$SIM_PORT/_sim/stats")

SUMMARY=$(python3 - "$WORK" "$READY" "$SIMSTATS" <<'PY'
import re, sys, json
work, ready, sim = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
def parse(name):
    t = open(f"{work}/{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", t, re.M))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    sock = re.search(r"Socket errors: (.*)", t)
    return rps, lat, int(errs.group(1)) if errs else 0, sock.group(1) if sock else "none"
b, w, c = parse("bare"), parse("warm"), parse("cold")
cache = ready.get("cache", {})
entries, nbytes = cache.get("l1_entries", 0), cache.get("l1_bytes", 0)
chars = sim["calls"]["item_equipment"] + 1  # cold characters + the warm one
print(f"bare axum, same bytes : {b[0]:10.0f} req/s   p50 {b[1].get('50')}  p99 {b[1].get('99')}  non-2xx {b[2]}")
print(f"gateway warm L1 hit   : {w[0]:10.0f} req/s   p50 {w[1].get('50')}  p99 {w[1].get('99')}  non-2xx {w[2]}")
print(f"warm / bare           : {100*w[0]/b[0]:9.1f} %")
print(f"cold path (new char)  : {c[0]:10.0f} characters/s  p50 {c[1].get('50')}  p99 {c[1].get('99')}  non-2xx {c[2]}  socket errors {c[3]}  upstream calls {sim['calls']}")
if chars:
    print(f"L1                    : {entries} entries, {nbytes} bytes, {chars} characters -> {nbytes/chars/1024:.1f} KiB per cached character (ocid + raw equipment + expectation)")
PY
)
echo "== loadtest/bench.sh: ${THREADS} wrk threads, ${CONNS} connections, ${DURATION}s each, $(nproc) cores"
echo "$SUMMARY"
mkdir -p loadtest/results
printf '%s\n%s\n' "== $(date -u +%FT%TZ) loadtest/bench.sh $DURATION $CONNS" "$SUMMARY" >> loadtest/results/bench.txt
