//! `echo`: keep `--window` `echo` calls of `--body-bytes` in flight per bot; each answer (or
//! timeout) sends the next. A reply whose body differs from the request's is an error.

use std::time::Instant;

use ticksock_arena::proto::ROUTE_ECHO;
use ticksock_client::{CallId, Outcome};

use super::{NoTimer, Script, count_echo_mismatch, echo_body};
use crate::Options;
use crate::worker::{Bot, Cx};

/// The echo scenario's settings.
pub(crate) struct Echo {
    window: u32,
    body: Vec<u8>,
}

/// Where an echo bot is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum EchoBot {
    /// Not connected (or waiting for the welcome).
    #[default]
    Offline,
    /// Connected: keeping its window full.
    Echoing,
}

impl Echo {
    pub(crate) fn new(opts: &Options) -> Self {
        Self { window: opts.window, body: echo_body(opts.body_bytes) }
    }
}

impl Script for Echo {
    type BotState = EchoBot;
    type Timer = NoTimer;

    fn on_connected(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<NoTimer>) {
        bot.state = EchoBot::Echoing;
        for _ in 0..self.window {
            bot.call_raw(ROUTE_ECHO, &self.body, now, cx);
        }
    }

    fn on_outcome(
        &self,
        bot: &mut Bot<Self>,
        _id: CallId,
        outcome: Outcome,
        now: Instant,
        cx: &mut Cx<NoTimer>,
    ) {
        if bot.state != EchoBot::Echoing {
            return;
        }
        count_echo_mismatch(&outcome, &self.body, &mut cx.tally);
        // A call lost to a drop is not replaced: the window refills on the next welcome.
        if outcome.is_reply() || matches!(outcome, Outcome::Error { .. } | Outcome::Timeout) {
            bot.call_raw(ROUTE_ECHO, &self.body, now, cx);
        }
    }
}
