//! `--faults` as arithmetic, without sockets or clocks: when a bot's link is killed next, how
//! (a reset, or silence with the socket held open), how long the bot then stays offline, and
//! what its resume must come to: the *window*.
//!
//! # The window
//! A version 2 session outlives its link for the server's `--session-grace-ms` (120 s by
//! default), and only while the frames it holds for its client fit `--session-replay-bytes`
//! (1 MiB): a session without a link that would pass that bound ends, and one whose half-open
//! link is still up drops its oldest frames and can no longer be resumed (`gap_lost`). So a
//! resume must succeed when both hold with room to spare, and must fail, explicitly, when
//! either is clearly passed; near the edges both outcomes are allowed ([`Expect::Either`]).
//!
//! The simulator knows the server's settings from its own options (`--server-grace`,
//! `--server-replay-bytes`, `--server-idle-timeout`, the server's defaults unless given), and
//! measures the rest: `offline` runs from the kill to the resume's answer, an upper bound of
//! the time the server counted against the grace; and the bytes the server holds are estimated
//! from the arena's `state` push at the tick rate, which dominates ([`held_rate`]): low, as the
//! bot last saw it, and high, with every bot of its room listed (those that were away come
//! back during the outage).
//!
//! The server starts counting the grace when it finds the link gone: at once for a reset; for
//! a half-open link only once its heartbeat gives up (`--server-idle-timeout` after the last
//! frame heard), or never when the bot reconnects first (an *early* reconnect: the resume ends
//! the old link). The bounds below allow for that.

use std::time::Duration;

use crate::{FreshWhen, Options};

/// Seconds of slack on each side of the grace: the server's sweep finds an expired session up
/// to a second late, and a resume's round trip under load takes a while.
const GRACE_MARGIN_SECS: f64 = 2.0;
/// Below this share of the replay bound a resume must succeed; above [`REPLAY_OVER`] it must
/// fail. The estimate of the bytes held is within a few per cent on a steady arena.
const REPLAY_UNDER: f64 = 0.8;
/// See [`REPLAY_UNDER`].
const REPLAY_OVER: f64 = 1.25;
/// Seconds of frames the server may hold already when the link dies: the client acknowledges
/// once a second (or every 64 frames).
const UNACKED_SECS: f64 = 1.5;
/// Bytes a push frame carries beyond its body, for the topics here: tag, topic length and a
/// short topic.
const PUSH_OVERHEAD: f64 = 8.0;
/// Bytes of a `move` reply frame, about: tag, callback id, `Moved`.
const REPLY_BYTES: f64 = 8.0;
/// Bytes of a player's `x` and `y` in a `state` push at most: zigzag varints of 0 to 999.
const POSITION_MAX_BYTES: usize = 6;

/// How a link is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillKind {
    /// `SO_LINGER` 0, then close: the kernel sends a TCP reset, and the server sees it at once.
    Reset,
    /// Silence: the bot stops reading and writing but keeps the socket open. `early`: the
    /// outage is drawn short enough that the bot reconnects before the server's heartbeat
    /// gives up on the old link.
    HalfOpen {
        /// Planned to reconnect while the old link is still open on the server.
        early: bool,
    },
}

/// A session killed before it carried anything of the game's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FreshKill {
    /// Right after the welcome: the client has sent nothing on the session.
    BeforeFirstFrame,
    /// Right after the session's first frame (the `login`) went out, before its answer.
    AfterFirstFrame,
}

/// What a resume must come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Inside the window: it must succeed.
    Resume,
    /// Clearly outside: it must fail with a reason (`ended`, `gap_lost`).
    Fail,
    /// Near an edge: either.
    Either,
}

/// The server's settings that bound a session's life without a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ServerLimits {
    /// `--session-grace-ms`, in seconds.
    pub grace_secs: f64,
    /// `--session-replay-bytes`.
    pub replay_bytes: f64,
    /// `--idle-timeout-ms`, in seconds: how long a silent link lasts on the server.
    pub idle_timeout_secs: f64,
}

/// The fault settings of a run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FaultPlan {
    /// Mean seconds between kills of a bot while its link is up (`60 / --fault-rate`); `None`:
    /// no kills but the fresh ones.
    mean_up_secs: Option<f64>,
    rst_share: f64,
    early_share: f64,
    fresh_share: f64,
    fresh_when: FreshWhen,
    outage_min: f64,
    outage_max: f64,
    /// The longest early outage: half the server's idle timeout.
    early_max: f64,
    /// The server's bounds.
    pub limits: ServerLimits,
}

impl FaultPlan {
    /// The plan of `opts`; out-of-range shares are clamped, a negative outage is 0.
    pub(crate) fn new(opts: &Options) -> Self {
        let outage_min = opts.outage_min.max(0.0);
        let limits = ServerLimits {
            grace_secs: opts.server_grace.max(0.0),
            replay_bytes: opts.server_replay_bytes as f64,
            idle_timeout_secs: opts.server_idle_timeout.max(0.0),
        };
        Self {
            mean_up_secs: (opts.fault_rate > 0.0).then(|| 60.0 / opts.fault_rate),
            rst_share: opts.fault_rst_share.clamp(0.0, 1.0),
            early_share: opts.fault_early_share.clamp(0.0, 1.0),
            fresh_share: opts.fault_fresh_share.clamp(0.0, 1.0),
            fresh_when: opts.fault_fresh_when,
            outage_min,
            outage_max: opts.outage_max.max(outage_min),
            early_max: (limits.idle_timeout_secs / 2.0).max(outage_min),
            limits,
        }
    }

    /// How long after its link came up (or the last resume) a bot's link is killed: exponential
    /// with the plan's mean, from a draw `r` in `[0, 1)`. `None`: never.
    pub(crate) fn next_kill_in(&self, r: f64) -> Option<Duration> {
        let mean = self.mean_up_secs?;
        let secs = -(1.0 - r.clamp(0.0, 0.999_999_999)).ln() * mean;
        Some(Duration::from_secs_f64(secs))
    }

    /// The kind of a kill, from two draws in `[0, 1)`.
    pub(crate) fn kill_kind(&self, r_kind: f64, r_early: f64) -> KillKind {
        if r_kind < self.rst_share {
            KillKind::Reset
        } else {
            KillKind::HalfOpen { early: r_early < self.early_share }
        }
    }

    /// Whether a new session is killed before it carried anything, and when, from two draws.
    pub(crate) fn fresh_kill(&self, r_kill: f64, r_when: f64) -> Option<FreshKill> {
        let when = match self.fresh_when {
            FreshWhen::Before => FreshKill::BeforeFirstFrame,
            FreshWhen::After => FreshKill::AfterFirstFrame,
            FreshWhen::Both if r_when < 0.5 => FreshKill::BeforeFirstFrame,
            FreshWhen::Both => FreshKill::AfterFirstFrame,
        };
        (r_kill < self.fresh_share).then_some(when)
    }

    /// How long the bot stays offline after a kill of `kind`: uniform between `--outage-min`
    /// and `--outage-max`, or, for an early reconnect, up to half the server's idle timeout.
    pub(crate) fn outage(&self, kind: KillKind, r: f64) -> Duration {
        let max = match kind {
            KillKind::HalfOpen { early: true } => self.outage_max.min(self.early_max),
            _ => self.outage_max,
        };
        Duration::from_secs_f64(self.outage_min + (max - self.outage_min) * r.clamp(0.0, 1.0))
    }

    /// What the resume of a link killed as `kind` must come to, answered `offline_secs` after
    /// the kill, for a session whose server held `rate` more bytes a second. `still_linked`:
    /// the old link was still open when the bot reconnected (the server never counted the
    /// grace).
    pub(crate) fn expect(
        &self,
        kind: KillKind,
        still_linked: bool,
        offline_secs: f64,
        rate: HeldRate,
    ) -> Expect {
        let l = &self.limits;
        let held_low = rate.low * (offline_secs + UNACKED_SECS);
        let held_high = rate.high * (offline_secs + UNACKED_SECS);
        // The least time the server can have counted against the grace.
        let counted_least = match kind {
            _ if still_linked => 0.0,
            KillKind::Reset => offline_secs - GRACE_MARGIN_SECS,
            KillKind::HalfOpen { .. } => offline_secs - l.idle_timeout_secs - GRACE_MARGIN_SECS,
        };
        if counted_least > l.grace_secs + GRACE_MARGIN_SECS || held_low > REPLAY_OVER * l.replay_bytes {
            Expect::Fail
        } else if offline_secs + GRACE_MARGIN_SECS < l.grace_secs && held_high < REPLAY_UNDER * l.replay_bytes
        {
            Expect::Resume
        } else {
            Expect::Either
        }
    }
}

/// What a bot last saw of its arena's `state` push.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StateShape {
    /// The body's bytes.
    pub body: usize,
    /// The bytes before the players: the tick and the list's length.
    pub prefix: usize,
    /// The players it listed.
    pub players: usize,
}

/// The bytes a session without a link gains per second, at least and at most.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct HeldRate {
    /// With the arena as the bot last saw it.
    pub low: f64,
    /// With every one of `room_size` players listed, each at the most bytes a player takes.
    pub high: f64,
}

/// The bytes a session gains per second while it has no link: its arena's `state` push
/// (`state`; `None` when not in an arena) at `tick_hz`, and `move` replies at `calls_per_sec`.
/// A player takes its id (a varint: 3 bytes below 65 536) and two positions; `player_id` is
/// the bot's own, and the ids of its room's players are taken to stay below twice it plus 1000
/// (they come from one counter, and a room's bots log in together).
pub(crate) fn held_rate(
    tick_hz: u16,
    state: Option<StateShape>,
    room_size: usize,
    player_id: u32,
    calls_per_sec: f64,
) -> HeldRate {
    let replies = calls_per_sec * REPLY_BYTES;
    let Some(state) = state.filter(|s| s.body > 0) else { return HeldRate { low: replies, high: replies } };
    let per_push = |body: usize| f64::from(tick_hz) * (body as f64 + PUSH_OVERHEAD);
    let id_bytes = varint_len(u64::from(player_id) * 2 + 1000);
    let full = state.prefix + 2 + room_size.max(state.players) * (id_bytes + POSITION_MAX_BYTES);
    HeldRate { low: per_push(state.body) + replies, high: per_push(full.max(state.body)) + replies }
}

/// The bytes of `value` as a bincode varint (PROTOCOL.md 3.1).
fn varint_len(value: u64) -> usize {
    match value {
        0..=250 => 1,
        251..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(edit: impl FnOnce(&mut Options)) -> FaultPlan {
        let mut opts = Options::new("ws://127.0.0.1:1/");
        edit(&mut opts);
        FaultPlan::new(&opts)
    }

    #[test]
    fn kills_come_at_the_rate_and_split_by_the_shares() {
        let p = plan(|o| {
            o.fault_rate = 2.0;
            o.fault_rst_share = 0.3;
            o.fault_early_share = 0.5;
        });
        assert_eq!(p.next_kill_in(0.0), Some(Duration::ZERO));
        // The median of an exponential of mean 30 s is 30 ln 2.
        let median = p.next_kill_in(0.5).expect("kills").as_secs_f64();
        assert!((median - 30.0 * std::f64::consts::LN_2).abs() < 1e-6, "{median}");
        assert!(p.next_kill_in(0.999_999_999_9).expect("finite").as_secs_f64() < 1e4);
        assert_eq!(plan(|o| o.fault_rate = 0.0).next_kill_in(0.5), None, "rate 0: no kills");
        assert_eq!(p.kill_kind(0.29, 0.9), KillKind::Reset);
        assert_eq!(p.kill_kind(0.3, 0.49), KillKind::HalfOpen { early: true });
        assert_eq!(p.kill_kind(0.3, 0.5), KillKind::HalfOpen { early: false });
        let fresh = plan(|o| o.fault_fresh_share = 0.1);
        assert_eq!(fresh.fresh_kill(0.1, 0.0), None);
        assert_eq!(fresh.fresh_kill(0.09, 0.2), Some(FreshKill::BeforeFirstFrame));
        assert_eq!(fresh.fresh_kill(0.09, 0.7), Some(FreshKill::AfterFirstFrame));
        let after = plan(|o| {
            o.fault_fresh_share = 1.0;
            o.fault_fresh_when = FreshWhen::After;
        });
        assert_eq!(after.fresh_kill(0.5, 0.2), Some(FreshKill::AfterFirstFrame), "after only");
    }

    #[test]
    fn outages_spread_between_the_bounds_and_early_ones_stay_under_half_the_idle_timeout() {
        let p = plan(|o| {
            o.outage_min = 0.1;
            o.outage_max = 120.0;
            o.server_idle_timeout = 30.0;
        });
        let secs = |kind, r| p.outage(kind, r).as_secs_f64();
        assert!((secs(KillKind::Reset, 0.0) - 0.1).abs() < 1e-9);
        assert!((secs(KillKind::Reset, 1.0) - 120.0).abs() < 1e-9);
        assert!((secs(KillKind::HalfOpen { early: false }, 0.5) - 60.05).abs() < 1e-9);
        assert!((secs(KillKind::HalfOpen { early: true }, 1.0) - 15.0).abs() < 1e-9);
        // An outage range below the early bound is left as it is.
        let short = plan(|o| o.outage_max = 3.0);
        assert!((short.outage(KillKind::HalfOpen { early: true }, 1.0).as_secs_f64() - 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_window_is_the_grace_and_the_replay_bound_with_room_on_both_sides() {
        // Grace 20 s, 1 MiB held at most, 10 KB/s: the bytes bound is at about 100 s.
        let p = plan(|o| {
            o.server_grace = 20.0;
            o.server_replay_bytes = 1 << 20;
            o.server_idle_timeout = 30.0;
        });
        let rst = KillKind::Reset;
        let silent = KillKind::HalfOpen { early: false };
        let rate = HeldRate { low: 10_000.0, high: 10_000.0 };
        assert_eq!(p.expect(rst, false, 5.0, rate), Expect::Resume);
        assert_eq!(p.expect(rst, false, 17.9, rate), Expect::Resume);
        assert_eq!(p.expect(rst, false, 19.0, rate), Expect::Either, "near the grace");
        assert_eq!(p.expect(rst, false, 24.1, rate), Expect::Fail, "past the grace");
        // A half-open link is found dead only after the idle timeout: the grace starts late.
        assert_eq!(p.expect(silent, false, 40.0, rate), Expect::Either);
        assert_eq!(p.expect(silent, false, 54.1, rate), Expect::Fail);
        // A link still open at the reconnect never started the grace; only the bytes count.
        assert_eq!(p.expect(silent, true, 40.0, rate), Expect::Either, "past the grace, but linked");
        // The bytes: 1 MiB at 10 KB/s is passed after about 103 s, clearly after 130 s.
        let long = plan(|o| {
            o.server_grace = 1000.0;
            o.server_replay_bytes = 1 << 20;
        });
        assert_eq!(long.expect(rst, false, 80.0, rate), Expect::Resume);
        assert_eq!(long.expect(rst, false, 100.0, rate), Expect::Either);
        assert_eq!(long.expect(rst, false, 132.0, rate), Expect::Fail);
        assert_eq!(long.expect(silent, true, 132.0, rate), Expect::Fail, "a linked session overflows too");
        // A session that held nothing is bounded by the grace alone.
        assert_eq!(long.expect(rst, false, 900.0, HeldRate::default()), Expect::Resume);
        // Inside needs the high estimate under the bound, outside the low one over it.
        let unsure = HeldRate { low: 5_000.0, high: 20_000.0 };
        assert_eq!(long.expect(rst, false, 40.0, unsure), Expect::Resume);
        assert_eq!(long.expect(rst, false, 80.0, unsure), Expect::Either, "the high one is over");
        assert_eq!(long.expect(rst, false, 300.0, unsure), Expect::Fail, "so is the low one");
    }

    #[test]
    fn the_bytes_held_per_second_range_from_the_arena_as_seen_to_a_full_one() {
        let none = held_rate(30, None, 50, 7, 10.0);
        assert_eq!(none, HeldRate { low: 80.0, high: 80.0 }, "not in an arena yet: the replies only");
        // 40 players seen in 392 bytes; a full room of 50 at 3 + 6 bytes each (ids below 65 536).
        let seen = StateShape { body: 392, prefix: 4, players: 40 };
        let rate = held_rate(30, Some(seen), 50, 1200, 0.0);
        assert_eq!(rate.low, 30.0 * 400.0);
        assert_eq!(rate.high, 30.0 * (4.0 + 2.0 + 50.0 * 9.0 + 8.0));
        // A bot with a large id expects larger ids around it.
        assert!(held_rate(30, Some(seen), 50, 40_000, 0.0).high > rate.high);
        assert_eq!((varint_len(250), varint_len(251), varint_len(65_536)), (1, 3, 5));
    }
}
