#!/usr/bin/env bash
# A chaos run under load with an exact ledger: the local cluster (2 gateways, Redis master + replica +
# 3 Sentinels, MariaDB, simulator) under the locust `mixed` scenario while faults are injected one after
# another, then the database compared with every like the clients saw acknowledged.
#
#   loadtest/chaos.sh [--report] [--no-slow-disk]
#
#   --report        regenerate the `chaos` section of docs/operations.md from the run
#   --no-slow-disk  leave out fault 8 (a gateway under strace fdatasync delays, then kill -9)
#
# Environment: MAPLE_BIN (gateway binary; default target/release/maple-gateway, built when missing or older
# than the sources), CHAOS_USERS (locust users, default 50), CHAOS_RECOVER_S (load time between faults,
# default 20), CHAOS_BASELINE_S (load before the first fault, default 15).
#
# Faults, in order (each followed by CHAOS_RECOVER_S of load):
#   1 planned failover (SENTINEL FAILOVER)       2 SIGKILL of the Redis master, the old one back as a replica
#   3 SIGSTOP of the Redis master 5 s, SIGCONT   4 SIGSTOP of MariaDB 5 s, SIGCONT
#   5 SIGKILL of gateway 1, restarted (same port, same data dir: its journal replays)
#   6 SIGTERM of gateway 2 under load, restarted  7 a 10 s upstream outage (the simulator's fault switch:
#                                                   every data call 500 OPENAPI00001)
#   8 slow disk: gateway 1 restarted under `strace --seccomp-bpf -e inject=fdatasync:delay_enter=300000`,
#     15 s of load, SIGKILL, restarted normally (skipped when strace cannot trace: the summary says so)
#
# Everything runs on 127.0.0.1 on free ports, in a database of its own (`maple_chaos`, dropped and created
# again at the start of each run: it holds only this run's likes). Every process started here is stopped by
# PID at exit; a SIGSTOPped process (Redis, MariaDB) is SIGCONTed on every exit path. Every wait has a
# deadline. MariaDB is the machine's server: it is found as the process listening on 127.0.0.1:3306.
#
# Ledger: the locust users append every like they send, with the status it got, to a file per process
# (LOCUST_LEDGER). After the last fault the load stops, the script waits (at most 120 s) until both
# gateways hold no like and the database stops changing, and compares:
#   lost     an acknowledged (2xx) (character, liker) pair missing from character_likes
#   doubled  a character whose like_count is above its number of stored pairs (a pair counted twice)
#   phantom  a stored pair that no client ever sent
#   count    per character, like_count == distinct acknowledged pairs (+ pairs whose request got no 2xx
#            but were stored all the same: reported, not a failure — the client did not see an answer)
# Reads, per fault (from the per-request timeline, LOCUST_EVENTS): 5xx on characters read with 200 before
# the fault (want 0), 5xx on the others (cold), requests without an answer, p99 of the answered requests in
# the fault window (injection → recovery), and the seconds from the injection to the last failed request
# before the next fault (want: back to 0 before it).
#
# Writes loadtest/results/<UTC timestamp>-chaos/: faults.tsv, ledger.*, events.*, the cluster's logs and
# data dirs (cluster/), status snapshots taken during each fault, locust CSVs, summary.txt. Exit status:
# 0 PASS (lost 0, doubled 0, phantom 0, 5xx on cached characters 0, every fault's errors back to 0 before
# the next), 1 FAIL (the summary names the pairs / faults), 2 when the run could not be made, 130 when
# interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
REPORT=0
SLOW_DISK=1
while [ $# -gt 0 ]; do
  case "$1" in
    --report) REPORT=1 ;;
    --no-slow-disk) SLOW_DISK=0 ;;
    -h|--help) usage ;;
    *) echo "unknown argument $1" >&2; usage ;;
  esac
  shift
done
USERS=${CHAOS_USERS:-50}
RECOVER_S=${CHAOS_RECOVER_S:-20}
BASELINE_S=${CHAOS_BASELINE_S:-15}
for v in USERS RECOVER_S BASELINE_S; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer, got '${!v}'" >&2; exit 2; }
done

TS=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$ROOT/loadtest/results/$TS-chaos"
mkdir -p "$OUT"
export MAPLE_CLUSTER_DIR="$OUT/cluster"
export DB_NAME=maple_chaos
unset MAPLE_DATABASE_URL
DB=(mariadb --protocol=TCP -h 127.0.0.1 -P 3306 -uroot)

PIDS=()            # processes started here directly (locust, strace of fault 8)
PAUSED=()          # PIDs SIGSTOPped by a fault: SIGCONTed on every exit path
CLUSTER_UP=0
SIM_URL=""
DONE=0            # 1 once the verdict is printed: before that, any failure means the run could not be made
cleanup() {
  local rc=$?
  set +e
  if [ "$DONE" = 0 ] && [ "$rc" != 0 ] && [ "$rc" != 130 ]; then rc=2; fi
  for p in "${PAUSED[@]}"; do kill -CONT "$p" 2>/dev/null; done
  [ -n "$SIM_URL" ] && curl -s -m 5 -X DELETE "$SIM_URL/_sim/faults" >/dev/null 2>&1
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  [ "$CLUSTER_UP" = 1 ] && deploy/local-cluster.sh stop >>"$OUT/cluster-stop.log" 2>&1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

die() { echo "chaos.sh: $*" >&2; exit 2; }
log() { echo "$(date -u +%T) $*" | tee -a "$OUT/chaos.log" >&2; }
now_ms() { date +%s%3N; }
. loadtest/lib.sh

# --- locust and the binary (as run.sh) -------------------------------------------------------------------
VENV=loadtest/.venv
if [ ! -x "$VENV/bin/locust" ] || ! cmp -s loadtest/requirements.txt "$VENV/.requirements"; then
  echo "creating $VENV (locust from loadtest/requirements.txt)" >&2
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian/Ubuntu: apt-get install python3-venv)"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r loadtest/requirements.txt || die "pip install failed"
  cp loadtest/requirements.txt "$VENV/.requirements"
fi
if [ -n "${MAPLE_BIN:-}" ]; then
  BIN=$MAPLE_BIN
  [ -x "$BIN" ] || die "MAPLE_BIN=$BIN is not an executable"
else
  BIN=target/release/maple-gateway
  if [ ! -x "$BIN" ] || [ -n "$(find src Cargo.toml Cargo.lock -newer "$BIN" -print -quit)" ]; then
    echo "building $BIN" >&2
    cargo build --release --bin maple-gateway || die "cargo build failed"
  fi
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
BIN_NOTE="gateway binary ${BIN#"$ROOT"/}, built $(date -u -r "$BIN" +%FT%TZ)"
unset MAPLE_BIN
for c in redis-server redis-cli mariadb ss curl; do command -v "$c" >/dev/null || die "$c is not installed"; done

# The slow-disk fault needs strace and the right to trace (ptrace, seccomp-bpf filtering).
SLOW_DISK_NOTE=""
if [ "$SLOW_DISK" = 1 ]; then
  if ! command -v strace >/dev/null; then
    SLOW_DISK=0; SLOW_DISK_NOTE="skipped: strace is not installed"
  elif ! strace -f --seccomp-bpf -qq -o /dev/null -e trace=fdatasync -e inject=fdatasync:delay_enter=1000 true 2>"$OUT/strace-probe.log"; then
    SLOW_DISK=0; SLOW_DISK_NOTE="skipped: strace cannot trace here ($(head -c 160 "$OUT/strace-probe.log"))"
  fi
else
  SLOW_DISK_NOTE="skipped: --no-slow-disk"
fi

# --- MariaDB: the machine's server, found by its listener ------------------------------------------------
MARIADB_PID=$(ss -ltnpH 'sport = :3306' 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true)
[ -n "$MARIADB_PID" ] || die "no process listens on 127.0.0.1:3306 (MariaDB)"
case "$(cat "/proc/$MARIADB_PID/comm" 2>/dev/null)" in
  mariadbd|mysqld) ;;
  *) die "the listener on port 3306 (pid $MARIADB_PID) is not mariadbd/mysqld" ;;
esac
"${DB[@]}" -e "DROP DATABASE IF EXISTS \`$DB_NAME\`; CREATE DATABASE \`$DB_NAME\` CHARACTER SET utf8mb4" \
  || die "cannot (re)create the database $DB_NAME on 127.0.0.1:3306"

# --- the cluster, on free ports ---------------------------------------------------------------------------
REDIS_MASTER_PORT=$(free_port); REDIS_REPLICA_PORT=$(free_port)
SENTINEL_PORTS="$(free_port) $(free_port) $(free_port)"
SIM_PORT=$(free_port)
GW_PORTS="$(free_port) $(free_port)"
export REDIS_MASTER_PORT REDIS_REPLICA_PORT SENTINEL_PORTS SIM_PORT GW_PORTS
read -r -a GW <<<"$GW_PORTS"
read -r -a SENT <<<"$SENTINEL_PORTS"
# Gateway settings: no per-client limit, an upstream budget the simulator cannot exhaust, INFO logs without
# the access log (the timeline is the client's).
export RUST_LOG=${RUST_LOG:-info,access=off} MAPLE_CLIENT_RPS=0 MAPLE_RATE_PER_S=100000 MAPLE_RATE_PER_DAY=1000000000
export MAPLE_CUBE_TABLE=${MAPLE_CUBE_TABLE:-data/sim-cube-table.csv}
export MAPLE_ADMIN_TOKEN=${MAPLE_ADMIN_TOKEN:-chaos-run-admin-token-0123}
CLUSTER_UP=1
log "starting the cluster (ports: redis $REDIS_MASTER_PORT/$REDIS_REPLICA_PORT, sentinels $SENTINEL_PORTS, sim $SIM_PORT, gateways $GW_PORTS; logs in ${MAPLE_CLUSTER_DIR#"$ROOT"/})"
MAPLE_BIN=$BIN deploy/local-cluster.sh start >"$OUT/cluster-start.log" 2>&1 \
  || { tail -n 20 "$OUT/cluster-start.log" >&2; die "local-cluster.sh start failed"; }
SIM_URL="http://127.0.0.1:$SIM_PORT"
HOSTS=""
for p in "${GW[@]}"; do
  wait_http "http://127.0.0.1:$p/health/ready" "gateway :$p" 60 || die "gateway :$p did not become ready"
  HOSTS+="${HOSTS:+,}http://127.0.0.1:$p"
done
curl -fs -m 5 -X DELETE "$SIM_URL/_sim/faults" >/dev/null || die "the simulator does not answer"
BUILD_COMMIT=$(curl -fs -m 2 "http://127.0.0.1:${GW[0]}/metrics" | grep -o 'maple_build_info{[^}]*commit="[^"]*"' | sed 's/.*commit="//; s/"$//' || true)
BIN_NOTE+=", maple_build_info commit ${BUILD_COMMIT:-?}"

cl() { MAPLE_BIN=$BIN deploy/local-cluster.sh "$@" 2>>"$OUT/chaos.log"; }
pid_of() { cat "$MAPLE_CLUSTER_DIR/$1.pid"; }
redis_node() { # port → the PID file name of that data node
  if [ "$1" = "$REDIS_MASTER_PORT" ]; then echo redis-master; else echo redis-replica; fi
}
master_port() { cl master | cut -d' ' -f2; }

# wait_until DEADLINE_S WHAT CMD...: polls CMD every 0.2 s; 1 (and a line in chaos.log) at the deadline.
wait_until() {
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then log "  timed out waiting for $what"; return 1; fi
    sleep 0.2
  done
}
master_is_not() { local m; m=$(master_port) && [ -n "$m" ] && [ "$m" != "$1" ]; }
# The topology is whole again: the master has one online replica, which has its link up.
redis_settled() {
  local m r
  m=$(master_port) || return 1
  redis-cli -p "$m" --raw INFO replication | grep -q '^role:master' || return 1
  redis-cli -p "$m" --raw INFO replication | grep -q '^slave0:.*state=online' || return 1
  if [ "$m" = "$REDIS_MASTER_PORT" ]; then r=$REDIS_REPLICA_PORT; else r=$REDIS_MASTER_PORT; fi
  redis-cli -p "$r" --raw INFO replication | grep -q '^master_link_status:up'
}
ready() { curl -fs -m 2 -o /dev/null "http://127.0.0.1:$1/health/ready"; }
# Gone: no such process, or a zombie (PID 1 of a container may reap late).
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]; }

# What an operator sees during a fault: /health/ready and /admin/status of both gateways, once.
snapshot() { # fault number
  local p
  for p in "${GW[@]}"; do
    {
      echo "== :$p /health/ready $(date -u +%T)"
      curl -s -m 2 -w '\n(status %{http_code})\n' "http://127.0.0.1:$p/health/ready" || echo "(no answer)"
      echo "== :$p /admin/status"
      curl -s -m 2 -w '\n(status %{http_code})\n' -H "Authorization: Bearer $MAPLE_ADMIN_TOKEN" \
        "http://127.0.0.1:$p/admin/status" || echo "(no answer)"
    } >>"$OUT/status-fault-$1.txt" 2>&1
  done
}

FAULTS="$OUT/faults.tsv"
printf 'n\tfault\tinject_ms\trecovered_ms\tnote\n' >"$FAULTS"
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" >>"$FAULTS"; }

# --- the load ---------------------------------------------------------------------------------------------
PREFIX=c$(python3 -c 'import time; n = int(time.time()); d = "0123456789abcdefghijklmnopqrstuvwxyz"; print("".join(d[n // 36**i % 36] for i in range(4, -1, -1)))')
export LOCUST_HOSTS=$HOSTS LOCUST_SIM_URL=$SIM_URL LOCUST_NAME_PREFIX=$PREFIX LOCUST_CHARACTERS=${LOCUST_CHARACTERS:-2000}
export LOCUST_LEDGER=$OUT/ledger LOCUST_EVENTS=$OUT/events LOCUST_EXTRA_OUT=$OUT/extra.json
# At most 15 minutes of load: the schedule below stops locust long before that.
timeout -k 15 900 "$VENV/bin/locust" -f loadtest/locustfile.py --headless -u "$USERS" -r "$USERS" -t 900s \
  --host "${HOSTS%%,*}" --csv "$OUT/locust" --only-summary --exit-code-on-error 0 MixedUser \
  >"$OUT/locust.log" 2>&1 &
LOCUST_PID=$!; PIDS+=("$LOCUST_PID")
LOAD_START=$(now_ms)
log "locust mixed: $USERS users over $HOSTS, names ${PREFIX}0..$((LOCUST_CHARACTERS - 1)); baseline ${BASELINE_S}s"
sleep "$BASELINE_S"
kill -0 "$LOCUST_PID" 2>/dev/null || die "locust exited early (see $OUT/locust.log)"
record 0 "baseline (no fault)" "$LOAD_START" "$(now_ms)"

recover() { sleep "$RECOVER_S"; }

# 1. planned failover
log "fault 1: SENTINEL FAILOVER"
old=$(master_port)
t0=$(now_ms)
redis-cli -p "${SENT[0]}" SENTINEL FAILOVER mymaster >>"$OUT/chaos.log" 2>&1 || true
note=""
wait_until 20 "the switch" master_is_not "$old" || note="no switch within 20 s"
snapshot 1
wait_until 30 "the replica link" redis_settled || note+=" replica not back within 30 s"
record 1 "planned Redis failover" "$t0" "$(now_ms)" "$note"
recover

# 2. SIGKILL of the master, the old one back as a replica
old=$(master_port)
node=$(redis_node "$old")
log "fault 2: SIGKILL of the Redis master :$old ($node, pid $(pid_of "$node"))"
t0=$(now_ms)
kill -9 "$(pid_of "$node")"
note=""
wait_until 30 "the promotion" master_is_not "$old" || note="no promotion within 30 s"
snapshot 2
cl restart-redis "$old" >>"$OUT/chaos.log" || note+=" restart of :$old failed"
wait_until 30 "the replica link" redis_settled || note+=" replica not back within 30 s"
record 2 "SIGKILL Redis master, back as replica" "$t0" "$(now_ms)" "$note"
recover

# 3. SIGSTOP of the master for 5 s
old=$(master_port)
node=$(redis_node "$old")
pid=$(pid_of "$node")
log "fault 3: SIGSTOP of the Redis master :$old (pid $pid) for 5 s"
t0=$(now_ms)
PAUSED+=("$pid"); kill -STOP "$pid"
sleep 2.5; snapshot 3; sleep 2.5
kill -CONT "$pid"
note=""
wait_until 30 "the replica link" redis_settled || note="replica not back within 30 s"
[ "$(master_port)" != "$old" ] && note+=" (Sentinel failed over to :$(master_port) during the stop)"
record 3 "SIGSTOP Redis master 5 s" "$t0" "$(now_ms)" "$note"
recover

# 4. SIGSTOP of MariaDB for 5 s
log "fault 4: SIGSTOP of MariaDB (pid $MARIADB_PID) for 5 s"
t0=$(now_ms)
PAUSED+=("$MARIADB_PID"); kill -STOP "$MARIADB_PID"
sleep 2.5; snapshot 4; sleep 2.5
kill -CONT "$MARIADB_PID"
record 4 "SIGSTOP MariaDB 5 s" "$t0" "$(now_ms)"
recover

# 5. SIGKILL of gateway 1, restarted on the same port with the same data dir
pid=$(pid_of gw1)
log "fault 5: SIGKILL of gateway 1 :${GW[0]} (pid $pid), restart"
t0=$(now_ms)
kill -9 "$pid"
note=""
wait_until 10 "gw1 to exit" gone "$pid" || note="still running 10 s after SIGKILL"
cl restart gw1 >>"$OUT/chaos.log" || note+=" restart failed"
wait_until 60 "gw1 ready" ready "${GW[0]}" || note+=" not ready within 60 s"
snapshot 5
record 5 "SIGKILL gateway 1, restart" "$t0" "$(now_ms)" "$note"
recover

# 6. SIGTERM of gateway 2 under load, restarted
pid=$(pid_of gw2)
log "fault 6: SIGTERM of gateway 2 :${GW[1]} (pid $pid), restart"
t0=$(now_ms)
kill -TERM "$pid"
note=""
wait_until 40 "gw2 to exit" gone "$pid" || { note="still running 40 s after SIGTERM: SIGKILL"; kill -9 "$pid"; sleep 0.5; }
cl restart gw2 >>"$OUT/chaos.log" || note+=" restart failed"
wait_until 60 "gw2 ready" ready "${GW[1]}" || note+=" not ready within 60 s"
snapshot 6
record 6 "SIGTERM gateway 2, restart" "$t0" "$(now_ms)" "$note"
recover

# 7. 10 s upstream outage: every data call answers 500 OPENAPI00001 (an upstream failure: the breaker's path).
# Not the simulator's default maintenance code (OPENAPI00011): a maintenance answer holds every upstream call
# for MAPLE_MAINTENANCE_HOLD_S (300 s) by design, so a 10 s maintenance leaves cold names 503 for 5 minutes.
log "fault 7: upstream outage (500 OPENAPI00001) for 10 s"
t0=$(now_ms)
curl -fs -m 5 -X POST "$SIM_URL/_sim/faults" -d '{"outage":true,"status":500,"nexon_error":"OPENAPI00001"}' >/dev/null
sleep 5; snapshot 7; sleep 5
curl -fs -m 5 -X DELETE "$SIM_URL/_sim/faults" >/dev/null
record 7 "upstream outage 10 s" "$t0" "$(now_ms)"
recover

# 8. slow disk: every fdatasync of gateway 1 takes 300 ms more, then SIGKILL
if [ "$SLOW_DISK" = 1 ]; then
  pid=$(pid_of gw1)
  log "fault 8: gateway 1 restarted under strace (fdatasync +300 ms), 15 s of load, SIGKILL, restart"
  t0=$(now_ms)
  note=""
  kill -TERM "$pid"
  wait_until 40 "gw1 to exit" gone "$pid" || { note="still running 40 s after SIGTERM: SIGKILL "; kill -9 "$pid"; sleep 0.5; }
  MAPLE_GW_WRAPPER="strace -f --seccomp-bpf -qq -e signal=none -o $OUT/strace-gw1.log -e trace=fdatasync -e inject=fdatasync:delay_enter=300000" \
    cl restart gw1 >>"$OUT/chaos.log" || note+="restart under strace failed "
  wait_until 60 "gw1 ready under strace" ready "${GW[0]}" || note+="not ready under strace within 60 s "
  sleep 7.5; snapshot 8; sleep 7.5
  pid=$(pid_of gw1)
  kill_ms=$(now_ms)
  kill -9 "$pid"
  note+="SIGKILL at $kill_ms; "
  wait_until 10 "gw1 to exit" gone "$pid" || note+="still running 10 s after SIGKILL "
  wrapper=$(cat "$MAPLE_CLUSTER_DIR/gw1-wrapper.pid" 2>/dev/null || echo "")
  if [ -n "$wrapper" ] && ! wait_until 10 "strace to exit" gone "$wrapper"; then kill "$wrapper" 2>/dev/null || true; fi
  cl restart gw1 >>"$OUT/chaos.log" || note+="restart failed "
  wait_until 60 "gw1 ready" ready "${GW[0]}" || note+="not ready within 60 s"
  delayed=$(grep -c DELAYED "$OUT/strace-gw1.log" 2>/dev/null) || true
  record 8 "slow disk (fdatasync +300 ms), SIGKILL gateway 1" "$t0" "$(now_ms)" "${note}${delayed:-0} fdatasync calls delayed by 300 ms"
  recover
else
  log "fault 8 (slow disk): $SLOW_DISK_NOTE"
fi

# --- stop the load, let the sync settle --------------------------------------------------------------------
LOAD_END=$(now_ms)
record 99 "end of load" "$LOAD_END" "$LOAD_END"
log "stopping locust"
kill -TERM "$LOCUST_PID" 2>/dev/null || true
wait_until 30 "locust to stop" gone "$LOCUST_PID" || kill -9 "$LOCUST_PID" 2>/dev/null || true
wait "$LOCUST_PID" 2>/dev/null || true

buffered() { # likes held by the gateways (not yet known to be in MySQL); fails when a gateway does not answer
  local p n total=0
  for p in "${GW[@]}"; do
    n=$(curl -fs -m 2 "http://127.0.0.1:$p/metrics" | awk '/^maple_like_buffer_entries[{ ]/ { s += $NF } END { printf "%d", s }') || return 1
    total=$((total + n))
  done
  echo "$total"
}
db_state() { "${DB[@]}" -N -B "$DB_NAME" -e "SELECT (SELECT COUNT(*) FROM character_likes), (SELECT COALESCE(SUM(like_count),0) FROM characters)" 2>/dev/null; }
log "waiting (at most 120 s) for the gateways' like buffers to drain and the database to stop changing"
SETTLE_START=$SECONDS
prev=""; stable=0; SETTLED=0
while [ $((SECONDS - SETTLE_START)) -lt 120 ]; do
  b=$(buffered || echo "?")
  s=$(db_state || echo "?")
  if [ "$b" = 0 ] && [ "$s" = "$prev" ] && [ "$s" != "?" ]; then
    stable=$((stable + 1))
    [ "$stable" -ge 3 ] && { SETTLED=1; break; }
  else
    stable=0
  fi
  prev=$s
  sleep 2
done
SETTLE_S=$((SECONDS - SETTLE_START))
log "settle: $([ "$SETTLED" = 1 ] && echo "settled after ${SETTLE_S}s" || echo "NOT settled after ${SETTLE_S}s (buffered ${b:-?}, db ${s:-?})")"
for p in "${GW[@]}"; do curl -s -m 2 "http://127.0.0.1:$p/metrics" >"$OUT/metrics-$p.txt" 2>/dev/null || true; done
"${DB[@]}" -N -B "$DB_NAME" -e "SELECT character_name, liker FROM character_likes" >"$OUT/db-likes.tsv" \
  || die "cannot read character_likes"
"${DB[@]}" -N -B "$DB_NAME" -e "SELECT name, like_count FROM characters WHERE like_count <> 0" >"$OUT/db-counts.tsv" \
  || die "cannot read characters"

# --- the verdict --------------------------------------------------------------------------------------------
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
set +e
"$VENV/bin/python" - "$OUT" "$SETTLED" "$SETTLE_S" "$USERS" "$COMMIT" "$BIN_NOTE" "$SLOW_DISK_NOTE" <<'PY' | tee "$OUT/summary.txt"
import collections, glob, json, os, re, sys
out, settled, settle_s, users, commit, bin_note, slow_note = sys.argv[1:]
settled = settled == "1"

faults = []
with open(os.path.join(out, "faults.tsv")) as f:
    next(f)
    for line in f:
        n, name, t0, t1, note = (line.rstrip("\n").split("\t") + [""])[:5]
        faults.append({"n": int(n), "name": name, "t0": int(t0), "t1": int(t1), "note": note.strip()})
end = next(x["t0"] for x in faults if x["n"] == 99)
faults = [x for x in faults if x["n"] != 99]
for i, x in enumerate(faults):
    x["slot_end"] = faults[i + 1]["t0"] if i + 1 < len(faults) else end

events = []
for fn in glob.glob(os.path.join(out, "events.*")):
    with open(fn) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) == 5:
                try:
                    events.append((int(p[0]), p[1], int(p[2]), float(p[3]), p[4]))
                except ValueError:
                    pass  # a torn last line
events.sort()

def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]

# A character is "cached" before a fault when some read of it completed with 200 before the injection.
first_ok = {}
for t, kind, st, lat, name in events:
    if kind == "read" and st == 200:
        done = t + lat
        if name not in first_ok or done < first_ok[name]:
            first_ok[name] = done

rows, problems = [], []
for x in faults:
    t0, t1, se = x["t0"], x["t1"], x["slot_end"]
    slot = [e for e in events if t0 <= e[0] < se]
    window = [e for e in slot if e[0] <= t1]
    reads = [e for e in slot if e[1] == "read"]
    warm5 = sum(1 for e in reads if e[2] >= 500 and first_ok.get(e[4], float("inf")) < t0)
    cold5 = sum(1 for e in reads if e[2] >= 500 and not first_ok.get(e[4], float("inf")) < t0)
    noans = sum(1 for e in slot if e[2] == 0)
    fails = [e for e in slot if not (200 <= e[2] < 300)]
    like_fail = sum(1 for e in slot if e[1] == "like" and not (200 <= e[2] < 300))
    other = sum(1 for e in fails if e[2] != 0 and e[2] < 500)
    p99 = pct([e[3] for e in window if e[2] != 0], 0.99)
    if fails:
        last = max(e[0] + e[3] for e in fails)
        back = round(max(0.0, last - t0) / 1000, 1)
        # Back to 0: no failure in the last 5 s of the slot (the slot is the fault and its recovery time).
        recovered = last < se - 5000
    else:
        back, recovered = 0.0, True
    r = {"n": x["n"], "fault": x["name"], "window_s": round((t1 - t0) / 1000, 1), "requests": len(slot),
         "warm_5xx": warm5, "cold_5xx": cold5, "no_answer": noans, "other_fail": other, "like_fail": like_fail,
         "p99_ms": p99, "back_to_0_s": back if recovered else None, "note": x["note"]}
    rows.append(r)
    if warm5:
        problems.append(f"fault {x['n']}: {warm5} 5xx on cached characters")
    if not recovered:
        problems.append(f"fault {x['n']}: errors until the next fault (last at +{back} s)")

# --- the ledger ----------------------------------------------------------------------------------------------
acked, unacked, sent = set(), set(), set()
ack_time, ack_host = {}, {}
for fn in glob.glob(os.path.join(out, "ledger.*")):
    with open(fn) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) < 3:
                continue
            st, pair = p[0], (p[1], p[2])
            sent.add(pair)
            if st.isdigit() and 200 <= int(st) < 300:
                acked.add(pair)
                if len(p) > 3 and p[3].isdigit():
                    ack_time[pair] = int(p[3])
                if len(p) > 4:
                    ack_host[pair] = p[4]
            else:
                unacked.add(pair)
unacked -= acked
stored = set()
with open(os.path.join(out, "db-likes.tsv")) as f:
    for line in f:
        p = line.rstrip("\n").split("\t")
        if len(p) == 2:
            stored.add((p[0], p[1]))
counts = {}
with open(os.path.join(out, "db-counts.tsv")) as f:
    for line in f:
        p = line.rstrip("\n").split("\t")
        if len(p) == 2:
            counts[p[0]] = int(p[1])
lost = sorted(acked - stored)
phantom = sorted(stored - sent)
unacked_stored = unacked & stored
per_char_stored = collections.Counter(c for c, _ in stored)
per_char_acked = collections.Counter(c for c, _ in acked)
per_char_extra = collections.Counter(c for c, _ in unacked_stored)
doubled, miscounted = [], []
for c in sorted(set(counts) | set(per_char_stored) | set(per_char_acked)):
    n = counts.get(c, 0)
    if n > per_char_stored[c]:
        doubled.append((c, n, per_char_stored[c]))
    if n != per_char_acked[c] + per_char_extra[c]:
        miscounted.append((c, n, per_char_acked[c], per_char_extra[c]))

def slot_of(t):
    """The fault whose slot (injection → next injection) the time falls in."""
    for x in faults:
        if t is not None and x["t0"] <= t < x["slot_end"]:
            return x["n"]
    return "?"

print(f"== loadtest/chaos.sh   commit {commit}; {bin_note}")
print(f"   {users} locust users (mixed, one process) over 2 gateways; Redis master+replica+3 Sentinels, MariaDB, simulator")
hdr = (f"{'#':>2} {'fault':44s} {'win s':>6s} {'reqs':>6s} {'5xx warm':>8s} {'5xx cold':>8s} {'no ans':>6s} "
       f"{'like err':>8s} {'p99 ms':>7s} {'back 0 s':>8s}")
print(hdr)
for r in rows:
    p99 = "-" if r["p99_ms"] is None else f"{r['p99_ms']:.0f}"
    back = "NOT" if r["back_to_0_s"] is None else f"{r['back_to_0_s']:.1f}"
    print(f"{r['n']:>2} {r['fault'][:44]:44s} {r['window_s']:6.1f} {r['requests']:6d} {r['warm_5xx']:8d} "
          f"{r['cold_5xx']:8d} {r['no_answer']:6d} {r['like_fail']:8d} {p99:>7s} {back:>8s}"
          + (f"   {r['note']}" if r["note"] else ""))
if slow_note:
    print(f" 8 slow disk: {slow_note}")
print(f"ledger      {len(sent)} likes sent, {len(acked)} acknowledged (2xx), {len(unacked)} not "
      f"({len(unacked_stored)} of those stored all the same); database: {len(stored)} pairs, "
      f"like_count total {sum(counts.values())}; {'settled' if settled else 'NOT settled'} after {settle_s} s")
print(f"            lost {len(lost)}, doubled {len(doubled)}, phantom {len(phantom)}, miscounted characters {len(miscounted)}")
lost_detail = []
kill = next((int(m.group(1)) for x in faults if (m := re.search(r"SIGKILL at (\d+)", x["note"]))), None)
for c, l in lost:
    t = ack_time.get((c, l))
    when = "?" if t is None else f"{(t - faults[0]['t0']) / 1000:.1f} s into the load"
    if t is not None and kill is not None and abs(kill - t) < 10_000:
        when += f" ({kill - t} ms before the SIGKILL of fault 8)"
    lost_detail.append(f"({c}, {l}) sent {when} to {ack_host.get((c, l), '?')}, fault slot {slot_of(t)}")
for d in lost_detail[:20]:
    print(f"  lost      {d}")
if lost:
    by_slot = collections.Counter(slot_of(ack_time.get(p)) for p in lost)
    print("  lost by fault slot: " + ", ".join(f"{k}: {v}" for k, v in sorted(by_slot.items(), key=str)))
for c, n, s in doubled[:20]:
    print(f"  doubled   {c}: like_count {n}, stored pairs {s}")
for c, l in phantom[:20]:
    print(f"  phantom   ({c}, {l})")
for c, n, a, e in miscounted[:20]:
    print(f"  count     {c}: like_count {n}, acknowledged pairs {a} (+{e} stored without a 2xx)")
if lost:
    problems.append(f"lost {len(lost)} acknowledged likes")
if doubled:
    problems.append(f"{len(doubled)} characters with likes counted twice")
if phantom:
    problems.append(f"{len(phantom)} stored pairs no client sent")
if miscounted:
    problems.append(f"{len(miscounted)} characters whose like_count differs from the ledger")
if not settled:
    problems.append("the like sync did not settle within 120 s")
if not sent:
    problems.append("no likes were sent")
# Locust's own checks (a like_count that went down, a liker not reported as liked, a body's shape) are not
# HTTP errors: listed for the record, not part of the verdict.
try:
    import csv
    with open(os.path.join(out, "locust_failures.csv")) as f:
        lf = sorted(csv.DictReader(f), key=lambda r: -int(r["Occurrences"]))
except (OSError, ValueError, KeyError):
    lf = []
for r in lf[:8]:
    print(f"locust      {r['Occurrences']:>6s} x {r['Method']} {r['Name']}: {r['Error'][:100]}")
verdict = "PASS" if not problems else "FAIL: " + "; ".join(problems)
print(f"verdict     {verdict}")
lost_by_slot = collections.Counter(str(slot_of(ack_time.get(p))) for p in lost)
json.dump({"rows": rows, "lost": lost, "lost_detail": lost_detail, "lost_by_slot": lost_by_slot, "doubled": doubled, "phantom": phantom, "miscounted": miscounted,
           "sent": len(sent), "acked": len(acked), "unacked": len(unacked), "unacked_stored": len(unacked_stored),
           "stored": len(stored), "like_total": sum(counts.values()), "settled": settled, "settle_s": int(settle_s),
           "slow_disk_note": slow_note, "verdict": verdict}, open(os.path.join(out, "result.json"), "w"), indent=1)
sys.exit(0 if not problems else 1)
PY
RC=${PIPESTATUS[0]}
set -e
[ "$RC" = 0 ] || [ "$RC" = 1 ] || die "the analysis failed (status $RC)"
DONE=1

if [ "$REPORT" = 1 ]; then
  "$VENV/bin/python" - "$OUT" "$LOAD_BEFORE" "${OUT#"$ROOT"/}" "$BIN_NOTE" <<'PY'
import datetime, json, os, re, sys
sys.path.insert(0, "loadtest")
import report  # the commit line, as the other generated sections
out, load, rel, bin_note = sys.argv[1:]
res = json.load(open(os.path.join(out, "result.json")))
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
lines = [
    "<!-- generated: chaos -->",
    f"### `loadtest/chaos.sh --report` — {now}, commit `{report.commit()}`",
    "",
    f"{os.cpu_count()} cores, load average {load} before the run; {bin_note}; full output in `{rel}`.",
    "",
    "| # | fault | window s | requests | 5xx cached (want 0) | 5xx cold | no answer | likes not 2xx | p99 ms in window | errors back to 0 after s |",
    "|---|---|---|---|---|---|---|---|---|---|",
]
for r in res["rows"]:
    p99 = "—" if r["p99_ms"] is None else f"{r['p99_ms']:.0f}"
    back = "**not before the next fault**" if r["back_to_0_s"] is None else f"{r['back_to_0_s']:.1f}"
    warm = f"**{r['warm_5xx']}**" if r["warm_5xx"] else "0"
    lines.append(f"| {r['n']} | {r['fault']} | {r['window_s']} | {r['requests']} | {warm} | {r['cold_5xx']} | "
                 f"{r['no_answer']} | {r['like_fail']} | {p99} | {back} |")
if res["slow_disk_note"]:
    lines.append(f"| 8 | slow disk | {res['slow_disk_note']} | | | | | | | |")
lines += [
    "",
    f"Ledger: {res['sent']} likes sent, {res['acked']} acknowledged; database {res['stored']} pairs, like_count "
    f"total {res['like_total']}; {res['unacked']} likes got no 2xx ({res['unacked_stored']} of them stored). "
    f"**lost {len(res['lost'])}, doubled {len(res['doubled'])}, phantom {len(res['phantom'])}**, characters "
    f"miscounted {len(res['miscounted'])}; sync {'settled' if res['settled'] else 'not settled'} after "
    f"{res['settle_s']} s. Verdict: {res['verdict']}.",
]
lines += [f"- lost {d}" for d in res.get("lost_detail", [])[:10]]
lines += [f"- doubled: {c}, like_count {n}, stored pairs {s}" for c, n, s in res["doubled"][:10]]
lines.append("<!-- end: chaos -->")
block = "\n".join(lines)
doc_path = "docs/operations.md"
doc = open(doc_path, encoding="utf-8").read()
pat = re.compile(r"<!-- generated: chaos -->.*?<!-- end: chaos -->", re.S)
doc = pat.sub(lambda _: block, doc, count=1) if pat.search(doc) else doc.rstrip("\n") + "\n\n" + block + "\n"
open(doc_path + ".tmp", "w", encoding="utf-8").write(doc)
os.replace(doc_path + ".tmp", doc_path)
print(f"{doc_path}: section 'chaos' regenerated")
PY
fi
exit "$RC"
