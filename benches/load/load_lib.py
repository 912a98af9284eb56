"""Helpers of the load scripts' summaries (tick_health.sh, replication_summary.py)."""


def bucket(q):
    """A quantile of the server's fixed buckets, in ms: its bucket and the estimate inside."""
    if q is None:
        return "-"
    ms = lambda us: f"{us / 1000:g}"
    if q["at_most_us"] is None:
        return f">{ms(q['above_us'])}"
    return f"{ms(q['above_us'])}-{ms(q['at_most_us'])} (~{q['estimate_us'] / 1000:.2f})"


def server_cpu(out, name):
    """The server's CPU over the simulator's run, % of one core, by group of threads: `logic`,
    `reactor`, `jobs` (the job workers) and `all`, from the `threads` readings NAME.cpu0 and
    NAME.cpu1 and the run's NAME.wall."""
    t0, t1 = map(float, open(f"{out}/{name}.wall").read().split())
    before = {}
    for line in open(f"{out}/{name}.cpu0"):
        comm, ticks = line.rsplit(" ", 1)
        before.setdefault(comm, []).append(int(ticks))
    groups = {"logic": 0, "reactor": 0, "jobs": 0, "all": 0}
    seen = {}
    for line in open(f"{out}/{name}.cpu1"):
        comm, ticks = line.rsplit(" ", 1)
        k = seen.get(comm, 0)
        seen[comm] = k + 1
        start = before.get(comm, [])
        d = int(ticks) - (start[k] if k < len(start) else 0)
        group = "jobs" if comm.startswith("job-") else "logic" if "logic" in comm else "reactor" if "reactor" in comm else None
        if group:
            groups[group] += d
        groups["all"] += d
    # Clock ticks are 1/100 s: ticks / seconds is % of one core.
    return {g: v / (t1 - t0) for g, v in groups.items()}
