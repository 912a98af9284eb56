"""The soak script's arithmetic, without a server: python3 -m unittest discover -s benches/soak"""
import unittest

import soak


def metrics(late_buckets, skipped=0, timeouts=0, **extra):
    """A scrape with the tick lateness histogram given as {bound: cumulative count}."""
    m = {
        "ticksock_ticks_skipped_total": skipped,
        "ticksock_closes_timeout_total": timeouts,
        "ticksock_panics_total": 0,
        "ticksock_closes_overflow_total": 0,
        "ticksock_closes_rate_limited_total": 0,
        "ticksock_error_replies_total{code=\"app\"}": 0,
    }
    for bound in [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.25]:
        below = [n for b, n in late_buckets.items() if b <= bound]
        m[f'ticksock_tick_lateness_seconds_bucket{{le="{bound}"}}'] = max(below, default=0)
    total = max(late_buckets.values(), default=0)
    m['ticksock_tick_lateness_seconds_bucket{le="+Inf"}'] = late_buckets.get(float("inf"), total)
    m["ticksock_tick_lateness_seconds_count"] = late_buckets.get(float("inf"), total)
    m.update(extra)
    return m


class Arithmetic(unittest.TestCase):
    def test_slope_is_per_minute_and_flat_is_zero(self):
        self.assertAlmostEqual(soak.slope_per_min([(t, 100 + 2 * t) for t in range(0, 60, 5)]), 120)
        self.assertEqual(soak.slope_per_min([(t, 7) for t in range(10)]), 0)
        self.assertEqual(soak.slope_per_min([(0, 1)]), 0)
        k, b = soak.fit([(0, 1), (10, 21)])
        self.assertAlmostEqual(k, 2)
        self.assertAlmostEqual(b, 1)

    def test_lateness_is_measured_between_two_scrapes(self):
        before = metrics({0.0001: 100})
        # 60 more ticks: 57 within 100 us, 2 more within 2 ms, the last within 20 ms.
        after = metrics({0.0001: 157, 0.002: 159, 0.02: 160})
        ticks, share, worst = soak.lateness(before, after)
        self.assertEqual(ticks, 60)
        self.assertAlmostEqual(share, 3 / 60)
        self.assertEqual(worst, 0.02)
        past_the_last_bound = metrics({0.0001: 157, float("inf"): 161})
        self.assertEqual(soak.lateness(before, past_the_last_bound)[2], float("inf"))
        self.assertEqual(soak.lateness(before, before), (0, 0.0, 0.0))

    def test_axis_ticks_cover_the_values_in_round_steps(self):
        for lo, hi in [(4.07, 6.94), (0, 480), (100.5, 100.7), (0, 0.3), (3, 3)]:
            ticks = soak.nice_ticks(lo, hi)
            self.assertLessEqual(ticks[0], lo)
            self.assertGreaterEqual(ticks[-1], hi)
            self.assertTrue(3 <= len(ticks) <= 12, ticks)
        self.assertEqual(soak.nice_ticks(0, 480), [0, 100, 200, 300, 400, 500])


class VerdictCase(unittest.TestCase):
    """A quiet run of 2 arena bots and a few faults, to change one thing at a time."""

    def setUp(self):
        self.args = soak.parse_args(["--minutes", "1", "--arena-bots", "2"])
        # Flat RSS and descriptors over the load.
        self.rows = [{"t_s": t, "phase": "load", "rss_kib": 5000, "fds": 50, "ticks_skipped": 0,
                      "late_max_ms": 0.1, "host_stall_ms": 1.0} for t in range(0, 60, 2)]
        self.reports = {
            "arena": report(errors=0, connected_at_end=2),
            "faults": report(kills_rst=5, kills_half_open=5, half_open_found=4),
        }
        self.baseline = {"fds": 8, "conns_open": 1}
        self.settled = {"fds": 8, "conns_open": 1}

    def judge(self, rows=None, first=None, last=None, settled=None, reports=None):
        first = first or metrics({0.0001: 10})
        last = last or metrics({0.0001: 1810}, timeouts=4)
        rows = rows or self.rows
        reports = reports or self.reports
        exits = {name: 0 for name in reports}
        fails, self.warnings, *_ = soak.verdict(self.args, rows, rows, reports, exits, first, last,
                                                settled or self.settled, self.baseline, 0)
        return fails



class Verdict(VerdictCase):
    def test_a_quiet_run_passes(self):
        self.assertEqual(self.judge(), [])

    def test_one_step_of_rss_in_a_short_run_is_allowed_a_steady_climb_is_not(self):
        # +60 KiB at once, halfway: a slope above the limit, but 87 KiB over the window.
        step = [dict(r, rss_kib=5000 + (60 if r["t_s"] >= 30 else 0)) for r in self.rows]
        self.assertGreater(soak.slope_per_min([(r["t_s"], r["rss_kib"]) for r in step]), self.args.max_rss_slope)
        self.assertEqual(self.judge(rows=step), [])
        # 120 KiB/min for 58 s is 116 KiB: under the allowance; the same for 20 minutes is not.
        climb = [dict(r, rss_kib=5000 + r["t_s"] * 2) for r in self.rows]
        self.assertEqual(self.judge(rows=climb), [])
        long_climb = [{**self.rows[0], "t_s": t, "rss_kib": 5000 + t * 2} for t in range(0, 1200, 10)]
        self.assertIn("RSS grows +120 KiB/min", self.judge(rows=long_climb)[0])

    def test_each_rule_fails_on_its_own(self):
        growing = [dict(r, rss_kib=5000 + r["t_s"] * 6) for r in self.rows]  # 360 KiB/min, 58 s
        self.assertIn("RSS grows +360 KiB/min", self.judge(rows=growing)[0])
        leaking = [dict(r, fds=50 + r["t_s"]) for r in self.rows]  # 60/min
        self.assertIn("descriptors grow", self.judge(rows=leaking)[0])
        skipping = [dict(r, ticks_skipped=1 if r["t_s"] >= 30 else 0) for r in self.rows]
        fails = self.judge(rows=skipping, last=metrics({0.0001: 1810}, skipped=1, timeouts=4))
        self.assertIn("1 ticks skipped at 28-30 s", fails[0])
        self.assertEqual(self.warnings, [])
        self.assertIn("descriptors 3 s after the load", self.judge(settled={"fds": 9, "conns_open": 1})[0])
        errors = dict(self.reports, arena=report(errors=3, connected_at_end=2))
        self.assertIn("client-sim arena: 3 errors", self.judge(reports=errors)[0])
        # More connections closed for silence than half-open kills: something else went quiet.
        self.assertIn("more than the 5 half-open kills", self.judge(last=metrics({0.0001: 1810}, timeouts=6))[0])
        self.assertIn("fewer than the 4", self.judge(last=metrics({0.0001: 1810}, timeouts=3))[0])


class SkippedTicks(VerdictCase):
    def skipping_while_the_machine_stalls(self, stall_ms):
        rows = [dict(r, ticks_skipped=1 if r["t_s"] >= 30 else 0, host_stall_ms=stall_ms if r["t_s"] == 30 else 1.0)
                for r in self.rows]
        return self.judge(rows=rows, last=metrics({0.0001: 1810}, skipped=1, timeouts=4))

    def test_a_skip_during_a_machine_stall_of_a_tick_period_is_a_warning(self):
        self.assertEqual(self.skipping_while_the_machine_stalls(40.0), [])
        self.assertIn("the machine stalled 40.0 ms", self.warnings[0])
        # 30 Hz: a period is 33.3 ms; a shorter stall does not explain the skip.
        self.assertIn("1 ticks skipped", self.skipping_while_the_machine_stalls(30.0)[0])

    def test_strict_ticks_fails_every_skip(self):
        self.args.strict_ticks = True
        self.assertIn("1 ticks skipped", self.skipping_while_the_machine_stalls(40.0)[0])
        self.assertEqual(self.warnings, [])


def report(errors=0, connected_at_end=0, **counters):
    c = {"kills_rst": 0, "kills_half_open": 0, "half_open_found": 0, "disconnects": 0}
    c.update(counters)
    return {"errors": errors, "connected_at_end": connected_at_end, "counters": c,
            "error_codes": {}, "connect_errors": {}}


if __name__ == "__main__":
    unittest.main()
