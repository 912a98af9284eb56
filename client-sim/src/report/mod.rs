//! What a run measured: counters, latency and tick-gap distributions, the simulator's own CPU
//! time ([`process_cpu_secs`], [`thread_cpu_secs`]); printed as a table ([`Report::table`]) or
//! written as JSON ([`Report::json`]).

mod counters;
mod cpu;
mod figures;
mod table;

pub use counters::Counters;
pub use cpu::{process_cpu_secs, thread_cpu_secs};
pub use figures::{
    AccountFigures, BucketCount, BucketQuantile, BucketSummary, ChurnFigures, FaultFigures, LinkFigures,
    PersistFigures, ReplicaFigures, ResumeFigures, ServerFigures, ServerSessionFigures, ServerTickFigures,
    TickHealth, TickStampFigures, UrlShare, WhisperFigures,
};

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A distribution's summary, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Quantiles {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
}

impl Quantiles {
    /// The summary of `h`.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            min: h.min(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
            stdev: h.stdev(),
        }
    }
}

/// Rates and costs over the steady window (after the last bot was started).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Window {
    /// Length of the window, in seconds.
    pub secs: f64,
    /// Requests sent per second.
    pub calls_per_sec: f64,
    /// Answers (replies and error replies) per second.
    pub answers_per_sec: f64,
    /// Pushes received per second, all topics.
    pub pushes_per_sec: f64,
    /// `state` pushes received per second.
    pub state_pushes_per_sec: f64,
    /// Bytes of push bodies received per second per bot (all topics; `--bots` bots).
    pub push_bytes_per_bot_sec: f64,
    /// Bytes of state push bodies (`state`, or `replica`) received per second per bot.
    pub state_bytes_per_bot_sec: f64,
    /// CPU time of the simulator's worker threads in the window, in seconds.
    pub worker_cpu_secs: f64,
    /// That, as a percentage of one core.
    pub worker_cpu_percent: f64,
    /// CPU time of the whole process in the window (includes anything else in the process,
    /// such as an in-process server in tests), in seconds.
    pub process_cpu_secs: f64,
    /// That, as a percentage of one core.
    pub process_cpu_percent: f64,
}

/// The gaps between consecutive `state` pushes of a bot, against the tick period.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TickJitter {
    /// The server's tick rate, from its welcome.
    pub tick_hz: u16,
    /// The nominal gap, 1/tick_hz, in microseconds.
    pub nominal_us: u64,
    /// The gaps seen, in microseconds.
    pub gap_us: Quantiles,
    /// Ticks never seen by a bot although it was in its arena.
    pub ticks_skipped: u64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The server's URL (the `--url`s, comma-separated, when there are several).
    pub url: String,
    /// Each `--url` and the bots that started on it.
    pub urls: Vec<UrlShare>,
    /// `arena`, `echo`, `churn`, `idle`, `faults` or `whisper`.
    pub scenario: String,
    /// Bots asked for.
    pub bots: u64,
    /// Worker threads.
    pub threads: u64,
    /// Calls per second per bot (arena; echo: `--echo-rate`, 0 when it keeps a window).
    pub rate: f64,
    /// Echo calls in flight per bot (echo).
    pub window: u64,
    /// Seconds from the start to the last bot started.
    pub ramp_secs: f64,
    /// Counts over the whole run.
    pub counters: Counters,
    /// Request frames sent over the whole run.
    pub sent: u64,
    /// Calls still waiting for their answer at the end (not counted as errors).
    pub in_flight_at_end: u64,
    /// Bots connected at the end.
    pub connected_at_end: u64,
    /// Errors as [`Counters::errors`] counts them.
    pub errors: u64,
    /// Error replies by code.
    pub error_codes: BTreeMap<u16, u64>,
    /// A few connection errors, by message, with their counts.
    pub connect_errors: BTreeMap<String, u64>,
    /// Round trip of every answered call (reply or error reply), whole run, microseconds.
    pub rtt_us: Quantiles,
    /// Round trip in the steady window only, microseconds.
    pub rtt_steady_us: Quantiles,
    /// Tick interval jitter seen in the `state` pushes.
    pub tick_jitter: TickJitter,
    /// The steady window's rates and CPU.
    pub steady: Window,
    /// How late the bots' move and chat timers fired, microseconds: the simulator's own lag.
    /// A p99 of more than a few milliseconds means it could not keep up, and its round trips
    /// include its own delay in reading the answers.
    pub timer_late_us: Quantiles,
    /// CPU time of the whole process over the whole run, in seconds.
    pub process_cpu_secs: f64,
    /// Wall time of the whole run, in seconds.
    pub wall_secs: f64,
    /// The churn scenario's rates and cycle times (churn only).
    pub churn: Option<ChurnFigures>,
    /// The faults scenario's settings and kill rate (faults only).
    pub faults: Option<FaultFigures>,
    /// `--faults`: the settings, checks and the server's session figures.
    pub resume: Option<ResumeFigures>,
    /// The whisper scenario's settings, checks and delivery latency (whisper only).
    pub whisper: Option<WhisperFigures>,
    /// Requests sent again after resumes (version 2), beyond [`Report::sent`].
    pub resent: u64,
    /// The server process's descriptors and memory (with `--server-pid` only).
    pub server: Option<ServerFigures>,
    /// The server's ticks (the first `--url`'s), from its `/metrics` histograms.
    pub server_ticks: ServerTickFigures,
    /// `--accounts guest`: the guest accounts and their sign-ins.
    pub accounts: Option<AccountFigures>,
    /// `--persist-per-sec`: the `flush_stats` calls.
    pub persist: Option<PersistFigures>,
    /// `--tick-stamps`: the stamped replies' lag behind the last `state` seen.
    pub tick_stamps: Option<TickStampFigures>,
    /// `--replication`: the bots' mirrors and their checks against the server's digests.
    pub replica: Option<ReplicaFigures>,
    /// `--latency-ms`, `--jitter-ms`, `--bandwidth-kbps`: the link conditioner, and the round
    /// trips split into its share and the rest.
    pub link: Option<LinkFigures>,
    /// Seconds after the start when the run was interrupted (Ctrl-C), if it was: the counts
    /// are those of the run so far, the rates those of the part of the steady window that ran.
    pub interrupted_after_secs: Option<f64>,
}

impl Report {
    /// `--faults`, `--replication` and the whisper scenario: the checks that must come to zero
    /// and did not, by name and count. Empty when all passed, or in other runs.
    pub fn failed_checks(&self) -> Vec<(&'static str, u64)> {
        if let Some(r) = &self.replica {
            return [
                ("replicated views that differ from the server's (digest mismatches)", r.mismatches),
                ("digests of a tick no mirror held (an update lost or refused)", r.tick_unseen),
                ("replica updates the mirror could not apply", r.not_applied),
                (
                    "runs with no digest compared (nothing was checked)",
                    u64::from(r.checks == 0 && r.mirror_share > 0.0),
                ),
            ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        }
        if let Some(w) = &self.whisper {
            return [("whispers lost", w.lost), ("whispers duplicated", w.duplicated)]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect();
        }
        let Some(r) = &self.resume else { return Vec::new() };
        let c = &self.counters;
        let unexplained = match &r.server {
            Some(s) => r.ticks_unseen.saturating_sub(s.ticks_skipped),
            None => 0,
        };
        [
            ("requests run twice (once answers > 1)", c.once_ran_twice),
            ("calls lost (timed out)", c.timed_out),
            ("answers lost (stale_request)", c.answers_lost),
            ("state pushes lost", r.pushes_lost),
            ("state pushes duplicated", c.pushes_duplicated),
            ("ticks no session saw beyond those the server skipped", unexplained),
            ("resumes refused inside the window", c.failed_inside - c.failed_inside_before_first_frame),
            (
                "resumes refused inside the window, of sessions killed before their first frame",
                c.failed_inside_before_first_frame,
            ),
            ("resumes accepted outside the window", c.resumed_outside),
            ("old links not ended by the resume", c.old_links_not_ended),
            ("sessions ended without a kill", c.sessions_ended_unplanned),
            ("links dropped without a kill", c.unexpected_drops),
            ("links not on version 2", c.links_not_v2),
            ("sessions unsettled at the end", r.unsettled_at_end),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }

    /// The report as pretty JSON.
    pub fn json(&self) -> String {
        // A struct of numbers, strings and maps with string or integer keys always serializes.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// Timers this late at the 99th percentile mean the simulator could not keep up, microseconds.
pub const SIM_LAG_WARNING_US: u64 = 5_000;

/// `part` as a percentage of `whole` (0 when `whole` is 0).
pub fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole * 100.0 } else { 0.0 }
}
