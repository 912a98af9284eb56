//! The sans-I/O core: call bookkeeping, timeouts, pushes, heartbeat and reconnect policy.
//!
//! A [`Session`] owns no socket and reads no clock: the caller passes `now` in and moves bytes
//! in and out, as quinn-proto and renet do it. Inputs are the `handle_*` methods (and the
//! calls); outputs are drained with the `poll_*` methods. The I/O layer
//! ([`Client`](crate::Client), or the load simulator's event loop) drives it in this order:
//!
//! 1. when [`Session::poll_connect`] says so, open a connection; when the WebSocket is open,
//!    call [`Session::handle_connected`]; if it fails or drops, [`Session::handle_disconnect`];
//! 2. hand every binary message received to [`Session::handle_frame`] (and note pings and pongs
//!    with [`Session::handle_heard`]);
//! 3. when [`Session::poll_timeout`] is due, call [`Session::handle_timeout`];
//! 4. carry out [`Session::poll_link`] commands (send a ping, close the connection) and send
//!    every frame [`Session::poll_transmit`] gives;
//! 5. let the game read [`Session::poll_event`].
//!
//! # Calls and their outcome
//! Every call ends in exactly one [`Outcome`]: a reply, an error reply, a timeout, a
//! disconnect, or "never sent" ([`Outcome::Closed`]). The outcome goes to the call's callback if
//! it has one, else it becomes an [`Event::Outcome`]. The call's entry is freed when its outcome
//! is delivered, whatever it is; an answer that arrives later (after a timeout) is dropped and
//! counted in [`Stats::late_answers`].
//!
//! # When the link drops
//! - Calls **already sent** fail at once with [`Outcome::Disconnected`]: the server may or may
//!   not have handled them, and it will never answer them on another connection (answers are
//!   per connection). They are **not** resent, because resending a non-idempotent call (a chat
//!   line, a purchase) could do it twice; retry them yourself if they are idempotent.
//! - Calls **not yet sent** (made while offline, or not yet handed to the transport) stay in the
//!   offline queue and are sent in order, first thing, once the next connection has received
//!   its welcome. Their timeout keeps running meanwhile.
//! - If the session stops for good (closed, or it gave up reconnecting), queued calls fail with
//!   [`Outcome::Closed`].
//!
//! # Ids
//! Callback ids count up and wrap around `u32`; an id still waiting for its answer (queued or
//! sent) is skipped, so two calls in flight never share an id.
//!
//! # Files
//! One job each, all of them `impl Session` blocks or the pieces those use:
//! - `outcome`: [`CallId`], [`Outcome`]: what a call is called and how it ends;
//! - `event`: [`Event`], [`LinkCommand`], [`LinkState`]: what the session tells its drivers;
//! - `calls`: making calls ([`CallOptions`]), the table of calls waiting for their outcome,
//!   and delivering each outcome once;
//! - `outbox`: the offline queue of request frames not yet handed to the transport;
//! - `deadlines`: the call deadlines, earliest first;
//! - `inbound`: the welcome and every frame from the server, and the push handlers;
//! - `link`: the connection's lifecycle (connect, drop, backoff, stop);
//! - `timers`: what is due when (call timeouts, connect timeout, heartbeat).

mod calls;
mod deadlines;
mod event;
mod inbound;
mod link;
mod outbox;
mod outcome;
mod timers;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Instant;

pub use calls::{CallOptions, Callback};
pub use event::{Event, LinkCommand, LinkState};
pub use outcome::{CallId, Outcome};

use crate::Config;
use crate::backoff::Backoff;
use calls::CallTable;
use deadlines::Deadlines;
use inbound::PushHandler;
use outbox::Outbox;

/// Counters since the session was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls accepted.
    pub calls: u64,
    /// Request frames handed to the transport.
    pub sent: u64,
    /// Calls answered with a reply.
    pub replies: u64,
    /// Calls answered with an error reply.
    pub errors: u64,
    /// Calls that timed out.
    pub timeouts: u64,
    /// Calls failed because the connection dropped after they were sent.
    pub disconnected: u64,
    /// Calls failed because the session stopped before they were sent.
    pub closed: u64,
    /// Answers whose id matched no call in flight (typically, answers after a timeout).
    pub late_answers: u64,
    /// Pushes received.
    pub pushes: u64,
    /// Push events dropped because [`Config::max_queued_pushes`] were waiting.
    pub pushes_dropped: u64,
    /// Pings the heartbeat asked for.
    pub pings: u64,
    /// Connection attempts started.
    pub connect_attempts: u64,
    /// Connections that reached the welcome.
    pub connections: u64,
}

/// Where the connection is, with the instants the timers count from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Down,
    Connecting { since: Instant },
    AwaitingWelcome { since: Instant },
    Up { since: Instant },
    Closed,
}

/// The protocol state of one logical connection to a server, across reconnects. No I/O.
pub struct Session {
    config: Config,
    state: State,
    /// The latest instant the caller passed in.
    now: Instant,
    /// Calls waiting for their outcome, by id.
    calls: CallTable,
    deadlines: Deadlines,
    /// Request frames not yet handed to the transport, in call order: the offline queue.
    outbox: Outbox,
    events: VecDeque<Event>,
    /// [`Event::Push`]es among `events`.
    queued_pushes: usize,
    link: VecDeque<LinkCommand>,
    handlers: HashMap<Box<str>, PushHandler>,
    backoff: Backoff,
    /// Failed connection attempts in a row (a connection that dropped before `stable_after`
    /// counts as one).
    failures: u32,
    /// When the next connection attempt is due, while `Down`.
    reconnect_at: Option<Instant>,
    /// The one heartbeat timer: armed when a connection opens, disarmed when it goes. A single
    /// field, so there is never more than one, whatever the number of reconnects.
    heartbeat: Option<Instant>,
    last_heard: Instant,
    welcome: Option<(u16, u64)>,
    stats: Stats,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("pending", &self.calls.len())
            .field("queued", &self.outbox.len())
            .field("failures", &self.failures)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session that wants to connect at once (see [`Session::poll_connect`]).
    pub fn new(config: Config, now: Instant) -> Self {
        let backoff = Backoff::new(
            config.backoff_initial,
            config.backoff_max,
            config.backoff_jitter,
            config.jitter_seed,
        );
        Self {
            config,
            state: State::Down,
            now,
            calls: CallTable::default(),
            deadlines: Deadlines::default(),
            outbox: Outbox::default(),
            events: VecDeque::new(),
            queued_pushes: 0,
            link: VecDeque::new(),
            handlers: HashMap::new(),
            backoff,
            failures: 0,
            reconnect_at: Some(now),
            heartbeat: None,
            last_heard: now,
            welcome: None,
            stats: Stats::default(),
        }
    }

    // ----- outputs, drained by the I/O layer and the game -----

    /// The next request frame to send as one binary message. Frames come only while connected,
    /// in call order; the offline queue comes first after a reconnect.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if !matches!(self.state, State::Up { .. }) {
            return None;
        }
        let (id, frame) = self.outbox.pop_front()?;
        self.calls.mark_sent(id, self.now);
        self.stats.sent += 1;
        Some(frame)
    }

    /// The next thing to do to the connection itself.
    pub fn poll_link(&mut self) -> Option<LinkCommand> {
        self.link.pop_front()
    }

    /// The next event for the game.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if let Event::Push { .. } = event {
            self.queued_pushes -= 1;
        }
        Some(event)
    }

    // ----- state -----

    /// Where the connection is.
    pub fn link_state(&self) -> LinkState {
        match self.state {
            State::Down => LinkState::Down,
            State::Connecting { .. } => LinkState::Connecting,
            State::AwaitingWelcome { .. } => LinkState::AwaitingWelcome,
            State::Up { .. } => LinkState::Up,
            State::Closed => LinkState::Closed,
        }
    }

    /// Whether the server's welcome has arrived on the current connection.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Up { .. })
    }

    /// The server's tick rate and this connection's id, from the last welcome.
    pub fn welcome(&self) -> Option<(u16, u64)> {
        self.welcome
    }

    /// Failed connection attempts in a row (reset once a connection stays up for
    /// [`Config::stable_after`]).
    pub fn reconnect_failures(&self) -> u32 {
        self.failures
    }

    /// How many heartbeat timers are armed: 1 while a connection is open, else 0. Never more.
    /// (Also 0 while open if [`Config::heartbeat_interval`] and [`Config::idle_timeout`] are
    /// both `Duration::MAX`: then there is nothing to time.)
    pub fn heartbeat_timers(&self) -> usize {
        usize::from(self.heartbeat.is_some())
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The latest instant passed in (for callbacks that make the next call).
    pub fn now(&self) -> Instant {
        self.now
    }
}
