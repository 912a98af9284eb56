//! The sans-I/O core: call bookkeeping, timeouts, pushes, heartbeat and reconnect policy.
//!
//! A [`Session`] owns no socket and reads no clock: the caller passes `now` in and moves bytes
//! in and out, as quinn-proto and renet do it. The I/O layer ([`Client`](crate::Client), or the
//! load simulator's event loop) drives it like this:
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

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use ticksock_protocol::{BodyError, Encoding, ServerFrame};

use crate::backoff::Backoff;
use crate::{Config, Error};

/// A call's callback id, as sent on the wire. Opaque apart from that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u32);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How a call ended. Each call has exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server's reply: the route's response body, still encoded ([`Outcome::decode`]).
    Reply(Vec<u8>),
    /// The server's error reply.
    Error {
        /// What went wrong ([`ticksock_protocol::error_code`], or the route's own codes from 1000).
        code: u16,
        /// The server's explanation, for logs.
        message: String,
    },
    /// No answer within the call's timeout. The server may or may not have handled it.
    Timeout,
    /// The connection dropped after the call was sent. The server may or may not have handled it.
    Disconnected,
    /// The call was never sent: the session was closed or gave up reconnecting.
    Closed,
}

impl Outcome {
    /// The reply's body, or the failure as an [`Error`].
    pub fn into_result(self) -> Result<Vec<u8>, Error> {
        match self {
            Outcome::Reply(body) => Ok(body),
            Outcome::Error { code, message } => Err(Error::Server { code, message }),
            Outcome::Timeout => Err(Error::Timeout),
            Outcome::Disconnected => Err(Error::Disconnected),
            Outcome::Closed => Err(Error::Closed),
        }
    }

    /// The reply decoded as `T`, or the failure as an [`Error`].
    pub fn decode<T: DeserializeOwned>(self) -> Result<T, Error> {
        let body = self.into_result()?;
        ticksock_protocol::decode_body(&body).map_err(Error::Decode)
    }

    /// Whether the server answered with a reply (not an error).
    pub fn is_reply(&self) -> bool {
        matches!(self, Outcome::Reply(_))
    }
}

/// Something the game should know about, from [`Session::poll_event`].
#[derive(Debug)]
pub enum Event {
    /// A connection is up: the server's welcome arrived. Queued calls are being sent.
    Connected {
        /// The server's game ticks per second.
        tick_hz: u16,
        /// This connection's id on the server (opaque; for logs).
        conn_id: u64,
    },
    /// The connection that was up has dropped. Calls in flight have failed with
    /// [`Outcome::Disconnected`]; a [`Event::Reconnecting`] or [`Event::Stopped`] follows.
    Disconnected,
    /// The session will try to connect again after `delay`.
    Reconnecting {
        /// Failed attempts in a row so far, counting this one's predecessor (1 for the first retry).
        attempt: u32,
        /// How long until the attempt.
        delay: Duration,
    },
    /// The session stopped for good and will not connect again: see the reason.
    Stopped {
        /// [`Error::Closed`] (closed by the caller), [`Error::GaveUp`], or [`Error::Protocol`]
        /// (the server speaks another protocol version).
        reason: Error,
    },
    /// A call without a callback ended.
    Outcome {
        /// The call.
        id: CallId,
        /// How it ended.
        outcome: Outcome,
        /// Time from the call to its outcome.
        elapsed: Duration,
        /// Time from sending the request to its outcome (`None` if it was never sent).
        rtt: Option<Duration>,
    },
    /// A push on a topic without a handler.
    Push {
        /// The topic.
        topic: String,
        /// The body, still encoded.
        body: Vec<u8>,
    },
    /// A push handler registered with [`Session::on_push_typed`] could not decode a body.
    BadPush {
        /// The topic.
        topic: String,
        /// Why.
        error: Error,
    },
    /// The server sent something this client cannot understand; the connection is being
    /// dropped (a [`Event::Disconnected`] or [`Event::Reconnecting`] follows).
    ProtocolError {
        /// What was wrong.
        problem: String,
    },
}

/// Something the I/O layer must do to the connection, from [`Session::poll_link`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkCommand {
    /// Send a WebSocket ping (the connection has been quiet).
    Ping,
    /// Close the connection with this WebSocket close code and drop it. The session has
    /// already accounted for the drop; calling [`Session::handle_disconnect`] too is harmless.
    Close {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: &'static str,
    },
}

/// Where the session's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// No connection; one will be attempted when [`Session::poll_connect`] says so.
    Down,
    /// The I/O layer is connecting (TCP and WebSocket handshake).
    Connecting,
    /// The WebSocket is open; the server's welcome has not arrived yet.
    AwaitingWelcome,
    /// Connected: calls are sent as they are made.
    Up,
    /// Stopped for good.
    Closed,
}

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

/// A callback that receives a call's outcome. It gets the session, so it can make the next call.
pub type Callback = Box<dyn FnOnce(&mut Session, Outcome) + Send>;

type PushHandler = Box<dyn FnMut(&[u8]) -> Result<(), Error> + Send>;

/// Per-call settings for [`Session::call_with`] and [`Session::call_raw`].
#[derive(Default)]
pub struct CallOptions {
    /// This call's timeout; `None` takes [`Config::call_timeout`].
    pub timeout: Option<Duration>,
    /// Where the outcome goes; `None` makes it an [`Event::Outcome`].
    pub callback: Option<Callback>,
}

impl CallOptions {
    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the callback.
    pub fn then(mut self, callback: impl FnOnce(&mut Session, Outcome) + Send + 'static) -> Self {
        self.callback = Some(Box::new(callback));
        self
    }
}

impl fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallOptions")
            .field("timeout", &self.timeout)
            .field("callback", &self.callback.is_some())
            .finish()
    }
}

struct Pending {
    deadline: Instant,
    made_at: Instant,
    /// When the frame was handed to the transport; `None` while it waits in the queue.
    sent_at: Option<Instant>,
    callback: Option<Callback>,
}

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
    next_id: u32,
    pending: HashMap<u32, Pending, BuildHasherDefault<IdHasher>>,
    deadlines: Deadlines,
    /// Request frames not yet handed to the transport, in call order: the offline queue.
    outbox: VecDeque<(u32, Vec<u8>)>,
    outbox_bytes: usize,
    events: VecDeque<Event>,
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
            .field("pending", &self.pending.len())
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
            next_id: 1,
            pending: HashMap::default(),
            deadlines: Deadlines::default(),
            outbox: VecDeque::new(),
            outbox_bytes: 0,
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

    // ----- calls -----

    /// Calls `route` with `request` (bincode-encoded), with the default timeout. The outcome
    /// comes as an [`Event::Outcome`] with the returned id.
    ///
    /// Fails at once (and nothing is sent) with [`Error::QueueFull`] when offline and the queue
    /// is full, [`Error::TooLarge`], [`Error::TooManyPending`], [`Error::Encode`] or
    /// [`Error::Closed`].
    pub fn call<Req: Serialize + ?Sized>(
        &mut self,
        route: &str,
        request: &Req,
        now: Instant,
    ) -> Result<CallId, Error> {
        self.call_with(route, request, CallOptions::default(), now)
    }

    /// Calls `route`; `then` receives the outcome (and the session, to make the next call).
    pub fn call_then<Req: Serialize + ?Sized>(
        &mut self,
        route: &str,
        request: &Req,
        now: Instant,
        then: impl FnOnce(&mut Session, Outcome) + Send + 'static,
    ) -> Result<CallId, Error> {
        self.call_with(route, request, CallOptions::default().then(then), now)
    }

    /// Calls `route` with per-call options.
    pub fn call_with<Req: Serialize + ?Sized>(
        &mut self,
        route: &str,
        request: &Req,
        options: CallOptions,
        now: Instant,
    ) -> Result<CallId, Error> {
        self.submit(
            route,
            |out, id| ticksock_protocol::write_request(Encoding::Binary, out, id, route, request),
            options,
            now,
        )
    }

    /// Calls `route` with a body that is already encoded (for raw routes such as `echo`).
    pub fn call_raw(
        &mut self,
        route: &str,
        body: &[u8],
        options: CallOptions,
        now: Instant,
    ) -> Result<CallId, Error> {
        self.submit(
            route,
            |out, id| ticksock_protocol::write_raw_request(Encoding::Binary, out, id, route, body),
            options,
            now,
        )
    }

    fn submit(
        &mut self,
        route: &str,
        encode: impl FnOnce(&mut Vec<u8>, u32) -> Result<(), BodyError>,
        options: CallOptions,
        now: Instant,
    ) -> Result<CallId, Error> {
        self.now = now;
        if self.state == State::Closed {
            return Err(Error::Closed);
        }
        if self.pending.len() >= self.config.max_pending {
            return Err(Error::TooManyPending { max: self.config.max_pending });
        }
        let id = self.allocate_id();
        let mut frame = Vec::with_capacity(16 + route.len());
        encode(&mut frame, id).map_err(Error::Encode)?;
        if frame.len() > self.config.max_frame_bytes {
            return Err(Error::TooLarge { bytes: frame.len(), max: self.config.max_frame_bytes });
        }
        if !matches!(self.state, State::Up { .. })
            && (self.outbox.len() >= self.config.max_queued_calls
                || self.outbox_bytes + frame.len() > self.config.max_queued_bytes)
        {
            return Err(Error::QueueFull {
                calls: self.outbox.len(),
                bytes: self.outbox_bytes,
                max_calls: self.config.max_queued_calls,
                max_bytes: self.config.max_queued_bytes,
                needed: frame.len(),
            });
        }
        let deadline = now + options.timeout.unwrap_or(self.config.call_timeout);
        self.pending
            .insert(id, Pending { deadline, made_at: now, sent_at: None, callback: options.callback });
        self.deadlines.insert(deadline, id);
        self.outbox_bytes += frame.len();
        self.outbox.push_back((id, frame));
        self.stats.calls += 1;
        Ok(CallId(id))
    }

    /// The next id not in use. Terminates: fewer than `u32::MAX` calls can be pending
    /// (`max_pending` is a `usize` but the map would exhaust memory long before).
    fn allocate_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if !self.pending.contains_key(&id) {
                return id;
            }
        }
    }

    /// Sets the id the next call will try first. Ids are opaque; this exists to test the
    /// wraparound at `u32::MAX` without making four billion calls.
    pub fn set_next_call_id(&mut self, id: u32) {
        self.next_id = id;
    }

    /// Whether the call still waits for its outcome.
    pub fn is_pending(&self, id: CallId) -> bool {
        self.pending.contains_key(&id.0)
    }

    /// Calls waiting for their outcome (queued or sent).
    pub fn pending_calls(&self) -> usize {
        self.pending.len()
    }

    /// Calls waiting in the offline queue (not yet handed to the transport).
    pub fn queued_calls(&self) -> usize {
        self.outbox.len()
    }

    /// Bytes waiting in the offline queue.
    pub fn queued_bytes(&self) -> usize {
        self.outbox_bytes
    }

    // ----- pushes -----

    /// Registers the handler of `topic`'s pushes, replacing any other. Pushes on topics
    /// without a handler become [`Event::Push`].
    pub fn on_push(&mut self, topic: &str, mut handler: impl FnMut(&[u8]) + Send + 'static) {
        self.handlers.insert(
            topic.into(),
            Box::new(move |body| {
                handler(body);
                Ok(())
            }),
        );
    }

    /// Registers a handler that receives `topic`'s pushes decoded as `T`. A body that does not
    /// decode becomes an [`Event::BadPush`].
    pub fn on_push_typed<T: DeserializeOwned>(
        &mut self,
        topic: &str,
        mut handler: impl FnMut(T) + Send + 'static,
    ) {
        self.handlers.insert(
            topic.into(),
            Box::new(move |body| {
                handler(ticksock_protocol::decode_body(body).map_err(Error::Decode)?);
                Ok(())
            }),
        );
    }

    /// Removes `topic`'s handler. Returns whether there was one.
    pub fn remove_push_handler(&mut self, topic: &str) -> bool {
        self.handlers.remove(topic).is_some()
    }

    // ----- input from the I/O layer -----

    /// Whether to open a connection now. Returns `true` once per attempt; the session then
    /// waits for [`Session::handle_connected`] or [`Session::handle_disconnect`].
    pub fn poll_connect(&mut self, now: Instant) -> bool {
        self.now = now;
        if self.state == State::Down && self.reconnect_at.is_some_and(|at| at <= now) {
            self.reconnect_at = None;
            self.state = State::Connecting { since: now };
            self.stats.connect_attempts += 1;
            return true;
        }
        false
    }

    /// The WebSocket is open. The session arms its heartbeat and waits for the welcome.
    pub fn handle_connected(&mut self, now: Instant) {
        self.now = now;
        if let State::Connecting { since } = self.state {
            // The connect timeout still counts from the start of the attempt.
            self.state = State::AwaitingWelcome { since };
            self.last_heard = now;
            self.heartbeat = Some(now + self.config.heartbeat_interval);
        }
    }

    /// The connection failed or dropped (or the connect attempt failed). Calls in flight fail
    /// with [`Outcome::Disconnected`]; a reconnect is scheduled with backoff. Does nothing when
    /// the session is already down.
    pub fn handle_disconnect(&mut self, now: Instant) {
        self.now = now;
        self.link_down(now);
    }

    /// The transport received a ping or a pong: the server is alive.
    pub fn handle_heard(&mut self, now: Instant) {
        self.now = now;
        self.last_heard = now;
    }

    /// Handles one binary message from the server. Pushes go to their handler, or become
    /// [`Event::Push`].
    pub fn handle_frame(&mut self, frame: &[u8], now: Instant) {
        self.handle_frame_with(frame, now, |_, _| false);
    }

    /// Like [`Session::handle_frame`], but a push on a topic without a handler is first offered
    /// to `sink` (topic, body), borrowed: no copy. If `sink` returns `false` it becomes an
    /// [`Event::Push`]. For callers that process pushes in place (the load simulator).
    pub fn handle_frame_with(
        &mut self,
        frame: &[u8],
        now: Instant,
        mut sink: impl FnMut(&str, &[u8]) -> bool,
    ) {
        self.now = now;
        if matches!(self.state, State::Down | State::Closed | State::Connecting { .. }) {
            return; // Stale bytes from a connection already given up.
        }
        self.last_heard = now;
        let decoded = match ServerFrame::decode(frame) {
            Ok(decoded) => decoded,
            Err(e) => return self.violation(now, format!("undecodable frame: {e}")),
        };
        let welcomed = matches!(self.state, State::Up { .. });
        match decoded {
            ServerFrame::Welcome { version, tick_hz, conn_id } => {
                if welcomed {
                    return self.violation(now, "a second welcome".into());
                }
                if version != ticksock_protocol::PROTOCOL_VERSION {
                    let problem = format!(
                        "the server speaks protocol version {version}, this client {}",
                        ticksock_protocol::PROTOCOL_VERSION
                    );
                    self.events.push_back(Event::ProtocolError { problem: problem.clone() });
                    return self.stop(now, Error::Protocol(problem), 1002);
                }
                self.state = State::Up { since: now };
                self.welcome = Some((tick_hz, conn_id));
                self.stats.connections += 1;
                self.events.push_back(Event::Connected { tick_hz, conn_id });
            }
            _ if !welcomed => self.violation(now, "a frame before the welcome".into()),
            ServerFrame::Reply { id, body } => self.answer(id, now, || Outcome::Reply(body.to_vec())),
            ServerFrame::Error { id, code, message } => {
                self.answer(id, now, || Outcome::Error { code, message: message.into_owned() })
            }
            ServerFrame::Push { topic, body } => {
                self.stats.pushes += 1;
                if let Some(handler) = self.handlers.get_mut(&*topic) {
                    if let Err(error) = handler(body) {
                        self.events.push_back(Event::BadPush { topic: topic.into_owned(), error });
                    }
                } else if !sink(&topic, body) {
                    if self.queued_pushes >= self.config.max_queued_pushes {
                        self.stats.pushes_dropped += 1;
                    } else {
                        self.queued_pushes += 1;
                        self.events.push_back(Event::Push { topic: topic.into_owned(), body: body.to_vec() });
                    }
                }
            }
        }
    }

    fn answer(&mut self, id: u32, now: Instant, outcome: impl FnOnce() -> Outcome) {
        match self.pending.get(&id) {
            Some(p) if p.sent_at.is_some() => {}
            _ => {
                // Timed out already (or never sent on this connection): nobody waits for it.
                self.stats.late_answers += 1;
                return;
            }
        }
        if let Some(entry) = self.pending.remove(&id) {
            self.forget_deadline(entry.deadline, id);
            self.finish(id, entry, outcome(), now);
        }
    }

    /// Drops a deadline whose call ended.
    fn forget_deadline(&mut self, at: Instant, id: u32) {
        self.deadlines.remove(at, id);
        let pending = &self.pending;
        self.deadlines.prune(|at, id| pending.get(&id).is_some_and(|p| p.deadline == at));
    }

    /// Handles everything due at `now`: call timeouts, the connect timeout, the heartbeat,
    /// and the reset of the failure count after a stable connection.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        loop {
            let pending = &self.pending;
            self.deadlines.prune(|at, id| pending.get(&id).is_some_and(|p| p.deadline == at));
            let Some((deadline, id)) = self.deadlines.first() else { break };
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(entry) = self.pending.remove(&id) {
                if entry.sent_at.is_none()
                    && let Some(at) = self.outbox.iter().position(|(queued, _)| *queued == id)
                    && let Some((_, frame)) = self.outbox.remove(at)
                {
                    self.outbox_bytes -= frame.len();
                }
                self.finish(id, entry, Outcome::Timeout, now);
            }
        }
        match self.state {
            State::Connecting { since } | State::AwaitingWelcome { since }
                if now.saturating_duration_since(since) >= self.config.connect_timeout =>
            {
                self.link.push_back(LinkCommand::Close { code: 1000, reason: "connect timeout" });
                self.link_down(now);
            }
            State::Up { since } if now.saturating_duration_since(since) >= self.config.stable_after => {
                self.failures = 0;
            }
            _ => {}
        }
        if let Some(at) = self.heartbeat
            && at <= now
        {
            let quiet = now.saturating_duration_since(self.last_heard);
            if quiet >= self.config.idle_timeout {
                self.link.push_back(LinkCommand::Close { code: 1001, reason: "no sign of life" });
                self.link_down(now);
            } else {
                let interval = self.config.heartbeat_interval;
                let next = if quiet >= interval {
                    self.link.push_back(LinkCommand::Ping);
                    self.stats.pings += 1;
                    now + interval
                } else {
                    self.last_heard + interval
                };
                self.heartbeat = Some(next.min(self.last_heard + self.config.idle_timeout));
            }
        }
    }

    /// Closes the session for good: the connection is closed (a [`LinkCommand::Close`]), calls
    /// sent fail with [`Outcome::Disconnected`] and calls queued with [`Outcome::Closed`].
    pub fn close(&mut self, now: Instant) {
        self.now = now;
        self.stop(now, Error::Closed, 1000);
    }

    // ----- output to the I/O layer -----

    /// The next request frame to send as one binary message. Frames come only while connected,
    /// in call order; the offline queue comes first after a reconnect.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if !matches!(self.state, State::Up { .. }) {
            return None;
        }
        let (id, frame) = self.outbox.pop_front()?;
        self.outbox_bytes -= frame.len();
        if let Some(entry) = self.pending.get_mut(&id) {
            entry.sent_at = Some(self.now);
        }
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

    /// When [`Session::handle_timeout`] (or, while down, [`Session::poll_connect`]) should be
    /// called next; `None` when nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.deadlines.first().map(|(t, _)| t);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        match self.state {
            State::Connecting { since } | State::AwaitingWelcome { since } => {
                consider(Some(since + self.config.connect_timeout))
            }
            State::Up { since } if self.failures > 0 => consider(Some(since + self.config.stable_after)),
            State::Down => consider(self.reconnect_at),
            _ => {}
        }
        consider(self.heartbeat);
        next
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

    // ----- internals -----

    fn finish(&mut self, id: u32, entry: Pending, outcome: Outcome, now: Instant) {
        match &outcome {
            Outcome::Reply(_) => self.stats.replies += 1,
            Outcome::Error { .. } => self.stats.errors += 1,
            Outcome::Timeout => self.stats.timeouts += 1,
            Outcome::Disconnected => self.stats.disconnected += 1,
            Outcome::Closed => self.stats.closed += 1,
        }
        match entry.callback {
            Some(callback) => callback(self, outcome),
            None => self.events.push_back(Event::Outcome {
                id: CallId(id),
                outcome,
                elapsed: now.saturating_duration_since(entry.made_at),
                rtt: entry.sent_at.map(|sent| now.saturating_duration_since(sent)),
            }),
        }
    }

    fn link_open(&self) -> bool {
        matches!(self.state, State::Connecting { .. } | State::AwaitingWelcome { .. } | State::Up { .. })
    }

    /// The server broke the protocol: drop the connection (a reconnect follows).
    fn violation(&mut self, now: Instant, problem: String) {
        self.events.push_back(Event::ProtocolError { problem });
        self.link.push_back(LinkCommand::Close { code: 1002, reason: "protocol error" });
        self.link_down(now);
    }

    fn link_down(&mut self, now: Instant) {
        let up_since = match self.state {
            State::Up { since } => Some(since),
            State::Connecting { .. } | State::AwaitingWelcome { .. } => None,
            State::Down | State::Closed => return,
        };
        self.state = State::Down;
        self.heartbeat = None;
        self.fail_sent(now);
        if self.state != State::Down {
            return; // A callback closed the session.
        }
        if up_since.is_some() {
            self.events.push_back(Event::Disconnected);
        }
        if up_since.is_some_and(|since| now.saturating_duration_since(since) >= self.config.stable_after) {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        if self.config.max_attempts.is_some_and(|max| self.failures > max) {
            let attempts = self.failures - 1;
            self.stop(now, Error::GaveUp { attempts }, 1000);
            return;
        }
        let delay = self.backoff.delay(self.failures);
        self.reconnect_at = Some(now + delay);
        self.events.push_back(Event::Reconnecting { attempt: self.failures, delay });
    }

    fn stop(&mut self, now: Instant, reason: Error, code: u16) {
        if self.state == State::Closed {
            return;
        }
        if self.link_open() {
            self.link.push_back(LinkCommand::Close { code, reason: "closing" });
        }
        let was_up = matches!(self.state, State::Up { .. });
        self.state = State::Closed;
        self.heartbeat = None;
        self.reconnect_at = None;
        self.fail_sent(now);
        while let Some((id, frame)) = self.outbox.pop_front() {
            self.outbox_bytes -= frame.len();
            if let Some(entry) = self.pending.remove(&id) {
                self.forget_deadline(entry.deadline, id);
                self.finish(id, entry, Outcome::Closed, now);
            }
        }
        if was_up {
            self.events.push_back(Event::Disconnected);
        }
        self.events.push_back(Event::Stopped { reason });
    }

    /// Fails every call already sent with [`Outcome::Disconnected`], oldest first.
    fn fail_sent(&mut self, now: Instant) {
        let mut sent: Vec<(Instant, u32)> =
            self.pending.iter().filter_map(|(&id, p)| p.sent_at.map(|at| (at, id))).collect();
        sent.sort_unstable();
        for (_, id) in sent {
            if let Some(entry) = self.pending.remove(&id) {
                self.forget_deadline(entry.deadline, id);
                self.finish(id, entry, Outcome::Disconnected, now);
            }
        }
    }
}

/// Call deadlines, earliest first.
///
/// Most calls take the default timeout, so their deadlines arrive in order: those go in a FIFO,
/// O(1) each way. A deadline earlier than the FIFO's last (a call with a shorter timeout) goes
/// in a tree. FIFO entries of calls that ended are dropped lazily from the front ([`Deadlines::prune`]).
#[derive(Default)]
struct Deadlines {
    fifo: VecDeque<(Instant, u32)>,
    tree: BTreeSet<(Instant, u32)>,
}

impl Deadlines {
    fn insert(&mut self, at: Instant, id: u32) {
        if self.fifo.back().is_none_or(|&(last, _)| last <= at) {
            self.fifo.push_back((at, id));
        } else {
            self.tree.insert((at, id));
        }
    }

    /// Forgets a tree entry now; a FIFO entry waits for [`Deadlines::prune`].
    fn remove(&mut self, at: Instant, id: u32) {
        if !self.tree.is_empty() {
            self.tree.remove(&(at, id));
        }
    }

    /// Drops FIFO entries at the front whose call has ended (`live` says which still wait).
    fn prune(&mut self, live: impl Fn(Instant, u32) -> bool) {
        while let Some(&(at, id)) = self.fifo.front() {
            if live(at, id) {
                return;
            }
            self.fifo.pop_front();
        }
    }

    fn first(&self) -> Option<(Instant, u32)> {
        match (self.fifo.front(), self.tree.first()) {
            (Some(&a), Some(&b)) => Some(a.min(b)),
            (a, b) => a.or(b).copied(),
        }
    }

    fn pop_first(&mut self) {
        let from_fifo = match (self.fifo.front(), self.tree.first()) {
            (Some(a), Some(b)) => a <= b,
            (a, _) => a.is_some(),
        };
        if from_fifo {
            self.fifo.pop_front();
        } else {
            self.tree.pop_first();
        }
    }
}

/// A hasher for callback ids: one multiply (Fibonacci hashing), which spreads sequential ids
/// over the whole table. Ids are chosen by this side, so there is nothing to flood.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}
