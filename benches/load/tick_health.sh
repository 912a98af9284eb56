#!/usr/bin/env bash
# Issue 16's tick health under persisted writes: the arena (release build, a temporary --db)
# with client-sim's guest bots moving RATE times a second, (A) without writes and (B) with one
# `flush_stats` per bot per second (a write answered once committed), alternating A B A B in
# one stretch. The server's tick lateness comes from its own histograms (client-sim reads
# /metrics at the start and end of the steady window).
#
#   benches/load/tick_health.sh [ROUNDS] [SECONDS]      default: 2 rounds, 60 s steady each
#
# Environment: BOTS (2000), RATE (10 moves/s per bot), PERSIST (1 write/s per bot in B),
# MAX_LOAD (1.5: before each run, wait until the 1-minute load average is below it; other
# builds share this machine), SERVER_ARGS and SIM_ARGS (extra flags, split on spaces).
#
# Each run gets a fresh server on a free port and a fresh database in a temporary directory
# (removed at the end), so that A and B start from the same state. Raw files land in
# target/load/tick_health/: per run the `uptime` line before it, the simulator's table and
# JSON, the server's log and its /metrics at the end. The summary is one Markdown row per run.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2} seconds=${2:-60}
BOTS=${BOTS:-2000} RATE=${RATE:-10} PERSIST=${PERSIST:-1} MAX_LOAD=${MAX_LOAD:-1.5}
OUT=target/load/tick_health
mkdir -p "$OUT"
cargo build --release -q -p ticksock-arena -p client-sim
SERVER=target/release/ticksock-arena
SIM=target/release/client-sim
DB_DIR=$(mktemp -d)
spid=
cleanup() {
  [ -n "$spid" ] && kill -INT "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
  rm -rf "$DB_DIR"
}
trap cleanup EXIT

# threads, free_port, wait_for_quiet.
. benches/load/load_lib.sh

# run NAME PERSIST_PER_SEC
run() {
  local name=$1 persist=$2
  wait_for_quiet | tee "$OUT/$name.uptime"
  local port; port=$(free_port)
  # shellcheck disable=SC2086 # SERVER_ARGS is a list of extra flags, split on purpose.
  "$SERVER" --listen "127.0.0.1:$port" --db "$DB_DIR/$name.db" ${SERVER_ARGS:-} > "$OUT/$name.server.log" 2>&1 &
  spid=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  local persist_flags=()
  [ "$persist" != 0 ] && persist_flags=(--persist-per-sec "$persist")
  threads > "$OUT/$name.cpu0"; local t0; t0=$(date +%s.%N)
  local rc=0
  # shellcheck disable=SC2086 # SIM_ARGS likewise.
  "$SIM" --url "ws://127.0.0.1:$port/" --bots "$BOTS" --rate "$RATE" --duration "$seconds" \
    --accounts guest "${persist_flags[@]}" --quiet --json "$OUT/$name.json" ${SIM_ARGS:-} \
    > "$OUT/$name.txt" 2>&1 || rc=$?
  threads > "$OUT/$name.cpu1"; echo "$t0 $(date +%s.%N)" > "$OUT/$name.wall"
  curl -s "http://127.0.0.1:$port/metrics" > "$OUT/$name.metrics" || true
  kill -INT "$spid"; wait "$spid" || true; spid=
  echo "$name: client-sim exit status $rc" | tee -a "$OUT/$name.txt"
}

names=()
for r in $(seq "$rounds"); do
  run "A$r" 0; names+=("A$r")
  run "B$r" "$PERSIST"; names+=("B$r")
done

python3 - "$OUT" "${names[@]}" <<'EOF'
import json, sys

sys.path.insert(0, "benches/load")
from load_lib import bucket, server_cpu as cpu_of

out, names = sys.argv[1], sys.argv[2:]

def server_cpu(name):
    """logic / reactor / jobs / all, % of one core."""
    c = cpu_of(out, name)
    return " / ".join(f"{c[g]:.0f}" for g in ("logic", "reactor", "jobs", "all"))

def metric(name, key):
    for line in open(f"{out}/{name}.metrics"):
        if line.startswith(key + " "):
            return line.split()[1]
    return "?"

print("| run | load before | errors | ticks / skipped | lateness p50 (ms) | lateness p99 (ms) | lateness mean (ms) | late > 1 ms | duration p99 (ms) | flush_stats committed / failed | flush_stats p50 / p99 (ms) | RTT p99, all calls (ms) | sim timers p99 (ms) | server CPU %: logic / reactor / jobs / all | jobs refused |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for name in names:
    r = json.load(open(f"{out}/{name}.json"))
    load = open(f"{out}/{name}.uptime").read().split("load average:")[1].split(",")[0].strip()
    t = r["server_ticks"]["steady"] or {}
    late = t.get("lateness", {})
    over_1ms = sum(b["count"] for b in late.get("buckets", []) if b["at_most_us"] is None or b["at_most_us"] > 1000)
    p = r.get("persist")
    flush = f"{p['replied']} / {p['failed']}" if p else "-"
    flush_q = f"{p['latency_steady_us']['p50'] / 1000:.2f} / {p['latency_steady_us']['p99'] / 1000:.2f}" if p else "-"
    print(
        f"| {name} | {load} | {r['errors']} | {t.get('ticks', '?')} / {t.get('skipped', '?')} "
        f"| {bucket(late.get('p50'))} | {bucket(late.get('p99'))} | {late.get('mean_us', 0) / 1000:.3f} "
        f"| {over_1ms} | {bucket(t.get('duration', {}).get('p99'))} | {flush} | {flush_q} "
        f"| {r['rtt_steady_us']['p99'] / 1000:.2f} | {r['timer_late_us']['p99'] / 1000:.2f} "
        f"| {server_cpu(name)} | {metric(name, 'ticksock_jobs_refused_total')} |"
    )
EOF
