//! `echo`: keep `--window` `echo` calls of `--body-bytes` in flight per bot; each answer (or
//! timeout) sends the next. With `--echo-rate N` instead, each bot sends one call every `1/N`
//! s from a random phase, whatever is in flight, so the offered load is fixed and the round
//! trips are those of a server at that load. A reply whose body differs from the request's is
//! an error.

use std::time::{Duration, Instant};

use ticksock_arena::proto::ROUTE_ECHO;
use ticksock_client::{CallId, Outcome};

use super::{Script, count_echo_mismatch, echo_body};
use crate::Options;
use crate::tally::micros;
use crate::worker::{Bot, Cx};

/// The echo scenario's settings.
pub(crate) struct Echo {
    window: u32,
    /// `--echo-rate`'s period; `None` keeps the window full instead.
    every: Option<Duration>,
    body: Vec<u8>,
}

/// Where an echo bot is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum EchoBot {
    /// Not connected (or waiting for the welcome).
    #[default]
    Offline,
    /// Connected: keeping its window full, or calling on its timer.
    Echoing,
}

/// The echo scenario's one timer: the next call at `--echo-rate` is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct CallDue;

impl Echo {
    pub(crate) fn new(opts: &Options) -> Self {
        // `Options::problem` refuses rates that are not finite or below 0; a rate too small
        // for a `Duration` would mean no call in the run anyway.
        let every =
            (opts.echo_rate > 0.0).then(|| Duration::try_from_secs_f64(1.0 / opts.echo_rate).ok()).flatten();
        Self { window: opts.window, every, body: echo_body(opts.body_bytes) }
    }

    /// The next call after the one due at `at`: on schedule, or a period after `now` if the
    /// worker fell behind by more than a period (as the arena's moves do).
    fn next(at: Instant, every: Duration, now: Instant) -> Instant {
        if at + every > now { at + every } else { now + every }
    }
}

impl Script for Echo {
    type BotState = EchoBot;
    type Timer = CallDue;

    fn on_connected(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<CallDue>) {
        bot.state = EchoBot::Echoing;
        match self.every {
            Some(every) => {
                // A random phase, so that the bots' calls spread over each period.
                let phase =
                    Duration::from_nanos(bot.rng.below(every.as_nanos().min(u128::from(u64::MAX)) as u64));
                bot.schedule(cx, now + phase, CallDue);
            }
            None => {
                for _ in 0..self.window {
                    bot.call_raw(ROUTE_ECHO, &self.body, now, cx);
                }
            }
        }
    }

    fn on_outcome(
        &self,
        bot: &mut Bot<Self>,
        _id: CallId,
        outcome: Outcome,
        now: Instant,
        cx: &mut Cx<CallDue>,
    ) {
        if bot.state != EchoBot::Echoing {
            return;
        }
        count_echo_mismatch(&outcome, &self.body, &mut cx.tally);
        // A call lost to a drop is not replaced: the window refills on the next welcome. At a
        // fixed rate the timer sends the next call, not the answer.
        if self.every.is_none()
            && (outcome.is_reply() || matches!(outcome, Outcome::Error { .. } | Outcome::Timeout))
        {
            bot.call_raw(ROUTE_ECHO, &self.body, now, cx);
        }
    }

    fn on_timer(
        &self,
        bot: &mut Bot<Self>,
        _timer: CallDue,
        at: Instant,
        now: Instant,
        cx: &mut Cx<CallDue>,
    ) {
        let (Some(every), EchoBot::Echoing) = (self.every, bot.state) else {
            return;
        };
        cx.tally.timer_late.saturating_record(micros(now.saturating_duration_since(at)));
        bot.call_raw(ROUTE_ECHO, &self.body, now, cx);
        bot.schedule(cx, Self::next(at, every, now), CallDue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_sets_the_period_and_zero_keeps_the_window() {
        let opts = |echo_rate| Options { echo_rate, ..Options::new("ws://127.0.0.1:1/") };
        assert_eq!(Echo::new(&opts(5.0)).every, Some(Duration::from_millis(200)));
        assert_eq!(Echo::new(&opts(0.0)).every, None);
    }

    #[test]
    fn a_late_call_keeps_the_schedule_unless_a_whole_period_late() {
        let at = Instant::now();
        let every = Duration::from_millis(200);
        assert_eq!(Echo::next(at, every, at + Duration::from_millis(50)), at + every);
        let late = at + Duration::from_millis(450);
        assert_eq!(Echo::next(at, every, late), late + every);
    }
}
