#!/usr/bin/env python3
"""A soak under faults: the release server under a moderate game load, churn and killed
connections for --minutes, its memory, descriptors, queues and tick lateness sampled throughout.

    python3 benches/soak/soak.py --minutes 1 --sample 2     # the short form (CI), about 70 s
    python3 benches/soak/soak.py --minutes 30               # the long form

It starts target/release/ticksock-arena on a free loopback port (a fast heartbeat, so that
half-open peers are found in seconds), then three client-sim processes at once, for the same
time: `arena` (the live connections: they must see no error), `churn` (connect, log in, join,
leave and close or drop, again and again) and `faults` (connections killed by a TCP reset or
left half-open, then reconnected). Every --sample seconds it records a row: RSS, open
descriptors, and from GET /metrics the open connections, queue depths, ticks and their
lateness. It writes the rows as CSV, a plot of RSS, descriptors and connections as SVG, and
prints a summary with a verdict. Exit status 0: pass; 1: fail (the reasons are printed);
2: the soak could not run (a binary missing, the server did not start).

See docs/SOAK.md for what pass means and why the limits are what they are. Standard library
only; Linux (/proc).
"""
import argparse
import csv
import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# Command line


def parse_args(argv):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--minutes", type=float, default=30.0, help="minutes of load")
    p.add_argument("--sample", type=float, default=5.0, help="seconds between two samples")
    p.add_argument(
        "--warmup", type=float, default=0.25,
        help="share of the run (0 to 1) before the trends are measured; at least the time the "
             "faults take to reach their steady state (a longest lifetime and a hold, plus 5 s)",
    )
    p.add_argument("--server", type=Path, default=TARGET / "release" / "ticksock-arena",
                   help="the server binary")
    p.add_argument("--client-sim", type=Path, default=TARGET / "release" / "client-sim",
                   help="the client-sim binary")
    p.add_argument("--out", type=Path, default=TARGET / "soak",
                   help="directory for the CSV, the SVG, the logs and client-sim's reports")
    p.add_argument("--arena-bots", type=int, default=400, help="arena bots (the live connections)")
    p.add_argument("--arena-rate", type=float, default=10.0, help="move calls per second per arena bot")
    p.add_argument("--churn-bots", type=int, default=20, help="churn bots")
    p.add_argument("--churn-pause", type=float, default=0.1, help="seconds between two churn cycles of a bot")
    p.add_argument("--fault-bots", type=int, default=50, help="faults bots")
    p.add_argument("--fault-rate", type=float, default=5.0, help="move calls per second per faults bot")
    p.add_argument("--fault-lifetime", type=float, default=5.0,
                   help="mean seconds a faults connection lives before it is killed")
    p.add_argument("--rst-fraction", type=float, default=0.5,
                   help="share of kills that are TCP resets; the others are half-open")
    p.add_argument("--ping-interval-ms", type=int, default=1000,
                   help="the server's --ping-interval-ms")
    p.add_argument("--idle-timeout-ms", type=int, default=3000,
                   help="the server's --idle-timeout-ms (half-open peers are closed after this)")
    p.add_argument("--half-open-hold", type=float, default=argparse.SUPPRESS,
                   help="seconds a half-open connection is held (default: the idle timeout + 3 s)")
    p.add_argument("--settle", type=float, default=3.0,
                   help="seconds after the load before the last look at the server")
    p.add_argument("--max-rss-slope", type=float, default=64.0,
                   help="fail above this RSS trend after the warm-up, KiB per minute")
    p.add_argument("--rss-allowance", type=float, default=256.0,
                   help="KiB the RSS trend may add over the whole window after the warm-up, whatever "
                        "its slope: room for one step of the allocator in a short run")
    p.add_argument("--max-fd-slope", type=float, default=20.0,
                   help="fail above this descriptor trend after the warm-up, descriptors per minute")
    p.add_argument("--strict-ticks", action="store_true",
                   help="fail on every skipped tick, also one skipped while the machine itself stalled "
                        "for a tick period or more (by default a warning)")
    p.add_argument("--max-fd-growth", type=int, default=0,
                   help="descriptors the server may hold above its baseline after the settle delay")
    a = p.parse_args(argv)
    if not hasattr(a, "half_open_hold"):
        a.half_open_hold = a.idle_timeout_ms / 1000 + 3.0
    if not 0 <= a.warmup < 1:
        p.error("--warmup must be at least 0 and less than 1")
    if a.minutes <= 0 or a.sample <= 0:
        p.error("--minutes and --sample must be positive")
    return a


def warmup_secs(a):
    """The warm-up: the share asked for, but at least until the faults are in their steady state
    (the number of held half-open sockets grows until a longest lifetime and a hold have
    passed), with 5 s to spare."""
    return max(a.warmup * a.minutes * 60, 1.5 * a.fault_lifetime + a.half_open_hold + 5)


# ---------------------------------------------------------------------------------------------
# The server seen from outside: /proc and GET /metrics


def proc_sample(pid):
    """RSS (KiB), open descriptors and CPU seconds (user + system) of process pid."""
    rss = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces: the fields start after its closing parenthesis.
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return rss, fds, cpu


def scrape(port):
    """GET /metrics: {name or name{labels}: value}."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET /metrics answered {head.splitlines()[0]!r}")
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def buckets(m, name):
    """A histogram's cumulative buckets, [(upper bound in seconds, count)], +Inf last."""
    out = []
    for key, value in m.items():
        if key.startswith(name + "_bucket{le="):
            le = key.split('le="')[1].rstrip('"}')
            out.append((float("inf") if le == "+Inf" else float(le), value))
    return sorted(out)


def lateness(before, after):
    """Between two scrapes: the ticks run, the share later than 1 ms, and the upper bound of the
    bucket holding the latest one (seconds; inf past the last bound)."""
    name = "ticksock_tick_lateness_seconds"
    b0, b1 = dict(buckets(before, name)), dict(buckets(after, name))
    ticks = after[name + "_count"] - before[name + "_count"]
    if ticks <= 0:
        return 0, 0.0, 0.0
    within_1ms = b1[0.001] - b0.get(0.001, 0)
    worst = min(le for le in b1 if b1[le] - b0.get(le, 0) >= ticks)
    return ticks, 1 - within_1ms / ticks, worst


class StallProbe(threading.Thread):
    """Sleeps 2 ms at a time and keeps the longest oversleep since it was last read: how long
    the machine kept an ordinary process from running. A server stall that comes with one of
    these is (at least partly) the machine's; one without is the server's own."""

    def __init__(self):
        super().__init__(daemon=True)
        self.worst = 0.0
        self.lock = threading.Lock()

    def run(self):
        last = time.monotonic()
        while True:
            time.sleep(0.002)
            now = time.monotonic()
            with self.lock:
                self.worst = max(self.worst, now - last - 0.002)
            last = now

    def take(self):
        """The longest oversleep since the last call, in milliseconds."""
        with self.lock:
            worst, self.worst = self.worst, 0.0
        return round(worst * 1000, 1)


# ---------------------------------------------------------------------------------------------
# Processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(a, log):
    """Starts the server on a free port; (process, port) once it says where it listens."""
    for _ in range(3):
        port = free_port()
        cmd = [str(a.server), "--listen", f"127.0.0.1:{port}",
               "--ping-interval-ms", str(a.ping_interval_ms), "--idle-timeout-ms", str(a.idle_timeout_ms)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        line = proc.stdout.readline() if ready else ""
        if line.startswith("listening on"):
            print(f"server: {' '.join(cmd)}\n        {line.strip()} (pid {proc.pid})")
            return proc, port
        proc.kill()
        proc.wait()
    raise RuntimeError(f"the server did not start; see {log.name}")


def start_client(a, port, scenario, extra):
    """Starts client-sim for the whole load; its table and messages go to OUT/SCENARIO.txt."""
    cmd = [str(a.client_sim), "--url", f"ws://127.0.0.1:{port}/", "--scenario", scenario,
           "--duration", str(a.minutes * 60), "--name-prefix", scenario, "--quiet",
           "--json", str(a.out / f"{scenario}.json"), *extra]
    out = open(a.out / f"{scenario}.txt", "w")
    return scenario, subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), out


def stop(proc, sig=signal.SIGINT, wait=10):
    """Signals proc (started here) and waits for it; its exit status (None: killed)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
    return proc.returncode


# ---------------------------------------------------------------------------------------------
# Sampling


COLUMNS = ["t_s", "phase", "rss_kib", "fds", "conns_open", "backlog", "flush_backlog",
           "inbound_depth", "ticks", "ticks_skipped", "late_1ms_share", "late_max_ms",
           "cpu_percent", "requests_per_s", "timeout_closes", "accepted", "host_stall_ms"]


def sample(pid, port, t, phase, prev, probe):
    """One row; `prev` is the previous row's (time, cpu, metrics), for the rates."""
    rss, fds, cpu = proc_sample(pid)
    m = scrape(port)
    row = {
        "t_s": round(t, 2), "phase": phase, "rss_kib": rss, "fds": fds,
        "conns_open": int(m["ticksock_connections_open"]),
        "backlog": int(m["ticksock_backlog"]),
        "flush_backlog": int(m["ticksock_flush_backlog"]),
        "inbound_depth": int(m["ticksock_inbound_queue_depth"]),
        "ticks": int(m["ticksock_ticks_total"]),
        "ticks_skipped": int(m["ticksock_ticks_skipped_total"]),
        "timeout_closes": int(m["ticksock_closes_timeout_total"]),
        "accepted": int(m["ticksock_connections_accepted_total"]),
        "late_1ms_share": "", "late_max_ms": "", "cpu_percent": "", "requests_per_s": "",
        "host_stall_ms": probe.take(),
    }
    if prev is not None:
        t0, cpu0, m0 = prev
        dt = max(t - t0, 1e-9)
        _, share, worst = lateness(m0, m)
        row["late_1ms_share"] = round(share, 5)
        row["late_max_ms"] = "inf" if worst == float("inf") else round(worst * 1000, 3)
        row["cpu_percent"] = round((cpu - cpu0) / dt * 100, 1)
        row["requests_per_s"] = round(
            (m["ticksock_requests_handled_total"] - m0["ticksock_requests_handled_total"]) / dt)
    return row, (t, cpu, m)


# ---------------------------------------------------------------------------------------------
# Analysis


def slope_per_min(points):
    """Least-squares slope of [(seconds, value)], per minute (0 for fewer than 2 points)."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mt) * (v - mv) for t, v in points) / var * 60


def fit(points):
    """(slope per second, intercept) of the least-squares line, for the plot."""
    per_min = slope_per_min(points)
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    return per_min / 60, mv - per_min / 60 * mt


def load_report(a, scenario):
    try:
        with open(a.out / f"{scenario}.json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def verdict(a, rows, steady, reports, exits, first_m, last_m, settled, baseline, server_exit):
    """The failures (empty: pass), the warnings, and the figures the summary prints."""
    fails, warnings = [], []
    rss_slope = slope_per_min([(r["t_s"], r["rss_kib"]) for r in steady])
    fd_slope = slope_per_min([(r["t_s"], r["fds"]) for r in steady])
    if len(steady) < 3:
        fails.append(f"only {len(steady)} samples after the warm-up: run longer or sample more often")
    window_min = (steady[-1]["t_s"] - steady[0]["t_s"]) / 60 if steady else 0.0
    if rss_slope > a.max_rss_slope and rss_slope * window_min > a.rss_allowance:
        fails.append(f"RSS grows {rss_slope:+.0f} KiB/min after the warm-up (limit {a.max_rss_slope:g}), "
                     f"{rss_slope * window_min:+.0f} KiB over {window_min:.1f} min (allowance {a.rss_allowance:g})")
    if fd_slope > a.max_fd_slope:
        fails.append(f"descriptors grow {fd_slope:+.1f}/min after the warm-up (limit {a.max_fd_slope:.0f})")
    skipped = last_m["ticksock_ticks_skipped_total"] - first_m["ticksock_ticks_skipped_total"]
    hz = ((reports.get("arena") or {}).get("tick_jitter") or {}).get("tick_hz") or 30
    period_ms = 1000 / hz
    for r0, r1 in zip(rows, rows[1:]):
        n = r1["ticks_skipped"] - r0["ticks_skipped"]
        if n <= 0:
            continue
        where = (f"{n} ticks skipped at {r0['t_s']:g}-{r1['t_s']:g} s (the server's ticksock_ticks_skipped_total; "
                 f"the latest tick after them <= {r1['late_max_ms']} ms late; the machine stalled "
                 f"{r1['host_stall_ms']} ms meanwhile)")
        if r1["host_stall_ms"] >= period_ms and not a.strict_ticks:
            warnings.append(f"{where}: a stall of a tick period or more, the machine's, so not failed "
                            "(--strict-ticks fails it)")
        else:
            fails.append(where)
    for scenario, code in exits.items():
        report = reports.get(scenario)
        if report is None:
            fails.append(f"client-sim {scenario} wrote no report (exit status {code}); see {scenario}.txt")
            continue
        if report["errors"]:
            fails.append(f"client-sim {scenario}: {report['errors']} errors (codes {report['error_codes']}, "
                         f"connect errors {report['connect_errors']}); see {scenario}.txt")
        elif code != 0:
            fails.append(f"client-sim {scenario} exited with status {code}; see {scenario}.txt")
    arena = reports.get("arena")
    if arena and arena["connected_at_end"] != a.arena_bots:
        fails.append(f"only {arena['connected_at_end']} of {a.arena_bots} arena bots connected at the end")
    if arena and arena["counters"]["disconnects"]:
        # A live connection that dropped and came back with no call in flight costs no error
        # in client-sim's count; here it is one.
        fails.append(f"{arena['counters']['disconnects']} arena connections dropped (live connections must not)")
    faults = reports.get("faults")
    timeouts = last_m["ticksock_closes_timeout_total"] - first_m["ticksock_closes_timeout_total"]
    if faults:
        c = faults["counters"]
        # Every connection the server closed for silence is a half-open kill; every half-open
        # kill whose hold ended in the run was closed by the server.
        if timeouts > c["kills_half_open"]:
            fails.append(f"{timeouts:.0f} connections closed for silence, more than the "
                         f"{c['kills_half_open']} half-open kills")
        if timeouts < c["half_open_found"]:
            fails.append(f"{timeouts:.0f} connections closed for silence, fewer than the "
                         f"{c['half_open_found']} half-open ones found closed")
        if c["kills_rst"] == 0 or c["kills_half_open"] == 0:
            fails.append(f"the faults did not happen: {c['kills_rst']} resets, {c['kills_half_open']} half-open")
    for name in ["ticksock_panics_total", "ticksock_closes_overflow_total", "ticksock_closes_rate_limited_total"]:
        n = last_m[name] - first_m[name]
        if n:
            fails.append(f"{name} rose by {n:.0f}")
    replies = {k: v for k, v in last_m.items() if k.startswith("ticksock_error_replies_total") and v}
    if replies:
        fails.append(f"the server sent error replies: {replies}")
    if settled["fds"] > baseline["fds"] + a.max_fd_growth:
        fails.append(f"{settled['fds']} descriptors {a.settle:g} s after the load, {baseline['fds']} before it")
    if settled["conns_open"] > 1:
        fails.append(f"{settled['conns_open']} connections open {a.settle:g} s after the load "
                     "(1 is the /metrics request itself)")
    if server_exit != 0:
        fails.append(f"the server's shutdown exit status was {server_exit}")
    return fails, warnings, rss_slope, fd_slope, skipped, timeouts


# ---------------------------------------------------------------------------------------------
# The plot (SVG, written by hand)


def nice_ticks(lo, hi, n=5):
    """About n round values (steps of 1, 2, 2.5 or 5 times a power of ten) from at or below lo
    to at or above hi."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    first, last = math.floor(lo / step), math.ceil(hi / step)
    return [round(k * step, 10) for k in range(first, last + 1)]


def svg_plot(rows, warmup_s, load_s, panels, title):
    """Panels stacked over a common time axis (minutes). Each panel: (label, [(series name,
    colour, [(t, v)])], trend (slope/s, intercept) or None)."""
    w, ph, left, right, top, gap = 820, 170, 70, 20, 75, 40
    h = top + len(panels) * (ph + gap) + 20
    t_max = max(load_s, rows[-1]["t_s"]) if rows else load_s
    x = lambda t: left + (w - left - right) * t / t_max
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="14" font-weight="bold">{esc(title)}</text>',
           f'<text x="{left}" y="40" fill="#555">grey: warm-up; dashed: the trend fitted after it; '
           'dotted line: end of the load</text>']
    for i, (label, series, trend) in enumerate(panels):
        y0 = top + i * (ph + gap)
        values = [v for _, _, pts in series for _, v in pts]
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.1 or max(abs(hi) * 0.05, 1)
        ticks = nice_ticks(max(0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
        vlo, vhi = ticks[0], ticks[-1]
        y = lambda v: y0 + ph - ph * (v - vlo) / (vhi - vlo)
        out.append(f'<rect x="{left}" y="{y0}" width="{x(warmup_s) - left:.1f}" height="{ph}" fill="#eee"/>')
        out.append(f'<rect x="{left}" y="{y0}" width="{w - left - right}" height="{ph}" fill="none" stroke="#999"/>')
        out.append(f'<line x1="{x(load_s):.1f}" y1="{y0}" x2="{x(load_s):.1f}" y2="{y0 + ph}" '
                   'stroke="#999" stroke-dasharray="2,3"/>')
        for v in ticks:
            out.append(f'<line x1="{left - 4}" y1="{y(v):.1f}" x2="{left}" y2="{y(v):.1f}" stroke="#999"/>')
            out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{fmt(v)}</text>')
        out.append(f'<text x="{left}" y="{y0 - 6}" font-weight="bold">{esc(label)}</text>')
        for j, (name, colour, pts) in enumerate(series):
            path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
            if len(series) > 1:
                out.append(f'<text x="{w - right - 150 + 75 * j}" y="{y0 - 6}" fill="{colour}">{esc(name)}</text>')
        if trend:
            k, b = trend
            out.append(f'<line x1="{x(warmup_s):.1f}" y1="{y(k * warmup_s + b):.1f}" x2="{x(load_s):.1f}" '
                       f'y2="{y(k * load_s + b):.1f}" stroke="#d62728" stroke-dasharray="6,4" stroke-width="1.5"/>')
        if i == len(panels) - 1:
            for t in nice_ticks(0, t_max / 60, 8):
                if t * 60 <= t_max:
                    out.append(f'<text x="{x(t * 60):.1f}" y="{y0 + ph + 16}" text-anchor="middle">{fmt(t)}</text>')
            out.append(f'<text x="{(left + w - right) / 2}" y="{y0 + ph + 32}" text-anchor="middle">minutes</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def late_ms(row):
    """A row's latest tick, ms; past the histogram's last bound (250 ms), drawn at 300."""
    return 300.0 if row["late_max_ms"] == "inf" else float(row["late_max_ms"])


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fmt(v):
    return f"{v:g}" if abs(v) < 1e6 else f"{v:.3g}"


# ---------------------------------------------------------------------------------------------
# The run


def main(argv):
    a = parse_args(argv)
    for binary in (a.server, a.client_sim):
        if not os.access(binary, os.X_OK):
            print(f"soak: {binary} not found; build it first: "
                  "cargo build --release -p ticksock-arena -p client-sim", file=sys.stderr)
            return 2
    a.out.mkdir(parents=True, exist_ok=True)
    load_s = a.minutes * 60
    warmup_s = warmup_secs(a)
    log = open(a.out / "server.log", "w")
    try:
        server, port = start_server(a, log)
    except RuntimeError as e:
        print(f"soak: {e}", file=sys.stderr)
        return 2
    clients = []
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        probe = StallProbe()
        probe.start()
        baseline, prev = sample(server.pid, port, 0.0, "before", None, probe)
        first_m = prev[2]
        clients = [
            start_client(a, port, "arena", ["--bots", str(a.arena_bots), "--rate", str(a.arena_rate),
                                            "--room-size", "50"]),
            start_client(a, port, "churn", ["--bots", str(a.churn_bots), "--churn-pause", str(a.churn_pause)]),
            start_client(a, port, "faults", ["--bots", str(a.fault_bots), "--rate", str(a.fault_rate),
                                             "--fault-lifetime", str(a.fault_lifetime),
                                             "--rst-fraction", str(a.rst_fraction),
                                             "--half-open-hold", str(a.half_open_hold)]),
        ]
        print(f"load: {a.minutes:g} min of arena ({a.arena_bots} bots x {a.arena_rate:g} moves/s), "
              f"churn ({a.churn_bots} bots, pause {a.churn_pause:g} s), faults ({a.fault_bots} bots, "
              f"lifetime ~{a.fault_lifetime:g} s, {a.rst_fraction:g} resets, half-open held {a.half_open_hold:g} s)")
        rows = [baseline]
        next_at = a.sample
        while any(p.poll() is None for _, p, _ in clients):
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with status {server.returncode}; see {log.name}")
            pause = t0 + next_at - time.monotonic()
            if pause > 0:
                time.sleep(min(pause, 0.2))
                continue
            t = time.monotonic() - t0
            row, prev = sample(server.pid, port, t, "warm-up" if t < warmup_s else "load", prev, probe)
            rows.append(row)
            next_at += a.sample
            if len(rows) % max(1, int(60 / a.sample)) == 0:
                print(f"  {t / 60:5.1f} min: RSS {row['rss_kib']} KiB, fds {row['fds']}, "
                      f"open {row['conns_open']}, skipped {row['ticks_skipped']}", flush=True)
        exits = {name: p.returncode for name, p, _ in clients}
        time.sleep(a.settle)
        t = time.monotonic() - t0
        settled, (_, _, last_m) = sample(server.pid, port, t, "settled", prev, probe)
        rows.append(settled)
    except (RuntimeError, OSError, KeyError) as e:
        print(f"soak: {e}", file=sys.stderr)
        for _, p, _ in clients:
            stop(p)
        stop(server)
        return 2
    except KeyboardInterrupt:
        for _, p, _ in clients:
            stop(p)
        stop(server)
        raise
    server_exit = stop(server)
    for _, _, out in clients:
        out.close()

    reports = {name: load_report(a, name) for name in exits}
    steady = [r for r in rows if r["phase"] == "load"]
    fails, warnings, rss_slope, fd_slope, skipped, timeouts = verdict(
        a, rows, steady, reports, exits, first_m, last_m, settled, baseline, server_exit)

    with open(a.out / "soak.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    load_rows = [r for r in rows if r["phase"] != "settled"]
    trend_pts = lambda key: [(r["t_s"], r[key]) for r in steady]
    panels = [
        ("server RSS, MiB", [("RSS", "#1f77b4", [(r["t_s"], r["rss_kib"] / 1024) for r in load_rows])],
         tuple(v / 1024 for v in fit(trend_pts("rss_kib"))) if len(steady) >= 2 else None),
        ("server open descriptors", [("fds", "#2ca02c", [(r["t_s"], r["fds"]) for r in load_rows])],
         fit(trend_pts("fds")) if len(steady) >= 2 else None),
        ("server open connections (ticksock_connections_open)",
         [("open", "#9467bd", [(r["t_s"], r["conns_open"]) for r in load_rows])], None),
        ("ms: the latest tick of each interval (bucket bound), and the machine's longest stall",
         [("tick", "#ff7f0e", [(r["t_s"], late_ms(r)) for r in load_rows if r["late_max_ms"] != ""]),
          ("machine", "#7f7f7f", [(r["t_s"], r["host_stall_ms"]) for r in load_rows])], None),
    ]
    title = (f"ticksock soak: {a.minutes:g} min, {a.arena_bots} arena + {a.churn_bots} churn + "
             f"{a.fault_bots} faults bots: {'PASS' if not fails else 'FAIL'}")
    (a.out / "soak.svg").write_text(svg_plot(load_rows, warmup_s, load_s, panels, title))

    print_summary(a, rows, steady, reports, rss_slope, fd_slope, skipped, timeouts, baseline, settled)
    print(f"files: {a.out}/soak.csv, soak.svg, server.log, arena/churn/faults .json and .txt")
    for warning in warnings:
        print(f"WARNING: {warning}")
    if fails:
        print("FAIL:")
        for reason in fails:
            print(f"  - {reason}")
        return 1
    print("PASS")
    return 0


def print_summary(a, rows, steady, reports, rss_slope, fd_slope, skipped, timeouts, baseline, settled):
    load = [r for r in rows if r["phase"] in ("warm-up", "load")]
    shares = [r["late_1ms_share"] for r in load if r["late_1ms_share"] != ""]
    worst = [r["late_max_ms"] for r in load if r["late_max_ms"] != ""]
    worst_ms = max((float(w) for w in worst), default=0.0)
    ticks = load[-1]["ticks"] - baseline["ticks"] if load else 0
    late_share = sum(shares) / len(shares) if shares else 0.0
    q = lambda key: [r[key] for r in steady] or [0]
    print(f"\nsummary ({len(rows)} samples every {a.sample:g} s; warm-up {warmup_secs(a):g} s; "
          f"trends over {len(steady)} samples after it)")
    print(f"  RSS KiB          before {baseline['rss_kib']}, after warm-up {q('rss_kib')[0]}, "
          f"end of load {q('rss_kib')[-1]}, max {max(r['rss_kib'] for r in rows)}, settled {settled['rss_kib']}; "
          f"trend {rss_slope:+.1f} KiB/min (limit {a.max_rss_slope:g}, and {a.rss_allowance:g} KiB over the "
          "window)")
    print(f"  descriptors      before {baseline['fds']}, after warm-up min/max {min(q('fds'))}/{max(q('fds'))}, "
          f"settled {settled['fds']}; trend {fd_slope:+.2f}/min (limit {a.max_fd_slope:g})")
    print(f"  connections open after warm-up min/max {min(q('conns_open'))}/{max(q('conns_open'))}, "
          f"settled {settled['conns_open']} (the /metrics request is one)")
    print(f"  queues           backlog max {max(r['backlog'] for r in rows)}, flush backlog max "
          f"{max(r['flush_backlog'] for r in rows)}, inbound depth max {max(r['inbound_depth'] for r in rows)}")
    print(f"  ticks            {ticks} run, {skipped:.0f} skipped; later than 1 ms: {late_share * 100:.2f}% "
          f"(mean of the samples), latest <= {worst_ms:g} ms")
    stall = max(load, key=lambda r: r["host_stall_ms"], default=None)
    if stall:
        print(f"  machine stalls   longest {stall['host_stall_ms']} ms (at {stall['t_s']:g} s): how long a 2 ms "
              "sleep of this script overslept")
    cpu = [r["cpu_percent"] for r in load if r["cpu_percent"] != ""]
    if cpu:
        print(f"  server CPU       mean {sum(cpu) / len(cpu):.0f}% of a core, max {max(cpu):.0f}%")
    for name, r in reports.items():
        if r is None:
            print(f"  {name:<16} no report")
            continue
        c = r["counters"]
        line = (f"  {name:<16} {c['calls']} calls, {c['replied']} replied, {r['errors']} errors, "
                f"{c['connections']} connections ({c['reconnects']} reconnects), "
                f"round trip p99 {r['rtt_us']['p99'] / 1000:.1f} ms")
        if name == "churn":
            line += f"; {c['cycles']} cycles ({c['clean_closes']} clean, {c['abrupt_drops']} dropped)"
        if name == "faults":
            line += (f"; kills {c['kills_rst']} reset / {c['kills_half_open']} half-open, "
                     f"half-open closed by the server {c['half_open_found']}, missed {c['half_open_missed']}")
        if name == "arena":
            line += f"; client-seen ticks skipped {c['ticks_skipped']}"
        print(line)
    print(f"  timeout closes   {timeouts:.0f} (the server's heartbeat closing half-open connections)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
