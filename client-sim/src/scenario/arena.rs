//! `arena` (the default): log in as `PREFIX-N`, join `arena-{N / room size}`, send a `move`
//! every `1/--rate` s and a `chat` every `--chat-interval` s (each with a random phase per
//! bot), and receive the arena's pushes. A refused login or join is tried again a second later.

use std::time::{Duration, Instant};

use ticksock_arena::proto::{Chat, Join, Move, ROUTE_CHAT, ROUTE_JOIN, ROUTE_MOVE};
use ticksock_client::{CallId, Outcome};

use super::{Script, logged_in, login, room};
use crate::Options;
use crate::tally::micros;
use crate::worker::{Bot, Cx};

/// The arena scenario's settings.
pub(crate) struct Arena {
    move_every: Duration,
    chat_every: Duration,
}

/// Where an arena bot is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum ArenaBot {
    /// Not connected (or waiting for the welcome).
    #[default]
    Offline,
    LoggingIn(CallId),
    Joining(CallId),
    /// In its arena: moving and chatting.
    Playing,
}

/// An arena bot's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ArenaTimer {
    Move,
    Chat,
    /// Log in or join again, after a refusal.
    Retry,
}

impl Arena {
    pub(crate) fn new(opts: &Options) -> Self {
        Self {
            move_every: Duration::from_secs_f64(1.0 / opts.rate.max(0.001)),
            chat_every: Duration::from_secs_f64(opts.chat_interval.max(0.001)),
        }
    }

    fn login(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ArenaTimer>) {
        if let Some(id) = login(bot, now, cx) {
            bot.state = ArenaBot::LoggingIn(id);
        }
    }

    fn join(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ArenaTimer>) {
        // In a cluster an arena lives on one node: this `join` may be redirected there.
        let join = Join { room: room("arena", bot.index, &cx.opts) };
        if let Some(id) = bot.call_resendable(ROUTE_JOIN, &join, now, cx) {
            bot.state = ArenaBot::Joining(id);
        }
    }

    /// The next firing of a periodic timer due at `at`: keep the schedule, or skip ahead if the
    /// loop fell behind by more than a period.
    fn next(at: Instant, every: Duration, now: Instant) -> Instant {
        if at + every > now { at + every } else { now + every }
    }
}

impl Script for Arena {
    type BotState = ArenaBot;
    type Timer = ArenaTimer;

    fn on_connected(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ArenaTimer>) {
        self.login(bot, now, cx);
    }

    fn on_outcome(
        &self,
        bot: &mut Bot<Self>,
        id: CallId,
        outcome: Outcome,
        now: Instant,
        cx: &mut Cx<ArenaTimer>,
    ) {
        let retry = now + Duration::from_secs(1);
        match bot.state {
            ArenaBot::LoggingIn(login) if login == id => {
                if logged_in(bot, outcome) {
                    self.join(bot, now, cx);
                } else {
                    bot.schedule(cx, retry, ArenaTimer::Retry);
                }
            }
            ArenaBot::Joining(join) if join == id => {
                if !outcome.is_reply() {
                    return bot.schedule(cx, retry, ArenaTimer::Retry);
                }
                bot.state = ArenaBot::Playing;
                // Random phases, so that the bots' calls spread over each period.
                let phase = Duration::from_nanos(bot.rng.below(self.move_every.as_nanos() as u64));
                bot.schedule(cx, now + phase, ArenaTimer::Move);
                let phase = Duration::from_nanos(bot.rng.below(self.chat_every.as_nanos() as u64));
                bot.schedule(cx, now + phase, ArenaTimer::Chat);
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
        if matches!(timer, ArenaTimer::Move | ArenaTimer::Chat) {
            cx.tally.timer_late.saturating_record(micros(now.saturating_duration_since(at)));
        }
        match (timer, bot.state) {
            (ArenaTimer::Move, ArenaBot::Playing) => {
                let dx = bot.rng.below(3) as i8 - 1;
                let dy = bot.rng.below(3) as i8 - 1;
                bot.call(ROUTE_MOVE, &Move { dx, dy }, now, cx);
                bot.schedule(cx, Self::next(at, self.move_every, now), ArenaTimer::Move);
            }
            (ArenaTimer::Chat, ArenaBot::Playing) => {
                let text = format!("hello from {}", bot.index);
                bot.call(ROUTE_CHAT, &Chat { text }, now, cx);
                bot.schedule(cx, Self::next(at, self.chat_every, now), ArenaTimer::Chat);
            }
            (ArenaTimer::Retry, ArenaBot::LoggingIn(_)) => self.login(bot, now, cx),
            (ArenaTimer::Retry, ArenaBot::Joining(_)) => self.join(bot, now, cx),
            _ => {}
        }
    }
}
