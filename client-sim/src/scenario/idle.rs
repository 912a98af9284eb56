//! `idle`: connect, make one `echo` call, then stay connected and silent until the end of the
//! run. The server pings a quiet connection and the client library answers, so a bot sends
//! nothing else. A connection that drops is an error (`unexpected_drops`).

use std::time::{Duration, Instant};

use ticksock_arena::proto::ROUTE_ECHO;
use ticksock_client::{CallId, Config, Outcome};

use super::{NoTimer, Script, count_echo_mismatch, echo_body};
use crate::Options;
use crate::worker::{Bot, Cx};

/// The idle scenario's settings.
pub(crate) struct Idle {
    body: Vec<u8>,
}

/// Where an idle bot is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum IdleBot {
    /// Not connected (or waiting for the welcome).
    #[default]
    Offline,
    /// Its one call is in flight.
    Calling,
    /// The call is answered; nothing more to do but stay connected.
    Silent,
}

impl Idle {
    pub(crate) fn new(opts: &Options) -> Self {
        Self { body: echo_body(opts.body_bytes) }
    }
}

impl Script for Idle {
    type BotState = IdleBot;
    type Timer = NoTimer;

    fn configure(&self, config: &mut Config) {
        // Silent: the server pings a quiet connection (every 10 s by default) and each ping
        // counts as hearing from it, so the bot's own heartbeat never has to ping.
        config.heartbeat_interval = Duration::from_secs(60);
        config.idle_timeout = Duration::from_secs(120);
    }

    fn on_connected(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<NoTimer>) {
        bot.state = IdleBot::Calling;
        bot.call_raw(ROUTE_ECHO, &self.body, now, cx);
    }

    fn on_outcome(
        &self,
        bot: &mut Bot<Self>,
        _id: CallId,
        outcome: Outcome,
        _now: Instant,
        cx: &mut Cx<NoTimer>,
    ) {
        if bot.state != IdleBot::Calling {
            return;
        }
        count_echo_mismatch(&outcome, &self.body, &mut cx.tally);
        // One call per connection; from now on the bot only answers pings.
        bot.state = IdleBot::Silent;
    }

    fn on_socket_closed(&self, _bot: &mut Bot<Self>, welcomed: bool, _now: Instant, cx: &mut Cx<NoTimer>) {
        if welcomed {
            cx.tally.counters.unexpected_drops += 1;
        }
    }
}
