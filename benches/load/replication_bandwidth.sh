#!/usr/bin/env bash
# Issue 17's bandwidth table: the arena at the same load with today's full-state pushes (F)
# and with state by replication (R), alternating F R F R in one stretch, for each bot count.
# Rooms of 500 players (`--room-capacity 500`, client-sim `--room-size 500`), every bot moving
# RATE times a second (the default 20: a new direction each time) and chatting every 10 s.
#
#   benches/load/replication_bandwidth.sh [ROUNDS] [SECONDS] [BOTS...]
#       default: 2 rounds, 60 s steady each, 2000 and 5000 bots
#
# In R the bots only follow their updates (`--mirror-share 0`: each reads its update's tick and
# acknowledges it as a mirroring client does), so the simulator's CPU goes to the traffic, not
# to rebuilding views; the server sends them what it sends mirroring clients. Mode C checks the
# views themselves: the server keeps digests (`--replica-digests`), a share SHARE of the bots
# (default 1) rebuild their view and compare it with the server's every second, and every bot
# loses its link every LOSS seconds on average (default 20) and joins again.
#
# Environment: RATE (20), MAX_LOAD (1.5: before each run, wait until the 1-minute load
# average is below it), MODES ("F R"; W adds replication with the whole arena in view,
# `--aoi-radius 10`, which separates what deltas save from what interest saves; C is the
# check above), SHARE and LOSS (mode C),
# SERVER_ARGS and SIM_ARGS (extra flags, split on spaces).
#
# Raw files land in target/load/replication/: per run the `uptime` line before it, the
# simulator's table and JSON, the server's threads' CPU before and after, its /metrics at the
# end. The summary is one Markdown row per run.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2} seconds=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
counts=("$@")
[ ${#counts[@]} -eq 0 ] && counts=(2000 5000)
RATE=${RATE:-20} MAX_LOAD=${MAX_LOAD:-1.5} MODES=${MODES:-"F R"}
OUT=target/load/replication
mkdir -p "$OUT"
cargo build --release -q -p ticksock-arena -p client-sim
SERVER=target/release/ticksock-arena
SIM=target/release/client-sim
spid=
cleanup() { [ -n "$spid" ] && kill -INT "$spid" 2>/dev/null && wait "$spid" 2>/dev/null; true; }
trap cleanup EXIT

# threads, free_port, wait_for_quiet.
. benches/load/load_lib.sh

# run NAME BOTS MODE
run() {
  local name=$1 bots=$2 mode=$3
  local server_flags=(--room-capacity 500) sim_flags=(--room-size 500)
  case "$mode" in
    F) ;;
    R) server_flags+=(--replication); sim_flags+=(--replication --mirror-share 0) ;;
    W) server_flags+=(--replication --aoi-radius 10); sim_flags+=(--replication --mirror-share 0) ;;
    C) server_flags+=(--replication --replica-digests)
       sim_flags+=(--replication --mirror-share "${SHARE:-1}" --link-loss-every "${LOSS:-20}") ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
  esac
  wait_for_quiet | tee "$OUT/$name.uptime"
  local port; port=$(free_port)
  # shellcheck disable=SC2086 # SERVER_ARGS is a list of extra flags, split on purpose.
  "$SERVER" --listen "127.0.0.1:$port" "${server_flags[@]}" ${SERVER_ARGS:-} > "$OUT/$name.server.log" 2>&1 &
  spid=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  threads > "$OUT/$name.cpu0"; local t0; t0=$(date +%s.%N)
  local rc=0
  # shellcheck disable=SC2086 # SIM_ARGS likewise.
  "$SIM" --url "ws://127.0.0.1:$port/" --bots "$bots" --rate "$RATE" --duration "$seconds" \
    "${sim_flags[@]}" --quiet --json "$OUT/$name.json" ${SIM_ARGS:-} > "$OUT/$name.txt" 2>&1 || rc=$?
  threads > "$OUT/$name.cpu1"; echo "$t0 $(date +%s.%N)" > "$OUT/$name.wall"
  curl -s "http://127.0.0.1:$port/metrics" > "$OUT/$name.metrics" || true
  kill -INT "$spid"; wait "$spid" || true; spid=
  echo "$name: client-sim exit status $rc" | tee -a "$OUT/$name.txt"
}

names=()
for bots in "${counts[@]}"; do
  for r in $(seq "$rounds"); do
    for mode in $MODES; do
      run "$mode$bots-$r" "$bots" "$mode"; names+=("$mode$bots-$r")
    done
  done
done

python3 benches/load/replication_summary.py "$OUT" "${names[@]}"
