//! What the bots do: one [`Script`] per scenario, each in its own file. The worker owns the
//! sockets, the sessions and the timers, and counts what every scenario counts (connections,
//! outcomes, round trips, pushes); a script decides what a bot does when something happens
//! to it, and keeps its own per-bot state ([`Script::BotState`]).
//!
//! - [`arena`]: log in, join an arena, move and chat on timers, receive the arena's pushes.
//! - [`echo`]: keep a window of `echo` calls in flight.
//! - [`churn`]: connect, log in, join, then leave and close cleanly or drop; again and again.
//! - [`idle`]: one `echo` call, then silence until the end.
//! - [`faults`]: connections killed by a reset or left half-open, and reconnected.
//! - [`whisper`]: log in, join `lobby`, whisper to a partner on another node; every whisper's
//!   delivery timed and checked.
//! - [`resume`]: the arena under `--faults`: version 2 links killed, sessions resumed, every
//!   call and push checked; its plan ([`fault_plan`]) is arithmetic of its own.
//! - [`replica_check`]: `--replication`: a bot's mirror of the replicated state, checked
//!   against the server's digests (used by `arena`).
//! - [`sign_in`]: how the arena's bots (`arena`, `resume`) log in on each new server session:
//!   `login` by name, or `--accounts guest`'s `guest` once and `auth` with its token.

pub(crate) mod arena;
pub(crate) mod churn;
pub(crate) mod echo;
pub(crate) mod fault_plan;
pub(crate) mod faults;
pub(crate) mod idle;
pub(crate) mod replica_check;
pub(crate) mod resume;
pub(crate) mod sign_in;
pub(crate) mod whisper;

use std::fmt::Debug;
use std::io::Read;
use std::time::Instant;

use ticksock_arena::proto::{Join, LoggedIn, Login, ROUTE_JOIN, ROUTE_LOGIN};
use ticksock_client::{CallId, Config, Outcome, SessionEnd};

use crate::Scenario;
use crate::tally::Tally;
use crate::worker::{Bot, Cx, Plan};

/// What one scenario's bots do, event by event. Every hook gets the bot (its session, its
/// connection and its [`Script::BotState`]) and the worker's context (options, tally, timers).
pub(crate) trait Script: Sized {
    /// Where a bot is in the scenario; `Default` is "not connected".
    type BotState: Default;
    /// The scenario's own timers.
    type Timer: Copy + Ord + Debug;

    /// Adjusts a bot's session settings.
    fn configure(&self, _config: &mut Config) {}

    /// The server's welcome arrived on a new connection (already counted).
    fn on_connected(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<Self::Timer>);

    /// A call without a callback ended (already counted, its round trip recorded).
    fn on_outcome(
        &self,
        bot: &mut Bot<Self>,
        id: CallId,
        outcome: Outcome,
        now: Instant,
        cx: &mut Cx<Self::Timer>,
    );

    /// One of the bot's timers is due (scheduled at `at`, now `now`). The bot's frames are
    /// sent afterwards.
    fn on_timer(
        &self,
        _bot: &mut Bot<Self>,
        _timer: Self::Timer,
        _at: Instant,
        _now: Instant,
        _cx: &mut Cx<Self::Timer>,
    ) {
    }

    /// The session lost its connection, or stopped for good. By default the bot is back to
    /// "not connected" and its timers are forgotten.
    fn on_offline(&self, bot: &mut Bot<Self>) {
        bot.state = Self::BotState::default();
        bot.generation = bot.generation.wrapping_add(1);
    }

    /// The bot's socket is gone: a connection attempt failed (`welcomed` false), or a
    /// connection dropped. The session has been told already.
    fn on_socket_closed(
        &self,
        _bot: &mut Bot<Self>,
        _welcomed: bool,
        _now: Instant,
        _cx: &mut Cx<Self::Timer>,
    ) {
    }

    /// A push arrived (`run_start`: the run's start, the simulator's clock). The worker counts
    /// and checks it afterwards, whatever this does.
    fn on_push(
        &self,
        _state: &mut Self::BotState,
        _topic: &str,
        _body: &[u8],
        _now: Instant,
        _run_start: Instant,
        _tally: &mut Tally,
    ) {
    }

    /// Version 2: the link dropped and the session is kept, to resume on the next link.
    fn on_link_dropped(&self, _bot: &mut Bot<Self>, _now: Instant, _cx: &mut Cx<Self::Timer>) {}

    /// Version 2: the session resumed on a new link.
    fn on_resumed(&self, _bot: &mut Bot<Self>, _now: Instant, _cx: &mut Cx<Self::Timer>) {}

    /// Version 2: the server refused to resume the session (a [`Script::on_connected`] for the
    /// new one follows).
    fn on_session_ended(
        &self,
        _bot: &mut Bot<Self>,
        _reason: SessionEnd,
        _now: Instant,
        _cx: &mut Cx<Self::Timer>,
    ) {
    }

    /// Whether a call's failure is expected, and so no error (asked before it is counted).
    fn is_expected_failure(&self, _bot: &Bot<Self>, _id: CallId, _outcome: &Outcome) -> bool {
        false
    }

    /// Whether the bot has nothing left to finish: the run may end (a `--faults` run waits
    /// for every outage to end and its resume to be answered).
    fn settled(&self, _bot: &Bot<Self>) -> bool {
        true
    }

    /// Whether the script handles the bot's I/O itself right now (instead of its session).
    fn takes_over(
        &self,
        _bot: &mut Bot<Self>,
        _now: Instant,
        _readable: bool,
        _cx: &mut Cx<Self::Timer>,
    ) -> bool {
        false
    }

    /// The bot's calls still waiting for their answer at the end of the run.
    fn in_flight_at_end(&self, bot: &Bot<Self>) -> u64 {
        bot.session.pending_calls() as u64
    }
}

/// Runs one worker with the scenario's script.
pub(crate) fn run_worker(plan: Plan) -> std::io::Result<Tally> {
    let opts = plan.opts.clone();
    match opts.scenario {
        Scenario::Arena if opts.faults => crate::worker::run(plan, resume::Resume::new(&opts)),
        Scenario::Arena => crate::worker::run(plan, arena::Arena::new(&opts)),
        Scenario::Echo => crate::worker::run(plan, echo::Echo::new(&opts)),
        Scenario::Churn => crate::worker::run(plan, churn::Churn::new(&opts)),
        Scenario::Whisper => crate::worker::run(plan, whisper::WhisperScenario::new(&opts)),
        Scenario::Idle => crate::worker::run(plan, idle::Idle::new(&opts)),
        Scenario::Faults => crate::worker::run(plan, faults::Faults::new(&opts)),
    }
}

/// The scenarios without timers of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum NoTimer {}

/// Logs the bot in as `PREFIX-INDEX`; the call's id, unless it was refused.
pub(crate) fn login<S: Script>(bot: &mut Bot<S>, now: Instant, cx: &mut Cx<S::Timer>) -> Option<CallId> {
    let name = format!("{}-{}", cx.opts.name_prefix, bot.index);
    bot.call(ROUTE_LOGIN, &Login { name }, now, cx)
}

/// Notes the bot's player id from a `login` outcome; whether it was a good reply.
pub(crate) fn logged_in<S: Script>(bot: &mut Bot<S>, outcome: Outcome) -> bool {
    match outcome.decode::<LoggedIn>() {
        Ok(me) => {
            bot.track.player_id = Some(me.player_id);
            true
        }
        Err(_) => false,
    }
}

/// Joins the room `KIND-N`, `N` the bot's index over the room size; the call's id, unless it
/// was refused.
pub(crate) fn join<S: Script>(
    bot: &mut Bot<S>,
    kind: &str,
    now: Instant,
    cx: &mut Cx<S::Timer>,
) -> Option<CallId> {
    bot.call(ROUTE_JOIN, &Join { room: room(kind, bot.index, &cx.opts) }, now, cx)
}

/// The room `KIND-N` of bot `index`: `N` its index over the room size.
pub(crate) fn room(kind: &str, index: u32, opts: &crate::Options) -> String {
    format!("{kind}-{}", index / opts.room_size.max(1))
}

/// The body of every `echo` call: `bytes` bytes of a fixed pattern.
pub(crate) fn echo_body(bytes: usize) -> Vec<u8> {
    (0..bytes).map(|i| (i % 251) as u8).collect()
}

/// Counts an `echo` reply whose body is not the `sent` one: the server changed it.
pub(crate) fn count_echo_mismatch(outcome: &Outcome, sent: &[u8], tally: &mut crate::tally::Tally) {
    if let Some(body) = outcome.reply_body()
        && body != sent
    {
        tally.counters.echo_mismatches += 1;
    }
}

/// What reading a socket until it would block found.
#[derive(Debug)]
pub(crate) enum SocketEnd {
    /// The peer closed the connection (end of stream).
    Closed,
    /// Still open: nothing more to read for now.
    Open,
    /// Reading failed (a reset, say).
    Failed(std::io::Error),
}

/// Reads `socket` (non-blocking), discarding what it reads, until the end of the stream, an
/// error, or nothing more to read for now.
pub(crate) fn read_to_end(mut socket: impl Read) -> SocketEnd {
    let mut scratch = [0u8; 4096];
    loop {
        match socket.read(&mut scratch) {
            Ok(0) => return SocketEnd::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return SocketEnd::Open,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return SocketEnd::Failed(e),
        }
    }
}
