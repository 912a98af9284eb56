#!/usr/bin/env python3
"""Summarises one case of benches/load/targets.sh: the simulator's report (JSON), the server's
CPU per thread (from /proc, before and after) and its metrics (Prometheus text).

usage: summarise.py NAME OUTDIR WALL_SECS SIM_EXIT
"""
import json
import sys


def metrics(path):
    values, buckets = {}, {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        if "_bucket{" in name:
            base, le = name.split("{le=")
            buckets.setdefault(base, []).append((float(le.strip('"}').replace("+Inf", "inf")), float(value)))
        else:
            values[name] = float(value)
    return values, buckets


def quantile_bound(bucket, q):
    """The upper bound of the histogram bucket holding quantile q (Prometheus buckets)."""
    total = bucket[-1][1]
    if total == 0:
        return None
    for le, count in bucket:
        if count >= q * total:
            return le
    return float("inf")


def cpu(path):
    out = {}
    for line in open(path):
        name, ticks = line.split()
        out[name] = out.get(name, 0) + int(float(ticks))
    return out


def main():
    name, outdir, wall, sim_exit = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    base = f"{outdir}/{name}"
    sim = json.load(open(f"{base}.sim.json"))
    values, buckets = metrics(f"{base}.metrics")
    before, after = cpu(f"{base}.cpu0"), cpu(f"{base}.cpu1")
    threads = {t: (after.get(t, 0) - before.get(t, 0)) / 100 for t in after}
    server_cpu = sum(threads.values())
    handled = values.get("ticksock_requests_handled_total", 0)
    frames_out = values.get("ticksock_frames_out_total", 0)
    writes = values.get("ticksock_write_syscalls_total", 0)
    steady = sim.get("steady", {})
    rtt = sim.get("rtt_steady_us") or sim.get("rtt_us") or {}
    print(f"== {name} (client-sim exit {sim_exit})")
    print(f"  bots {sim.get('bots')} ({sim.get('scenario')}), connected at end {sim.get('connected_at_end')}, "
          f"errors {sim.get('errors')}")
    if steady:
        print(f"  steady: {steady.get('calls_per_sec', 0):.0f} calls/s, {steady.get('answers_per_sec', 0):.0f} "
              f"answers/s, {steady.get('pushes_per_sec', 0):.0f} pushes/s")
    if rtt.get("count"):
        print(f"  round trip (steady) p50 {rtt['p50'] / 1000:.2f} ms, p90 {rtt['p90'] / 1000:.2f} ms, "
              f"p99 {rtt['p99'] / 1000:.2f} ms, p99.9 {rtt['p999'] / 1000:.2f} ms, max {rtt['max'] / 1000:.2f} ms")
    print(f"  simulator CPU (steady): {steady.get('process_cpu_percent', 0):.1f}% of one core")
    print(f"  server CPU: {server_cpu:.2f} s over {wall:.2f} s = {100 * server_cpu / wall:.1f}% of one core ("
          + ", ".join(f"{t} {s:.2f} s" for t, s in sorted(threads.items()) if s > 0) + ")")
    bots = sim.get("bots") or 0
    if bots:
        # CPU per bot-second: the server's over the whole run (ramp and settle included), the
        # simulator's over its steady window.
        print(f"  CPU per bot-second: server {1e6 * server_cpu / (wall * bots):.1f} us, simulator "
              f"{1e6 * steady.get('process_cpu_percent', 0) / 100 / bots:.1f} us")
    if handled:
        print(f"  server CPU per request handled: {1e6 * server_cpu / handled:.2f} us ({handled:.0f} requests)")
        sent = sim.get("sent", 0)
        print(f"  agreement: simulator sent {sent}, answered {sim['counters']['replied']}, in flight at end "
              f"{sim.get('in_flight_at_end')}; server handled {handled:.0f}, "
              f"error replies {values.get('ticksock_error_replies_total', 0):.0f}")
    if frames_out:
        print(f"  frames out {frames_out:.0f}, write syscalls {writes:.0f} ({frames_out / max(writes, 1):.2f} frames "
              f"per write)")
    late = buckets.get("ticksock_tick_lateness_seconds_bucket")
    dur = buckets.get("ticksock_tick_duration_seconds_bucket")
    ticks = values.get("ticksock_ticks_total", 0)
    if late and ticks:
        within_1ms = dict(late).get(0.001, 0) / late[-1][1]
        print(f"  ticks {ticks:.0f}, skipped {values.get('ticksock_ticks_skipped_total', 0):.0f}; lateness p50 <= "
              f"{1000 * quantile_bound(late, 0.5):.2f} ms, p99 <= {1000 * quantile_bound(late, 0.99):.2f} ms, "
              f"{100 * within_1ms:.1f}% within 1 ms")
        print("  tick duration: p50 <= %.2f ms, p99 <= %.2f ms, max bucket <= %.2f ms" % (
            1000 * quantile_bound(dur, 0.5), 1000 * quantile_bound(dur, 0.99), 1000 * quantile_bound(dur, 1.0)))
    for key, value in sim.items():
        if "server" in key and isinstance(value, dict):
            print(f"  {key}: " + ", ".join(f"{k} {v}" for k, v in value.items() if not isinstance(v, (list, dict))))


if __name__ == "__main__":
    main()
