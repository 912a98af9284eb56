#!/usr/bin/env bash
# `server --echo` (or, with --protocol, the arena's `echo` route) under ws_echo_load: one
# generator for both server paths, at a fixed rate or with a window in flight.
#
#   benches/load/echo_rate.sh [--protocol|--client-sim] CONNECTIONS RATE SECONDS [server flags...]
#   benches/load/echo_rate.sh 5000 20 10               # the issue's 5000 conns x 20 calls/s, --echo
#   benches/load/echo_rate.sh --protocol 5000 5 10     # the same generator through the protocol
#   benches/load/echo_rate.sh --client-sim 5000 5 10   # the protocol path, client-sim's echo scenario
#   WINDOW=8 benches/load/echo_rate.sh 1000 0 10       # RATE 0: 8 in flight on each, throughput
#   GENERATOR_WRAP="chrt -f 1" benches/load/echo_rate.sh 5000 5 10   # the generator under a command
#   SERVER_WRAP="chrt -f 1" ...                        # the server under one (all its threads)
#   SERVER=../base/target/release/ticksock-arena ...   # another build's server, same generator
#
# Starts a fresh release server on a free port (`--echo`, or the game with its rate limit
# lifted for --protocol), runs ws_echo_load (RATE 32-byte messages a second on each
# connection, at most WINDOW in flight, 64 by default), and prints the generator's round trips
# and CPU (/usr/bin/time) and the server's CPU per thread over the measured seconds (from
# /proc, once every connection is up). With --client-sim the generator is client-sim's echo
# scenario instead (`--echo-rate RATE`, or `--window WINDOW` for RATE 0), its figures printed
# in ws_echo_load's words (its steady window; its timers' lateness as the send lag; it has no
# round trip from the due time). echo_ab.sh alternates two of these modes and sums them up.
set -euo pipefail
cd "$(dirname "$0")/../.."
source benches/load/load_lib.sh
protocol=() sim=
case "${1:-}" in
  --protocol) protocol=(--protocol); shift ;;
  --client-sim) protocol=(--protocol) sim=1; shift ;;
esac
[ $# -ge 3 ] || { sed -n 2,22p "$0"; exit 2; }
conns=$1 rate=$2 seconds=$3; shift 3
window=${WINDOW:-64}
cargo build --release -q -p ticksock-arena -p benches -p client-sim --bin ticksock-arena --bin ws_echo_load --bin client-sim
port=$(free_port)
if [ ${#protocol[@]} -gt 0 ]; then mode=(--rate-messages-per-sec 1000000); else mode=(--echo); fi
${SERVER_WRAP:-} "${SERVER:-target/release/ticksock-arena}" "${mode[@]}" --listen "127.0.0.1:$port" "$@" > target/echo_rate.server.log 2>&1 &
spid=$!
trap 'kill -INT $spid 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
# GENERATOR_WRAP (unquoted: a command and its arguments) runs the generator under, say,
# `chrt -f 1`, so that other work on the machine does not delay its timer and reads.
rm -f target/echo_rate.sim.json
generator=(target/release/ws_echo_load "${protocol[@]}" "127.0.0.1:$port" "$conns" "$window" "$seconds" 32 "$rate")
if [ -n "$sim" ]; then
  if [ "$rate" = 0 ]; then load=(--window "$window"); else load=(--echo-rate "$rate"); fi
  # Every bot within a second (as ws_echo_load connects them), and the same body.
  generator=(target/release/client-sim --url "ws://127.0.0.1:$port/" --scenario echo --bots "$conns"
    "${load[@]}" --body-bytes 32 --duration "$seconds" --ramp 5000 --quiet --json target/echo_rate.sim.json)
fi
/usr/bin/time -f "generator CPU: user %U s, system %S s, over %e s (connecting included)" \
  ${GENERATOR_WRAP:-} "${generator[@]}" > target/echo_rate.gen.txt &
gpid=$!
# Measure from when every connection is up: established on the server's port (a count of
# the server's descriptors would include the probe connection above while it closes).
# If the generator ends first (it could not connect), stop waiting and report its failure.
established() { ss -Htn state established "( sport = :$port )" | wc -l; }
while kill -0 $gpid 2>/dev/null && [ "$(established)" -lt "$conns" ]; do sleep 0.05; done
threads > target/echo_rate.cpu0; t0=$(date +%s.%N)
rc=0; wait $gpid || rc=$?
threads > target/echo_rate.cpu1; t1=$(date +%s.%N)
if [ -n "$sim" ]; then
  [ -s target/echo_rate.sim.json ] && python3 - target/echo_rate.sim.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
w, c = r["steady"], r["counters"]
ms = lambda q: ", ".join(f"{k} {q[v] / 1000:.3f}" for k, v in
                         [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p999"), ("max", "max")])
answers = round(w["answers_per_sec"] * w["secs"])
print(f"{r['bots']} bots (client-sim), echo: {answers} echoes in {w['secs']:.2f} s = "
      f"{w['answers_per_sec']:.0f} echoes/s, {c['echo_mismatches']} mismatches, {r['errors']} errors")
print(f"round trip ms: {ms(r['rtt_steady_us'])}")
if r["timer_late_us"]["count"]:
    print(f"send behind its due time ms: {ms(r['timer_late_us'])}")
PY
else
  cat target/echo_rate.gen.txt
fi
paste target/echo_rate.cpu0 target/echo_rate.cpu1 | awk -v dt="$(echo "$t1 - $t0" | bc -l)" '
  { d = $4 - $2; total += d; parts = parts sprintf("%s %.2f s, ", $1, d / 100) }
  END { printf "server CPU: %s= %.1f%% of one core over %.1f s\n", parts, total / dt, dt }'
exit $rc
