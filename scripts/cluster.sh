#!/usr/bin/env bash
# A local ticksock cluster in one command: one redis-server and N `ticksock-arena` nodes on
# loopback (README, "Cluster"; docs/CLUSTER.md; PROTOCOL.md section 12).
#
#   scripts/cluster.sh up [N] [-- NODE-FLAGS...]   start Redis and nodes n1..nN (default 3)
#   scripts/cluster.sh status                      what runs, and each node's Redis link
#   scripts/cluster.sh down                        stop the nodes, then Redis
#
# Node i is `n<i>`, listens on 127.0.0.1:<9101 + i - 1>, and gives ws://127.0.0.1:<port>/ as
# its public URL. Flags after `--` go to every node (`up 3 -- --tick-hz 60`). Redis listens on
# 127.0.0.1:6390 without persistence: a node writes its whole share of the registry again as
# soon as it reaches a Redis that restarted empty, and what a saved file would bring back
# (leases, inbox streams of a past run) is stale by then.
#
# `up` is safe to run again: what runs is kept (nodes are not restarted with new flags: `down`
# first), what died is started again, and nodes beyond N are stopped. Each process logs to
# its file in the run directory, beside its pid, program and port files, which `status` and
# `down` read,
# so they find the processes whatever the environment says now. Logs are kept after `down`.
#
# Environment:
#   TICKSOCK_CLUSTER_DIR         run directory (default: <cargo target dir>/cluster)
#   TICKSOCK_REDIS_PORT          Redis's port (default 6390)
#   TICKSOCK_CLUSTER_BASE_PORT   n1's port; the others follow (default 9101)
#   TICKSOCK_ARENA_BIN           the node binary to run (default: build target/release/ticksock-arena)
#   TICKSOCK_REDIS_BIN           the redis-server to run (default: redis-server on PATH, installed
#                                from Debian's packages when missing)
#   TICKSOCK_CLUSTER_STOP_SECS   how long `down` waits after SIGINT before SIGKILL (default 10)
#   RUST_LOG                     passed to the nodes
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Where cargo puts binaries (absolute), also when CARGO_TARGET_DIR points elsewhere.
TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
RUN_DIR=${TICKSOCK_CLUSTER_DIR:-$TARGET_DIR/cluster}
REDIS_PORT=${TICKSOCK_REDIS_PORT:-6390}
BASE_PORT=${TICKSOCK_CLUSTER_BASE_PORT:-9101}
STOP_SECS=${TICKSOCK_CLUSTER_STOP_SECS:-10}
HOST=127.0.0.1
# Longer than a node's start on a loaded machine (it joins Redis before it listens).
START_SECS=30
# At most this many nodes: a typo such as `up 300` is refused, not obeyed.
MAX_NODES=64

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '5,7p' "$0" | sed 's/^# *//' >&2
  exit 2
}

is_count() {
  [[ $1 =~ ^[1-9][0-9]*$ ]]
}

# Whether `pid` is a live (not zombie) process of program `comm`: a pid file left by a process
# that died may name an unrelated process by now, which must never be signalled.
is_ours() {
  local pid=$1 comm=$2
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] && is_alive "$pid"
}

# Whether `pid` is a live (not zombie) process, whatever it runs: a process just started is
# `bash`, then `setsid`, for a moment before it runs its program.
is_alive() {
  local state
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
  [ -n "$state" ] && [ "$state" != Z ]
}

# The pid recorded for process `name` (redis, n1, ...) if it still runs the program recorded
# for it (`comm` if none was), else nothing.
live_pid() {
  local name=$1 comm=$2 pid
  pid=$(cat "$RUN_DIR/$name.pid" 2>/dev/null) || return 0
  comm=$(cat "$RUN_DIR/$name.comm" 2>/dev/null || echo "$comm")
  if is_ours "$pid" "$comm"; then echo "$pid"; fi
}

listens() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# Waits until `pid`, just started, listens on `port`, and records the program it runs (which
# TICKSOCK_*_BIN may name otherwise); fails, with its log's end, if it exits or takes too long.
wait_listening() {
  local name=$1 pid=$2 port=$3 waited=0
  until listens "$port"; do
    if ! is_alive "$pid"; then
      tail -n 20 "$RUN_DIR/$name.log" >&2 || true
      die "$name exited before it listened on $port (log: $RUN_DIR/$name.log)"
    fi
    if [ "$waited" -ge $((START_SECS * 10)) ]; then
      die "$name does not listen on $port after ${START_SECS}s (log: $RUN_DIR/$name.log)"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  cat "/proc/$pid/comm" >"$RUN_DIR/$name.comm"
}

# A node's /metrics text (plain bash, no curl needed), or nothing if it does not answer.
metrics_of() {
  # The inner script is quoted on purpose: it gets host and port as $0 and $1.
  # shellcheck disable=SC2016
  timeout 2 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" "$0" >&3
    cat <&3' "$HOST" "$1" 2>/dev/null | tr -d '\r' || true
}

# The value of metric `name` in metrics text `text`, or `?`.
metric_in() {
  local text=$1 name=$2 value
  value=$(awk -v m="$name" '$1 == m { print $2; exit }' <<<"$text")
  echo "${value:-?}"
}

ensure_redis_installed() {
  if [ -n "${TICKSOCK_REDIS_BIN:-}" ]; then
    [ -x "$TICKSOCK_REDIS_BIN" ] || die "TICKSOCK_REDIS_BIN=$TICKSOCK_REDIS_BIN is not executable"
    return
  fi
  command -v redis-server >/dev/null && return
  echo "== redis-server is missing: installing Debian's package"
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends redis-server
}

ensure_arena_built() {
  if [ -n "${TICKSOCK_ARENA_BIN:-}" ]; then
    [ -x "$TICKSOCK_ARENA_BIN" ] || die "TICKSOCK_ARENA_BIN=$TICKSOCK_ARENA_BIN is not executable"
    ARENA_BIN=$TICKSOCK_ARENA_BIN
    return
  fi
  ARENA_BIN=$TARGET_DIR/release/ticksock-arena
  if command -v cargo >/dev/null; then
    # Cargo decides what "if needed" means: a no-op when the binary is up to date.
    echo "== cargo build --release -p ticksock-arena"
    (cd "$ROOT" && cargo build --release -p ticksock-arena)
  elif [ ! -x "$ARENA_BIN" ]; then
    die "no cargo to build $ARENA_BIN (or set TICKSOCK_ARENA_BIN)"
  fi
}

start_redis() {
  local pid port
  pid=$(live_pid redis redis-server)
  if [ -n "$pid" ]; then
    port=$(cat "$RUN_DIR/redis.port")
    echo "redis: runs already (pid $pid, port $port)"
    REDIS_PORT=$port
    return
  fi
  listens "$REDIS_PORT" && die "port $REDIS_PORT is taken by another process (TICKSOCK_REDIS_PORT picks another)"
  # --dir: anything Redis writes stays in the run directory (it saves nothing, but a
  # SHUTDOWN SAVE or a replica sync would).
  rm -f "$RUN_DIR/redis.comm"
  setsid "${TICKSOCK_REDIS_BIN:-redis-server}" --port "$REDIS_PORT" --bind "$HOST" \
    --save "" --appendonly no --dir "$RUN_DIR" >"$RUN_DIR/redis.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$RUN_DIR/redis.pid"
  echo "$REDIS_PORT" >"$RUN_DIR/redis.port"
  wait_listening redis "$pid" "$REDIS_PORT"
  echo "redis: started (pid $pid, port $REDIS_PORT)"
}

# Starts node n<i> unless it runs; flags after `--` in NODE_FLAGS.
start_node() {
  local name="n$1" port=$((BASE_PORT + $1 - 1)) pid
  pid=$(live_pid "$name" ticksock-arena)
  if [ -n "$pid" ]; then
    echo "$name: runs already (pid $pid, port $(cat "$RUN_DIR/$name.port"))"
    return
  fi
  listens "$port" && die "port $port for $name is taken by another process (TICKSOCK_CLUSTER_BASE_PORT moves the nodes)"
  # setsid: its own session, so that a Ctrl-C in this terminal later leaves it running
  # (`down` stops it). NO_COLOR: a log file, not a terminal.
  rm -f "$RUN_DIR/$name.comm"
  NO_COLOR=1 setsid "$ARENA_BIN" --listen "$HOST:$port" --cluster "redis://$HOST:$REDIS_PORT" \
    --node-name "$name" --public-url "ws://$HOST:$port/" --allowed-origins "$ORIGINS" "${NODE_FLAGS[@]}" \
    >"$RUN_DIR/$name.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$RUN_DIR/$name.pid"
  echo "$port" >"$RUN_DIR/$name.port"
  STARTED+=("$name:$pid:$port")
}

# The recorded nodes, n1 n2 ..., in order.
recorded_nodes() {
  local file
  for file in "$RUN_DIR"/n*.pid; do
    [ -e "$file" ] || continue
    file=${file##*/}
    echo "${file%.pid}"
  done | sort -V
}

# Sends SIGINT to each named process that runs, waits up to STOP_SECS for all of them, then
# SIGKILLs what is left. Arguments: `name:comm` pairs.
stop_all() {
  local entry name comm pid i waited=0 left
  local -a pids=() names=() comms=()
  for entry in "$@"; do
    name=${entry%%:*} comm=${entry#*:}
    pid=$(live_pid "$name" "$comm")
    if [ -n "$pid" ]; then
      kill -INT "$pid" 2>/dev/null || true
      comm=$(cat "/proc/$pid/comm" 2>/dev/null || echo "$comm")
      pids+=("$pid") names+=("$name") comms+=("$comm")
    fi
    rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.port" "$RUN_DIR/$name.comm"
  done
  [ "${#pids[@]}" -gt 0 ] || return 0
  while :; do
    left=0
    for i in "${!pids[@]}"; do
      if is_ours "${pids[$i]}" "${comms[$i]}"; then left=$((left + 1)); fi
    done
    [ "$left" -eq 0 ] && break
    if [ "$waited" -ge $((STOP_SECS * 10)) ]; then
      for i in "${!pids[@]}"; do
        if is_ours "${pids[$i]}" "${comms[$i]}"; then
          echo "${names[$i]}: still running ${STOP_SECS}s after SIGINT: SIGKILL"
          kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
      done
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  for i in "${!pids[@]}"; do echo "${names[$i]}: stopped (pid ${pids[$i]})"; done
}

cmd_up() {
  local count=3
  if [ $# -gt 0 ] && [ "$1" != -- ]; then
    is_count "$1" || die "up takes a node count, not \`$1\`"
    count=$1
    shift
  fi
  if [ $# -gt 0 ]; then
    [ "$1" = -- ] || die "unexpected \`$1\` (node flags go after \`--\`)"
    shift
  fi
  NODE_FLAGS=("$@")
  [ "$count" -le "$MAX_NODES" ] || die "at most $MAX_NODES nodes"
  if ! is_count "$REDIS_PORT" || [ "$REDIS_PORT" -gt 65535 ]; then
    die "bad TICKSOCK_REDIS_PORT $REDIS_PORT"
  fi
  if ! is_count "$BASE_PORT" || [ $((BASE_PORT + count - 1)) -gt 65535 ]; then
    die "bad TICKSOCK_CLUSTER_BASE_PORT $BASE_PORT"
  fi

  ensure_redis_installed
  ensure_arena_built
  mkdir -p "$RUN_DIR"

  # Nodes beyond the count asked for, from an earlier `up` with more.
  local name extra=()
  for name in $(recorded_nodes); do
    if [ "${name#n}" -gt "$count" ]; then extra+=("$name:ticksock-arena"); fi
  done
  if [ "${#extra[@]}" -gt 0 ]; then stop_all "${extra[@]}"; fi

  start_redis
  STARTED=()
  local i entry pid port
  # Every node accepts the pages of every node: a demo page on one node that follows a
  # redirect to another connects there with its own origin (--allowed-origins, PROTOCOL.md 1.2).
  ORIGINS=self
  for i in $(seq "$count"); do ORIGINS="$ORIGINS,http://$HOST:$((BASE_PORT + i - 1))"; done
  for i in $(seq "$count"); do start_node "$i"; done
  for entry in "${STARTED[@]}"; do
    IFS=: read -r name pid port <<<"$entry"
    wait_listening "$name" "$pid" "$port"
    echo "$name: started (pid $pid, port $port)"
  done

  local urls=() sim_urls=""
  for i in $(seq "$count"); do
    port=$(cat "$RUN_DIR/n$i.port")
    urls+=("ws://$HOST:$port/")
    sim_urls+=" --url ws://$HOST:$port/"
  done
  echo
  echo "cluster of $count node(s) over redis://$HOST:$REDIS_PORT (logs in $RUN_DIR):"
  for i in $(seq "$count"); do
    port=$(cat "$RUN_DIR/n$i.port")
    echo "  n$i  ${urls[$((i - 1))]}  demo page http://$HOST:$port/  metrics http://$HOST:$port/metrics"
  done
  echo
  echo "bots spread over the nodes, whispering across them:"
  echo "  cargo run --release -p client-sim --${sim_urls} --scenario whisper --bots 300 --duration 30"
  echo "stop it all: $0 down"
}

cmd_status() {
  local pid port running=0 stopped=0 name text open
  pid=$(live_pid redis redis-server)
  if [ -n "$pid" ]; then
    echo "redis: runs (pid $pid, redis://$HOST:$(cat "$RUN_DIR/redis.port"))"
    running=$((running + 1))
  elif [ -e "$RUN_DIR/redis.pid" ]; then
    echo "redis: NOT running (it died; log: $RUN_DIR/redis.log)"
    stopped=$((stopped + 1))
  fi
  for name in $(recorded_nodes); do
    pid=$(live_pid "$name" ticksock-arena)
    port=$(cat "$RUN_DIR/$name.port" 2>/dev/null || echo "?")
    if [ -n "$pid" ]; then
      text=$(metrics_of "$port")
      open=$(metric_in "$text" ticksock_connections_open)
      # The count includes the request that read it.
      if [[ $open =~ ^[0-9]+$ ]]; then open=$((open - 1)); fi
      echo "$name: runs (pid $pid, ws://$HOST:$port/): redis_up $(metric_in "$text" ticksock_cluster_redis_up)," \
        "other connections $open," \
        "cross-node messages out $(metric_in "$text" ticksock_cluster_messages_out_total)" \
        "in $(metric_in "$text" ticksock_cluster_messages_in_total)"
      running=$((running + 1))
    else
      echo "$name: NOT running (it died; log: $RUN_DIR/$name.log)"
      stopped=$((stopped + 1))
    fi
  done
  if [ $((running + stopped)) -eq 0 ]; then
    echo "nothing runs (scripts/cluster.sh up starts a cluster)"
    return 3
  fi
  # Like an init script: 0 when everything started runs, 1 when some of it died.
  [ "$stopped" -eq 0 ] || return 1
}

cmd_down() {
  [ -d "$RUN_DIR" ] || { echo "nothing runs"; return 0; }
  local name nodes=()
  for name in $(recorded_nodes); do nodes+=("$name:ticksock-arena"); done
  # The nodes first, while Redis still takes their goodbyes.
  if [ "${#nodes[@]}" -gt 0 ]; then stop_all "${nodes[@]}"; fi
  stop_all redis:redis-server
  echo "down (logs kept in $RUN_DIR)"
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
  up) cmd_up "$@" ;;
  status) [ $# -eq 0 ] || usage; cmd_status ;;
  down) [ $# -eq 0 ] || usage; cmd_down ;;
  *) usage ;;
esac
