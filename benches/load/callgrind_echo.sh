#!/usr/bin/env bash
# User-space instructions per echo of a server under callgrind: stable whatever else the
# machine does, so two builds can be compared across minutes and days (see
# ../shared/perf/README.md for the reference figures and docs/BENCHMARKS.md for ours).
#
#   benches/load/callgrind_echo.sh MODE [SERVER_BIN]
#     MODE echo:  SERVER_BIN --echo,   driven by ws_echo_load ADDR 100 8 10 32
#     MODE proto: SERVER_BIN (the arena's `echo` route, rate limit lifted), driven by
#                 client-sim --scenario echo --bots 100 --window 8 --duration 10
#     MODE proto-ws: the same server, driven by ws_echo_load --protocol ADDR 100 8 10 32 (the
#                 generator of MODE echo, so the two paths differ by the server alone)
#   SERVER_BIN defaults to target/release/ticksock-arena; the generators are this checkout's.
#
# Prints the instruction count, the calls answered, and their ratio. Raw files in
# target/callgrind/. Under valgrind the server runs one thread at a time, so its throughput
# means nothing; only the instructions per call do.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:?usage: callgrind_echo.sh echo|proto|proto-ws [SERVER_BIN]}
bin=${2:-target/release/ticksock-arena}
command -v valgrind > /dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
cargo build --release -q -p ticksock-arena -p client-sim -p benches --bin ticksock-arena --bin client-sim --bin ws_echo_load
out=target/callgrind
mkdir -p "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
args=(--listen "127.0.0.1:$port")
case "$mode" in
  echo) args+=(--echo) ;;
  proto|proto-ws) args+=(--rate-messages-per-sec 1000000) ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
valgrind --tool=callgrind --callgrind-out-file="$out/$mode.cg.out" "$bin" "${args[@]}" > "$out/$mode.server.log" 2>&1 &
server=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
if [ "$mode" != proto ]; then
  protocol=(); [ "$mode" = proto-ws ] && protocol=(--protocol)
  target/release/ws_echo_load "${protocol[@]}" "127.0.0.1:$port" 100 8 10 32 > "$out/$mode.load.txt" 2>&1
  calls=$(sed -n 's/.*: \([0-9]*\) echoes in.*/\1/p' "$out/$mode.load.txt")
else
  target/release/client-sim --url "ws://127.0.0.1:$port/" --scenario echo --bots 100 --window 8 \
    --duration 10 --quiet --json "$out/$mode.sim.json" > "$out/$mode.load.txt" 2>&1
  calls=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counters']['replied'])" "$out/$mode.sim.json")
fi
kill -INT "$server"
wait "$server" || true
instructions=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/$mode.server.log")
echo "$mode: $instructions instructions, $calls calls answered, $((instructions / calls)) instructions per call"
