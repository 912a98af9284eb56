//! `arena` (the default): log in (as `PREFIX-N`, or with `--accounts guest` by `auth` as the
//! bot's guest account: see `sign_in`), join `arena-{N / room size}`, send a `move` every
//! `1/--rate` s and a `chat` every `--chat-interval` s, and with `--persist-per-sec` a
//! `flush_stats` every `1/R` s (each timer with a random phase per bot), and receive the arena's
//! pushes. A refused sign-in or join is tried again a second later.
//!
//! `flush_stats` calls are timed apart (the round trip of a committed write) and their
//! failures counted by kind; like every call, each also counts in the run's totals.
//!
//! With `--replication` each bot also mirrors the state the server replicates to it, and
//! checks it against the server's digests (`replica_check`); with `--link-loss-every` its
//! link is reset now and then, and it reconnects, signs in and joins again.

use std::time::{Duration, Instant};

use ticksock_arena::proto::{
    Chat, Join, Move, PlayerStats, ROUTE_CHAT, ROUTE_FLUSH_STATS, ROUTE_JOIN, ROUTE_MOVE, ROUTE_REPLICA_ACK,
    ROUTE_REPLICA_DIGEST,
};
use ticksock_client::{CallId, Outcome};
use ticksock_protocol::replica::TOPIC_REPLICA;

use super::replica_check::ReplicaCheck;
use super::sign_in::{self, SignIn, Step};
use super::{Script, room};
use crate::Options;
use crate::tally::{Tally, failure_kind, micros};
use crate::worker::{Bot, Cx, Kill};

/// How long a link loss waits, when it is due, for the bot's calls in flight to be answered
/// (a call lost with its link would count as an error).
const LINK_LOSS_RETRY: Duration = Duration::from_millis(20);

/// The arena scenario's settings.
pub(crate) struct Arena {
    move_every: Duration,
    chat_every: Duration,
    /// `--persist-per-sec`: the period of a bot's `flush_stats` calls (`None`: no calls).
    persist_every: Option<Duration>,
    /// `--replication`: the server's interest cell (`--aoi-cell`), and the period of a bot's
    /// digest checks (`None`: no replication).
    replication: Option<(i32, Duration)>,
    /// `--link-loss-every`: the mean gap between a bot's link losses (`None`: none).
    link_loss_every: Option<Duration>,
}

/// An arena bot: where it is, and its `flush_stats` calls awaiting their answer.
#[derive(Debug, Default)]
pub(crate) struct ArenaBot {
    phase: Phase,
    /// `flush_stats` calls in flight and when each was made. Kept across connections, so
    /// that a call the drop failed is counted as a failed write.
    persisting: Vec<(CallId, Instant)>,
    /// `--replication`: the bot's mirror and its checks (made at its first `join`).
    replica: Option<Box<ReplicaCheck>>,
}

/// Where an arena bot is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Phase {
    /// Not connected (or waiting for the welcome).
    #[default]
    Offline,
    SigningIn(SignIn),
    Joining(CallId),
    /// In its arena: moving and chatting (and persisting).
    Playing,
}

/// An arena bot's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ArenaTimer {
    Move,
    Chat,
    /// A `flush_stats` call (`--persist-per-sec`).
    Persist,
    /// Sign in or join again, after a refusal.
    Retry,
    /// `--replication`: a digest check.
    Digest,
    /// `--link-loss-every`: reset the link.
    LinkLoss,
}

impl Arena {
    pub(crate) fn new(opts: &Options) -> Self {
        let persist_every =
            (opts.persist_per_sec > 0.0).then(|| Duration::from_secs_f64(1.0 / opts.persist_per_sec));
        let replication =
            opts.replication.then(|| (opts.aoi_cell, Duration::from_secs_f64(opts.digest_every.max(0.001))));
        Self {
            move_every: Duration::from_secs_f64(1.0 / opts.rate.max(0.001)),
            chat_every: Duration::from_secs_f64(opts.chat_interval.max(0.001)),
            persist_every,
            replication,
            link_loss_every: (opts.link_loss_every > 0.0)
                .then(|| Duration::from_secs_f64(opts.link_loss_every)),
        }
    }

    fn sign_in(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ArenaTimer>) {
        if let Some(call) = sign_in::start(bot, now, cx) {
            bot.state.phase = Phase::SigningIn(call);
        }
    }

    fn join(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ArenaTimer>) {
        // In a cluster an arena lives on one node: this `join` may be redirected there.
        let join = Join { room: room("arena", bot.index, &cx.opts) };
        if let Some(id) = bot.call_resendable(ROUTE_JOIN, &join, now, cx) {
            bot.state.phase = Phase::Joining(id);
        }
    }

    /// In the arena: the periodic calls start, each at a random phase, so that the bots'
    /// calls spread over each period.
    fn play(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ArenaTimer>) {
        bot.state.phase = Phase::Playing;
        let mut periodic = vec![(self.move_every, ArenaTimer::Move), (self.chat_every, ArenaTimer::Chat)];
        periodic.extend(self.persist_every.map(|every| (every, ArenaTimer::Persist)));
        for (every, timer) in periodic {
            let phase = Duration::from_nanos(bot.rng.below(every.as_nanos() as u64));
            bot.schedule(cx, now + phase, timer);
        }
        if let Some((cell, _)) = self.replication {
            let player = bot.track.player_id;
            let mirror = mirrors(bot.index, cx.opts.mirror_share);
            bot.state.replica.get_or_insert_with(|| Box::new(ReplicaCheck::new(cell, mirror))).joined(player);
            // The first check soon after the join: a late joiner's snapshot is checked at once.
            bot.schedule(cx, now + Duration::from_millis(300), ArenaTimer::Digest);
        }
        if let Some(every) = self.link_loss_every {
            // Uniform between half and 1.5 times the mean.
            let gap = every.mul_f64(0.5 + bot.rng.next_f64());
            bot.schedule(cx, now + gap, ArenaTimer::LinkLoss);
        }
    }

    /// Sends the acknowledgement the bot's mirror says is due, if any.
    fn acknowledge(bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ArenaTimer>) {
        let Some(tick) = bot.state.replica.as_mut().and_then(|r| r.poll_ack(now)) else { return };
        if let Some(id) = bot.call(ROUTE_REPLICA_ACK, &tick, now, cx)
            && let Some(replica) = bot.state.replica.as_mut()
        {
            replica.ack_sent(id, &mut cx.tally.counters);
        }
    }

    /// Asks for the server's digest of the view it last sent, unless a check is in flight.
    fn check_digest(bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ArenaTimer>) {
        if !bot.state.replica.as_ref().is_some_and(|r| r.may_probe()) {
            return;
        }
        if let Some(id) = bot.call(ROUTE_REPLICA_DIGEST, &(), now, cx)
            && let Some(replica) = bot.state.replica.as_mut()
        {
            replica.probe_sent(id);
        }
    }

    /// Resets the bot's link once none of its calls is in flight.
    fn lose_link(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ArenaTimer>) {
        if bot.session.pending_calls() > 0 {
            return bot.schedule(cx, now + LINK_LOSS_RETRY, ArenaTimer::LinkLoss);
        }
        cx.tally.counters.link_losses += 1;
        // A reset holds no socket open.
        let _ = bot.kill_link(self, Kill::Reset, now, cx);
    }

    /// The next firing of a periodic timer due at `at`: keep the schedule, or skip ahead if the
    /// loop fell behind by more than a period.
    fn next(at: Instant, every: Duration, now: Instant) -> Instant {
        if at + every > now { at + every } else { now + every }
    }

    fn persist(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ArenaTimer>) {
        if let Some(id) = bot.call(ROUTE_FLUSH_STATS, &(), now, cx) {
            cx.tally.counters.persist_calls += 1;
            bot.state.persisting.push((id, now));
        }
    }

    /// Counts a `flush_stats` outcome: a committed answer's round trip, or the failure.
    fn persisted(outcome: &Outcome, sent_at: Instant, now: Instant, cx: &mut Cx<ArenaTimer>) {
        let in_window = now >= cx.steady_start() && cx.in_window(now);
        let t = &mut cx.tally;
        let kind = match outcome.reply_body() {
            Some(body) if ticksock_protocol::decode_body::<PlayerStats>(body).is_ok() => {
                t.counters.persist_replied += 1;
                let us = micros(now.saturating_duration_since(sent_at));
                t.persist_latency.saturating_record(us);
                if in_window {
                    t.persist_latency_steady.saturating_record(us);
                }
                return;
            }
            Some(_) => {
                // Counted as replied by the worker: an error only as a protocol error.
                t.counters.protocol_errors += 1;
                "undecodable reply".to_owned()
            }
            None => failure_kind(outcome),
        };
        t.counters.persist_failed += 1;
        *t.persist_failures.entry(kind).or_default() += 1;
    }
}

/// Whether bot `index` rebuilds its view (`--mirror-share`): spread evenly over the indexes,
/// `share` of every run of bots.
fn mirrors(index: u32, share: f64) -> bool {
    let share = share.clamp(0.0, 1.0);
    ((f64::from(index) + 1.0) * share).floor() > (f64::from(index) * share).floor()
}

impl Script for Arena {
    type BotState = ArenaBot;
    type Timer = ArenaTimer;

    fn on_connected(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ArenaTimer>) {
        self.sign_in(bot, now, cx);
    }

    fn on_outcome(
        &self,
        bot: &mut Bot<Self>,
        id: CallId,
        outcome: Outcome,
        now: Instant,
        cx: &mut Cx<ArenaTimer>,
    ) {
        if let Some(replica) = bot.state.replica.as_mut()
            && replica.on_outcome(id, &outcome, &mut cx.tally.counters)
        {
            return;
        }
        if let Some(at) = bot.state.persisting.iter().position(|(call, _)| *call == id) {
            let (_, sent_at) = bot.state.persisting.swap_remove(at);
            return Self::persisted(&outcome, sent_at, now, cx);
        }
        let retry = now + Duration::from_secs(1);
        match bot.state.phase {
            Phase::SigningIn(call) if call.id() == id => match sign_in::step(bot, call, outcome, now, cx) {
                Step::Done => self.join(bot, now, cx),
                Step::Next(next) => bot.state.phase = Phase::SigningIn(next),
                Step::Failed => bot.schedule(cx, retry, ArenaTimer::Retry),
            },
            Phase::Joining(join) if join == id => {
                if !outcome.is_reply() {
                    return bot.schedule(cx, retry, ArenaTimer::Retry);
                }
                sign_in::note_player(bot, &outcome);
                self.play(bot, now, cx);
            }
            _ => {}
        }
    }

    fn on_timer(
        &self,
        bot: &mut Bot<Self>,
        timer: ArenaTimer,
        at: Instant,
        now: Instant,
        cx: &mut Cx<ArenaTimer>,
    ) {
        if timer != ArenaTimer::Retry {
            cx.tally.timer_late.saturating_record(micros(now.saturating_duration_since(at)));
        }
        match (timer, bot.state.phase) {
            (ArenaTimer::Move, Phase::Playing) => {
                let dx = bot.rng.below(3) as i8 - 1;
                let dy = bot.rng.below(3) as i8 - 1;
                bot.call(ROUTE_MOVE, &Move { dx, dy }, now, cx);
                // Acknowledgements ride on the moves: at most one per move, when one is due.
                Self::acknowledge(bot, now, cx);
                bot.schedule(cx, Self::next(at, self.move_every, now), ArenaTimer::Move);
            }
            (ArenaTimer::Chat, Phase::Playing) => {
                let text = format!("hello from {}", bot.index);
                bot.call(ROUTE_CHAT, &Chat { text }, now, cx);
                bot.schedule(cx, Self::next(at, self.chat_every, now), ArenaTimer::Chat);
            }
            (ArenaTimer::Persist, Phase::Playing) => {
                if let Some(every) = self.persist_every {
                    self.persist(bot, now, cx);
                    bot.schedule(cx, Self::next(at, every, now), ArenaTimer::Persist);
                }
            }
            (ArenaTimer::Digest, Phase::Playing) => {
                if let Some((_, every)) = self.replication {
                    Self::check_digest(bot, now, cx);
                    bot.schedule(cx, Self::next(at, every, now), ArenaTimer::Digest);
                }
            }
            (ArenaTimer::LinkLoss, Phase::Playing) => self.lose_link(bot, now, cx),
            (ArenaTimer::Retry, Phase::SigningIn(_)) => self.sign_in(bot, now, cx),
            (ArenaTimer::Retry, Phase::Joining(_)) => self.join(bot, now, cx),
            _ => {}
        }
    }

    /// Back to "not connected", its timers forgotten; the `flush_stats` calls in flight stay
    /// listed, to be counted when they fail.
    fn on_offline(&self, bot: &mut Bot<Self>) {
        bot.state.phase = Phase::Offline;
        if let Some(replica) = bot.state.replica.as_mut() {
            replica.offline();
        }
        bot.generation = bot.generation.wrapping_add(1);
    }

    /// `--replication`: a `replica` push goes to the bot's mirror.
    fn on_push(
        &self,
        state: &mut ArenaBot,
        topic: &str,
        body: &[u8],
        _now: Instant,
        _run_start: Instant,
        tally: &mut Tally,
    ) {
        if topic == TOPIC_REPLICA
            && let Some(replica) = state.replica.as_mut()
        {
            replica.on_update(body, &mut tally.counters);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mirror_share_is_spread_over_the_bots() {
        let count = |share: f64, bots: u32| (0..bots).filter(|i| super::mirrors(*i, share)).count();
        assert_eq!(count(1.0, 100), 100);
        assert_eq!(count(0.0, 100), 0);
        assert_eq!(count(0.2, 100), 20);
        assert_eq!(count(0.2, 10), 2);
        assert!((0..5).any(|i| super::mirrors(i, 0.2)), "one in every 5 bots");
    }
}
