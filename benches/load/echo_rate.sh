#!/usr/bin/env bash
# `server --echo` under a plain WebSocket generator at a fixed rate: the issue's
# "5000 conns x 20 calls/s" column, as a generic generator would measure it.
#
#   benches/load/echo_rate.sh CONNECTIONS RATE SECONDS [server flags...]
#   benches/load/echo_rate.sh 5000 20 10
#
# Starts a fresh release server in echo mode on a free port, runs ws_echo_load (RATE 32-byte
# messages a second on each connection, at most 64 in flight), and prints the generator's
# round trips and CPU (/usr/bin/time) and the server's CPU per thread over the measured
# seconds (from /proc, once every connection is up).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 3 ] || { sed -n 2,9p "$0"; exit 2; }
conns=$1 rate=$2 seconds=$3; shift 3
cargo build --release -q -p ticksock-arena -p benches --bin ticksock-arena --bin ws_echo_load
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/release/ticksock-arena --echo --listen "127.0.0.1:$port" "$@" > target/echo_rate.server.log 2>&1 &
spid=$!
trap 'kill -INT $spid 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
threads() { for t in /proc/$spid/task/*; do echo "$(cat "$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done; }
/usr/bin/time -f "generator CPU: user %U s, system %S s, over %e s (connecting included)" \
  target/release/ws_echo_load "127.0.0.1:$port" "$conns" 64 "$seconds" 32 "$rate" &
gpid=$!
# Measure from when every connection is up (the listener and a few descriptors besides).
# If the generator ends first (it could not connect), stop waiting and report its failure.
while kill -0 $gpid 2>/dev/null && [ "$(ls "/proc/$spid/fd" | wc -l)" -lt $((conns + 5)) ]; do sleep 0.05; done
threads > target/echo_rate.cpu0; t0=$(date +%s.%N)
rc=0; wait $gpid || rc=$?
threads > target/echo_rate.cpu1; t1=$(date +%s.%N)
paste target/echo_rate.cpu0 target/echo_rate.cpu1 | awk -v dt="$(echo "$t1 - $t0" | bc -l)" '
  { d = $4 - $2; total += d; parts = parts sprintf("%s %.2f s, ", $1, d / 100) }
  END { printf "server CPU: %s= %.1f%% of one core over %.1f s\n", parts, total / dt, dt }'
exit $rc
