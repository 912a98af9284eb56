//! Counters and histograms the server keeps, served as Prometheus text at `GET /metrics`.
//!
//! Each thread counts in plain integers on its hot path and publishes a copy here once per
//! turn of its loop, so the cost per message is an integer increment.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;

/// Error replies are counted by code: one slot per reserved code (the index is the code, 0
/// unused), and the last slot for every application code.
pub const ERROR_SLOTS: usize = ticksock_protocol::error_code::FORBIDDEN as usize + 2;

/// The upper bounds of the tick histograms, in seconds. Fine around a millisecond (0.75, 1,
/// 1.5, 2, 3 ms), where "a tick starts within 1 ms" is judged and where a busy arena's ticks
/// run: with 1, 2 and 5 ms alone, a p99 of 1.1 ms and one of 1.9 ms read the same.
const TICK_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.033, 0.05,
    0.1, 0.25,
];

/// What the reactor counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReactorCounters {
    /// Connections accepted (TCP).
    pub accepted: u64,
    /// Connections answered 503 or dropped because the server was full.
    pub refused: u64,
    /// Connections that completed the WebSocket upgrade.
    pub upgraded: u64,
    /// Connections currently in the slab (HTTP or WebSocket).
    pub open: u64,
    /// WebSocket messages received.
    pub frames_in: u64,
    /// Bytes of WebSocket messages received (payloads).
    pub bytes_in: u64,
    /// WebSocket data messages (binary or text) queued for sending; pings, pongs and closes
    /// are not counted.
    pub frames_out: u64,
    /// Payload bytes of those data messages.
    pub bytes_out: u64,
    /// Requests passed to the logic thread.
    pub requests_forwarded: u64,
    /// Error replies the reactor answered itself (unknown route, bad frame, rate limited),
    /// by code, indexed like [`LogicCounters::errors`].
    pub errors: [u64; ERROR_SLOTS],
    /// Connections closed for sending too fast.
    pub rate_limited_closes: u64,
    /// Connections closed because their outbound buffer passed its cap.
    pub overflow_closes: u64,
    /// Connections closed by the heartbeat or a handshake deadline.
    pub timeouts: u64,
    /// Sockets of ended connections in their lingering close now (write side shut, input
    /// drained until the peer closes or `Config::linger_timeout`).
    pub lingering: u64,
    /// Version 2 sessions living now, with or without a link (at the last sweep).
    pub sessions_open: u64,
    /// Version 2 sessions without a link, waiting for a resume (at the last sweep).
    pub sessions_dropped: u64,
    /// Bytes of frames those sessions hold for their clients (at the last sweep).
    pub sessions_dropped_bytes: u64,
    /// Resumes that succeeded.
    pub resumes: u64,
    /// Resumes refused (with a reason, PROTOCOL.md 11.5).
    pub resume_failures: u64,
    /// Sessions ended because their grace passed without a resume.
    pub sessions_expired: u64,
    /// Sessions ended because their replay buffer overflowed while they had no link.
    pub sessions_overflowed: u64,
    /// Version 2 links dropped (not closed) because their outbound buffer passed its cap: the
    /// session waits for a resume.
    pub overflow_drops: u64,
    /// Sessions without a link ended early because live connections and waiting sessions
    /// together passed `Config::max_connections`.
    pub sessions_evicted: u64,
    /// Lingering closes cut short by `Config::linger_timeout` or `Config::linger_bytes`
    /// (the peer was still sending: its socket may have been reset).
    pub lingers_cut: u64,
    /// Messages waiting in the reactor because the channel to the logic thread was full.
    pub backlog: u64,
    /// The most messages that ever waited there.
    pub backlog_max: u64,
    /// Connections flushed (each makes a `write` syscall only if something was queued).
    pub flushes: u64,
    /// Connections sent a broadcast of a burst and waiting for their slice of flushes.
    pub flush_backlog: u64,
    /// The most connections that ever waited there (at most the connections open).
    pub flush_backlog_max: u64,
    /// `write` syscalls made on WebSocket connections (partial writes count each time).
    pub write_syscalls: u64,
    /// States (pushes on a latest-wins topic) replaced by a newer one while held back from a
    /// connection that did not keep up (PROTOCOL.md 7.3).
    pub states_conflated: u64,
    /// Events (other pushes) dropped, oldest first, from what was held back for a connection
    /// that did not keep up; each client is told its count (`ticksock.dropped`).
    pub events_dropped: u64,
    /// Connections closed (4005) or, for a version 2 link, dropped because their socket took
    /// nothing for `Config::stalled_reader_timeout` while frames were held for them.
    pub stalled_closes: u64,
    /// Connections with frames held back now (their socket is not keeping up).
    pub holding: u64,
    /// Payload bytes held back now, over every connection.
    pub held_bytes: u64,
    /// The most payload bytes ever held back at once, over every connection.
    pub held_bytes_max: u64,
}

/// What the logic thread counts, besides the tick histograms.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LogicCounters {
    /// Requests handled.
    pub requests: u64,
    /// Error replies by code: index = code for the server's own codes, the last slot for
    /// application codes.
    pub errors: [u64; ERROR_SLOTS],
    /// Ticks run.
    pub ticks: u64,
    /// Tick slots skipped because a tick overran.
    pub skipped_ticks: u64,
    /// Panics caught in handlers and hooks.
    pub panics: u64,
    /// Messages the reactor has passed and the logic thread has not handled yet, at the last
    /// look.
    pub inbound_depth: u64,
    /// The job pool, as the logic thread sees it.
    pub jobs: crate::jobs::JobCounters,
}

/// A histogram with fixed buckets, fed by one thread, read by any.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; TICK_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub(crate) fn record(&self, value: Duration) {
        let secs = value.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(TICK_BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(value.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    pub(crate) fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bucket, bound) in self.buckets.iter().zip(TICK_BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", bucket.load(Relaxed));
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_nanos.load(Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// The server's metrics, shared by its threads.
#[derive(Debug, Default)]
pub struct Metrics {
    // A snapshot per thread, copied in once per turn: an uncontended lock costs less than
    // keeping every counter atomic on the hot path.
    reactor: Mutex<ReactorCounters>,
    logic: Mutex<LogicCounters>,
    tick_duration: Histogram,
    tick_lateness: Histogram,
    cluster: Arc<crate::cluster::ClusterMetrics>,
}

impl Metrics {
    /// Publishes the reactor's counters.
    pub fn publish_reactor(&self, counters: &ReactorCounters) {
        *self.reactor.lock() = *counters;
    }

    /// Publishes the logic thread's counters.
    pub fn publish_logic(&self, counters: &LogicCounters) {
        *self.logic.lock() = *counters;
    }

    /// Records one tick: how late it started and how long it ran.
    pub fn record_tick(&self, lateness: Duration, duration: Duration) {
        self.tick_lateness.record(lateness);
        self.tick_duration.record(duration);
    }

    /// The cluster's counters (all zero on a single node).
    pub fn cluster(&self) -> &crate::cluster::ClusterMetrics {
        &self.cluster
    }

    pub(crate) fn cluster_shared(&self) -> Arc<crate::cluster::ClusterMetrics> {
        self.cluster.clone()
    }

    /// The reactor's counters as last published.
    pub fn reactor(&self) -> ReactorCounters {
        *self.reactor.lock()
    }

    /// The logic thread's counters as last published.
    pub fn logic(&self) -> LogicCounters {
        *self.logic.lock()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let r = self.reactor();
        let l = self.logic();
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP ticksock_{name} {help}\n# TYPE ticksock_{name} {kind}\nticksock_{name} {value}"
            );
        };
        metric("connections_accepted_total", "counter", "TCP connections accepted.", r.accepted);
        metric("connections_refused_total", "counter", "Connections refused at max_connections.", r.refused);
        metric(
            "connections_upgraded_total",
            "counter",
            "Connections that completed the WebSocket upgrade.",
            r.upgraded,
        );
        metric("connections_open", "gauge", "Connections open now (HTTP or WebSocket).", r.open);
        metric("frames_in_total", "counter", "WebSocket messages received.", r.frames_in);
        metric("bytes_in_total", "counter", "WebSocket message payload bytes received.", r.bytes_in);
        metric(
            "frames_out_total",
            "counter",
            "WebSocket data messages queued for sending (pings, pongs and closes are not counted).",
            r.frames_out,
        );
        metric("bytes_out_total", "counter", "WebSocket message payload bytes sent.", r.bytes_out);
        metric("flushes_total", "counter", "Connections flushed at the end of a reactor turn.", r.flushes);
        metric(
            "write_syscalls_total",
            "counter",
            "write syscalls on WebSocket connections.",
            r.write_syscalls,
        );
        metric(
            "requests_forwarded_total",
            "counter",
            "Requests passed to the logic thread.",
            r.requests_forwarded,
        );
        metric("requests_handled_total", "counter", "Requests handled by the logic thread.", l.requests);
        metric(
            "closes_rate_limited_total",
            "counter",
            "Connections closed for sending too fast.",
            r.rate_limited_closes,
        );
        metric(
            "closes_overflow_total",
            "counter",
            "Connections closed with a full outbound buffer.",
            r.overflow_closes,
        );
        metric(
            "states_conflated_total",
            "counter",
            "States replaced by a newer one while held back from a slow reader.",
            r.states_conflated,
        );
        metric(
            "events_dropped_total",
            "counter",
            "Events dropped oldest-first from what was held back for a slow reader.",
            r.events_dropped,
        );
        metric(
            "closes_stalled_reader_total",
            "counter",
            "Connections closed (or v2 links dropped) for reading nothing while frames were held.",
            r.stalled_closes,
        );
        metric("connections_holding", "gauge", "Connections with frames held back now.", r.holding);
        metric("held_bytes", "gauge", "Payload bytes held back from slow readers now.", r.held_bytes);
        metric(
            "held_bytes_max",
            "gauge",
            "The most payload bytes ever held back from slow readers at once.",
            r.held_bytes_max,
        );
        metric(
            "closes_timeout_total",
            "counter",
            "Connections closed by heartbeat or handshake timeout.",
            r.timeouts,
        );
        metric(
            "connections_lingering",
            "gauge",
            "Sockets of ended connections draining their input before the close.",
            r.lingering,
        );
        metric(
            "lingers_cut_total",
            "counter",
            "Lingering closes ended by linger_timeout or linger_bytes with the peer still sending.",
            r.lingers_cut,
        );
        metric(
            "sessions_open",
            "gauge",
            "Version 2 sessions living, with or without a link.",
            r.sessions_open,
        );
        metric(
            "sessions_dropped",
            "gauge",
            "Version 2 sessions without a link, waiting for a resume.",
            r.sessions_dropped,
        );
        metric(
            "sessions_dropped_bytes",
            "gauge",
            "Bytes of frames held for the clients of sessions without a link.",
            r.sessions_dropped_bytes,
        );
        metric("resumes_total", "counter", "Version 2 resumes that succeeded.", r.resumes);
        metric("resume_failures_total", "counter", "Version 2 resumes refused.", r.resume_failures);
        metric(
            "sessions_expired_total",
            "counter",
            "Sessions ended because their grace passed without a resume.",
            r.sessions_expired,
        );
        metric(
            "overflow_drops_total",
            "counter",
            "Version 2 links dropped with a full outbound buffer; their sessions wait for a resume.",
            r.overflow_drops,
        );
        metric(
            "sessions_evicted_total",
            "counter",
            "Sessions without a link ended early: live and waiting sessions passed max_connections.",
            r.sessions_evicted,
        );
        metric(
            "sessions_overflowed_total",
            "counter",
            "Sessions ended because their replay buffer overflowed while they had no link.",
            r.sessions_overflowed,
        );
        metric(
            "backlog",
            "gauge",
            "Messages held in the reactor while the logic thread is behind.",
            r.backlog,
        );
        metric(
            "backlog_max",
            "gauge",
            "The most messages ever held in the reactor's backlog.",
            r.backlog_max,
        );
        metric(
            "flush_backlog",
            "gauge",
            "Connections sent a broadcast of a burst, waiting for their slice of flushes.",
            r.flush_backlog,
        );
        metric(
            "flush_backlog_max",
            "gauge",
            "The most connections that ever waited in the flush backlog.",
            r.flush_backlog_max,
        );
        metric(
            "inbound_queue_depth",
            "gauge",
            "Messages passed to the logic thread and not handled yet.",
            l.inbound_depth,
        );
        metric("ticks_total", "counter", "Ticks run.", l.ticks);
        metric(
            "ticks_skipped_total",
            "counter",
            "Tick slots skipped because a tick overran.",
            l.skipped_ticks,
        );
        metric("panics_total", "counter", "Handler and hook panics caught.", l.panics);
        metric("jobs_submitted_total", "counter", "Jobs accepted by the worker pool.", l.jobs.submitted);
        metric(
            "jobs_refused_total",
            "counter",
            "Jobs refused with BUSY: the pool's queue was full.",
            l.jobs.refused,
        );
        metric(
            "jobs_dropped_total",
            "counter",
            "Job results dropped: whom they were for had gone.",
            l.jobs.dropped,
        );
        metric(
            "jobs_panicked_total",
            "counter",
            "Jobs (or their continuations) that panicked.",
            l.jobs.panicked,
        );
        metric(
            "jobs_in_flight",
            "gauge",
            "Jobs submitted whose result has not been handled yet.",
            l.jobs.in_flight,
        );
        let _ = writeln!(out, "# HELP ticksock_error_replies_total Error replies sent, by code.");
        let _ = writeln!(out, "# TYPE ticksock_error_replies_total counter");
        for (code, (logic, reactor)) in l.errors.iter().zip(r.errors).enumerate().skip(1) {
            let name = if code == ERROR_SLOTS - 1 {
                "app"
            } else {
                ticksock_protocol::error_code::name(code as u16)
            };
            let _ = writeln!(out, "ticksock_error_replies_total{{code=\"{name}\"}} {}", logic + reactor);
        }
        self.tick_duration.render(&mut out, "ticksock_tick_duration_seconds", "How long each tick ran.");
        self.tick_lateness.render(&mut out, "ticksock_tick_lateness_seconds", "How late each tick started.");
        self.cluster.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_counters_round_trip_and_render() {
        let m = Metrics::default();
        let mut r =
            ReactorCounters { accepted: 3, frames_in: 10, backlog_max: 2, flushes: 9, ..Default::default() };
        r.errors[1] = 1;
        m.publish_reactor(&r);
        assert_eq!(m.reactor(), r);
        let mut l = LogicCounters { requests: 7, ticks: 5, ..Default::default() };
        l.errors[1] = 2;
        l.errors[ERROR_SLOTS - 1] = 1;
        m.publish_logic(&l);
        assert_eq!(m.logic(), l);
        m.record_tick(Duration::from_micros(300), Duration::from_micros(50));
        let text = m.render();
        assert!(text.contains("ticksock_connections_accepted_total 3\n"), "{text}");
        assert!(text.contains("ticksock_error_replies_total{code=\"unknown_route\"} 3\n"), "{text}");
        assert!(text.contains("ticksock_error_replies_total{code=\"app\"} 1\n"), "{text}");
        assert!(text.contains("ticksock_tick_lateness_seconds_bucket{le=\"0.0005\"} 1\n"), "{text}");
        assert!(text.contains("ticksock_tick_lateness_seconds_bucket{le=\"0.00025\"} 0\n"), "{text}");
        assert!(text.contains("ticksock_tick_duration_seconds_count 1\n"), "{text}");
    }
}
