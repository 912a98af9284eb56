#!/usr/bin/env bash
# Cross-node whisper delivery: the same client-sim whisper run against one node and against a
# three-node cluster over Redis, alternating, so both see the same machine (issue 15).
#
#   benches/cluster/whisper_compare.sh [BOTS] [SECONDS] [ROUNDS]
#
# One node: a plain `ticksock-arena` (no Redis), its URL given three times, so the bots and their
# pairing are the same as in the cluster run. Three nodes: redis-server and `ticksock-arena
# --cluster`, the bots spread over the three URLs so that every whisper crosses nodes.
# 20 bots per URL join `lobby` (60 in all: within one node's 64, so both runs are alike).
# Prints each run's whisper rows; the JSON reports stay in target/cluster-bench/.
set -euo pipefail
cd "$(dirname "$0")/../.."
BOTS=${1:-2000}
SECS=${2:-20}
ROUNDS=${3:-2}
TARGET=$(realpath "${CARGO_TARGET_DIR:-target}")
OUT="$TARGET/cluster-bench"
mkdir -p "$OUT"
command -v redis-server >/dev/null || { echo "redis-server is missing (apt-get install redis-server)"; exit 1; }
cargo build --release -q -p ticksock-arena -p client-sim
ARENA="$TARGET/release/ticksock-arena"
SIM="$TARGET/release/client-sim"
REDIS_PORT=6479
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; PIDS=(); }
trap stop_all EXIT
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing on $1"; exit 1; }

run() { # label, urls...
  local label=$1; shift
  local args=()
  for u in "$@"; do args+=(--url "$u"); done
  echo "== $label"
  "$SIM" "${args[@]}" --scenario whisper --room-size 20 --bots "$BOTS" --duration "$SECS" --json "$OUT/$label.json" \
    | grep -E "whisper|bots started on|calls/s" || true
}

for round in $(seq "$ROUNDS"); do
  "$ARENA" --listen 127.0.0.1:9151 > "$OUT/single.log" 2>&1 & PIDS+=($!)
  wait_port 9151
  run "one-node-$round" ws://127.0.0.1:9151/ ws://127.0.0.1:9151/ ws://127.0.0.1:9151/
  stop_all

  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no > "$OUT/redis.log" 2>&1 & PIDS+=($!)
  wait_port "$REDIS_PORT"
  for n in 1 2 3; do
    "$ARENA" --listen "127.0.0.1:916$n" --cluster "redis://127.0.0.1:$REDIS_PORT" --node-name "n$n" > "$OUT/n$n.log" 2>&1 & PIDS+=($!)
  done
  for n in 1 2 3; do wait_port "916$n"; done
  run "three-nodes-$round" ws://127.0.0.1:9161/ ws://127.0.0.1:9162/ ws://127.0.0.1:9163/
  for n in 1 2 3; do
    curl -s "http://127.0.0.1:916$n/metrics" | grep -E "^ticksock_cluster_(messages_in|messages_out|lost|duplicates|dropped)_total" | sed "s/^/n$n /"
  done
  stop_all
done
