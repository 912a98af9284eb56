#!/usr/bin/env bash
# `server --echo` against the protocol's `echo` route under the same generator (ws_echo_load),
# alternating the two in one stretch, so that whatever else the machine does falls on both.
#
#   benches/load/echo_ab.sh RUNS CONNECTIONS RATE SECONDS [server flags...]
#   benches/load/echo_ab.sh 4 5000 5 10            # issue 18 item 6: light load
#   WINDOW=8 benches/load/echo_ab.sh 4 1000 0 10   # item 2: CPU per call, 8 in flight each
#   MODES="proto sim" benches/load/echo_ab.sh 4 5000 5 10   # two generators, one server path
#
# MODES names the two modes (default "echo proto"): echo (`--echo`, ws_echo_load), proto (the
# `echo` route, ws_echo_load --protocol), sim (the `echo` route, client-sim's echo scenario).
# Runs echo_rate.sh RUNS times in each mode, in the order A B B A A B ... (so neither mode
# always goes first), keeps each run's output in target/echo_ab/, and prints one table row per
# run (echo_ab.py): round trips from the send and from the due time, the generator's lag and
# CPU, the server's CPU and its CPU per call. Server flags go to both modes. Each run holds
# /tmp/bench.lock, so that benchmarks of other checkouts on the machine wait for it.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 4 ] || { sed -n 2,17p "$0"; exit 2; }
runs=$1 conns=$2 rate=$3 seconds=$4; shift 4
out=target/echo_ab
mkdir -p "$out"
read -r a b <<< "${MODES:-echo proto}"
tag="${conns}x${rate}.$(date +%H%M%S)"
files=()
for i in $(seq "$runs"); do
  if [ $((i % 2)) = 1 ]; then order=("$a" "$b"); else order=("$b" "$a"); fi
  for mode in "${order[@]}"; do
    file="$out/$tag.$i.$mode.txt"
    case "$mode" in
      echo) flag=() ;;
      proto) flag=(--protocol) ;;
      sim) flag=(--client-sim) ;;
      *) echo "unknown mode $mode (echo, proto or sim)" >&2; exit 2 ;;
    esac
    { echo "mode $mode, run $i, $(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg)"
      flock /tmp/bench.lock benches/load/echo_rate.sh "${flag[@]}" "$conns" "$rate" "$seconds" "$@" 2>&1 || echo "exit status $?"; } > "$file"
    files+=("$file")
  done
done
python3 benches/load/echo_ab.py "${files[@]}"
