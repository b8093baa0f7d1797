#!/usr/bin/env bash
# The distributed topology from local binaries (no Docker), on loopback:
#   Redis master + one replica + three Sentinels (quorum 2, down-after 1000 ms, failover-timeout 3000 ms),
#   a database `maple_cluster` on the local MariaDB (127.0.0.1:3306, root), the Nexon simulator, and two
#   gateway instances sharing all of them (MAPLE_RATE_INSTANCES = the number of gateways, so their local
#   fallback limiters together stay within the upstream budget while Redis is unreachable).
#
#   deploy/local-cluster.sh start | stop | status
#   deploy/local-cluster.sh restart gwN      start gateway N again (same port, data dir and settings) once its
#                                            process is gone, e.g. after a kill -9; MAPLE_GW_WRAPPER="cmd args"
#                                            runs it under that command (e.g. strace fault injection): the PID
#                                            file then holds the gateway's PID, gwN-wrapper.pid the wrapper's
#   deploy/local-cluster.sh restart-redis PORT   start the Redis data node of PORT again (after a kill) through
#                                            deploy/redis-follow-master.sh: it rejoins as a replica of the master
#                                            the Sentinels report now
#   deploy/local-cluster.sh master           prints "host port" of the master the Sentinels report
#
# Everything it starts has a PID file and a log under $MAPLE_CLUSTER_DIR (default ./var/cluster); `stop`
# stops exactly those PIDs (a restarted process appends to its log). Ports (override with env): Redis 16379/16380, Sentinels 26379-26381, simulator
# 18081, gateways 18080 and 18082. Missing server binaries are installed with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${MAPLE_CLUSTER_DIR:-$PWD/var/cluster}"
REDIS_MASTER_PORT="${REDIS_MASTER_PORT:-16379}"
REDIS_REPLICA_PORT="${REDIS_REPLICA_PORT:-16380}"
SENTINEL_PORTS=(${SENTINEL_PORTS:-26379 26380 26381})
SIM_PORT="${SIM_PORT:-18081}"
GW_PORTS=(${GW_PORTS:-18080 18082})
DB_NAME="${DB_NAME:-maple_cluster}"
DB_URL="${MAPLE_DATABASE_URL:-mysql://root@127.0.0.1:3306/$DB_NAME}"
BIN="${MAPLE_BIN:-target/release/maple-gateway}"
# The binary's path is this script's setting, not the gateway's: keep it out of the gateways' environment.
unset MAPLE_BIN
ADMIN_TOKEN="${MAPLE_ADMIN_TOKEN:-local-cluster-admin-token}"

start_bg() { # name, then command...
  local name=$1; shift
  "$@" >>"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}

sentinel_list() { # host:port,host:port,...
  local out=() p
  for p in "${SENTINEL_PORTS[@]}"; do out+=("127.0.0.1:$p"); done
  (IFS=,; echo "${out[*]}")
}

start_gw() { # n (1-based index into GW_PORTS)
  local n=$1 p=${GW_PORTS[$(($1 - 1))]}
  # shellcheck disable=SC2086 # the wrapper is a command line
  MAPLE_LISTEN="127.0.0.1:$p" MAPLE_INSTANCE_ID="gw$n" MAPLE_DATA_DIR="$DIR/gw$n" \
    MAPLE_UPSTREAM_URL="http://127.0.0.1:$SIM_PORT" NEXON_API_KEY="${NEXON_API_KEY:-local-cluster-key}" \
    MAPLE_REDIS_SENTINELS="$(sentinel_list)" MAPLE_REDIS_MASTER=mymaster MAPLE_DATABASE_URL="$DB_URL" \
    MAPLE_CUBE_TABLE="${MAPLE_CUBE_TABLE:-data/sim-cube-table.csv}" MAPLE_ADMIN_TOKEN="$ADMIN_TOKEN" \
    MAPLE_RATE_INSTANCES="${#GW_PORTS[@]}" \
    start_bg "gw$n" ${MAPLE_GW_WRAPPER:-} "$BIN" serve
  if [ -n "${MAPLE_GW_WRAPPER:-}" ]; then
    # The PID file names the gateway itself (what a kill must reach), the wrapper gets its own.
    local wrapper child=""
    wrapper=$(cat "$DIR/gw$n.pid")
    echo "$wrapper" >"$DIR/gw$n-wrapper.pid"
    for _ in $(seq 1 100); do
      child=$(pgrep -P "$wrapper" | head -n 1 || true)
      [ -n "$child" ] && break
      sleep 0.05
    done
    [ -n "$child" ] || { echo "gw$n: no process under the wrapper $MAPLE_GW_WRAPPER" >&2; return 1; }
    echo "$child" >"$DIR/gw$n.pid"
  fi
}

wait_tcp() { # port, what
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for $2 on port $1" >&2
  return 1
}

# A killed process can stay a zombie for a while when PID 1 reaps slowly (containers): that is not running.
alive() { kill -0 "$1" 2>/dev/null && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]; }
running() { [ -f "$1" ] && alive "$(cat "$1")"; }

start() {
  bash scripts/install-deps.sh
  mkdir -p "$DIR"
  if [ ! -x "$BIN" ]; then cargo build --release --bin maple-gateway; fi

  start_bg redis-master redis-server --port "$REDIS_MASTER_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR"
  wait_tcp "$REDIS_MASTER_PORT" "redis master"
  start_bg redis-replica redis-server --port "$REDIS_REPLICA_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" \
    --replicaof 127.0.0.1 "$REDIS_MASTER_PORT"
  wait_tcp "$REDIS_REPLICA_PORT" "redis replica"
  local i=0
  for p in "${SENTINEL_PORTS[@]}"; do
    i=$((i + 1))
    sed -e "s/@PORT@/$p/" -e "s/@MASTER_HOST@/127.0.0.1/" -e "s/@MASTER_PORT@/$REDIS_MASTER_PORT/" -e "s#@DIR@#$DIR#" \
      deploy/sentinel/sentinel.conf.template >"$DIR/sentinel-$i.conf"
    start_bg "sentinel-$i" redis-server "$DIR/sentinel-$i.conf" --sentinel
    wait_tcp "$p" "sentinel $i"
  done

  mariadb --protocol=TCP -h 127.0.0.1 -P 3306 -uroot -e "CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4"

  start_bg sim "$BIN" sim --listen "127.0.0.1:$SIM_PORT" --seed 1
  wait_tcp "$SIM_PORT" "simulator"

  local n
  for n in $(seq 1 "${#GW_PORTS[@]}"); do start_gw "$n"; done
  for p in "${GW_PORTS[@]}"; do wait_tcp "$p" "gateway"; done
  status
}

restart() { # gwN
  local n=${1#gw}
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "${#GW_PORTS[@]}" ] || { echo "no gateway '$1'" >&2; return 2; }
  if running "$DIR/gw$n.pid"; then echo "gw$n is still running (pid $(cat "$DIR/gw$n.pid"))" >&2; return 1; fi
  rm -f "$DIR/gw$n-wrapper.pid"
  start_gw "$n"
  wait_tcp "${GW_PORTS[$((n - 1))]}" "gateway gw$n"
}

restart_redis() { # port of a data node
  local name
  case "$1" in
    "$REDIS_MASTER_PORT") name=redis-master ;;
    "$REDIS_REPLICA_PORT") name=redis-replica ;;
    *) echo "no Redis data node on port '$1'" >&2; return 2 ;;
  esac
  if running "$DIR/$name.pid"; then echo "$name is still running (pid $(cat "$DIR/$name.pid"))" >&2; return 1; fi
  local s=() p
  for p in "${SENTINEL_PORTS[@]}"; do s+=("127.0.0.1:$p"); done
  SENTINELS="${s[*]}" MASTER_NAME=mymaster SELF_HOST=127.0.0.1 SELF_PORT="$1" \
    start_bg "$name" sh deploy/redis-follow-master.sh \
    redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR"
  wait_tcp "$1" "$name"
}

master() {
  local p reply
  for p in "${SENTINEL_PORTS[@]}"; do
    reply=$(redis-cli -h 127.0.0.1 -p "$p" --raw SENTINEL get-master-addr-by-name mymaster 2>/dev/null) || continue
    [ "$(printf '%s\n' "$reply" | wc -l)" = 2 ] || continue
    printf '%s\n' "$reply" | paste -sd' '
    return 0
  done
  echo "no Sentinel answered" >&2
  return 1
}

stop() {
  [ -d "$DIR" ] || { echo "nothing started (no $DIR)"; return 0; }
  for f in "$DIR"/*.pid; do
    [ -e "$f" ] || continue
    if running "$f"; then kill "$(cat "$f")" 2>/dev/null || true; fi
  done
  for f in "$DIR"/*.pid; do
    [ -e "$f" ] || continue
    for _ in $(seq 1 100); do running "$f" || break; sleep 0.1; done
    if running "$f"; then kill -9 "$(cat "$f")" 2>/dev/null || true; fi
    rm -f "$f"
  done
  echo "stopped"
}

status() {
  [ -d "$DIR" ] || { echo "not started"; return 0; }
  for f in "$DIR"/*.pid; do
    [ -e "$f" ] || continue
    local name; name=$(basename "$f" .pid)
    if running "$f"; then echo "up    $name (pid $(cat "$f"))"; else echo "down  $name"; fi
  done
  for p in "${GW_PORTS[@]}"; do
    echo "gateway :$p ready: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/health/ready" || true)"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) [ $# -eq 2 ] || { echo "usage: $0 restart gwN" >&2; exit 2; }; restart "$2" ;;
  restart-redis) [ $# -eq 2 ] || { echo "usage: $0 restart-redis PORT" >&2; exit 2; }; restart_redis "$2" ;;
  master) master ;;
  *) echo "usage: $0 start|stop|status|restart gwN|restart-redis PORT|master" >&2; exit 2 ;;
esac
