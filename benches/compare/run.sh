#!/usr/bin/env bash
# The issue's comparison table, measured on this machine in one run with one generator: each
# server echoes 32-byte binary messages and is measured three ways, on a fresh process each.
#
#   benches/compare/run.sh [server...]    servers: ticksock naive-mio tokio node-ws (default: all)
#
# 1. idle: RSS growth per connection with 5000 idle connections, each after its handshake and
#    one echo (benches/load/echo_idle.py);
# 2. window: 1000 connections x 8 messages in flight for 10 s (ws_echo_load): server CPU per echo;
# 3. rate: 5000 connections x 20 messages/s for 10 s (ws_echo_load rate mode): round trip
#    p50/p99 from each send, p99 from when each message was due (the generator's own lag
#    included), and the server's CPU.
# Server CPU is utime + stime of the whole process from /proc, over the measured seconds only
# (from when every connection is up). Socket.IO is left out: it needs its own client protocol.
# Needs cargo, node and npm; the first run builds the comparison servers (tokio, ~1 min) and
# installs `ws` with npm.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=target/compare
mkdir -p "$out"
cargo build --release -q -p ticksock-arena -p benches --bin ticksock-arena --bin ws_echo_load
(cd benches/compare/rust && cargo build --release -q)
(cd benches/compare/node && npm install --silent --no-audit --no-fund)
gen=target/release/ws_echo_load

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
fds() { ls "/proc/$1/fd" | wc -l; }

# start NAME PORT: starts the server NAME on PORT in the background; prints its pid.
start() {
  case "$1" in
    ticksock) "$root/target/release/ticksock-arena" --echo --listen "127.0.0.1:$2" > "$out/$1.log" 2>&1 & ;;
    naive-mio) "$root/benches/compare/rust/target/release/naive_mio_echo" "127.0.0.1:$2" > "$out/$1.log" 2>&1 & ;;
    tokio) "$root/benches/compare/rust/target/release/tokio_echo" "127.0.0.1:$2" > "$out/$1.log" 2>&1 & ;;
    node-ws) node "$root/benches/compare/node/echo.js" "$2" > "$out/$1.log" 2>&1 & ;;
    *) echo "unknown server $1" >&2; exit 2 ;;
  esac
  local pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  echo "$pid"
}

# load NAME CONNECTIONS GENERATOR_ARGS...: runs the generator against a fresh server and
# prints "<generator output> | cpu_seconds measured_seconds".
load() {
  local name=$1 conns=$2; shift 2
  local port pid; port=$(free_port); pid=$(start "$name" "$port")
  local base; base=$(fds "$pid")
  "$gen" "127.0.0.1:$port" "$conns" "$@" > "$out/$name.$conns.gen" 2>&1 &
  local gpid=$!
  while [ "$(fds "$pid")" -lt $((base + conns)) ] && kill -0 $gpid 2>/dev/null; do sleep 0.05; done
  local c0 t0; c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
  wait $gpid || true
  local c1 t1; c1=$(cpu_ticks "$pid"); t1=$(date +%s.%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$(tr '\n' ' ' < "$out/$name.$conns.gen")| $(echo "($c1 - $c0) / 100" | bc -l) $(echo "$t1 - $t0" | bc -l)"
}

servers=("$@")
[ ${#servers[@]} -eq 0 ] && servers=(ticksock naive-mio tokio node-ws)
echo "| server | idle RSS per connection | 1000 x 8 in flight: echoes/s, server CPU per echo | 5000 x 20/s: round trip p50 / p99 (p99 from due), server CPU |"
echo "|---|---|---|---|"
for name in "${servers[@]}"; do
  port=$(free_port); pid=$(start "$name" "$port")
  idle=$(python3 benches/load/echo_idle.py "$port" 5000 "$pid" | grep -o '[0-9.]* KiB per connection')
  kill "$pid"; wait "$pid" 2>/dev/null || true

  window=$(load "$name" 1000 8 10 32)
  echoes=$(echo "$window" | grep -o '[0-9]* echoes in' | cut -d' ' -f1)
  rate_w=$(echo "$window" | grep -o '= [0-9]* echoes/s' | cut -d' ' -f2)
  read -r cpu_w _ <<< "${window##*| }"
  per_echo=$(echo "$cpu_w * 1000000 / $echoes" | bc -l)

  paced=$(load "$name" 5000 64 10 32 20)
  sent_line=$(grep '^round trip ms' "$out/$name.5000.gen")
  due_line=$(grep '^round trip from due' "$out/$name.5000.gen")
  p50=$(echo "$sent_line" | grep -o 'p50 [0-9.]*' | cut -d' ' -f2)
  p99=$(echo "$sent_line" | grep -o 'p99 [0-9.]*' | cut -d' ' -f2)
  p99_due=$(echo "$due_line" | grep -o 'p99 [0-9.]*' | cut -d' ' -f2)
  read -r cpu_r secs_r <<< "${paced##*| }"
  share=$(echo "$cpu_r * 100 / $secs_r" | bc -l)
  printf '| %s | %s | %s/s, %.2f us | %s / %s (%s) ms, %.0f %% of a core |\n' \
    "$name" "$idle" "$rate_w" "$per_echo" "$p50" "$p99" "$p99_due" "$share"
done
