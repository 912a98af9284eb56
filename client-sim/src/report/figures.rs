//! The figures a run reports beyond its counters, by scenario (churn, faults, whisper,
//! `--faults`), per URL, from the server process (`--server-pid`, its `/metrics`), from the
//! server's tick histograms, and of the bots' accounts (`--accounts`, `--persist-per-sec`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Quantiles;

/// The churn scenario's figures beyond its counters.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ChurnFigures {
    /// The fraction of cycles meant to end in an abrupt drop (`--drop-fraction`).
    pub drop_fraction: f64,
    /// Seconds between a cycle's end and the next connect (`--churn-pause`).
    pub pause_secs: f64,
    /// Cycles completed per second in the steady window.
    pub cycles_per_sec: f64,
    /// Cycles completed per second over the whole run.
    pub cycles_per_sec_whole_run: f64,
    /// Duration of a completed cycle, from the TCP connect to the end of the close, microseconds.
    pub cycle_us: Quantiles,
}

/// One `--url`, and the bots spread to it (bot `i` to URL `i % n`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct UrlShare {
    /// The URL.
    pub url: String,
    /// Bots that started on it (redirects may take them elsewhere later).
    pub bots: u64,
}

/// The whisper scenario's settings and what its checks found.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct WhisperFigures {
    /// Whispers per second per bot (`--whisper-rate`).
    pub rate: f64,
    /// Seconds the run went on after the steady window for the last whispers (`--whisper-drain`).
    pub drain_secs: f64,
    /// Whispers the server accepted (their call answered `()`): each must arrive.
    pub sent: u64,
    /// Whisper calls answered otherwise (errors of their calls, not expected to arrive).
    pub failed: u64,
    /// Whispers received, each once.
    pub received: u64,
    /// Whispers accepted and not received by the end of the drain (must be 0).
    pub lost: u64,
    /// Whispers received more than once (must be 0).
    pub duplicated: u64,
    /// Whispers received after a later one of the same sender.
    pub out_of_order: u64,
    /// Delivery latency, from the sender's call to the receiver's push, microseconds.
    pub latency_us: Quantiles,
}

/// The faults scenario's settings and rates beyond its counters.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct FaultFigures {
    /// The mean lifetime of a connection before it is killed, seconds (`--fault-lifetime`).
    pub lifetime_secs: f64,
    /// The fraction of kills that are resets (`--rst-fraction`); the others are half-open.
    pub rst_fraction: f64,
    /// Seconds a half-open connection is held before it is dropped (`--half-open-hold`).
    pub half_open_hold_secs: f64,
    /// Kills (both kinds) per second over the whole run.
    pub kills_per_sec: f64,
}

/// `--faults`: the settings, what the checks found beyond the counters, and the server's
/// version 2 figures from its `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResumeFigures {
    /// Kills per bot per minute of link up (`--fault-rate`).
    pub fault_rate_per_min: f64,
    /// The share of kills that are resets (`--fault-rst-share`).
    pub rst_share: f64,
    /// The share of half-open kills drawn as early reconnects (`--fault-early-share`).
    pub early_share: f64,
    /// The share of first sessions killed before they carried anything (`--fault-fresh-share`).
    pub fresh_share: f64,
    /// When they are killed (`--fault-fresh-when`: `before`, `after` or `both`).
    pub fresh_when: String,
    /// The shortest and longest outage, seconds.
    pub outage_secs: (f64, f64),
    /// Every Nth call is `once` (`--once-every`; 0: none).
    pub once_every: u32,
    /// The server's grace, as the simulator was told (`--server-grace`), seconds.
    pub server_grace_secs: f64,
    /// The server's replay bound, as told (`--server-replay-bytes`).
    pub server_replay_bytes: u64,
    /// The server's idle timeout, as told (`--server-idle-timeout`), seconds.
    pub server_idle_timeout_secs: f64,
    /// Seconds the run went on after the steady window for the last outages to end.
    pub drain_secs: f64,
    /// Refused resumes by reason (`ended`, `gap_lost`, ...; `v1_server` and `count_mismatch`
    /// for the client's own two).
    pub resume_failures: BTreeMap<String, u64>,
    /// `state` pushes a session missed of a tick that another session saw: lost (must be 0).
    pub pushes_lost: u64,
    /// `state` pushes sessions missed of ticks that no session saw: slots the server skipped.
    pub pushes_missed_skipped: u64,
    /// The distinct ticks no session saw; at most [`ServerSessionFigures::ticks_skipped`].
    pub ticks_unseen: u64,
    /// Sessions still offline, resuming, or with an old link unchecked when the run ended
    /// (must be 0: the run waits for them up to its drain limit).
    pub unsettled_at_end: u64,
    /// The server's figures (`None`: its `/metrics` could not be read).
    pub server: Option<ServerSessionFigures>,
    /// The first resumes answered against the window (refused inside, accepted outside),
    /// described: the kill, the time offline, the bytes held, the answer.
    pub surprises: Vec<String>,
}

/// The server's version 2 figures over a `--faults` run, from `GET /metrics`: counters as
/// differences from before the run to after it, gauges sampled once a second.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ServerSessionFigures {
    /// Samples of the gauges taken.
    pub samples: u64,
    /// The most sessions without a link at once (`ticksock_sessions_dropped`).
    pub dropped_max: u64,
    /// The most bytes held for them at once (`ticksock_sessions_dropped_bytes`).
    pub dropped_bytes_max: u64,
    /// The largest bytes held per session without a link, over the samples that had one.
    pub bytes_per_dropped_max: f64,
    /// The mean over those samples of bytes held per session without a link.
    pub bytes_per_dropped_mean: f64,
    /// Tick slots the server skipped (`ticksock_ticks_skipped_total`).
    pub ticks_skipped: u64,
    /// Resumes it accepted (`ticksock_resumes_total`).
    pub resumes: u64,
    /// Resumes it refused (`ticksock_resume_failures_total`).
    pub resume_failures: u64,
    /// Sessions whose grace passed (`ticksock_sessions_expired_total`).
    pub expired: u64,
    /// Sessions ended by a full replay buffer without a link (`ticksock_sessions_overflowed_total`).
    pub overflowed: u64,
}

/// The server process seen from outside (`--server-pid`): `/proc/PID/fd`, `/proc/PID/status`
/// and the `ticksock_connections_open` gauge of `GET /metrics`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ServerFigures {
    /// The server's process id.
    pub pid: u32,
    /// Open descriptors before the run.
    pub fds_before: u64,
    /// The most open descriptors seen while the run went on (sampled once a second).
    pub fds_peak: u64,
    /// Open descriptors at the end of the steady window, every bot still connected.
    pub fds_loaded: u64,
    /// Open descriptors right after the run (the bots' sockets just closed).
    pub fds_end: u64,
    /// Open descriptors after the settle delay.
    pub fds_settled: u64,
    /// Milliseconds after the run's end when the descriptors were first back at (or under) their
    /// baseline (looked at every 50 ms during the settle delay); `None`: not within it.
    pub fds_back_after_ms: Option<u64>,
    /// Resident memory before the run, KiB (`VmRSS`).
    pub rss_kib_before: u64,
    /// The most resident memory seen while the run went on (sampled once a second), KiB.
    pub rss_kib_peak: u64,
    /// Resident memory at the end of the steady window, every bot still connected, KiB.
    pub rss_kib_loaded: u64,
    /// Resident memory right after the run, KiB.
    pub rss_kib_end: u64,
    /// Resident memory after the settle delay, KiB.
    pub rss_kib_settled: u64,
    /// The process's resident high-water mark since it started, before the run, KiB (`VmHWM`).
    pub hwm_kib_before: u64,
    /// The same after the settle delay: higher than before only if this run set a new peak.
    pub hwm_kib_settled: u64,
    /// `ticksock_connections_open` before the run (the request that reads it counts as one).
    pub open_before: Option<u64>,
    /// `ticksock_connections_open` after the settle delay (likewise).
    pub open_settled: Option<u64>,
    /// The settle delay, seconds.
    pub settle_secs: f64,
    /// Whether the descriptors were back within `--max-fd-growth` of the baseline after it.
    pub fds_back: bool,
    /// Idle scenario: the server's resident memory growth per connection, KiB: (RSS at the end
    /// of the steady window - RSS before the run) / bots connected at the end.
    pub rss_per_connection_kib: Option<f64>,
}

/// `--accounts guest`: the bots' guest accounts and their sign-ins.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccountFigures {
    /// Guest accounts made: one per bot for the whole run, unless a `guest` call failed.
    pub guests_created: u64,
    /// `guest` calls that failed.
    pub guest_failures: u64,
    /// `auth` calls answered with the account: one per server session of each bot.
    pub auths_ok: u64,
    /// `auth` calls that failed.
    pub auth_failures: u64,
    /// The failed `guest` and `auth` calls by route and kind (`auth: error 10
    /// unauthenticated`, `guest: timeout`, ...). Each is an error of its call too.
    pub failures: BTreeMap<String, u64>,
}

/// `--tick-stamps`: how far ahead of the last `state` a bot had seen its replies were stamped
/// (PROTOCOL.md 4.3).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TickStampFigures {
    /// Each stamped reply's tick minus the tick of the last `state` its bot had seen, in ticks
    /// (not microseconds); `count` is how many stamped replies came after a `state`. 1 for a
    /// reply handled before the next state; 0 when that state was read with the reply (a bot
    /// handles pushes as it reads them, outcomes after).
    pub lag_ticks: Quantiles,
}

/// `--persist-per-sec`: the bots' `flush_stats` calls (a write answered once committed).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PersistFigures {
    /// Calls per second per bot asked for (`--persist-per-sec`).
    pub per_sec: f64,
    /// Calls made.
    pub calls: u64,
    /// Calls answered with the account's totals, after the write committed.
    pub replied: u64,
    /// Calls that failed (each an error of its call too).
    pub failed: u64,
    /// Committed answers per second in the steady window.
    pub replied_per_sec_steady: f64,
    /// The failures by kind (`error 1009 app`, `timeout`, ...).
    pub failures: BTreeMap<String, u64>,
    /// Round trips of committed answers, whole run, microseconds.
    pub latency_us: Quantiles,
    /// The same in the steady window.
    pub latency_steady_us: Quantiles,
}

/// `--replication`: the bots' mirrors of the replicated state, and their checks against the
/// server's digests (PROTOCOL.md 14.5).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplicaFigures {
    /// Seconds between two digest checks of a bot (`--digest-every`).
    pub digest_every_secs: f64,
    /// The share of bots that rebuild their view and check it (`--mirror-share`).
    pub mirror_share: f64,
    /// The mean seconds between two link losses of a bot (`--link-loss-every`; 0: none).
    pub link_loss_every_secs: f64,
    /// Updates applied, of which full snapshots.
    pub updates: u64,
    /// Full snapshots applied (each join's first update, and after lost acknowledgements).
    pub full_snapshots: u64,
    /// Updates the mirror refused (must be 0).
    pub not_applied: u64,
    /// `replica_ack` calls made, and their answers: accepted, stale, unknown.
    pub acks: u64,
    /// Acknowledgements answered `accepted`.
    pub acks_accepted: u64,
    /// Acknowledgements answered `stale`.
    pub acks_stale: u64,
    /// Acknowledgements answered `unknown`.
    pub acks_unknown: u64,
    /// Digests compared.
    pub checks: u64,
    /// Digests that differed (must be 0).
    pub mismatches: u64,
    /// Digests of a tick the bot's mirror never held (must be 0).
    pub tick_unseen: u64,
    /// `replica_digest` answered none.
    pub absent: u64,
    /// Digests compared that were a bot's first after a `join` (late joiners, rejoins).
    pub after_join: u64,
    /// Links reset on purpose (`--link-loss-every`).
    pub link_losses: u64,
    /// Bots' own crossings from one interest cell to another, as their mirrors showed them.
    pub cell_crossings: u64,
}

/// The server's ticks, from its `GET /metrics` histograms (`ticksock_tick_lateness_seconds`,
/// `ticksock_tick_duration_seconds`): the differences between readings before the run, at the
/// start of the steady window and at its end. A quantile is known to its bucket only.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerTickFigures {
    /// The histograms' bucket bounds, microseconds (the server's: 100, 250, 500, 750, 1000,
    /// 1500, 2000, 3000, 5000, ...): the resolution of every quantile below.
    pub bucket_bounds_us: Vec<u64>,
    /// From before the first bot started to the end of the steady window (`None`: a reading
    /// failed).
    pub run: Option<TickHealth>,
    /// The steady window (`None`: a reading failed).
    pub steady: Option<TickHealth>,
}

/// The ticks a server ran over a stretch of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TickHealth {
    /// Ticks run.
    pub ticks: u64,
    /// Tick slots skipped because a tick overran (`ticksock_ticks_skipped_total`).
    pub skipped: u64,
    /// How late each tick started.
    pub lateness: BucketSummary,
    /// How long each tick ran.
    pub duration: BucketSummary,
    /// Payload bytes of the data messages the server sent (`ticksock_bytes_out_total`;
    /// `None`: a server without it).
    pub bytes_out: Option<u64>,
}

/// A histogram of fixed buckets, summarised.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BucketSummary {
    /// Values recorded.
    pub count: u64,
    /// Their mean, microseconds (exact: from the histogram's sum).
    pub mean_us: f64,
    /// The median's bucket (`None`: nothing recorded).
    pub p50: Option<BucketQuantile>,
    /// The 99th percentile's bucket.
    pub p99: Option<BucketQuantile>,
    /// The values in each bucket (not cumulative), the last one past the last bound.
    pub buckets: Vec<BucketCount>,
}

/// A quantile of a histogram of fixed buckets: the bucket it falls in, and a linear estimate
/// within it (which assumes the values spread evenly over the bucket).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BucketQuantile {
    /// The bucket's lower bound (exclusive), microseconds.
    pub above_us: u64,
    /// Its upper bound (inclusive), microseconds; `None`: past the last bound.
    pub at_most_us: Option<u64>,
    /// The estimate within the bucket, microseconds.
    pub estimate_us: u64,
}

/// The values of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BucketCount {
    /// Its upper bound, microseconds (`None`: the bucket past the last bound).
    pub at_most_us: Option<u64>,
    /// Values in it (above the previous bound).
    pub count: u64,
}

/// `--latency-ms`, `--jitter-ms`, `--bandwidth-kbps`: the link conditioner's settings, and
/// each answered call's round trip split into the time the conditioner held its request and
/// answer, and the rest: the server, the real network (loopback here) and the simulator.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LinkFigures {
    /// One-way delay added each way, milliseconds (`--latency-ms`).
    pub latency_ms: f64,
    /// Each frame's delay is uniform in latency ± this, milliseconds (`--jitter-ms`).
    pub jitter_ms: f64,
    /// Cap per bot and direction, kilobits a second (`--bandwidth-kbps`; 0: none).
    pub bandwidth_kbps: f64,
    /// The cap's token bucket, bytes (0 without a cap).
    pub burst_bytes: u64,
    /// Bytes held per bot and direction before the conditioner takes no more.
    pub window_bytes: u64,
    /// Per answered call, whole run: its request's and its answer's time held, µs. The round
    /// trip as the bots saw it is [`super::Report::rtt_us`].
    pub held_us: Quantiles,
    /// Per answered call, whole run: the round trip less the time held, µs.
    pub rtt_less_held_us: Quantiles,
    /// The same as `held_us` in the steady window (against [`super::Report::rtt_steady_us`]).
    pub held_steady_us: Quantiles,
    /// The same as `rtt_less_held_us` in the steady window.
    pub rtt_less_held_steady_us: Quantiles,
    /// Every frame from the bots: the time held, µs.
    pub frame_out_held_us: Quantiles,
    /// Every frame to the bots: the time held, µs.
    pub frame_in_held_us: Quantiles,
    /// Sends that found a bot's outbound lane full (the frames waited in its session).
    pub out_paused: u64,
    /// Reads that filled a bot's inbound lane (the rest waited unread in its socket).
    pub in_paused: u64,
}
