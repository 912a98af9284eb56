//! What the cluster counts, shared by its threads and the logic thread as atomics (the cluster
//! paths are not hot enough for the per-turn snapshots the reactor and logic threads use).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crate::metrics::Histogram;

/// The cluster's counters, at `/metrics` as `ticksock_cluster_*` once the node has joined.
#[derive(Debug, Default)]
pub struct ClusterMetrics {
    pub(crate) enabled: AtomicBool,
    /// Deliveries written to other nodes' inboxes (each counted once, resends not).
    pub messages_out: AtomicU64,
    /// Deliveries taken from this node's inbox and handed to the logic thread.
    pub messages_in: AtomicU64,
    /// Deliveries that arrived twice (a retry or a resend after a Redis failure) and were
    /// dropped.
    pub duplicates: AtomicU64,
    /// Deliveries that never arrived: gaps in a sender's numbering.
    pub lost: AtomicU64,
    /// Sends to other nodes refused because the queue toward Redis was full.
    pub dropped: AtomicU64,
    /// Deliveries waiting to be written to Redis.
    pub queue_depth: AtomicU64,
    /// Lease renewals written (one per third of a lease).
    pub lease_renewals: AtomicU64,
    /// Other nodes forgotten because their lease passed without a renewal.
    pub lease_expiries: AtomicU64,
    /// Times a connection to Redis failed (a timeout, a reset, a refused connect).
    pub redis_errors: AtomicU64,
    /// 1 while the writer is connected to Redis (the reader's failures count in
    /// `redis_errors`).
    pub redis_up: AtomicU64,
    /// Rooms this node held that another node took while this one could not renew them.
    pub room_conflicts: AtomicU64,
    /// Calls answered with a redirect to another node.
    pub redirects: AtomicU64,
    /// Tickets redeemed.
    pub tickets_redeemed: AtomicU64,
    /// Tickets refused (close 4002).
    pub tickets_refused: AtomicU64,
    /// How long each write to Redis (one pipeline) took, reply included.
    pub(crate) redis_round_trip: Histogram,
}

impl ClusterMetrics {
    pub(crate) fn render(&self, out: &mut String) {
        if !self.enabled.load(Relaxed) {
            return;
        }
        let mut metric = |name: &str, kind: &str, help: &str, value: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP ticksock_cluster_{name} {help}\n# TYPE ticksock_cluster_{name} {kind}\nticksock_cluster_{name} {}",
                value.load(Relaxed)
            );
        };
        metric(
            "messages_out_total",
            "counter",
            "Deliveries written to other nodes' inboxes.",
            &self.messages_out,
        );
        metric("messages_in_total", "counter", "Deliveries taken from this node's inbox.", &self.messages_in);
        metric(
            "duplicates_total",
            "counter",
            "Deliveries that arrived twice and were dropped.",
            &self.duplicates,
        );
        metric(
            "lost_total",
            "counter",
            "Deliveries that never arrived (gaps in a sender's numbering).",
            &self.lost,
        );
        metric(
            "dropped_total",
            "counter",
            "Sends to other nodes refused: the queue toward Redis was full.",
            &self.dropped,
        );
        metric("queue_depth", "gauge", "Deliveries waiting to be written to Redis.", &self.queue_depth);
        metric("lease_renewals_total", "counter", "Lease renewals written.", &self.lease_renewals);
        metric(
            "lease_expiries_total",
            "counter",
            "Other nodes forgotten because their lease passed.",
            &self.lease_expiries,
        );
        metric("redis_errors_total", "counter", "Failures of a connection to Redis.", &self.redis_errors);
        metric("redis_up", "gauge", "1 while the cluster's writer is connected to Redis.", &self.redis_up);
        metric(
            "room_conflicts_total",
            "counter",
            "Rooms another node took while this one could not renew them.",
            &self.room_conflicts,
        );
        metric(
            "redirects_total",
            "counter",
            "Calls answered with a redirect to another node.",
            &self.redirects,
        );
        metric(
            "tickets_redeemed_total",
            "counter",
            "Tickets redeemed by new connections.",
            &self.tickets_redeemed,
        );
        metric("tickets_refused_total", "counter", "Tickets refused (close 4002).", &self.tickets_refused);
        self.redis_round_trip.render(
            out,
            "ticksock_cluster_redis_round_trip_seconds",
            "How long each write to Redis (one pipeline) took.",
        );
    }
}
