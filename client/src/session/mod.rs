//! The sans-I/O core: call bookkeeping, timeouts, pushes, heartbeat and reconnect policy.
//!
//! A [`Session`] owns no socket and reads no clock: the caller passes `now` in and moves bytes
//! in and out, as quinn-proto and renet do it. Inputs are the `handle_*` methods (and the
//! calls); outputs are drained with the `poll_*` methods. The I/O layer
//! ([`Client`](crate::Client), or the load simulator's event loop) drives it in this order:
//!
//! 1. when [`Session::poll_connect`] says so, open a connection offering the subprotocols of
//!    [`Config::versions`]; when the WebSocket is open, call [`Session::handle_connected`] with
//!    the version the server selected; if it fails or drops, [`Session::handle_disconnect`]
//!    (after [`Session::handle_server_close`] if the server sent a close frame);
//! 2. hand every binary message received to [`Session::handle_frame`] (and note pings and pongs
//!    with [`Session::handle_heard`]);
//! 3. when [`Session::poll_timeout`] is due, call [`Session::handle_timeout`];
//! 4. carry out [`Session::poll_link`] commands (send a ping, close the connection, drop it)
//!    and send every frame [`Session::poll_transmit`] gives;
//! 5. let the game read [`Session::poll_event`] (which, after a reconnect, also lets the offline
//!    queue go: see "After a welcome" below).
//!
//! # Calls and their outcome
//! Every call ends in exactly one [`Outcome`]: a reply, an error reply, a timeout, a
//! disconnect, or "never sent" ([`Outcome::Closed`]). The outcome goes to the call's callback if
//! it has one, else it becomes an [`Event::Outcome`]. The call's entry is freed when its outcome
//! is delivered, whatever it is; an answer that arrives later (after a timeout) is dropped and
//! counted in [`Stats::late_answers`].
//!
//! # When the link drops (version 1)
//! On `ticksock.v1` the server session lives and dies with its link (on `ticksock.v2` it
//! outlives it: see "Version 2" below).
//! - Calls **already sent** fail at once with [`Outcome::Disconnected`]: the server may or may
//!   not have handled them, and it will never answer them on another connection (answers are
//!   per connection). They are **not** resent, because resending a non-idempotent call (a chat
//!   line, a purchase) could do it twice; retry them yourself if they are idempotent.
//! - Calls **not yet sent** (made while offline, or not yet handed to the transport) stay in the
//!   offline queue and are sent in call order once the next connection has received its welcome
//!   and the game has seen it (below). Their timeout keeps running meanwhile.
//! - If the session stops for good (closed, or it gave up reconnecting), queued calls fail with
//!   [`Outcome::Closed`].
//! - The events say so in this order: the outcomes of the calls sent (those without a
//!   callback), [`Event::Disconnected`] if the connection had been up, then
//!   [`Event::Reconnecting`] or [`Event::Stopped`]. A callback that closes the session while its
//!   call fails changes only the last: `Disconnected` still comes, then `Stopped`.
//!
//! # Version 2: sessions that survive a dropped link
//! The client offers `ticksock.v2` first and `ticksock.v1` second ([`Config::versions`];
//! [`Versions::V1Only`](crate::Versions::V1Only) offers version 1 alone), and speaks the one the
//! server selects; with a version 1 server everything above holds unchanged. On version 2
//! (`docs/PROTOCOL.md` section 11) the server session outlives its link:
//! - The client keeps the session's id, its server run's epoch and its secret; it counts the
//!   replies, errors and pushes it receives, numbers its requests from 1, and puts its count in
//!   every request. With nothing to send it acknowledges on its own: an Ack frame once frames
//!   have waited [`Config::ack_delay`] (1 s), or at once after [`Config::ack_after_frames`]
//!   (64); and an Ack(0) as the first frame of a fresh session, so that the server's game
//!   hears of it. Each request is kept until the server says it has taken it.
//! - **When the link drops** without a close frame, nothing fails: [`Event::LinkDropped`],
//!   then [`Event::Reconnecting`]. Calls in flight wait for their answers (their timeouts run
//!   on); the server keeps what it sends meanwhile. A link the session gives up on itself
//!   (silent, or a connect that takes too long) is dropped without a close frame too
//!   ([`LinkCommand::Drop`]): a close frame would end the session on the server.
//! - **The next link resumes**: after its welcome the client sends a Resume and nothing else
//!   until the answer ([`LinkState::Resuming`]; calls wait in the offline queue). On Resumed,
//!   [`Event::Resumed`] (not `Connected`: do not log in again); the client takes the new
//!   secret, sends again the requests the server had not taken (with their numbers and ids,
//!   in order), then the offline queue; the server sends again what the client missed, so
//!   every call in flight gets its one answer and every push arrives, once, in order. An
//!   answer to a call no longer waiting (a duplicate) is dropped and counted in
//!   [`Stats::late_answers`].
//! - **A refused resume** ends the session: calls in flight fail with
//!   [`Outcome::Disconnected`] (they may or may not have run), then [`Event::SessionEnded`]
//!   says why ([`SessionEnd`]: the server's `resume_reason`, such as `restarted` or `ended`),
//!   then [`Event::Connected`] for the new session of the link's welcome: log in again there,
//!   and the offline queue follows as new requests. The same when the next server speaks only
//!   version 1 ([`SessionEnd::ServerSpeaksV1`]).
//! - **A close frame ends the session** with the link, whoever sends it: after the server's
//!   close (shutdown, a policy close) the drop is a version 1 drop ([`Event::Disconnected`],
//!   calls in flight fail), and [`Session::close`] ends the session on the server too.
//! - An error `stale_request` ends its call with [`Outcome::AnswerLost`]: the server had taken
//!   the request and no longer holds its answer.
//!
//! So the game tells the cases apart by event: "link dropped, resuming" is
//! [`Event::LinkDropped`] (then [`Event::Resumed`]); "session ended, log in again" is
//! [`Event::SessionEnded`] or [`Event::Disconnected`], and the [`Event::Connected`] that follows.
//!
//! # After a welcome: logging in again before the queued calls
//! A server session belongs to one connection (on version 2, to one session, which starts with
//! an [`Event::Connected`] too), so a game logs in again on every [`Event::Connected`], and the calls it queued offline must go out after that login, not
//! before it (they would fail as not logged in). As in the TypeScript client, where
//! `connected` listeners run before the offline queue is flushed, calls made in response to
//! `Connected` go first. The order, with a poll-driven game:
//!
//! 1. the welcome arrives ([`Session::handle_frame`]): the link is up, [`Event::Connected`] is
//!    queued, and the offline queue is **held**: [`Session::poll_transmit`] gives none of it;
//! 2. the game takes `Connected` from [`Session::poll_event`] and calls (logs in, joins): those
//!    calls are sent as usual, and any call made since the welcome also goes ahead of the queue;
//! 3. the game's **next** [`Session::poll_event`], whatever it returns, releases the queue:
//!    `poll_transmit` then gives it in call order, after the calls of step 2 still unsent, and
//!    before any call made later.
//!
//! A driver that never reads events would never see its queue go out after a reconnect (nor
//! learn of the reconnect): every driver reads them. Should the link drop again before the
//! queue has gone, what is left is held again, in call order, on the next connection.
//!
//! # Redirects (clusters)
//! An error `redirect` (`docs/PROTOCOL.md` section 12) on a call moves the session to the node
//! its URL names ([`LinkCommand::Redirect`], [`Session::connect_url`]): the call is made again
//! there after its welcome, and its callback gets that node's answer, once. The game sees
//! [`Event::Redirected`] instead of `Connected` and does not log in again. Calls in flight on
//! the old link get their answers there for [`Config::old_link_grace`], then it is closed with
//! 1000 (a version 2 session on it ends; the node starts a new one). At most [`MAX_REDIRECTS`]
//! per call; a failure ends the call with [`Outcome::Redirect`].
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
//! - `request`: a request before it is a frame, written when sent in the link's version;
//! - `sequence`: version 2's counts, acknowledgements and the requests kept for a resume;
//! - `inbound`: the welcome and every frame from the server, and the push handlers;
//! - `resume`: a session's start and end, and version 2's resume;
//! - `redirect`: following an error `redirect` to another node of a cluster (the old link,
//!   the redirected calls, a refused ticket);
//! - `link`: the connection's lifecycle (connect, drop, backoff, stop);
//! - `timers`: what is due when (call timeouts, connect timeout, heartbeat, acknowledgements).

mod calls;
mod deadlines;
mod event;
mod inbound;
mod link;
mod outbox;
mod outcome;
mod redirect;
mod request;
mod resume;
mod sequence;
mod timers;
mod token;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

pub use calls::{CallOptions, Callback};
pub use event::{Event, LinkCommand, LinkState, SessionEnd};
pub use outcome::{CallId, Outcome, RedirectFailure};
pub use redirect::MAX_REDIRECTS;
use ticksock_protocol::Version;
pub use token::MAX_TOKEN_LEN;
pub(crate) use token::check_token;

use crate::Config;
use crate::backoff::Backoff;
use calls::CallTable;
use deadlines::Deadlines;
use inbound::PushHandler;
use outbox::Outbox;
use redirect::Redirect;
use request::OutRequest;
use sequence::Sequencing;

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
    /// Version 2: resumes the server accepted.
    pub resumes: u64,
    /// Version 2: resumes the server refused (the session ended).
    pub resume_failures: u64,
    /// Version 2: requests sent again after a resume (the server had not taken them).
    pub resent: u64,
    /// Version 2: Ack frames sent (acknowledgements that went without a request to carry them).
    pub acks: u64,
    /// Error `redirect` answers received (followed or not).
    pub redirects: u64,
    /// Events the server dropped because this client read too slowly, as its
    /// `ticksock.dropped` pushes said (PROTOCOL.md 7.3).
    pub server_dropped_events: u64,
}

/// Where the connection is, with the instants the timers count from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Down,
    Connecting {
        since: Instant,
    },
    AwaitingWelcome {
        since: Instant,
    },
    /// Version 2: the Resume is sent (or about to be); waiting for the server's answer.
    Resuming {
        since: Instant,
    },
    Up {
        since: Instant,
    },
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
    /// [`Event::Connected`]s among `events`.
    queued_connected: usize,
    /// The game has taken the current connection's [`Event::Connected`]: its next
    /// [`Session::poll_event`] releases the offline queue.
    release_on_poll: bool,
    /// A connection that was up is dropping: the calls sent on it are failing (and their
    /// callbacks may stop the session meanwhile), and its [`Event::Disconnected`] is owed.
    disconnect_owed: bool,
    last_heard: Instant,
    welcome: Option<(u16, u64)>,
    /// The version the current (or last) link speaks, as the server selected it.
    version: Option<Version>,
    /// The tick rate of the current link's welcome (for [`Event::Resumed`]).
    link_tick_hz: u16,
    /// Version 2: the server sent a close frame on the current link, which ends its session.
    closed_by_server: bool,
    /// Version 2: the session held, its counts, and the requests kept for a resume.
    sequencing: Sequencing,
    /// Where a redirect sent the session, the calls it carries there, and the old link.
    redirect: Redirect,
    /// The token every upgrade offers (`token` module).
    token: Option<String>,
    /// The token the current link's identity rests on: the one offered at its upgrade, or the
    /// last one `auth` accepted on it. A close 4003/4004 forgets `token` only if it is this one.
    link_token: Option<String>,
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
            queued_connected: 0,
            release_on_poll: false,
            disconnect_owed: false,
            last_heard: now,
            welcome: None,
            version: None,
            link_tick_hz: 0,
            closed_by_server: false,
            sequencing: Sequencing::default(),
            redirect: Redirect::default(),
            token: None,
            link_token: None,
            stats: Stats::default(),
        }
    }

    // ----- outputs, drained by the I/O layer and the game -----

    /// The next frame to send as one binary message. Requests come only while connected, in
    /// call order, except that after a welcome the offline queue waits until the game has
    /// taken [`Event::Connected`] and polled again: calls made meanwhile go first (see the
    /// module docs, "After a welcome"). On version 2, a Resume comes alone while resuming, the
    /// requests to send again come first after a resume, and Ack frames come when due.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        match self.state {
            State::Resuming { .. } => self.sequencing.take_resume_frame(),
            State::Up { .. } => self.next_frame(),
            _ => None,
        }
    }

    /// The next frame while up: a request to send again, the next request, or an Ack.
    fn next_frame(&mut self) -> Option<Vec<u8>> {
        let v2 = self.version == Some(Version::V2);
        if v2 && let Some((_, frame)) = self.sequencing.next_resend() {
            self.stats.resent += 1;
            return Some(frame);
        }
        if let Some((id, request)) = self.redirect.next_call(&self.calls) {
            let frame = self.send(id, request, v2);
            self.redirect.sent_on_arrival(id);
            self.settle_old_link(self.now);
            return Some(frame);
        }
        if self.redirect.holds_queue(&self.calls) {
            // A refused ticket must not take the queued calls down with it: they wait until
            // the node has answered the redirected call.
        } else if let Some((id, request)) = self.outbox.pop_sendable() {
            return Some(self.send(id, Arc::new(request), v2));
        }
        let ack = if v2 { self.sequencing.ack_frame() } else { None };
        self.stats.acks += u64::from(ack.is_some());
        ack
    }

    /// Hands call `id`'s request to the transport: its frame in the link's version.
    fn send(&mut self, id: u32, request: Arc<OutRequest>, v2: bool) -> Vec<u8> {
        self.calls.mark_sent(id, self.now, Arc::clone(&request));
        self.stats.sent += 1;
        if v2 { self.sequencing.number(id, request).1 } else { request.v1_frame(id) }
    }

    /// The next thing to do to the connection itself.
    pub fn poll_link(&mut self) -> Option<LinkCommand> {
        self.link.pop_front()
    }

    /// The next event for the game.
    ///
    /// The first call after the game took the current connection's [`Event::Connected`]
    /// releases the offline queue, whatever it returns: calls the game made while handling
    /// `Connected` (logging in again) have gone ahead of it. So a driver must keep reading
    /// events for queued calls to go out after a reconnect.
    pub fn poll_event(&mut self) -> Option<Event> {
        if std::mem::take(&mut self.release_on_poll) {
            self.outbox.release();
        }
        let event = self.events.pop_front()?;
        match event {
            Event::Push { .. } => self.queued_pushes -= 1,
            Event::Connected { .. } => {
                self.queued_connected -= 1;
                // An older connection's event (the game is behind) releases nothing.
                self.release_on_poll = self.queued_connected == 0 && self.is_connected();
            }
            _ => {}
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
            State::Resuming { .. } => LinkState::Resuming,
            State::Up { .. } => LinkState::Up,
            State::Closed => LinkState::Closed,
        }
    }

    /// Whether the server's welcome has arrived on the current connection.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Up { .. })
    }

    /// The server's tick rate and this connection's id (version 2: its session's id), from the
    /// last welcome (or resume).
    pub fn welcome(&self) -> Option<(u16, u64)> {
        self.welcome
    }

    /// The protocol version the current (or last) link speaks, as the server selected it;
    /// `None` before the first link opened.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// Version 2: the id of the server session held (the one a reconnect resumes), if any.
    pub fn held_session(&self) -> Option<u64> {
        self.sequencing.conn_id()
    }

    /// Version 2: sequenced frames (replies, errors, pushes) received on the session held.
    pub fn received_count(&self) -> u64 {
        self.sequencing.received()
    }

    /// Version 2: requests sent and kept until the server says it has taken them (to send
    /// again after a resume if it has not).
    pub fn unconfirmed_requests(&self) -> usize {
        self.sequencing.kept()
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
