#!/usr/bin/env python3
"""Plots a game sweep's round trips against the bot count, one line per build (SVG, stdlib).

usage: sweep_plot.py OUT.svg DIR TAG [TAG...]

Reads DIR/game-<bots>.<TAG>.sim.json (what benches/load/targets.sh writes with TAG set, e.g.
by stretch18.sh) and draws, for each TAG, the steady round trip's p99 (solid) and p50
(dashed) on a log scale, with the 10 ms line of issue 18's target.
"""
import glob
import json
import math
import re
import sys

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 400, 60, 150, 30, 45


def series(directory, tag):
    points = []
    for path in glob.glob(f"{directory}/game-*.{tag}.sim.json"):
        bots = int(re.search(r"game-(\d+)\.", path).group(1))
        rtt = json.load(open(path))["rtt_steady_us"]
        points.append((bots, rtt["p50"] / 1000, rtt["p99"] / 1000))
    return sorted(points)


def main():
    out, directory, tags = sys.argv[1], sys.argv[2], sys.argv[3:]
    data = {tag: series(directory, tag) for tag in tags}
    xs = [p[0] for pts in data.values() for p in pts]
    ys = [v for pts in data.values() for p in pts for v in p[1:]]
    x0, x1 = min(xs), max(xs)
    y0, y1 = 10 ** math.floor(math.log10(min(ys))), 10 ** math.ceil(math.log10(max(ys)))

    def px(x):
        return LEFT + (x - x0) / max(x1 - x0, 1) * (W - LEFT - RIGHT)

    def py(y):
        return TOP + (math.log10(y1) - math.log10(y)) / (math.log10(y1) - math.log10(y0)) * (H - TOP - BOTTOM)

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">', f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{LEFT}" y="18">Game load: round trip (steady) against bots, p99 solid, p50 dashed</text>']
    decade = y0
    while decade <= y1:
        y = py(decade)
        svg.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>')
        svg.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{decade:g} ms</text>')
        decade *= 10
    target = py(10)
    svg.append(f'<line x1="{LEFT}" y1="{target:.1f}" x2="{W - RIGHT}" y2="{target:.1f}" stroke="#999" '
               'stroke-dasharray="2,3"/>')
    svg.append(f'<text x="{W - RIGHT + 4}" y="{target + 4:.1f}" fill="#666">10 ms target</text>')
    for x in sorted(set(xs)):
        svg.append(f'<text x="{px(x):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{x}</text>')
    svg.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 8}" text-anchor="middle">bots (20 moves/s each)</text>')
    for i, (tag, pts) in enumerate(data.items()):
        colour = COLOURS[i % len(COLOURS)]
        for column, dash in ((2, ""), (1, ' stroke-dasharray="5,4"')):
            path = " ".join(f"{px(p[0]):.1f},{py(p[column]):.1f}" for p in pts)
            svg.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        svg.append(f'<text x="{W - RIGHT + 4}" y="{TOP + 20 + 18 * i}" fill="{colour}">{tag}</text>')
    svg.append("</svg>")
    open(out, "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
