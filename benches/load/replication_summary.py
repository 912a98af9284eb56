#!/usr/bin/env python3
"""Summarises replication_bandwidth.sh and replication_check.sh runs: one Markdown row per run.

    replication_summary.py OUT_DIR NAME...

Bytes are per bot per second over the steady window: the state's push bodies as the bots
received them (`state`, or `replica`), all push bodies, and what the server counted as sent
(`ticksock_bytes_out_total`: payloads of data messages, replies and pushes). Tick figures are
the server's own histograms (a quantile is known to its bucket). CPU is % of one core over the
simulator's run: the server's logic thread (the tick, where state is encoded) and its reactor
(sockets), and the simulator's workers.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_lib import bucket, server_cpu  # noqa: E402

out, names = sys.argv[1], sys.argv[2:]


print(
    "| run | load before | connected at end / errors | state B/s per bot (received) | all pushes B/s per bot "
    "| server bytes out/s per bot | tick duration p50 / p99 / mean (ms) | server CPU %: logic / reactor / all "
    "| sim CPU % | RTT p99 (ms) | sim timers p99 (ms) | digests compared / mismatched |"
)
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for name in names:
    r = json.load(open(f"{out}/{name}.json"))
    load = open(f"{out}/{name}.uptime").read().split("load average:")[1].split(",")[0].strip()
    s = r["steady"]
    t = r["server_ticks"]["steady"] or {}
    d = t.get("duration", {})
    bots = max(r["bots"], 1)
    out_bytes = t.get("bytes_out")
    out_per_bot = f"{out_bytes / s['secs'] / bots:,.0f}" if out_bytes is not None and s["secs"] > 0 else "-"
    cpu = server_cpu(out, name)
    rep = r.get("replica")
    digests = f"{rep['checks']} / {rep['mismatches']}" if rep and rep["mirror_share"] > 0 else "-"
    print(
        f"| {name} | {load} | {r['connected_at_end']} / {r['errors']} "
        f"| {s['state_bytes_per_bot_sec']:,.0f} | {s['push_bytes_per_bot_sec']:,.0f} | {out_per_bot} "
        f"| {bucket(d.get('p50'))} / {bucket(d.get('p99'))} / {d.get('mean_us', 0) / 1000:.2f} "
        f"| {cpu['logic']:.0f} / {cpu['reactor']:.0f} / {cpu['all']:.0f} | {s['worker_cpu_percent']:.0f} "
        f"| {r['rtt_steady_us']['p99'] / 1000:.1f} | {r['timer_late_us']['p99'] / 1000:.1f} | {digests} |"
    )

checked = [n for n in names if (json.load(open(f"{out}/{n}.json")).get("replica") or {}).get("mirror_share", 0) > 0]
if checked:
    print()
    print(
        "| run | bots checking | digests compared / MISMATCHED / tick unseen | first after a join | updates / full / "
        "NOT applied | acks accepted / stale / unknown | links lost | own cell crossings |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in checked:
        r = json.load(open(f"{out}/{name}.json"))
        p = r["replica"]
        print(
            f"| {name} | {round(r['bots'] * p['mirror_share'])} of {r['bots']} "
            f"| {p['checks']} / {p['mismatches']} / {p['tick_unseen']} | {p['after_join']} "
            f"| {p['updates']} / {p['full_snapshots']} / {p['not_applied']} "
            f"| {p['acks_accepted']} / {p['acks_stale']} / {p['acks_unknown']} | {p['link_losses']} | {p['cell_crossings']} |"
        )
