#!/usr/bin/env bash
# The project's criterion benchmarks and the likes bench, with each figure against its target.
#
#   loadtest/benches.sh [--report] [--strict]
#
# Runs `cargo bench` for pipeline, expectation, nexon and http (1 s warm-up, 3 s measurement per case) and the
# likes bench, reads criterion's medians from target/criterion/**/new/{benchmark,estimates}.json, prints a
# table, appends the medians to loadtest/results/benches.txt and, with --report, regenerates the "benches"
# section of docs/performance.md. The nexon bench starts its own redis-server and the likes bench its own
# Redis and database (see their module docs); both skip what they cannot start and say so. Exit status: 0 when the benches ran (each figure's verdict is in
# the table), 2 when a bench could not run; with --strict also 1 when a figure misses its target.
set -euo pipefail
cd "$(dirname "$0")/.."
REPORT=0
STRICT=0
for a in "$@"; do
  case "$a" in
    --report) REPORT=1 ;;
    --strict) STRICT=1 ;;
    *) echo "usage: loadtest/benches.sh [--report] [--strict]" >&2; exit 2 ;;
  esac
done
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

rm -rf target/criterion
for b in pipeline expectation nexon http; do
  echo "== cargo bench --bench $b" >&2
  cargo bench --locked --bench "$b" -- --warm-up-time 1 --measurement-time 3 >"$WORK/$b.txt" 2>&1 ||
    { tail -20 "$WORK/$b.txt" >&2; echo "bench $b failed" >&2; exit 2; }
done
echo "== cargo bench --bench likes" >&2
cargo bench --locked --bench likes >"$WORK/likes.txt" 2>&1 || { tail -20 "$WORK/likes.txt" >&2; echo "bench likes failed" >&2; exit 2; }

# This machine's floor for one Redis round trip, measured with Redis's own C client against a private
# redis-server (what any per-call shared budget must at least pay).
: >"$WORK/redis-floor.txt"
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
  RPID=$!
  for _ in $(seq 1 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-benchmark -p "$PORT" -q -n 20000 -c 1 -t ping 2>/dev/null | tr '\r' '\n' |
    awk '/PING_MBULK: [0-9.]+ requests per second/ {for (i = 1; i <= NF; i++) if ($i ~ /^p50=/) {sub("p50=", "", $i); print $i * 1000 " µs"}}' >"$WORK/redis-floor.txt"
  kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null || true
fi

set +e
python3 - "$WORK" <<'PY'
import glob, json, os, re, sys
work = sys.argv[1]
med = {}
for f in glob.glob("target/criterion/**/new/benchmark.json", recursive=True):
    full = json.load(open(f))["full_id"]
    est = json.load(open(os.path.join(os.path.dirname(f), "estimates.json")))
    med[full] = est["median"]["point_estimate"]  # ns
def fmt(ns):
    return f"{ns / 1e6:.2f} ms" if ns >= 1e6 else f"{ns / 1e3:.2f} µs" if ns >= 1e3 else f"{ns:.0f} ns"
rows = []
def row(figure, key, target_ns=None, target=None, minus=None):
    if key not in med:
        rows.append({"figure": figure, "value": "not run", "target": target, "met": False if target else None})
        return
    v = med[key] - (med.get(minus, 0) if minus else 0)
    rows.append({"figure": figure, "value": fmt(v), "target": target,
                 "met": (v <= target_ns) if target_ns is not None else None})
row("pipeline execute, standard policies + recorder + subscriber (wall clock)", "pipeline-wall/execute/standard+recorder+subscriber", 2000, "≤ 2 µs median")
row("same, thread CPU time", "pipeline-cpu/execute/standard+recorder+subscriber", 2000, "≤ 2 µs median")
row("parse 357 KB sample + compute 3 presets", "parse_and_compute_evan_3_presets", 2e6, "≤ 2 ms median")
row("parse only (typed model)", "parse_only_evan")
row("scan only (UTF-8 check + skip every token)", "scan_only_evan")
row("compute only, 3 presets", "compute_only_evan_3_presets")
row("load the reference cube table", "table/load_reference_cube_table", 200e6, "≤ 200 ms")
for level in (1, 2, 6):
    row(f"gzip the 357 KB sample, level {level}", f"gzip/level_{level}")
row("resilience overhead, local budget (call − direct)", "nexon/call/local-budget", 50e3, "≤ 50 µs median", minus="nexon/direct")
row("resilience overhead, budget shared through Redis (call − direct)", "nexon/call/shared-budget-redis", 50e3, "≤ 50 µs median", minus="nexon/direct")
row("one Redis PING through the gateway's client (fred)", "nexon/redis/ping")
row("in process, bare axum router answering the stored gzip body", "http/bare")
row("in process, GET /health/live through every layer", "http/health_live")
row("in process, warm L1 hit of the expectation endpoint (gzip)", "http/expectation_hit")
row("in process, warm hit − bare: the gateway's own cost per hit", "http/expectation_hit", minus="http/bare")
floor = open(f"{work}/redis-floor.txt").read().strip()
if floor:
    rows.append({"figure": "one Redis PING round trip, C client (redis-benchmark -c 1 -t ping, p50): this machine's floor for any shared budget",
                 "value": floor, "target": None, "met": None})
likes = open(f"{work}/likes.txt").read()
lines = [l for l in likes.splitlines() if re.search(r"req/s|likes/s|calls over", l)]
for l in lines:
    m = re.search(r"POST like.*?open loop at (\d+)/s.*?p99 ([\d.]+) ms", l)
    if m:
        p99 = float(m.group(2))
        rows.append({"figure": f"POST like p99, 64 connections, open loop {m.group(1)}/s", "value": f"{p99} ms",
                     "target": "≤ 5 ms", "met": p99 <= 5})
    m = re.search(r"sync from Redis: .*= (\d+) likes/s", l)
    if m:
        v = int(m.group(1))
        rows.append({"figure": "like sync from Redis into the database", "value": f"{v} likes/s",
                     "target": "≥ 20,000 likes/s", "met": v >= 20000})
json.dump(rows, open(f"{work}/rows.json", "w"))
out = [f"{k}: {fmt(v)}" for k, v in sorted(med.items())] + [""] + lines
open(f"{work}/summary.txt", "w").write("\n".join(out) + "\n")
for r in rows:
    print(f"{r['figure'][:72]:72s} {r['value']:>14s}  {r['target'] or '':16s} {'' if r['met'] is None else 'met' if r['met'] else 'NOT MET'}")
sys.exit(1 if any(r["met"] is False for r in rows) else 0)
PY
VERDICT=$?
set -e
if [ -f "$WORK/summary.txt" ]; then
  mkdir -p loadtest/results
  { echo "== $(date -u +%FT%TZ) loadtest/benches.sh (load average before: $LOAD_BEFORE)"; cat "$WORK/summary.txt"; } \
    >>loadtest/results/benches.txt
fi
if [ "$REPORT" = 1 ]; then
  python3 loadtest/report.py benches --title "Benchmarks" \
    --command "loadtest/benches.sh --report" --rows "$WORK/rows.json" --full loadtest/results/benches.txt --load "$LOAD_BEFORE"
fi
if [ "$VERDICT" = 1 ] && [ "$STRICT" = 0 ]; then VERDICT=0; fi
exit "$VERDICT"
