#!/usr/bin/env bash
# Raw throughput of the gateway against the bare-server limit, on this machine, over loopback.
#
#   loadtest/bench.sh [--report] [--strict] [DURATION_S] [CONNECTIONS]      (defaults: 10 s, 64 connections)
#
# 1. warm L1 hit: the expectation endpoint with gzip, vs `examples/bare_server.rs` answering the same bytes;
#    both driven by wrk with the same threads and connections, in WARM_PAIRS (default 8) pairs of WARM_S
#    (default 4) seconds per server, the order alternating (bare → gateway, then gateway → bare, so a
#    drift in the machine's speed favours neither); the ratio reported is the median of the pairs' ratios
#    (the lower one of the middle two for an even count; this machine's speed drifts by a third within
#    minutes, and a short pair sees the same speed on both sides), the gateway's req/s and latencies are
#    those of the median pair;
#    then the conditional request: REVAL_PAIRS (default 3) alternating pairs of the same hit with and
#    without `If-None-Match: <its ETag>` (304, no body), reported as 304 req/s beside 200 req/s (median pair);
# 2. cold path: every request a new character (simulator at 0 latency, upstream budget out of the way):
#    characters per second end to end, and the CPU time per character of the gateway and of the simulator
#    (both share the machine's cores, so the end-to-end figure is bounded by their sum);
# 3. memory: characters are loaded until MEM_CHARS (default 10,000) are cached, then the gateway's RSS and
#    its L1 by entry kind (from /admin/status) are read: bytes per cached expectation;
# 4. outage: `loadtest/outage-p99.sh` (full upstream outage, breaker open, stale serving) at the same
#    connections and duration.
# Prints a summary with each figure against its target, appends it to loadtest/results/bench.txt, and with
# --report regenerates the "bench" section of docs/performance.md. Exits 0 when the measurements were made
# (each target's verdict is in the summary and the report), 2 when the run could not be made or a
# measurement is invalid (non-2xx answers); with --strict also 1 when a target is missed. Starts everything it needs on free loopback ports and stops it by PID on exit.
# Installs wrk with apt-get when missing; builds the release binaries with cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
REPORT=0
STRICT=0
while [ $# -gt 0 ]; do
  case "$1" in
    --report) REPORT=1 ;;
    --strict) STRICT=1 ;;
    *) break ;;
  esac
  shift
done
DURATION="${1:-10}"
CONNS="${2:-64}"
THREADS=2
MEM_CHARS="${MEM_CHARS:-10000}"
WARM_PAIRS="${WARM_PAIRS:-8}"
WARM_S="${WARM_S:-4}"
REVAL_PAIRS="${REVAL_PAIRS:-3}"
# The gateway's RUST_LOG (warn: no access log line per request; GW_LOG=info measures the access log's cost).
GW_LOG="${GW_LOG:-warn}"
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk </dev/null
fi

cargo build --release --quiet --locked --bin maple-gateway --example bare_server
BIN=target/release/maple-gateway
BARE=target/release/examples/bare_server

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

. loadtest/lib.sh
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

SIM_PORT=$(free_port)
RUST_LOG=warn "$BIN" sim --listen "127.0.0.1:$SIM_PORT" --seed 1 >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
PIDS+=("$SIM_PID")
wait_http "http://127.0.0.1:$SIM_PORT/_sim/stats" simulator 10 "$SIM_PID" || exit 2

GW_PORT=$(free_port)
TOKEN=bench-admin-token-0123456789
MAPLE_LISTEN=127.0.0.1:$GW_PORT MAPLE_DATA_DIR=$WORK/gw MAPLE_INSTANCE_ID=bench RUST_LOG=$GW_LOG \
  MAPLE_UPSTREAM_URL="http://127.0.0.1:$SIM_PORT" NEXON_API_KEY=bench-key MAPLE_CUBE_TABLE=data/sim-cube-table.csv \
  MAPLE_RATE_PER_S=100000 MAPLE_RATE_PER_DAY=1000000000 MAPLE_ADMIN_TOKEN=$TOKEN \
  "$BIN" serve >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/health/ready" gateway 10 "$GW_PID" || exit 2

# Warm one character and keep its stored gzip body for the baseline.
URL="http://127.0.0.1:$GW_PORT/api/v4/characters/BenchHot/expectation"
curl -fs -H 'Accept-Encoding: gzip' -o "$WORK/body.gz" "$URL"
curl -fs -H 'Accept-Encoding: gzip' -o /dev/null -D "$WORK/headers" "$URL"
grep -qi '^x-cache: HIT' "$WORK/headers" || { echo "warm request was not a hit" >&2; cat "$WORK/headers"; exit 2; }
ETAG=$(awk 'tolower($1) == "etag:" {sub(/\r$/, "", $2); print $2}' "$WORK/headers")
[ -n "$ETAG" ] || { echo "the warm answer has no ETag" >&2; cat "$WORK/headers"; exit 2; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept-Encoding: gzip' -H "If-None-Match: $ETAG" "$URL")" = 304 ] \
  || { echo "If-None-Match with the answer's ETag did not get 304" >&2; exit 2; }

BARE_PORT=$(free_port)
"$BARE" "127.0.0.1:$BARE_PORT" "$WORK/body.gz" 2>"$WORK/bare.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$BARE_PORT/" "bare server" 10 || exit 2

run_wrk() { local seconds=$1; shift; wrk -t"$THREADS" -c"$CONNS" -d"${seconds}s" --latency -H 'Accept-Encoding: gzip' "$@"; }

warm_bare() { run_wrk "$WARM_S" "http://127.0.0.1:$BARE_PORT/api/v4/characters/BenchHot/expectation" >"$WORK/bare$1.txt"; }
warm_gw() { run_wrk "$WARM_S" "$URL" >"$WORK/warm$1.txt"; }
for pair in $(seq 1 "$WARM_PAIRS"); do
  if [ $((pair % 2)) -eq 1 ]; then
    echo "== warm pair $pair/$WARM_PAIRS: bare server, then the gateway (${WARM_S}s each, $CONNS connections)" >&2
    warm_bare "$pair"; warm_gw "$pair"
  else
    echo "== warm pair $pair/$WARM_PAIRS: the gateway, then bare server (${WARM_S}s each, $CONNS connections)" >&2
    warm_gw "$pair"; warm_bare "$pair"
  fi
done

reval_gw() { run_wrk "$WARM_S" -H "If-None-Match: $ETAG" "$URL" >"$WORK/reval$1.txt"; }
for pair in $(seq 1 "$REVAL_PAIRS"); do
  echo "== revalidation pair $pair/$REVAL_PAIRS: 200 and 304 of the same hit (${WARM_S}s each)" >&2
  if [ $((pair % 2)) -eq 1 ]; then run_wrk "$WARM_S" "$URL" >"$WORK/full$pair.txt"; reval_gw "$pair"
  else reval_gw "$pair"; run_wrk "$WARM_S" "$URL" >"$WORK/full$pair.txt"; fi
done

cat >"$WORK/cold.lua" <<'LUA'
local n = 0
function setup(thread) n = n + 1; thread:set("tid", n) end
function init(args) i = 0 end
function request()
  i = i + 1
  return wrk.format("GET", "/api/v4/characters/c" .. tid .. "n" .. i .. "/expectation", {["Accept-Encoding"] = "gzip"})
end
LUA
echo "== cold path (${DURATION}s)" >&2
curl -fs -X POST "http://127.0.0.1:$SIM_PORT/_sim/stats/reset" >/dev/null
G0=$(cpu_ticks "$GW_PID"); S0=$(cpu_ticks "$SIM_PID")
run_wrk "$DURATION" -s "$WORK/cold.lua" "http://127.0.0.1:$GW_PORT" >"$WORK/cold.txt"
G1=$(cpu_ticks "$GW_PID"); S1=$(cpu_ticks "$SIM_PID")
curl -fs "http://127.0.0.1:$SIM_PORT/_sim/stats" >"$WORK/cold-sim.json"
echo "$((G1 - G0)) $((S1 - S0)) $(getconf CLK_TCK)" >"$WORK/cold-cpu.txt"

echo "== memory: loading characters until $MEM_CHARS are cached" >&2
python3 - "$GW_PORT" "$MEM_CHARS" "$SIM_PORT" >"$WORK/fill.txt" <<'PY'
import concurrent.futures, http.client, json, sys, threading
port, want, sim = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
have = json.load(__import__("urllib.request").request.urlopen(f"http://127.0.0.1:{sim}/_sim/stats"))["calls"]["item_equipment"] + 1
local = threading.local()
def get(i):
    c = getattr(local, "c", None) or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    local.c = c
    c.request("GET", f"/api/v4/characters/fill{i}/expectation", headers={"Accept-Encoding": "gzip"})
    r = c.getresponse(); r.read()
    return r.status
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    codes = list(ex.map(get, range(max(0, want - have))))
print(json.dumps({"loaded": len(codes), "non_200": sum(1 for c in codes if c != 200)}))
PY
RSS_KB=$(awk '/^VmRSS/{print $2}' "/proc/$GW_PID/status")
curl -fs -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW_PORT/admin/status" >"$WORK/status.json"

echo "== outage (loadtest/outage-p99.sh, ${DURATION}s)" >&2
set +e
BIN=$BIN C=$CONNS D=$DURATION BASELINE=0 bash loadtest/outage-p99.sh >"$WORK/outage.txt" 2>&1
OUTAGE_RC=$?
set -e

set +e
python3 - "$WORK" "$DURATION" "$CONNS" "$RSS_KB" "$OUTAGE_RC" "$WARM_PAIRS" "$REVAL_PAIRS" <<'PY'
import json, re, sys
work, duration, conns, rss_kb, outage_rc, pairs, reval_pairs = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
def wrk(name):
    t = open(f"{work}/{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", t, re.M))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    sock = re.search(r"Socket errors: (.*)", t)
    return rps, lat, int(errs.group(1)) if errs else 0, sock.group(1) if sock else "none"
def ms(s):
    v = float(re.match(r"[\d.]+", s).group(0))
    return v / 1000 if s.endswith("us") else v * 1000 if s.endswith("s") and not s.endswith("ms") else v
runs = sorted(((100 * wrk(f"warm{i}")[0] / wrk(f"bare{i}")[0], i) for i in range(1, pairs + 1)))
ratio, median_pair = runs[(len(runs) - 1) // 2]
b, w, c = wrk(f"bare{median_pair}"), wrk(f"warm{median_pair}"), wrk("cold")
pair_list = ", ".join(f"{r:.1f}" for r, _ in sorted(runs, key=lambda t: t[1]))
revals = sorted(((wrk(f"reval{i}")[0] / wrk(f"full{i}")[0], i) for i in range(1, reval_pairs + 1)))
reval_ratio, reval_pair = revals[(len(revals) - 1) // 2]
r304, r200 = wrk(f"reval{reval_pair}"), wrk(f"full{reval_pair}")
sim = json.load(open(f"{work}/cold-sim.json"))["calls"]
gw_ticks, sim_ticks, hz = map(int, open(f"{work}/cold-cpu.txt").read().split())
chars = sim["item_equipment"]
cold_rate = chars / duration
gw_ms, sim_ms = (gw_ticks / hz * 1000 / chars, sim_ticks / hz * 1000 / chars) if chars else (0, 0)
fill = json.load(open(f"{work}/fill.txt"))
cache = json.load(open(f"{work}/status.json"))["cache"]
kinds = cache.get("l1_by_kind", {})
exp = kinds.get("exp", {"entries": 0, "bytes": 0})
per_exp = cache["l1_bytes"] / exp["entries"] / 1024 if exp["entries"] else float("nan")
out = open(f"{work}/outage.txt").read()
m = re.search(r"RESULT p99 = ([\d.]+) ms", out)
outage_p99 = float(m.group(1)) if m else None
lines = [
    f"bare axum, same bytes : {b[0]:10.0f} req/s   p50 {b[1].get('50')}  p99 {b[1].get('99')}  non-2xx {b[2]}",
    f"gateway warm L1 hit   : {w[0]:10.0f} req/s   p50 {w[1].get('50')}  p99 {w[1].get('99')}  non-2xx {w[2]}",
    f"warm / bare           : {ratio:9.1f} %  (median of {pairs} alternating pairs: {pair_list} %)",
    f"304 revalidation      : {r304[0]:10.0f} req/s   p99 {r304[1].get('99')}  beside 200 {r200[0]:.0f} req/s: {100 * reval_ratio:.1f} % (median of {reval_pairs} pairs)",
    f"cold path (new char)  : {cold_rate:10.0f} characters/s  p50 {c[1].get('50')}  p99 {c[1].get('99')}  non-2xx {c[2]}  socket errors {c[3]}  upstream calls {sim}",
    f"cold CPU per character: gateway {gw_ms:.2f} ms, simulator {sim_ms:.2f} ms (2 cores shared with wrk)",
    f"memory                : {fill['loaded']} more characters loaded (non-200: {fill['non_200']}); RSS {rss_kb/1024:.0f} MiB; "
    f"L1 {cache['l1_entries']} entries, {cache['l1_bytes']} bytes; by kind {json.dumps(kinds, sort_keys=True)}",
    f"L1 per expectation    : {per_exp:.1f} KiB (all L1 bytes / expectation entries)",
    f"outage p99            : {outage_p99} ms (loadtest/outage-p99.sh exit {outage_rc})",
]
print("\n".join(lines))
open(f"{work}/summary.txt", "w").write("\n".join(lines) + "\n")
def row(figure, value, target, met):
    return {"figure": figure, "value": value, "target": target, "met": met}
warm_p99 = ms(w[1].get("99", "0"))
rows = [
    row("warm L1 hit / bare axum (req/s), median of alternating pairs", f"{ratio:.1f} % ({w[0]:.0f} / {b[0]:.0f}; pairs {pair_list} %)", "≥ 70 %", ratio >= 70 and w[2] == 0),
    row("304 on If-None-Match / 200 of the same hit (req/s), median of pairs", f"{100 * reval_ratio:.1f} % ({r304[0]:.0f} / {r200[0]:.0f})", None, None),
    row("warm L1 hit p99, 64 connections", f"{warm_p99:.2f} ms", "≤ 5 ms", warm_p99 <= 5),
    row("cold path, simulator at 0 latency, end to end", f"{cold_rate:.0f} characters/s (non-2xx {c[2]})", "≥ 500/s", cold_rate >= 500 and c[2] == 0),
    row("cold path CPU per character: gateway / simulator", f"{gw_ms:.2f} ms / {sim_ms:.2f} ms", None, None),
    row("L1 bytes per cached expectation", f"{per_exp:.1f} KiB", "≤ 20 KiB", per_exp <= 20),
    row(f"RSS after caching {fill['loaded'] + chars + 1} characters", f"{rss_kb/1024:.0f} MiB", None, None),
    row("outage p99 (stale serving, breaker open)", f"{outage_p99} ms" if outage_p99 is not None else "run failed", "≤ 10 ms", outage_p99 is not None and outage_p99 <= 10 and outage_rc == 0),
]
json.dump(rows, open(f"{work}/rows.json", "w"))
if any(wrk(f"{k}{i}")[2] for k in ("bare", "warm") for i in range(1, pairs + 1)) or any(wrk(f"{k}{i}")[2] for k in ("reval", "full") for i in range(1, reval_pairs + 1)) or c[2] or fill["non_200"]:
    print("invalid run: some answers were not 2xx", file=sys.stderr)
    sys.exit(2)
sys.exit(0 if all(r["met"] is not False for r in rows) else 1)
PY
VERDICT=$?
set -e
[ -f "$WORK/summary.txt" ] || { echo "the summary could not be computed" >&2; exit 2; }
mkdir -p loadtest/results
printf '%s\n%s\n' "== $(date -u +%FT%TZ) loadtest/bench.sh $DURATION $CONNS (load average before: $LOAD_BEFORE)" "$(cat "$WORK/summary.txt")" >> loadtest/results/bench.txt
if [ "$REPORT" = 1 ]; then
  python3 loadtest/report.py bench --title "Read path: throughput, memory, outage" \
    --command "loadtest/bench.sh --report $DURATION $CONNS" --rows "$WORK/rows.json" \
    --full loadtest/results/bench.txt --load "$LOAD_BEFORE"
fi
if [ "$VERDICT" = 1 ] && [ "$STRICT" = 0 ]; then
  echo "some targets are not met (see the summary); exit 0 without --strict" >&2
  VERDICT=0
fi
exit "$VERDICT"
