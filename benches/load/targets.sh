#!/usr/bin/env bash
# Measures issue 5's load targets with client-sim against the release server, one case at a
# time, on this machine: prints one summary block per case and keeps the raw outputs.
#
#   benches/load/targets.sh [case...]     cases: idle echo game sweep   (default: all)
#
# Environment: SERVER_ARGS adds flags to every server (e.g. "--logic-priority raised");
# SWEEP_BOTS sets the sweep's bot counts (default "1000 1500 2000 2500 3000"); SERVER and SIM
# name other binaries (another build's, to compare: nothing is built then); OUT the directory
# for the raw files (default target/load); TAG a suffix for the cases' names; SIM_ARGS adds
# flags to every client-sim (e.g. "--threads 2").
#
# Each case starts a fresh server on a free port, runs client-sim, reads the server's CPU
# time per thread from /proc, scrapes GET /metrics, stops the server, and summarises with
# benches/load/summarise.py. Raw files land in target/load/. Run it on an otherwise idle
# machine: the server and the simulator share the two cores, which is the point.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-target/load}
mkdir -p "$OUT"
if [ -z "${SERVER:-}${SIM:-}" ]; then
  cargo build --release -q -p ticksock-arena -p client-sim
fi
SERVER=${SERVER:-target/release/ticksock-arena}
SIM=${SIM:-target/release/client-sim}
TAG=${TAG:-}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run_case NAME [server args...] -- [client-sim args...]
run_case() {
  local name=$1$TAG; shift
  local sargs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do sargs+=("$1"); shift; done
  shift
  local port; port=$(free_port)
  # shellcheck disable=SC2086 # SERVER_ARGS is a list of extra flags, split on purpose.
  "$SERVER" --listen "127.0.0.1:$port" --db "$OUT/$name.db" "${sargs[@]}" ${SERVER_ARGS:-} > "$OUT/$name.server.log" 2>&1 &
  local spid=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  local t0 c0; t0=$(date +%s.%N)
  for t in /proc/$spid/task/*; do echo "$(cat "$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done > "$OUT/$name.cpu0"
  local rc=0
  # shellcheck disable=SC2086 # SIM_ARGS is a list of extra flags, split on purpose.
  "$SIM" --url "ws://127.0.0.1:$port/" --quiet --json "$OUT/$name.sim.json" --server-pid "$spid" "$@" ${SIM_ARGS:-} \
    > "$OUT/$name.sim.txt" 2>&1 || rc=$?
  local t1; t1=$(date +%s.%N)
  for t in /proc/$spid/task/*; do echo "$(cat "$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done > "$OUT/$name.cpu1"
  curl -s "http://127.0.0.1:$port/metrics" > "$OUT/$name.metrics"
  kill -INT "$spid"; wait "$spid" || true
  python3 benches/load/summarise.py "$name" "$OUT" "$(echo "$t1 - $t0" | bc -l)" "$rc"
}

cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(idle echo game sweep)
for c in "${cases[@]}"; do
  case "$c" in
    idle) run_case idle -- --scenario idle --bots 5000 --duration 5 --ramp 2500 ;;
    # Target 2: 1000 bots x 8 calls in flight, 32-byte bodies; the per-connection rate limit
    # (1000 messages/s by default) is lifted, since each bot sends as fast as it is answered.
    echo) run_case echo --rate-messages-per-sec 1000000 -- --scenario echo --bots 1000 --window 8 \
            --body-bytes 32 --duration 10 --ramp 2000 ;;
    # Targets 3 and 4: 5000 bots x 20 moves/s in rooms of 50, 30 Hz state pushes.
    game) run_case game -- --bots 5000 --rate 20 --duration 15 --ramp 2500 ;;
    # The same game at rising bot counts: where the round-trip p99 passes 10 ms.
    sweep) for n in ${SWEEP_BOTS:-1000 1500 2000 2500 3000}; do
             run_case "game-$n" -- --bots "$n" --rate 20 --duration 10 --ramp 2500
           done ;;
    *) echo "unknown case $c" >&2; exit 2 ;;
  esac
done
