#!/usr/bin/env bash
# The distributed topology from local binaries (no Docker), on loopback:
#   Redis master + one replica + three Sentinels (quorum 2, down-after 1000 ms, failover-timeout 3000 ms),
#   a database `maple_cluster` on the local MariaDB (127.0.0.1:3306, root), the Nexon simulator, and two
#   gateway instances sharing all of them (MAPLE_RATE_INSTANCES = the number of gateways, so their local
#   fallback limiters together stay within the upstream budget while Redis is unreachable).
#
#   deploy/local-cluster.sh start | stop | status
#
# Everything it starts has a PID file and a log under $MAPLE_CLUSTER_DIR (default ./var/cluster); `stop`
# stops exactly those PIDs. Ports (override with env): Redis 16379/16380, Sentinels 26379-26381, simulator
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
  "$@" >"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}

wait_tcp() { # port, what
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for $2 on port $1" >&2
  return 1
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  bash scripts/install-deps.sh
  mkdir -p "$DIR"
  if [ ! -x "$BIN" ]; then cargo build --release --bin maple-gateway; fi

  start_bg redis-master redis-server --port "$REDIS_MASTER_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR"
  wait_tcp "$REDIS_MASTER_PORT" "redis master"
  start_bg redis-replica redis-server --port "$REDIS_REPLICA_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" \
    --replicaof 127.0.0.1 "$REDIS_MASTER_PORT"
  wait_tcp "$REDIS_REPLICA_PORT" "redis replica"
  local i=0 sentinels=()
  for p in "${SENTINEL_PORTS[@]}"; do
    i=$((i + 1))
    sed -e "s/@PORT@/$p/" -e "s/@MASTER_HOST@/127.0.0.1/" -e "s/@MASTER_PORT@/$REDIS_MASTER_PORT/" -e "s#@DIR@#$DIR#" \
      deploy/sentinel/sentinel.conf.template >"$DIR/sentinel-$i.conf"
    start_bg "sentinel-$i" redis-server "$DIR/sentinel-$i.conf" --sentinel
    wait_tcp "$p" "sentinel $i"
    sentinels+=("127.0.0.1:$p")
  done
  local sentinel_list
  sentinel_list=$(IFS=,; echo "${sentinels[*]}")

  mariadb --protocol=TCP -h 127.0.0.1 -P 3306 -uroot -e "CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4"

  start_bg sim "$BIN" sim --listen "127.0.0.1:$SIM_PORT" --seed 1
  wait_tcp "$SIM_PORT" "simulator"

  local n=0
  for p in "${GW_PORTS[@]}"; do
    n=$((n + 1))
    MAPLE_LISTEN="127.0.0.1:$p" MAPLE_INSTANCE_ID="gw$n" MAPLE_DATA_DIR="$DIR/gw$n" \
      MAPLE_UPSTREAM_URL="http://127.0.0.1:$SIM_PORT" NEXON_API_KEY="${NEXON_API_KEY:-local-cluster-key}" \
      MAPLE_REDIS_SENTINELS="$sentinel_list" MAPLE_REDIS_MASTER=mymaster MAPLE_DATABASE_URL="$DB_URL" \
      MAPLE_CUBE_TABLE="${MAPLE_CUBE_TABLE:-data/sim-cube-table.csv}" MAPLE_ADMIN_TOKEN="$ADMIN_TOKEN" \
      MAPLE_RATE_INSTANCES="${#GW_PORTS[@]}" \
      start_bg "gw$n" "$BIN" serve
  done
  for p in "${GW_PORTS[@]}"; do wait_tcp "$p" "gateway"; done
  status
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
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
