//! The report as an aligned table, for a terminal.

use std::fmt::Write as _;

use super::{BucketQuantile, BucketSummary, Quantiles, Report, SIM_LAG_WARNING_US, percent};

/// Microseconds as milliseconds, as short as exact (`250` is `0.25`).
fn ms(us: u64) -> String {
    format!("{}", us as f64 / 1000.0)
}

/// A quantile of a histogram of buckets, in milliseconds: its bucket and the estimate inside
/// (`0.5-1 (~0.83)`), `<=0.1 (~0.05)` in the first, `>250` past the last, `-` with no values.
fn bucket_ms(q: Option<BucketQuantile>) -> String {
    let Some(q) = q else { return "-".to_owned() };
    let estimate = q.estimate_us as f64 / 1000.0;
    match q.at_most_us {
        None => format!(">{}", ms(q.above_us)),
        Some(at_most) if q.above_us == 0 => format!("<={} (~{estimate:.2})", ms(at_most)),
        Some(at_most) => format!("{}-{} (~{estimate:.2})", ms(q.above_us), ms(at_most)),
    }
}

impl Report {
    /// The rows of `--faults`: settings, kills, resumes against the window, calls, pushes, and
    /// the server's sessions.
    fn resume_rows(&self, row: &mut impl FnMut(&str, String)) {
        let (Some(r), c) = (&self.resume, &self.counters) else { return };
        row(
            "faults (version 2)",
            format!(
                "{}/min per bot; resets {}, early {}, fresh {} ({}); outages {}-{} s; once every {}",
                r.fault_rate_per_min,
                r.rst_share,
                r.early_share,
                r.fresh_share,
                r.fresh_when,
                r.outage_secs.0,
                r.outage_secs.1,
                r.once_every
            ),
        );
        row(
            "server limits (as told)",
            format!(
                "grace {} s, replay {} bytes, idle timeout {} s",
                r.server_grace_secs, r.server_replay_bytes, r.server_idle_timeout_secs
            ),
        );
        row(
            "kills: reset / half-open (early)",
            format!("{} / {} ({})", c.kills_rst, c.kills_half_open, c.kills_early),
        );
        row(
            "kills of fresh sessions: before / after 1st frame",
            format!("{} / {}", c.kills_fresh_before, c.kills_fresh_after),
        );
        row(
            "resumes attempted / accepted / refused",
            format!("{} / {} / {}", c.resumes_attempted, c.resumes_ok, c.resumes_failed),
        );
        if !r.resume_failures.is_empty() {
            let reasons: Vec<String> = r.resume_failures.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            row("refused, by reason", reasons.join(", "));
        }
        row(
            "inside the window: resumed / REFUSED",
            format!(
                "{} / {}  ({} of them killed before their first frame)",
                c.resumed_inside, c.failed_inside, c.failed_inside_before_first_frame
            ),
        );
        row("near an edge: resumed / refused", format!("{} / {}", c.resumed_edge, c.failed_edge));
        row("outside the window: refused / RESUMED", format!("{} / {}", c.failed_outside, c.resumed_outside));
        row(
            "early: old link open at reconnect / ended by resume / NOT",
            format!(
                "{} / {} / {}",
                c.old_links_open_at_reconnect, c.old_links_ended_by_resume, c.old_links_not_ended
            ),
        );
        row("requests resent after resumes", format!("{}", self.resent));
        row("once calls / RAN TWICE", format!("{} / {}", c.calls_once, c.once_ran_twice));
        row("calls LOST: timed out / answer lost", format!("{} / {}", c.timed_out, c.answers_lost));
        row("calls failed with their session (explicit)", format!("{}", c.calls_failed_session_ended));
        row("moves skipped while offline", format!("{}", c.moves_skipped_offline));
        row("state pushes LOST / DUPLICATED", format!("{} / {}", r.pushes_lost, c.pushes_duplicated));
        let skipped = r.server.map_or_else(|| "?".to_owned(), |s| s.ticks_skipped.to_string());
        row(
            "state pushes missed at skipped ticks",
            format!(
                "{} ({} ticks no session saw; server skipped {skipped})",
                r.pushes_missed_skipped, r.ticks_unseen
            ),
        );
        row(
            "link drops / session ends WITHOUT a kill",
            format!("{} / {}", c.unexpected_drops, c.sessions_ended_unplanned),
        );
        row(
            "links not v2 / unsettled at end",
            format!("{} / {}  (drain {:.1} s)", c.links_not_v2, r.unsettled_at_end, r.drain_secs),
        );
        for surprise in &r.surprises {
            row("against the window", surprise.clone());
        }
        match &r.server {
            Some(s) => {
                row(
                    "server: sessions without link, max (bytes max)",
                    format!("{} ({})", s.dropped_max, s.dropped_bytes_max),
                );
                row(
                    "server: bytes per dropped session max / mean",
                    format!(
                        "{:.0} / {:.0}  ({} samples)",
                        s.bytes_per_dropped_max, s.bytes_per_dropped_mean, s.samples
                    ),
                );
                row(
                    "server: resumes / refused / expired / overflowed",
                    format!("{} / {} / {} / {}", s.resumes, s.resume_failures, s.expired, s.overflowed),
                );
            }
            None => row("server sessions (/metrics)", "could not be read".to_owned()),
        }
    }

    /// The rows of the server's ticks, from its `/metrics` histograms.
    fn server_tick_rows(&self, row: &mut impl FnMut(&str, String)) {
        let t = &self.server_ticks;
        let Some(run) = &t.run else {
            row("server ticks (/metrics)", "could not be read".to_owned());
            return;
        };
        let summary = |s: &BucketSummary| {
            format!("{} / {} / {:.3}", bucket_ms(s.p50), bucket_ms(s.p99), s.mean_us / 1000.0)
        };
        if let Some(steady) = &t.steady {
            row("server ticks, steady: run / skipped", format!("{} / {}", steady.ticks, steady.skipped));
            row("server tick lateness, steady (ms) p50/p99/mean", summary(&steady.lateness));
            row("server tick duration, steady (ms) p50/p99/mean", summary(&steady.duration));
        }
        row("server ticks, whole run: run / skipped", format!("{} / {}", run.ticks, run.skipped));
        row("server tick lateness, whole run (ms) p50/p99/mean", summary(&run.lateness));
        let bounds: Vec<String> = t.bucket_bounds_us.iter().map(|&us| ms(us)).collect();
        row(
            "server tick buckets (ms)",
            format!("{}: a quantile is known to its bucket, ~ interpolates within it", bounds.join(" ")),
        );
    }

    /// The rows of `--accounts guest` and `--persist-per-sec`.
    fn account_rows(&self, row: &mut impl FnMut(&str, String)) {
        if let Some(a) = &self.accounts {
            row("guests made / auths ok", format!("{} / {}", a.guests_created, a.auths_ok));
            row("guest / auth FAILED", format!("{} / {}", a.guest_failures, a.auth_failures));
            for (kind, n) in &a.failures {
                row("sign-in failed", format!("{n} x {kind}"));
            }
        }
        if let Some(p) = &self.persist {
            row(
                "flush_stats: calls / committed / FAILED",
                format!(
                    "{} / {} / {}  ({} per bot per s; {:.0} committed/s steady)",
                    p.calls, p.replied, p.failed, p.per_sec, p.replied_per_sec_steady
                ),
            );
            let q = &p.latency_us;
            row(
                "flush_stats (µs) p50/p90/p99/max",
                format!("{} / {} / {} / {}  ({} samples)", q.p50, q.p90, q.p99, q.max, q.count),
            );
            let s = &p.latency_steady_us;
            row("steady flush_stats (µs) p50/p99/max", format!("{} / {} / {}", s.p50, s.p99, s.max));
            for (kind, n) in &p.failures {
                row("flush_stats failed", format!("{n} x {kind}"));
            }
        }
        if let Some(s) = &self.tick_stamps {
            let q = &s.lag_ticks;
            row(
                "stamped tick lag (ticks) p50/p99/max",
                format!("{} / {} / {}  ({} stamped replies after a state)", q.p50, q.p99, q.max, q.count),
            );
        }
    }

    /// The rows of the link conditioner: its settings, and the round trips split into the
    /// time it held each call's frames and the rest.
    fn link_rows(&self, row: &mut impl FnMut(&str, String)) {
        let Some(l) = &self.link else { return };
        let cap = if l.bandwidth_kbps > 0.0 {
            format!("{} kbps each way (bucket {} bytes)", l.bandwidth_kbps, l.burst_bytes)
        } else {
            "no bandwidth cap".to_owned()
        };
        row(
            "link conditioner",
            format!(
                "{} ms ± {} ms each way (uniform, in order); {cap}; holds at most {} KiB each way",
                l.latency_ms,
                l.jitter_ms,
                l.window_bytes >> 10
            ),
        );
        let four = |q: &Quantiles| format!("{} / {} / {} / {}", q.p50, q.p90, q.p99, q.max);
        let three = |q: &Quantiles| format!("{} / {} / {}", q.p50, q.p99, q.max);
        row("round trip seen (µs) p50/p90/p99/max", four(&self.rtt_us));
        row("  held in the conditioner (µs)", four(&l.held_us));
        row("  the rest: server+network+sim (µs)", four(&l.rtt_less_held_us));
        row("steady round trip seen (µs) p50/p99/max", three(&self.rtt_steady_us));
        row("  held in the conditioner (µs)", three(&l.held_steady_us));
        row("  the rest: server+network+sim (µs)", three(&l.rtt_less_held_steady_us));
        row(
            "frames held, out / in (µs) p50/p99",
            format!(
                "{} / {}, {} / {}  ({} / {} frames)",
                l.frame_out_held_us.p50,
                l.frame_out_held_us.p99,
                l.frame_in_held_us.p50,
                l.frame_in_held_us.p99,
                l.frame_out_held_us.count,
                l.frame_in_held_us.count
            ),
        );
        if l.out_paused + l.in_paused > 0 {
            row("conditioner full: sends / reads paused", format!("{} / {}", l.out_paused, l.in_paused));
        }
    }

    /// The rows of `--replication`.
    fn replica_rows(&self, row: &mut impl FnMut(&str, String)) {
        let Some(r) = &self.replica else { return };
        row(
            "replica updates applied / full / NOT APPLIED",
            format!("{} / {} / {}", r.updates, r.full_snapshots, r.not_applied),
        );
        row(
            "replica acks: sent / accepted / stale / unknown",
            format!("{} / {} / {} / {}", r.acks, r.acks_accepted, r.acks_stale, r.acks_unknown),
        );
        row(
            "digests compared / MISMATCHED / tick UNSEEN",
            format!(
                "{} / {} / {}  (every {} s per bot)",
                r.checks, r.mismatches, r.tick_unseen, r.digest_every_secs
            ),
        );
        row("digests: first after a join / none answered", format!("{} / {}", r.after_join, r.absent));
        row("own avatar's cell crossings", format!("{}", r.cell_crossings));
    }

    /// The report as an aligned table, for a terminal.
    pub fn table(&self) -> String {
        let c = &self.counters;
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |k: &str, v: String| rows.push((k.to_owned(), v));
        row("url", self.url.clone());
        if self.urls.len() > 1 {
            for share in &self.urls {
                row("bots started on", format!("{}: {}", share.url, share.bots));
            }
        }
        if let Some(secs) = self.interrupted_after_secs {
            row(
                "INTERRUPTED",
                format!(
                    "after {secs:.1} s; the figures are those of the run so far ({:.1} s steady)",
                    self.steady.secs
                ),
            );
        }
        row("scenario", format!("{} ({} bots, {} threads)", self.scenario, self.bots, self.threads));
        if self.scenario == "echo" && self.rate > 0.0 {
            row("rate", format!("{} echo calls/s per bot, sent when due", self.rate));
        } else if self.scenario == "echo" {
            row("window", format!("{} calls in flight per bot", self.window));
        } else if self.scenario == "idle" {
            row("calls", "one echo call per connection, then silence".to_owned());
        } else if let Some(churn) = &self.churn {
            row("drop fraction / pause", format!("{} / {} s", churn.drop_fraction, churn.pause_secs));
        } else if let Some(f) = &self.faults {
            row("rate", format!("{} calls/s per bot", self.rate));
            row(
                "lifetime / reset fraction / hold",
                format!("{} s / {} / {} s", f.lifetime_secs, f.rst_fraction, f.half_open_hold_secs),
            );
        } else if self.whisper.is_none() {
            row("rate", format!("{} calls/s per bot", self.rate));
        }
        row("ramp / steady window", format!("{:.1} s / {:.1} s", self.ramp_secs, self.steady.secs));
        row(
            "bots connected",
            format!("{} of {} (at end: {})", c.bots_connected, self.bots, self.connected_at_end),
        );
        row("connect attempts / failed", format!("{} / {}", c.connect_attempts, c.connect_failures));
        row("disconnects / reconnects", format!("{} / {}", c.disconnects, c.reconnects));
        row("calls sent", format!("{}", self.sent));
        row("replied", format!("{}", c.replied));
        row("error replies", format!("{}", c.errored));
        row("timed out", format!("{}", c.timed_out));
        row("lost to a drop / refused", format!("{} / {}", c.disconnected_calls, c.refused));
        row("in flight at end", format!("{}", self.in_flight_at_end));
        row("errors (for --max-errors)", format!("{}", self.errors));
        let failed_redirects =
            c.redirects_failed_closed + c.redirects_failed_too_many + c.redirects_failed_bad_url;
        if self.urls.len() > 1 || c.redirects_followed + failed_redirects > 0 {
            row(
                "redirects followed / FAILED",
                format!(
                    "{} / {} (closed before the answer {}, after 3 already {}, bad URL {})",
                    c.redirects_followed,
                    failed_redirects,
                    c.redirects_failed_closed,
                    c.redirects_failed_too_many,
                    c.redirects_failed_bad_url
                ),
            );
        }
        if let Some(w) = &self.whisper {
            row("whisper rate / drain", format!("{} per bot per s / {:.1} s", w.rate, w.drain_secs));
            row("whispers sent / failed / received", format!("{} / {} / {}", w.sent, w.failed, w.received));
            row(
                "whispers LOST / DUPLICATED / out of order",
                format!("{} / {} / {}", w.lost, w.duplicated, w.out_of_order),
            );
            let q = &w.latency_us;
            row(
                "whisper latency (µs) p50/p90/p99/max",
                format!("{} / {} / {} / {}  ({} samples)", q.p50, q.p90, q.p99, q.max, q.count),
            );
            if c.whispers_unknown > 0 {
                row("whisper pushes not of this run", format!("{}", c.whispers_unknown));
            }
        }
        if let Some(churn) = &self.churn {
            row(
                "cycles completed (clean / dropped)",
                format!("{} ({} / {})", c.cycles, c.clean_closes, c.abrupt_drops),
            );
            row("cycle failures", format!("{}", c.cycle_failures));
            row(
                "unclean closes / unexpected drops",
                format!("{} / {}", c.unclean_closes, c.unexpected_drops),
            );
            row(
                "cycles/s steady (whole run)",
                format!("{:.0} ({:.0})", churn.cycles_per_sec, churn.cycles_per_sec_whole_run),
            );
            let q = &churn.cycle_us;
            row("cycle time (µs) p50/p99/max", format!("{} / {} / {}", q.p50, q.p99, q.max));
        }
        if let Some(f) = &self.faults {
            row(
                "kills: reset / half-open (per s)",
                format!("{} / {} ({:.1})", c.kills_rst, c.kills_half_open, f.kills_per_sec),
            );
            row(
                "half-open closed by the server / missed",
                format!("{} / {}", c.half_open_found, c.half_open_missed),
            );
            row("unexpected drops", format!("{}", c.unexpected_drops));
        }
        let q = &self.rtt_us;
        row("round trip (µs) p50/p90/p99", format!("{} / {} / {}", q.p50, q.p90, q.p99));
        row("round trip (µs) p99.9/max", format!("{} / {}  ({} samples)", q.p999, q.max, q.count));
        let s = &self.rtt_steady_us;
        row("steady round trip (µs) p50/p99/max", format!("{} / {} / {}", s.p50, s.p99, s.max));
        self.link_rows(&mut row);
        row(
            "steady calls/s, answers/s",
            format!("{:.0}, {:.0}", self.steady.calls_per_sec, self.steady.answers_per_sec),
        );
        row(
            "steady pushes/s (state)",
            format!("{:.0} ({:.0})", self.steady.pushes_per_sec, self.steady.state_pushes_per_sec),
        );
        row("pushes decoded in full / bad", format!("{} / {}", c.pushes_decoded, c.bad_pushes));
        row(
            "steady push bytes/s per bot: all (state)",
            format!("{:.0} ({:.0})", self.steady.push_bytes_per_bot_sec, self.steady.state_bytes_per_bot_sec),
        );
        if let Some(bytes) = self.server_ticks.steady.as_ref().and_then(|t| t.bytes_out) {
            let per_bot = if self.steady.secs > 0.0 {
                bytes as f64 / self.steady.secs / self.bots.max(1) as f64
            } else {
                0.0
            };
            row("steady server bytes out/s per bot (/metrics)", format!("{per_bot:.0}"));
        }
        if c.link_losses > 0 {
            row("links lost on purpose (--link-loss-every)", format!("{}", c.link_losses));
        }
        self.replica_rows(&mut row);
        if self.resume.is_some() {
            self.resume_rows(&mut row);
        }
        let j = &self.tick_jitter;
        if self.churn.is_none() && self.faults.is_none() && self.resume.is_none() && self.scenario != "idle" {
            row("tick", format!("{} Hz, nominal gap {} µs", j.tick_hz, j.nominal_us));
            row(
                "state gap (µs) p50/p90/p99",
                format!("{} / {} / {}", j.gap_us.p50, j.gap_us.p90, j.gap_us.p99),
            );
            row(
                "state gap (µs) p99.9/max, stdev",
                format!("{} / {}, {:.0}", j.gap_us.p999, j.gap_us.max, j.gap_us.stdev),
            );
            row("ticks skipped", format!("{}", j.ticks_skipped));
        }
        self.server_tick_rows(&mut row);
        self.account_rows(&mut row);
        let late = &self.timer_late_us;
        if late.count > 0 {
            row("sim timers late (µs) p50/p99/max", format!("{} / {} / {}", late.p50, late.p99, late.max));
            if late.p99 > SIM_LAG_WARNING_US {
                row(
                    "WARNING",
                    format!(
                        "the simulator fell behind (timers p99 > {} ms late): it, not only the server, was measured",
                        SIM_LAG_WARNING_US / 1000
                    ),
                );
            }
        }
        row(
            "sim CPU, steady (workers)",
            format!(
                "{:.2} s = {:.1}% of one core",
                self.steady.worker_cpu_secs, self.steady.worker_cpu_percent
            ),
        );
        row(
            "sim CPU, steady (process)",
            format!(
                "{:.2} s = {:.1}% of one core",
                self.steady.process_cpu_secs, self.steady.process_cpu_percent
            ),
        );
        row(
            "sim CPU, whole run (process)",
            format!(
                "{:.2} s over {:.1} s = {:.1}% of one core",
                self.process_cpu_secs,
                self.wall_secs,
                percent(self.process_cpu_secs, self.wall_secs)
            ),
        );
        if !self.error_codes.is_empty() {
            let codes: Vec<String> = self
                .error_codes
                .iter()
                .map(|(code, n)| format!("{code} {}: {n}", ticksock_protocol::error_code::name(*code)))
                .collect();
            row("error codes", codes.join(", "));
        }
        for (message, n) in &self.connect_errors {
            row("connect error", format!("{n} x {message}"));
        }
        if let Some(s) = &self.server {
            row("server pid", format!("{}", s.pid));
            row(
                "server fds before/peak/end/settled",
                format!("{} / {} / {} / {}", s.fds_before, s.fds_peak, s.fds_end, s.fds_settled),
            );
            row(
                "server fds back at baseline",
                match s.fds_back_after_ms {
                    Some(ms) => format!("yes, {ms} ms after the run"),
                    None => format!("NO, not within {} s", s.settle_secs),
                },
            );
            row(
                "server fds / RSS KiB with all bots connected",
                format!("{} / {}", s.fds_loaded, s.rss_kib_loaded),
            );
            row(
                "server RSS KiB before/peak/end/settled",
                format!(
                    "{} / {} / {} / {}",
                    s.rss_kib_before, s.rss_kib_peak, s.rss_kib_end, s.rss_kib_settled
                ),
            );
            if let Some(per) = s.rss_per_connection_kib {
                row(
                    "server RSS growth per connection",
                    format!(
                        "{per:.2} KiB = ({} - {} KiB) / {} connections",
                        s.rss_kib_loaded, s.rss_kib_before, self.connected_at_end
                    ),
                );
            }
            row(
                "server RSS high-water KiB before/after",
                format!("{} / {}", s.hwm_kib_before, s.hwm_kib_settled),
            );
            let show = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
            row(
                "server open conns before/settled",
                format!(
                    "{} / {}  (the /metrics request itself is one)",
                    show(s.open_before),
                    show(s.open_settled)
                ),
            );
        }
        if self.resume.is_some() {
            let failed = self.failed_checks();
            let verdict = if failed.is_empty() {
                "all passed".to_owned()
            } else {
                let list: Vec<String> = failed.iter().map(|(name, n)| format!("{name}: {n}")).collect();
                format!("FAILED: {}", list.join(", "))
            };
            row("CHECKS (--faults)", verdict);
        }
        let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let pad = width - k.chars().count();
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{k}{}  {v}", " ".repeat(pad));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_quantile_reads_as_its_bucket_and_the_estimate() {
        let q =
            |above_us, at_most_us, estimate_us| Some(BucketQuantile { above_us, at_most_us, estimate_us });
        assert_eq!(bucket_ms(q(500, Some(1000), 830)), "0.5-1 (~0.83)");
        assert_eq!(bucket_ms(q(0, Some(100), 50)), "<=0.1 (~0.05)");
        assert_eq!(bucket_ms(q(250_000, None, 250_000)), ">250");
        assert_eq!(bucket_ms(None), "-");
        assert_eq!(ms(33_000), "33");
    }
}
