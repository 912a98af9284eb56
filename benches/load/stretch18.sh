#!/usr/bin/env bash
# Issue 18's before-and-after figures from one stretch: another build's server (BASE, e.g. a
# worktree at the commit before the work) against this checkout's, alternating case by case,
# with this checkout's generators for both (so only the server differs).
#
#   benches/load/stretch18.sh BASE_SERVER_BIN
#
# In order: idle memory (S3: 5000 idle bots), CPU per call in window mode (ws_echo_load
# 1000 x 8 in flight, `--echo` and the `echo` route), client-sim's echo scenario (1000 x 8),
# the game sweep (1000 ... 5000 bots, 20 moves/s, 30 Hz state; and this build again with
# `--state-every 2`, a 15 Hz state), and the loopback floor. Raw files and summaries in
# target/stretch18/; the summaries also go to stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
base=$(realpath "${1:?usage: stretch18.sh BASE_SERVER_BIN}")
cargo build --release -q -p ticksock-arena -p client-sim -p benches \
  --bin ticksock-arena --bin client-sim --bin ws_echo_load --bin loopback_floor
new=$(realpath target/release/ticksock-arena)
sim=$(realpath target/release/client-sim)
out=target/stretch18
mkdir -p "$out"
stamp() { echo "## $*, $(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg)"; }
pair() { # pair CASE-FUNCTION: runs it for base then new, or new then base on odd rounds
  local round=$1; shift
  if [ $((round % 2)) = 1 ]; then "$@" base "$base"; "$@" new "$new"; else "$@" new "$new"; "$@" base "$base"; fi
}
idle() { stamp "idle $1"; SERVER=$2 SIM=$sim OUT=$out TAG=".$1.$round" benches/load/targets.sh idle; }
window() {
  stamp "window --echo $1"; SERVER=$2 WINDOW=8 benches/load/echo_rate.sh 1000 0 10 | tail -4
  stamp "window --protocol $1"; SERVER=$2 WINDOW=8 benches/load/echo_rate.sh --protocol 1000 0 10 | tail -4
}
simecho() { stamp "client-sim echo $1"; SERVER=$2 SIM=$sim OUT=$out TAG=".$1.$round" benches/load/targets.sh echo; }
game() { stamp "game $n $1"; SERVER=$2 SIM=$sim OUT=$out TAG=".$1" SWEEP_BOTS=$n benches/load/targets.sh sweep; }
{
  for round in 1 2; do pair "$round" idle; done
  for round in 1 2; do pair "$round" window; done
  round=1; pair 1 simecho
  for n in 1000 2000 3000 4000 5000; do
    pair "$n" game
    stamp "game $n new --state-every 2"
    SERVER=$new SIM=$sim OUT=$out TAG=".new-every2" SWEEP_BOTS=$n SERVER_ARGS="--state-every 2" benches/load/targets.sh sweep
  done
  stamp "loopback floor"; target/release/loopback_floor 5000 20 10
} 2>&1 | tee "$out/summary.$(date +%H%M%S).txt"
