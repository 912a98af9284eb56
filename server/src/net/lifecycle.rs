//! The reactor's decisions about a connection's life and its own, as pure functions of
//! (state, event, now): no sockets, no clock. The reactor reads the clock once per turn and
//! acts on what these return; the tests below drive them in simulated time.
//!
//! A connection's life, beside its I/O phase (HTTP bytes, then a WebSocket):
//!
//! ```text
//!  Handshaking ──upgrade──▶ Open ──it broke a rule──▶ Ending ──the logic thread's Close──▶ Closing ──▶ lingering ──▶ gone
//!       │                    │     (rate limit too)                                         ▲            ▲          ▲
//!       │                    └──the game closes it, outbound overflow, shutdown ────────────┘            │          │
//!       ├──answered (HTTP) or refused ───────────────────────────────────────────────────────────────────┘          │
//!       └──timed out, or a broken socket: dropped at once ────────────────────────────────────────────────────────────┘
//! ```
//!
//! Lingering is the socket's own end after the connection has gone (see
//! [`linger`](super::linger)): its side of TCP shut, the peer's input drained for a bounded
//! time, so that closing cannot reset the last frames away. A protocol violation goes from
//! `Ending` (or `Open`) straight to lingering, right after its close frame.
//!
//! The reactor's own life is a [`Stage`]: running, draining the logic thread at shutdown, then
//! closing every connection until they have gone or the close timeout has passed.

use std::time::{Duration, Instant};

use super::heartbeat::{Liveness, Verdict};

/// Where one connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Reading its HTTP request, then writing the answer; since it was accepted at `since`.
    /// A `refusing` connection arrived while the server was full and is answered 503.
    Handshaking {
        /// When it was accepted.
        since: Instant,
        /// It is answered 503 whatever it asks.
        refusing: bool,
    },
    /// Speaking WebSocket: its requests go to the logic thread.
    Open,
    /// It sent what ends it (a text frame on the binary protocol, an undecodable frame, a
    /// protocol violation): it is read no more while the logic thread answers what it sent
    /// before, and sends back the close behind those answers.
    Ending {
        /// It broke the WebSocket protocol: its stream cannot be trusted to carry a close
        /// reply, so it is dropped right after the close frame.
        drop_after_close: bool,
    },
    /// The server sent its close frame at `since`; it waits for the peer's, at most the close
    /// timeout. Its requests are no longer handled: the server has already let it go.
    Closing {
        /// When the close frame was queued.
        since: Instant,
    },
}

impl Lifecycle {
    /// Whether its data messages are read and handled (control frames are read in `Closing`
    /// too, to see the peer's close reply).
    pub(crate) fn takes_requests(self) -> bool {
        matches!(self, Lifecycle::Open)
    }

    /// Whether the reactor reads from it at all.
    pub(crate) fn reads(self) -> bool {
        !matches!(self, Lifecycle::Ending { .. })
    }
}

/// What to do with a connection that broke a rule of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Violation {
    /// Stop reading it and let the logic thread close it behind the answers to what it sent
    /// before: the connection becomes [`Lifecycle::Ending`].
    CloseAfterReplies(Lifecycle),
    /// Close it now: the logic thread does not know it, or takes no more messages.
    CloseNow {
        /// Drop it right after the close frame.
        drop_after_close: bool,
    },
}

/// Decides how to end a connection that broke a rule; `drop_after_close` when it broke the
/// WebSocket protocol itself. Only an `Open` connection the logic thread knows, while the
/// server runs, is ended behind its replies; anything else is closed now.
pub(crate) fn on_violation(state: Lifecycle, running: bool, drop_after_close: bool) -> Violation {
    match state {
        Lifecycle::Open if running => Violation::CloseAfterReplies(Lifecycle::Ending { drop_after_close }),
        Lifecycle::Ending { drop_after_close: already } => {
            // Already ending: a second violation can only make it stricter.
            Violation::CloseAfterReplies(Lifecycle::Ending { drop_after_close: already || drop_after_close })
        }
        _ => Violation::CloseNow { drop_after_close },
    }
}

/// The timeouts the sweep applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// `Config::handshake_timeout`.
    pub(crate) handshake: Duration,
    /// `Config::ping_interval`.
    pub(crate) ping_interval: Duration,
    /// `Config::idle_timeout`.
    pub(crate) idle: Duration,
    /// `Config::close_timeout`.
    pub(crate) close: Duration,
    /// `Config::linger_timeout`.
    pub(crate) linger: Duration,
    /// `Config::ack_interval`: the sweep also sends version 2 sessions their Acks.
    pub(crate) ack: Duration,
}

/// What the sweep does with one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sweep {
    /// Nothing.
    Keep,
    /// Send it a ping: it has been quiet for a ping interval.
    Ping,
    /// Drop it: its handshake or its silence took too long (the peer sends nothing, so there
    /// is nothing to drain).
    Drop,
    /// End its TCP with a lingering close: the peer did not answer the close frame in time,
    /// but may still be sending.
    EndTcp,
}

/// Decides what the sweep at `now` does with a connection in `state` whose peer was last
/// heard as `liveness` says.
pub(crate) fn sweep(state: Lifecycle, liveness: &mut Liveness, now: Instant, timeouts: &Timeouts) -> Sweep {
    let expired = |since: Instant, limit: Duration| now.saturating_duration_since(since) >= limit;
    match state {
        Lifecycle::Closing { since } if expired(since, timeouts.close) => Sweep::EndTcp,
        Lifecycle::Closing { .. } => Sweep::Keep,
        Lifecycle::Handshaking { since, .. } if expired(since, timeouts.handshake) => Sweep::Drop,
        Lifecycle::Handshaking { .. } => Sweep::Keep,
        Lifecycle::Open | Lifecycle::Ending { .. } => {
            match liveness.poll(now, timeouts.ping_interval, timeouts.idle) {
                Verdict::Alive => Sweep::Keep,
                Verdict::SendPing => Sweep::Ping,
                Verdict::Dead => Sweep::Drop,
            }
        }
    }
}

/// How often the sweep runs: often enough to honour the shortest of the timeouts it applies
/// to within a quarter of it, between 5 ms and 1 s. So a timeout `t` fires between `t` and
/// `t + max(t / 4, 5 ms)` (with the defaults, the close timeout of 2 s within 2.5 s).
pub(crate) fn sweep_period(timeouts: &Timeouts) -> Duration {
    let shortest =
        [timeouts.ping_interval, timeouts.handshake, timeouts.close, timeouts.linger, timeouts.ack]
            .into_iter()
            .min()
            .unwrap_or(Duration::from_secs(1));
    (shortest / 4).clamp(Duration::from_millis(5), Duration::from_secs(1))
}

/// A connection's refusals for the inbound rate, in a row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Strikes(u32);

/// What to do with a message, given the rate limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateVerdict {
    /// Within the rate: handle it.
    Admit,
    /// Over the rate: answer its call with `RATE_LIMITED`, do not handle it.
    Refuse,
    /// Over the rate more than `Config::rate_strikes` times in a row: close with 1008.
    Close,
}

impl Strikes {
    /// Counts one message that the limiter `admitted` or not, under a bound of `max` refusals
    /// in a row.
    pub(crate) fn record(&mut self, admitted: bool, max: u32) -> RateVerdict {
        if admitted {
            self.0 = 0;
            return RateVerdict::Admit;
        }
        self.0 = self.0.saturating_add(1);
        if self.0 > max { RateVerdict::Close } else { RateVerdict::Refuse }
    }
}

/// Whether a batch whose broadcasts reach `recipients` connections is a burst (a tick's state
/// for everyone), whose recipients are flushed a `slice` per turn after the turn's replies,
/// rather than all in this turn.
pub(crate) fn is_burst(recipients: usize, slice: usize) -> bool {
    recipients > slice
}

/// Where the reactor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Serving.
    Running,
    /// Told the logic thread to finish; waiting for its last batch.
    Draining,
    /// Sent close frames to everyone; waiting for them to go, until `deadline`.
    Closing {
        /// When the reactor stops waiting.
        deadline: Instant,
    },
}

/// The next step of the shutdown sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StageStep {
    /// Nothing changes this turn.
    Stay,
    /// Stop accepting and reading requests; tell the logic thread to finish.
    BeginDraining,
    /// The logic thread is done and its last batch applied: close every connection, and wait
    /// for them until `deadline`.
    BeginClosing {
        /// When the reactor stops waiting.
        deadline: Instant,
    },
    /// Every connection has gone, or the deadline passed: the reactor stops.
    Done,
}

impl Stage {
    /// The step to take at `now`: `stop_requested` by the server's owner, `logic_done` when
    /// the logic thread has sent its last batch and gone, `connections` still in the slab.
    pub(crate) fn step(
        self,
        stop_requested: bool,
        logic_done: bool,
        connections: usize,
        now: Instant,
        close_timeout: Duration,
    ) -> StageStep {
        match self {
            Stage::Running if stop_requested || logic_done => StageStep::BeginDraining,
            Stage::Draining if logic_done => StageStep::BeginClosing { deadline: now + close_timeout },
            Stage::Closing { deadline } if connections == 0 || now >= deadline => StageStep::Done,
            _ => StageStep::Stay,
        }
    }

    /// The stage a step leads to.
    pub(crate) fn after(self, step: StageStep) -> Stage {
        match step {
            StageStep::Stay | StageStep::Done => self,
            StageStep::BeginDraining => Stage::Draining,
            StageStep::BeginClosing { deadline } => Stage::Closing { deadline },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn timeouts() -> Timeouts {
        Timeouts {
            handshake: 5000 * MS,
            ping_interval: 10_000 * MS,
            idle: 30_000 * MS,
            close: 2000 * MS,
            linger: 2000 * MS,
            ack: 2000 * MS,
        }
    }

    #[test]
    fn a_handshake_is_dropped_at_its_timeout_and_not_before() {
        let t0 = Instant::now();
        let state = Lifecycle::Handshaking { since: t0, refusing: false };
        let mut liveness = Liveness::new(t0);
        assert_eq!(sweep(state, &mut liveness, t0 + 4999 * MS, &timeouts()), Sweep::Keep);
        assert_eq!(sweep(state, &mut liveness, t0 + 5000 * MS, &timeouts()), Sweep::Drop);
    }

    #[test]
    fn an_open_connection_is_pinged_once_when_quiet_then_dropped_when_silent() {
        let t0 = Instant::now();
        let mut liveness = Liveness::new(t0);
        let at = |ms| t0 + ms * MS;
        let mut sweep_at = |ms, state| sweep(state, &mut liveness, at(ms), &timeouts());
        assert_eq!(sweep_at(9_999, Lifecycle::Open), Sweep::Keep);
        assert_eq!(sweep_at(10_000, Lifecycle::Open), Sweep::Ping);
        assert_eq!(sweep_at(20_000, Lifecycle::Open), Sweep::Keep, "one ping per quiet spell");
        // An ending connection is still owed its heartbeat rules while it waits.
        assert_eq!(sweep_at(30_000, Lifecycle::Ending { drop_after_close: false }), Sweep::Drop);
    }

    #[test]
    fn a_closing_connection_waits_the_close_timeout_whatever_its_liveness() {
        let t0 = Instant::now();
        let mut liveness = Liveness::new(t0);
        let state = Lifecycle::Closing { since: t0 + 40_000 * MS };
        // Long silent, but closing: only the close timeout counts.
        assert_eq!(sweep(state, &mut liveness, t0 + 41_999 * MS, &timeouts()), Sweep::Keep);
        assert_eq!(sweep(state, &mut liveness, t0 + 42_000 * MS, &timeouts()), Sweep::EndTcp);
    }

    #[test]
    fn the_sweep_period_follows_the_shortest_timeout_within_bounds() {
        assert_eq!(sweep_period(&timeouts()), 500 * MS, "a quarter of the close and linger timeouts");
        let long = Timeouts { close: 8000 * MS, linger: 8000 * MS, ack: 8000 * MS, ..timeouts() };
        assert_eq!(sweep_period(&long), Duration::from_secs(1), "at most a second");
        let short = Timeouts { handshake: 200 * MS, ..timeouts() };
        assert_eq!(sweep_period(&short), 50 * MS);
        let close = Timeouts { close: 300 * MS, ..timeouts() };
        assert_eq!(sweep_period(&close), 75 * MS);
        let linger = Timeouts { linger: 100 * MS, ..timeouts() };
        assert_eq!(sweep_period(&linger), 25 * MS);
        let ack = Timeouts { ack: 300 * MS, ..timeouts() };
        assert_eq!(sweep_period(&ack), 75 * MS);
        let tiny = Timeouts { ping_interval: MS, ..timeouts() };
        assert_eq!(sweep_period(&tiny), 5 * MS);
    }

    #[test]
    fn a_violation_ends_an_open_connection_behind_its_replies_and_closes_others_now() {
        let t0 = Instant::now();
        assert_eq!(
            on_violation(Lifecycle::Open, true, false),
            Violation::CloseAfterReplies(Lifecycle::Ending { drop_after_close: false })
        );
        assert_eq!(
            on_violation(Lifecycle::Open, false, true),
            Violation::CloseNow { drop_after_close: true }
        );
        assert_eq!(
            on_violation(Lifecycle::Handshaking { since: t0, refusing: false }, true, false),
            Violation::CloseNow { drop_after_close: false }
        );
        assert_eq!(
            on_violation(Lifecycle::Ending { drop_after_close: false }, true, true),
            Violation::CloseAfterReplies(Lifecycle::Ending { drop_after_close: true }),
            "a protocol violation after a lesser one still drops"
        );
        assert_eq!(
            on_violation(Lifecycle::Closing { since: t0 }, true, false),
            Violation::CloseNow { drop_after_close: false }
        );
    }

    #[test]
    fn only_an_open_connection_takes_requests_and_only_an_ending_one_is_not_read() {
        let t0 = Instant::now();
        let states = [
            Lifecycle::Handshaking { since: t0, refusing: false },
            Lifecycle::Open,
            Lifecycle::Ending { drop_after_close: false },
            Lifecycle::Closing { since: t0 },
        ];
        let takes: Vec<bool> = states.iter().map(|s| s.takes_requests()).collect();
        let reads: Vec<bool> = states.iter().map(|s| s.reads()).collect();
        assert_eq!(takes, [false, true, false, false]);
        assert_eq!(reads, [true, true, false, true]);
    }

    #[test]
    fn strikes_close_after_more_than_the_bound_in_a_row_and_reset_on_an_admitted_message() {
        let mut strikes = Strikes::default();
        assert_eq!(strikes.record(false, 2), RateVerdict::Refuse);
        assert_eq!(strikes.record(false, 2), RateVerdict::Refuse);
        assert_eq!(strikes.record(true, 2), RateVerdict::Admit);
        assert_eq!(strikes.record(false, 2), RateVerdict::Refuse);
        assert_eq!(strikes.record(false, 2), RateVerdict::Refuse);
        assert_eq!(strikes.record(false, 2), RateVerdict::Close);
    }

    #[test]
    fn a_burst_is_a_batch_broadcasting_to_more_than_one_slice() {
        assert!(!is_burst(256, 256));
        assert!(is_burst(257, 256));
    }

    #[test]
    fn shutdown_runs_draining_then_closing_until_empty_or_the_deadline() {
        let t0 = Instant::now();
        let close = 2000 * MS;
        let running = Stage::Running;
        assert_eq!(running.step(false, false, 5, t0, close), StageStep::Stay);
        let step = running.step(true, false, 5, t0, close);
        assert_eq!(step, StageStep::BeginDraining);
        let draining = running.after(step);
        assert_eq!(draining.step(true, false, 5, t0, close), StageStep::Stay, "waits for the logic thread");
        let step = draining.step(true, true, 5, t0 + MS, close);
        assert_eq!(step, StageStep::BeginClosing { deadline: t0 + MS + close });
        let closing = draining.after(step);
        assert_eq!(closing.step(true, true, 5, t0 + 100 * MS, close), StageStep::Stay);
        assert_eq!(closing.step(true, true, 0, t0 + 100 * MS, close), StageStep::Done, "everyone has gone");
        assert_eq!(closing.step(true, true, 5, t0 + MS + close, close), StageStep::Done, "the deadline");
    }

    #[test]
    fn a_logic_thread_that_ends_by_itself_starts_the_shutdown_too() {
        let t0 = Instant::now();
        assert_eq!(Stage::Running.step(false, true, 0, t0, MS), StageStep::BeginDraining);
        assert!(matches!(Stage::Draining.step(false, true, 0, t0, MS), StageStep::BeginClosing { .. }));
    }
}
