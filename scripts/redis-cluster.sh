#!/usr/bin/env bash
# A local Redis Cluster of three masters on 127.0.0.1:7101-7103, for the tests and for trying
# Sluice's sharded-Redis mode (docs/deployment.md, "Redis Cluster").
#   scripts/redis-cluster.sh start   starts it (does nothing when it already answers cluster_state:ok)
#   scripts/redis-cluster.sh stop    stops the three servers and removes their directory
#   scripts/redis-cluster.sh status  prints cluster_state
# Nothing is kept on disk beyond the cluster's node tables, in $SLUICE_REDIS_CLUSTER_DIR
# (default /tmp/sluice-redis-cluster).
set -euo pipefail

ports=(7101 7102 7103)
dir="${SLUICE_REDIS_CLUSTER_DIR:-/tmp/sluice-redis-cluster}"

state() {
  redis-cli -h 127.0.0.1 -p "${ports[0]}" cluster info 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_state://p'
}

answers() {
  redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG
}

wait_until_ok() {
  for _ in $(seq 1 100); do
    if [ "$(state)" = ok ]; then return 0; fi
    sleep 0.1
  done
  echo "redis cluster: not ok after 10 s (cluster_state: $(state))" >&2
  return 1
}

start() {
  if [ "$(state)" = ok ]; then
    echo "redis cluster: already up on 127.0.0.1:${ports[0]}-${ports[2]}"
    return 0
  fi
  mkdir -p "$dir"
  for port in "${ports[@]}"; do
    if answers "$port"; then continue; fi
    mkdir -p "$dir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
      --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" --cluster-node-timeout 2000 \
      --dir "$dir/$port" --logfile "$dir/$port/redis.log" --pidfile "$dir/$port/redis.pid" \
      --save "" --appendonly no
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 1 50); do answers "$port" && break; sleep 0.1; done
    answers "$port" || { echo "redis cluster: nothing answers on port $port (see $dir/$port/redis.log)" >&2; return 1; }
  done
  # Servers that already know each other (a restart with their nodes.conf) only need the wait.
  local known
  known=$(redis-cli -h 127.0.0.1 -p "${ports[0]}" cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')
  if [ "$known" != "${#ports[@]}" ]; then
    local nodes=()
    for port in "${ports[@]}"; do nodes+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  fi
  wait_until_ok
  echo "redis cluster: up on 127.0.0.1:${ports[0]}-${ports[2]}"
}

stop() {
  for port in "${ports[@]}"; do
    if answers "$port"; then redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true; fi
  done
  rm -rf "$dir"
  echo "redis cluster: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) echo "cluster_state: $(state || true)" ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
