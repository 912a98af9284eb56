"""One table row per echo_rate.sh run (echo_ab.sh's files): the round trips, the generator's
lag and CPU, and the server's CPU, whole and per call, in Markdown; then one row per mode with
the range of each figure over its runs.

    python3 benches/load/echo_ab.py target/echo_ab/*.txt
"""
import re
import sys


def quantiles(text, label):
    """p50, p99 and max of the generator's line LABEL (`round trip ms: p50 ...`), in ms."""
    m = re.search(rf"^{re.escape(label)}: p50 ([\d.]+), p90 [\d.]+, p99 ([\d.]+), p99.9 [\d.]+, max ([\d.]+)", text, re.M)
    return "/".join(m.groups()) if m else "-"


def row(path):
    text = open(path).read()
    head = text.splitlines()[0]
    mode, run = re.match(r"mode (\w+), run (\d+)", head).groups()
    load = re.search(r"load ([\d.]+)", head).group(1)
    echoes = re.search(r"(\d+) echoes in ([\d.]+) s = (\d+) echoes/s", text)
    server = re.search(r"server CPU: (.*)= ([\d.]+)% of one core over ([\d.]+) s", text)
    generator = re.search(r"generator CPU: user ([\d.]+) s, system ([\d.]+) s", text)
    cells = [mode, run, load]
    cells.append(echoes.group(3) if echoes else "failed")
    cells += [quantiles(text, "round trip ms"), quantiles(text, "round trip from due ms"),
              quantiles(text, "send behind its due time ms")]
    if server:
        threads = dict(
            (name, float(secs)) for name, secs in re.findall(r"(\S+) ([\d.]+) s, ", server.group(1)))
        busy = ", ".join(f"{n} {s:.2f}" for n, s in threads.items() if s >= 0.05)
        cells.append(f"{float(server.group(2)):.1f} % ({busy})")
        if echoes:
            # The server's CPU seconds over the measured span, per echo over the generator's
            # run: both spans are the run's SECONDS give or take the generator's teardown.
            per_call = sum(threads.values()) / int(echoes.group(1)) * 1e6
            cells.append(f"{per_call:.2f}")
        else:
            cells.append("-")
    else:
        cells += ["-", "-"]
    cells.append(f"{float(generator.group(1)) + float(generator.group(2)):.2f}" if generator else "-")
    if "exit status" in text:
        cells[3] += " (" + re.search(r"exit status \d+", text).group(0) + ")"
    return cells


HEADER = ["mode", "run", "load", "echoes/s", "rtt p50/p99/max ms", "from due p50/p99/max ms",
          "send lag p50/p99/max ms", "server CPU (threads, s)", "server µs/call", "generator CPU s"]


def span(values):
    """`lo-hi` of the numbers among VALUES (cells that did not parse are left out)."""
    numbers = []
    for v in values:
        try:
            numbers.append(float(v))
        except ValueError:
            pass
    if not numbers:
        return "-"
    return f"{min(numbers):g}-{max(numbers):g}" if min(numbers) != max(numbers) else f"{numbers[0]:g}"


def ranges(rows):
    """One row per mode: the range over its runs of each figure, part by part."""
    print()
    print("| mode | runs | rtt p50 / p99 / max ms | from due p99 ms | send lag p99 / max ms | server CPU % | server µs/call |")
    print("|---|---|---|---|---|---|---|")
    for mode in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == mode]
        part = lambda col, i: span(r[col].split("/")[i] if "/" in r[col] else "-" for r in mine)
        cpu = span(r[7].split(" %")[0] for r in mine)
        print(f"| {mode} | {len(mine)} | {part(4, 0)} / {part(4, 1)} / {part(4, 2)} | {part(5, 1)} "
              f"| {part(6, 1)} / {part(6, 2)} | {cpu} | {span(r[8] for r in mine)} |")


rows = [row(path) for path in sys.argv[1:]]
print("| " + " | ".join(HEADER) + " |")
print("|" + "---|" * len(HEADER))
for cells in rows:
    print("| " + " | ".join(cells) + " |")
ranges(rows)
