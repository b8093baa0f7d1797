#!/bin/sh
# Entrypoint of a Redis data node: start following the master the Sentinels report now, not a fixed one, so
# a node restarted after a failover follows the promoted master instead of the old one (or of itself).
#
#   SENTINELS             space-separated host:port list of the Sentinels
#   MASTER_NAME           the monitored master's name (mymaster)
#   SELF_HOST             this node's host name as the Sentinels know it (the master's address is compared
#                         with it, by name and by resolved address)
#   SELF_PORT             this node's port (6379)
#   FALLBACK_MASTER_HOST  the master to follow when no Sentinel answers (unset: start as master)
#   FALLBACK_MASTER_PORT  its port (6379)
#
# The arguments are the redis-server command line; `--replicaof HOST PORT` is appended when this node must
# start as a replica.
set -eu

ask_sentinels() { # prints "host port" of the current master, or nothing
  for s in $SENTINELS; do
    reply=$(redis-cli -h "${s%:*}" -p "${s##*:}" --raw SENTINEL get-master-addr-by-name "$MASTER_NAME" 2>/dev/null) || continue
    host=$(printf '%s\n' "$reply" | sed -n 1p)
    port=$(printf '%s\n' "$reply" | sed -n 2p)
    if [ -n "$host" ] && [ -n "$port" ]; then
      echo "$host $port"
      return 0
    fi
  done
  return 1
}

is_self() { # host port
  [ "$2" = "${SELF_PORT:-6379}" ] || return 1
  [ "$1" = "$SELF_HOST" ] && return 0
  self_ip=$(getent hosts "$SELF_HOST" 2>/dev/null | awk '{print $1; exit}')
  [ -n "$self_ip" ] && [ "$1" = "$self_ip" ]
}

if master=$(ask_sentinels); then
  host=${master% *}
  port=${master#* }
  if is_self "$host" "$port"; then
    echo "redis-follow-master: the Sentinels report this node ($host:$port) as master: starting as master"
    exec "$@"
  fi
  echo "redis-follow-master: following the master the Sentinels report: $host:$port"
  exec "$@" --replicaof "$host" "$port"
fi
if [ -n "${FALLBACK_MASTER_HOST:-}" ]; then
  echo "redis-follow-master: no Sentinel answered: following the configured master ${FALLBACK_MASTER_HOST}:${FALLBACK_MASTER_PORT:-6379}"
  exec "$@" --replicaof "$FALLBACK_MASTER_HOST" "${FALLBACK_MASTER_PORT:-6379}"
fi
echo "redis-follow-master: no Sentinel answered and no configured master: starting as master"
exec "$@"
