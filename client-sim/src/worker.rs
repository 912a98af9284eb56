//! One event loop thread: a mio `Poll` over the sockets of its share of the bots, a timer heap
//! for their moves, and a sweep for their session timers. Each bot is a `ticksock_client::Session` over
//! a `ticksock_client::Connection`, so the call bookkeeping is the client library's.
//!
//! A churn bot makes a new `Session` for every cycle. It closes cleanly by writing a close
//! frame itself and reading until the server closes the TCP connection: `Session::close` has
//! the library drop the socket right after sending its close frame, without waiting for the
//! server's answer, which is not the closing handshake this scenario is meant to exercise.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Registry, Token};
use ticksock_arena::proto::{
    Chat, ChatLine, Join, LoggedIn, Login, Move, Presence, ROUTE_CHAT, ROUTE_ECHO, ROUTE_JOIN, ROUTE_LEAVE,
    ROUTE_LOGIN, ROUTE_MOVE, State, TOPIC_CHAT, TOPIC_PRESENCE, TOPIC_STATE,
};
use ticksock_client::backoff::XorShift;
use ticksock_client::connection::upgrade_request;
use ticksock_client::{CallId, CallOptions, Config, Connection, Event, Outcome, Progress, Session};

use crate::report::{Counters, thread_cpu_secs};
use crate::{Options, Scenario};

/// How often every bot's session timers are looked at (call timeouts, heartbeat, reconnect).
const SWEEP: Duration = Duration::from_millis(100);
/// How often the worker publishes its live figures.
const PUBLISH: Duration = Duration::from_millis(250);
/// Distinct connection error messages kept for the report.
const MAX_ERROR_SAMPLES: usize = 16;

/// A latency histogram in microseconds, 1 µs to 10 min, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    // Cannot fail: the bounds are valid constants.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

/// What one worker shares while it runs, for the progress line.
#[derive(Debug, Default)]
pub(crate) struct LiveSlot {
    pub connected: AtomicU64,
    pub answered: AtomicU64,
    pub errors: AtomicU64,
}

/// What the workers share.
pub(crate) struct Live {
    pub slots: Vec<Arc<LiveSlot>>,
    /// Round trips so far, all workers (added to every [`PUBLISH`] period).
    pub rtt: Mutex<Histogram<u64>>,
}

/// What a worker must do.
pub(crate) struct Plan {
    pub opts: Arc<Options>,
    pub addr: SocketAddr,
    /// The global indices of its bots.
    pub bots: Vec<u32>,
    pub start: Instant,
    pub steady_start: Instant,
    pub end: Instant,
    pub slot: Arc<LiveSlot>,
    pub live: Arc<Live>,
    /// Waited on at the end, before the sockets are closed (see `run` in lib.rs).
    pub hold: Arc<std::sync::Barrier>,
}

/// What a worker measured.
pub(crate) struct Outcomes {
    pub total: Counters,
    pub at_steady: Counters,
    pub sent: u64,
    pub sent_at_steady: u64,
    pub in_flight_at_end: u64,
    pub connected_at_end: u64,
    pub rtt: Histogram<u64>,
    pub rtt_steady: Histogram<u64>,
    pub gaps: Histogram<u64>,
    pub tick_hz: u16,
    pub cpu_at_steady: f64,
    pub cpu_at_end: f64,
    pub error_codes: BTreeMap<u16, u64>,
    pub connect_errors: BTreeMap<String, u64>,
    pub cycle_us: Histogram<u64>,
    pub timer_late: Histogram<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Move,
    Chat,
    Retry,
    /// Churn: start the next cycle.
    NextCycle,
    /// Churn: the server has not closed the connection after our close frame.
    CloseTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not connected (or waiting for the welcome).
    Offline,
    LoggingIn(CallId),
    Joining(CallId),
    Playing,
    Echo,
    /// Idle: the one call is answered; nothing more to do but stay connected.
    Idle,
    /// Churn: `leave` sent.
    Leaving(CallId),
    /// Churn: our close frame is sent; reading until the server closes the connection.
    Closing,
    /// Churn: between two cycles. The old session is left alone until the next one starts.
    Paused,
    /// The session gave up.
    Dead,
}

/// How a churn cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CycleEnd {
    /// Closing handshake done: the server answered our close frame and closed the connection.
    Clean,
    /// Dropped on purpose, without a close frame.
    Dropped,
    /// Something went wrong (counted as an error where it happened).
    Failed,
}

/// A masked client close frame with status 1000: FIN + opcode 8, mask bit + length 2, the
/// masking key, then the code, masked.
fn close_frame(mask: [u8; 4]) -> [u8; 8] {
    let [hi, lo] = 1000u16.to_be_bytes();
    [0x88, 0x82, mask[0], mask[1], mask[2], mask[3], hi ^ mask[0], lo ^ mask[1]]
}

/// Per-bot tracking of `state` pushes.
#[derive(Debug, Default)]
struct Track {
    player_id: Option<u32>,
    last_state: Option<(Instant, u64)>,
    /// A `state` push of this connection has been decoded in full and held the bot's player.
    validated: bool,
}

/// The worker's state apart from the bots, so a bot and it can be borrowed together.
struct Cx {
    opts: Arc<Options>,
    addr: SocketAddr,
    registry: Registry,
    session_config: Config,
    counters: Counters,
    rtt: Histogram<u64>,
    rtt_delta: Histogram<u64>,
    rtt_steady: Histogram<u64>,
    gaps: Histogram<u64>,
    tick_hz: u16,
    connected_now: u64,
    /// The steady window.
    steady: (Instant, Instant),
    timers: Timers,
    error_codes: BTreeMap<u16, u64>,
    connect_errors: BTreeMap<String, u64>,
    echo_body: Vec<u8>,
    /// Churn: durations of completed cycles, microseconds.
    cycle_us: Histogram<u64>,
    /// How late move and chat timers fired, microseconds.
    timer_late: Histogram<u64>,
}

impl Cx {
    fn note_connect_error(&mut self, error: Option<ticksock_client::Error>) {
        let message = error.map_or_else(|| "closed before the welcome".to_owned(), |e| e.to_string());
        if let Some(n) = self.connect_errors.get_mut(&message) {
            *n += 1;
        } else if self.connect_errors.len() < MAX_ERROR_SAMPLES {
            self.connect_errors.insert(message, 1);
        }
    }

    fn schedule(&mut self, at: Instant, bot: usize, generation: u32, timer: Timer) {
        self.timers.schedule(TimerEntry { at, bot, generation, timer });
    }
}

struct Bot {
    index: u32,
    slot: usize,
    session: Session,
    conn: Option<Connection>,
    phase: Phase,
    /// Bumped whenever the bot's timers must be forgotten (a new connection).
    generation: u32,
    ever_connected: bool,
    up: bool,
    /// `session.stats().connections` when the current connection was opened.
    connections_at_open: u64,
    track: Track,
    rng: XorShift,
    /// Requests sent by the sessions of earlier churn cycles.
    sent_before: u64,
    /// Churn: when the current cycle started.
    cycle_started: Instant,
}

impl Bot {
    fn new(index: u32, slot: usize, config: Config, now: Instant) -> Self {
        Self {
            index,
            slot,
            session: Session::new(config, now),
            conn: None,
            phase: Phase::Offline,
            generation: 0,
            ever_connected: false,
            up: false,
            connections_at_open: 0,
            track: Track::default(),
            rng: XorShift::new(u64::from(index).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5151),
            sent_before: 0,
            cycle_started: now,
        }
    }

    /// Requests sent, all sessions.
    fn sent(&self) -> u64 {
        self.sent_before + self.session.stats().sent
    }

    /// Moves everything along: connect if due, read, let the bot react, write.
    fn drive(&mut self, now: Instant, readable: bool, cx: &mut Cx) {
        match self.phase {
            Phase::Paused => return,
            Phase::Closing => {
                if readable {
                    self.read_until_closed(now, cx);
                }
                return;
            }
            _ => {}
        }
        if self.conn.is_none() {
            if self.session.poll_timeout().is_some_and(|at| at <= now) {
                self.session.handle_timeout(now);
            }
            while self.session.poll_link().is_some() {}
            if self.session.poll_connect(now) {
                self.open(now, cx);
            }
        }
        let Bot { conn, session, track, .. } = self;
        let progress = conn.as_mut().map(|c| {
            if readable {
                c.mark_readable();
            }
            c.receive(session, now, |topic, body| on_push(track, topic, body, now, cx))
        });
        if let Some(Progress::Finished(error)) = progress {
            self.drop_conn(now, error, cx);
        }
        self.react(now, cx);
        self.flush(now, cx);
    }

    fn open(&mut self, now: Instant, cx: &mut Cx) {
        cx.counters.connect_attempts += 1;
        self.connections_at_open = self.session.stats().connections;
        let ws_config = cx.session_config.websocket_config();
        let opened = upgrade_request(&cx.opts.url).and_then(|request| {
            let mut conn = Connection::open(cx.addr, request, ws_config, true)?;
            if let Some(tcp) = conn.tcp_mut() {
                cx.registry.register(tcp, Token(self.slot), Interest::READABLE | Interest::WRITABLE)?;
            }
            Ok(conn)
        });
        match opened {
            Ok(conn) => self.conn = Some(conn),
            Err(e) => {
                cx.counters.connect_failures += 1;
                cx.note_connect_error(Some(e));
                self.session.handle_disconnect(now);
                if cx.opts.scenario == Scenario::Churn {
                    self.end_cycle(now, CycleEnd::Failed, cx);
                }
            }
        }
    }

    fn drop_conn(&mut self, now: Instant, error: Option<ticksock_client::Error>, cx: &mut Cx) {
        // Dropping the connection closes the socket, which takes it out of the poll.
        self.conn = None;
        let churn = cx.opts.scenario == Scenario::Churn;
        if self.session.stats().connections > self.connections_at_open {
            cx.counters.disconnects += 1;
            if churn || cx.opts.scenario == Scenario::Idle {
                cx.counters.unexpected_drops += 1;
            }
        } else {
            cx.counters.connect_failures += 1;
            cx.note_connect_error(error);
        }
        // Calls in flight fail (the caller's `react` counts them); a churn bot then starts
        // over with a new session instead of letting this one reconnect.
        self.session.handle_disconnect(now);
        if churn {
            self.end_cycle(now, CycleEnd::Failed, cx);
        }
    }

    /// Churn: ends the current cycle and schedules the next.
    fn end_cycle(&mut self, now: Instant, end: CycleEnd, cx: &mut Cx) {
        if self.phase == Phase::Paused {
            return; // Already ended (a failure reported twice).
        }
        self.phase = Phase::Paused;
        // Dropping the connection closes the socket: for `Dropped`, without a close frame.
        self.conn = None;
        if self.up {
            self.up = false;
            cx.connected_now -= 1;
        }
        let c = &mut cx.counters;
        let mut pause = Duration::from_secs_f64(cx.opts.churn_pause.max(0.0));
        match end {
            CycleEnd::Clean | CycleEnd::Dropped => {
                c.cycles += 1;
                if end == CycleEnd::Clean {
                    c.clean_closes += 1;
                } else {
                    c.abrupt_drops += 1;
                }
                let took = now.saturating_duration_since(self.cycle_started);
                cx.cycle_us.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
            }
            CycleEnd::Failed => {
                c.cycle_failures += 1;
                pause = pause.max(Duration::from_millis(100));
            }
        }
        self.generation = self.generation.wrapping_add(1);
        cx.schedule(now + pause, self.slot, self.generation, Timer::NextCycle);
    }

    /// Churn: a fresh session, and connect.
    fn next_cycle(&mut self, now: Instant, cx: &mut Cx) {
        self.sent_before += self.session.stats().sent;
        let config = self.session.config().clone();
        self.session = Session::new(config, now);
        self.phase = Phase::Offline;
        self.track = Track::default();
        self.cycle_started = now;
        self.drive(now, false, cx);
    }

    /// Churn: starts the closing handshake. Every request has been answered, so nothing is
    /// left in the WebSocket's write buffer and the close frame can go straight to the socket.
    fn start_close(&mut self, now: Instant, cx: &mut Cx) {
        let mask = (self.rng.below(1 << 32) as u32).to_ne_bytes();
        let frame = close_frame(mask);
        let written = match self.conn.as_mut().and_then(|c| c.tcp_mut()) {
            Some(tcp) => matches!(tcp.write(&frame), Ok(n) if n == frame.len()),
            None => false,
        };
        if !written {
            // A socket that does not take 8 bytes when nothing else is waiting: not clean.
            cx.counters.unclean_closes += 1;
            return self.end_cycle(now, CycleEnd::Failed, cx);
        }
        self.phase = Phase::Closing;
        let timeout = Duration::from_secs_f64(cx.opts.call_timeout.max(0.001));
        cx.schedule(now + timeout, self.slot, self.generation, Timer::CloseTimeout);
        // Edge-triggered: whatever arrived before now raises no new event, so read it now.
        self.read_until_closed(now, cx);
    }

    /// Churn: reads (and discards: the server's close frame) until the server closes the
    /// connection, which completes the cycle.
    fn read_until_closed(&mut self, now: Instant, cx: &mut Cx) {
        let mut scratch = [0u8; 512];
        loop {
            let Some(tcp) = self.conn.as_mut().and_then(|c| c.tcp_mut()) else { return };
            match tcp.read(&mut scratch) {
                Ok(0) => return self.end_cycle(now, CycleEnd::Clean, cx),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    cx.counters.unclean_closes += 1;
                    cx.note_connect_error(Some(ticksock_client::Error::Io(e)));
                    return self.end_cycle(now, CycleEnd::Failed, cx);
                }
            }
        }
    }

    fn flush(&mut self, now: Instant, cx: &mut Cx) {
        if let Some(conn) = self.conn.as_mut()
            && let Progress::Finished(error) = conn.transmit(&mut self.session)
        {
            self.drop_conn(now, error, cx);
            self.react(now, cx);
        }
    }

    /// Handles the session's events: the bot's game logic.
    fn react(&mut self, now: Instant, cx: &mut Cx) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Connected { tick_hz, .. } => {
                    cx.counters.connections += 1;
                    if self.ever_connected {
                        cx.counters.reconnects += 1;
                    } else {
                        self.ever_connected = true;
                        cx.counters.bots_connected += 1;
                    }
                    self.up = true;
                    cx.connected_now += 1;
                    cx.tick_hz = tick_hz;
                    self.generation = self.generation.wrapping_add(1);
                    self.track.last_state = None;
                    self.track.validated = false;
                    match cx.opts.scenario {
                        Scenario::Arena | Scenario::Churn => self.login(now, cx),
                        Scenario::Echo => {
                            self.phase = Phase::Echo;
                            for _ in 0..cx.opts.window {
                                self.echo(now, cx);
                            }
                        }
                        Scenario::Idle => {
                            self.phase = Phase::Echo;
                            self.echo(now, cx);
                        }
                    }
                }
                Event::Disconnected => {
                    if self.up {
                        self.up = false;
                        cx.connected_now -= 1;
                    }
                    if self.phase != Phase::Paused {
                        self.phase = Phase::Offline;
                        self.generation = self.generation.wrapping_add(1);
                    }
                }
                Event::Stopped { .. } => {
                    cx.counters.gave_up += 1;
                    self.phase = Phase::Dead;
                }
                Event::Outcome { id, outcome, rtt, .. } => self.on_outcome(id, outcome, rtt, now, cx),
                Event::BadPush { .. } => cx.counters.bad_pushes += 1,
                Event::ProtocolError { .. } => cx.counters.protocol_errors += 1,
                Event::Reconnecting { .. } | Event::Push { .. } => {}
            }
        }
    }

    fn on_outcome(&mut self, id: CallId, outcome: Outcome, rtt: Option<Duration>, now: Instant, cx: &mut Cx) {
        match &outcome {
            Outcome::Reply(_) => cx.counters.replied += 1,
            Outcome::Error { code, .. } => {
                cx.counters.errored += 1;
                *cx.error_codes.entry(*code).or_default() += 1;
            }
            Outcome::Timeout => cx.counters.timed_out += 1,
            Outcome::Disconnected => cx.counters.disconnected_calls += 1,
            Outcome::Closed => {}
        }
        if let (Some(rtt), Outcome::Reply(_) | Outcome::Error { .. }) = (rtt, &outcome) {
            let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
            cx.rtt.saturating_record(us);
            cx.rtt_delta.saturating_record(us);
            if now >= cx.steady.0 && now < cx.steady.1 {
                cx.rtt_steady.saturating_record(us);
            }
        }
        if cx.opts.scenario == Scenario::Churn {
            return self.on_churn_outcome(id, outcome, now, cx);
        }
        match self.phase {
            Phase::LoggingIn(login) if login == id => match outcome.decode::<LoggedIn>() {
                Ok(me) => {
                    self.track.player_id = Some(me.player_id);
                    self.join(now, cx);
                }
                Err(_) => cx.schedule(now + Duration::from_secs(1), self.slot, self.generation, Timer::Retry),
            },
            Phase::Joining(join) if join == id => {
                if outcome.is_reply() {
                    self.phase = Phase::Playing;
                    let period = move_period(&cx.opts);
                    let phase = Duration::from_nanos(self.rng.below(period.as_nanos() as u64));
                    cx.schedule(now + phase, self.slot, self.generation, Timer::Move);
                    let chat = Duration::from_secs_f64(cx.opts.chat_interval.max(0.001));
                    let phase = Duration::from_nanos(self.rng.below(chat.as_nanos() as u64));
                    cx.schedule(now + phase, self.slot, self.generation, Timer::Chat);
                } else {
                    cx.schedule(now + Duration::from_secs(1), self.slot, self.generation, Timer::Retry);
                }
            }
            Phase::Echo => {
                if let Outcome::Reply(body) = &outcome
                    && *body != cx.echo_body
                {
                    cx.counters.echo_mismatches += 1;
                }
                if cx.opts.scenario == Scenario::Idle {
                    // One call per connection; from now on the bot only answers pings.
                    self.phase = Phase::Idle;
                } else if matches!(outcome, Outcome::Reply(_) | Outcome::Error { .. } | Outcome::Timeout) {
                    self.echo(now, cx);
                }
            }
            _ => {}
        }
    }

    /// Churn: login, then join, then leave and close, or drop. Anything but a reply ends the
    /// cycle as a failure (the outcome was counted as an error already).
    fn on_churn_outcome(&mut self, id: CallId, outcome: Outcome, now: Instant, cx: &mut Cx) {
        match self.phase {
            Phase::LoggingIn(login) if login == id => match outcome.decode::<LoggedIn>() {
                Ok(me) => {
                    self.track.player_id = Some(me.player_id);
                    self.join(now, cx);
                }
                Err(_) => self.end_cycle(now, CycleEnd::Failed, cx),
            },
            Phase::Joining(join) if join == id => {
                if !outcome.is_reply() {
                    return self.end_cycle(now, CycleEnd::Failed, cx);
                }
                let abrupt = (self.rng.below(1_000_000) as f64) < cx.opts.drop_fraction * 1_000_000.0;
                if abrupt {
                    self.end_cycle(now, CycleEnd::Dropped, cx);
                } else if let Some(id) = self.call(ROUTE_LEAVE, &(), now, cx) {
                    self.phase = Phase::Leaving(id);
                } else {
                    self.end_cycle(now, CycleEnd::Failed, cx);
                }
            }
            Phase::Leaving(leave) if leave == id => {
                if outcome.is_reply() {
                    self.start_close(now, cx);
                } else {
                    self.end_cycle(now, CycleEnd::Failed, cx);
                }
            }
            _ => {}
        }
    }

    fn call<T: serde::Serialize + ?Sized>(
        &mut self,
        route: &str,
        body: &T,
        now: Instant,
        cx: &mut Cx,
    ) -> Option<CallId> {
        match self.session.call(route, body, now) {
            Ok(id) => {
                cx.counters.calls += 1;
                Some(id)
            }
            Err(_) => {
                cx.counters.refused += 1;
                None
            }
        }
    }

    fn login(&mut self, now: Instant, cx: &mut Cx) {
        let name = format!("{}-{}", cx.opts.name_prefix, self.index);
        if let Some(id) = self.call(ROUTE_LOGIN, &Login { name }, now, cx) {
            self.phase = Phase::LoggingIn(id);
        }
    }

    fn join(&mut self, now: Instant, cx: &mut Cx) {
        let kind = if cx.opts.scenario == Scenario::Churn { "churn" } else { "arena" };
        let room = format!("{kind}-{}", self.index / cx.opts.room_size.max(1));
        if let Some(id) = self.call(ROUTE_JOIN, &Join { room }, now, cx) {
            self.phase = Phase::Joining(id);
        }
    }

    fn echo(&mut self, now: Instant, cx: &mut Cx) {
        match self.session.call_raw(ROUTE_ECHO, &cx.echo_body, CallOptions::default(), now) {
            Ok(_) => cx.counters.calls += 1,
            Err(_) => cx.counters.refused += 1,
        }
    }

    fn on_timer(&mut self, at: Instant, timer: Timer, now: Instant, cx: &mut Cx) {
        if matches!(timer, Timer::Move | Timer::Chat) {
            let late = now.saturating_duration_since(at);
            cx.timer_late.saturating_record(u64::try_from(late.as_micros()).unwrap_or(u64::MAX).max(1));
        }
        match (timer, self.phase) {
            (Timer::Move, Phase::Playing) => {
                let dx = self.rng.below(3) as i8 - 1;
                let dy = self.rng.below(3) as i8 - 1;
                self.call(ROUTE_MOVE, &Move { dx, dy }, now, cx);
                let period = move_period(&cx.opts);
                // Keep the schedule; if the loop fell behind by more than a period, skip ahead.
                let next = if at + period > now { at + period } else { now + period };
                cx.schedule(next, self.slot, self.generation, Timer::Move);
            }
            (Timer::Chat, Phase::Playing) => {
                let text = format!("hello from {}", self.index);
                self.call(ROUTE_CHAT, &Chat { text }, now, cx);
                let every = Duration::from_secs_f64(cx.opts.chat_interval.max(0.001));
                let next = if at + every > now { at + every } else { now + every };
                cx.schedule(next, self.slot, self.generation, Timer::Chat);
            }
            (Timer::Retry, Phase::LoggingIn(_)) => self.login(now, cx),
            (Timer::Retry, Phase::Joining(_)) => self.join(now, cx),
            (Timer::NextCycle, Phase::Paused) => return self.next_cycle(now, cx),
            (Timer::CloseTimeout, Phase::Closing) => {
                cx.counters.unclean_closes += 1;
                cx.note_connect_error(Some(ticksock_client::Error::Protocol(
                    "the server did not close the connection after our close frame".into(),
                )));
                return self.end_cycle(now, CycleEnd::Failed, cx);
            }
            _ => {}
        }
        self.flush(now, cx);
    }
}

fn move_period(opts: &Options) -> Duration {
    Duration::from_secs_f64(1.0 / opts.rate.max(0.001))
}

/// A push, borrowed from the receive buffer: counted, and `state` ticks timed.
///
/// A `state` push is decoded for its tick only (the body starts with it), except the first one
/// of each connection, which is decoded in full and must hold the bot's own player. With
/// `--validate-pushes` every push is decoded in full as its topic's type.
fn on_push(track: &mut Track, topic: &str, body: &[u8], now: Instant, cx: &mut Cx) -> bool {
    let validate = cx.opts.validate_pushes;
    let c = &mut cx.counters;
    c.pushes += 1;
    match topic {
        TOPIC_STATE => {
            c.pushes_state += 1;
            if validate || !track.validated {
                c.pushes_decoded += 1;
                match ticksock_protocol::decode_body::<State>(body) {
                    Ok(state) => {
                        let me = track.player_id;
                        let holds_me = me.is_some_and(|me| state.players.iter().any(|p| p.id == me));
                        // A connected player is never left out of its arena's state.
                        if me.is_some() && !holds_me {
                            c.bad_pushes += 1;
                        }
                        track.validated = holds_me;
                    }
                    Err(_) => c.bad_pushes += 1,
                }
            }
            let Ok((tick, _)) =
                bincode::serde::decode_from_slice::<u64, _>(body, bincode::config::standard())
            else {
                c.bad_pushes += 1;
                return true;
            };
            if let Some((at, last)) = track.last_state {
                if tick > last {
                    let gap = now.saturating_duration_since(at);
                    cx.gaps.saturating_record(u64::try_from(gap.as_micros()).unwrap_or(u64::MAX).max(1));
                    c.ticks_skipped += tick - last - 1;
                } else {
                    c.bad_pushes += 1; // Ticks must increase.
                }
            }
            track.last_state = Some((now, tick));
        }
        TOPIC_CHAT => {
            c.pushes_chat += 1;
            if validate {
                c.pushes_decoded += 1;
                if ticksock_protocol::decode_body::<ChatLine>(body).is_err() {
                    c.bad_pushes += 1;
                }
            }
        }
        TOPIC_PRESENCE => {
            c.pushes_presence += 1;
            if validate {
                c.pushes_decoded += 1;
                if ticksock_protocol::decode_body::<Presence>(body).is_err() {
                    c.bad_pushes += 1;
                }
            }
        }
        _ => c.pushes_other += 1,
    }
    true
}

/// The session settings of a bot.
fn session_config(opts: &Options, index: u32) -> Config {
    let mut config = Config {
        call_timeout: Duration::from_secs_f64(opts.call_timeout),
        heartbeat_interval: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(10),
        backoff_initial: Duration::from_millis(500),
        backoff_max: Duration::from_secs(5),
        max_attempts: Some(opts.max_attempts),
        stable_after: Duration::from_secs(5),
        max_queued_calls: 64,
        jitter_seed: Some(u64::from(index) + 1),
        read_buffer_bytes: 4 << 10,
        ..Config::default()
    };
    if opts.scenario == Scenario::Idle {
        // Silent: the server pings a quiet connection (every 10 s by default) and each ping
        // counts as hearing from it, so the bot's own heartbeat never has to ping.
        config.heartbeat_interval = Duration::from_secs(60);
        config.idle_timeout = Duration::from_secs(120);
    }
    config
}

/// Runs one worker until the plan's end.
pub(crate) fn run(plan: Plan) -> std::io::Result<Outcomes> {
    // Waits on the barrier whichever way this function ends, so the main thread never hangs.
    let mut hold = Hold { barrier: plan.hold.clone(), released: false };
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let opts = plan.opts.clone();
    let mut cx = Cx {
        registry: poll.registry().try_clone()?,
        addr: plan.addr,
        session_config: session_config(&opts, 0),
        counters: Counters::default(),
        rtt: histogram(),
        rtt_delta: histogram(),
        rtt_steady: histogram(),
        gaps: histogram(),
        tick_hz: 0,
        connected_now: 0,
        steady: (plan.steady_start, plan.end),
        timers: Timers::new(plan.start),
        error_codes: BTreeMap::new(),
        connect_errors: BTreeMap::new(),
        echo_body: (0..opts.body_bytes).map(|i| (i % 251) as u8).collect(),
        cycle_us: histogram(),
        timer_late: histogram(),
        opts,
    };
    let ramp = cx.opts.ramp.max(0.001);
    let launch_at = |global: u32| plan.start + Duration::from_secs_f64(f64::from(global) / ramp);
    let mut bots: Vec<Bot> = Vec::with_capacity(plan.bots.len());
    let mut at_steady: Option<(Counters, u64, f64)> = None;
    let mut next_sweep = plan.start;
    let mut next_publish = plan.start;
    let mut due = Vec::new();
    loop {
        let now = Instant::now();
        if now >= plan.end {
            break;
        }
        if at_steady.is_none() && now >= plan.steady_start {
            let sent = bots.iter().map(Bot::sent).sum();
            at_steady = Some((cx.counters, sent, thread_cpu_secs()));
        }
        while let Some(&global) = plan.bots.get(bots.len()) {
            if launch_at(global) > now {
                break;
            }
            let slot = bots.len();
            let mut bot = Bot::new(global, slot, session_config(&cx.opts, global), now);
            cx.counters.bots_launched += 1;
            bot.drive(now, false, &mut cx);
            bots.push(bot);
        }
        cx.timers.due(now, &mut due);
        for entry in due.drain(..) {
            if let Some(bot) = bots.get_mut(entry.bot)
                && bot.generation == entry.generation
            {
                bot.on_timer(entry.at, entry.timer, now, &mut cx);
            }
        }
        if now >= next_sweep {
            next_sweep = now + SWEEP;
            for bot in &mut bots {
                let due = bot.session.poll_timeout().is_some_and(|at| at <= now);
                if due {
                    bot.drive(now, false, &mut cx);
                }
            }
        }
        if now >= next_publish {
            next_publish = now + PUBLISH;
            publish(&plan, &mut cx);
        }
        let mut wake = plan.end.min(next_sweep).min(next_publish);
        if let Some(&global) = plan.bots.get(bots.len()) {
            wake = wake.min(launch_at(global));
        }
        if let Some(at) = cx.timers.next_wake() {
            wake = wake.min(at);
        }
        if at_steady.is_none() {
            wake = wake.min(plan.steady_start);
        }
        let timeout = wake.saturating_duration_since(Instant::now());
        if let Err(e) = poll.poll(&mut events, Some(timeout))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(e);
        }
        for event in events.iter() {
            if let Some(bot) = bots.get_mut(event.token().0) {
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                bot.drive(Instant::now(), readable, &mut cx);
            }
        }
    }
    // Measure before closing: closing fails the calls still in flight.
    let cpu_at_end = thread_cpu_secs();
    publish(&plan, &mut cx);
    let total = cx.counters;
    let sent = bots.iter().map(Bot::sent).sum();
    // A paused churn bot's session is over; its calls are not in flight.
    let in_flight_at_end =
        bots.iter().filter(|b| b.phase != Phase::Paused).map(|b| b.session.pending_calls() as u64).sum();
    let connected_at_end = cx.connected_now;
    // The server is looked at with every bot still connected before anything is closed.
    hold.release();
    let now = Instant::now();
    for bot in &mut bots {
        bot.session.close(now);
        if let Some(conn) = bot.conn.as_mut() {
            let _ = conn.transmit(&mut bot.session);
        }
    }
    let (at_steady, sent_at_steady, cpu_at_steady) = at_steady.unwrap_or((total, sent, cpu_at_end));
    Ok(Outcomes {
        total,
        at_steady,
        sent,
        sent_at_steady,
        in_flight_at_end,
        connected_at_end,
        rtt: cx.rtt,
        rtt_steady: cx.rtt_steady,
        gaps: cx.gaps,
        tick_hz: cx.tick_hz,
        cpu_at_steady,
        cpu_at_end,
        error_codes: cx.error_codes,
        connect_errors: cx.connect_errors,
        cycle_us: cx.cycle_us,
        timer_late: cx.timer_late,
    })
}

/// The end-of-window barrier, waited on once: explicitly, or on an early return (an error).
struct Hold {
    barrier: Arc<std::sync::Barrier>,
    released: bool,
}

impl Hold {
    fn release(&mut self) {
        if !self.released {
            self.released = true;
            self.barrier.wait();
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release();
    }
}

fn publish(plan: &Plan, cx: &mut Cx) {
    let c = &cx.counters;
    plan.slot.connected.store(cx.connected_now, Ordering::Relaxed);
    plan.slot.answered.store(c.replied + c.errored, Ordering::Relaxed);
    plan.slot.errors.store(c.errors(), Ordering::Relaxed);
    if let Ok(mut rtt) = plan.live.rtt.lock() {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = rtt.add(&cx.rtt_delta);
    }
    cx.rtt_delta.reset();
}

/// A bot's timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TimerEntry {
    at: Instant,
    bot: usize,
    /// Stale when the bot's generation has moved on.
    generation: u32,
    timer: Timer,
}

/// Bot timers: a wheel of 1 ms slots for the next two seconds (moves, retries: O(1) each way,
/// where 100 000 moves a second through a heap cost more), and a heap for later ones (chat).
struct Timers {
    origin: Instant,
    slots: Vec<Vec<TimerEntry>>,
    /// The next slot (in ms since `origin`) not yet handed out.
    cursor: u64,
    in_wheel: usize,
    far: BinaryHeap<Reverse<TimerEntry>>,
}

const WHEEL_SLOTS: u64 = 2048;

impl Timers {
    fn new(origin: Instant) -> Self {
        Self {
            origin,
            slots: (0..WHEEL_SLOTS).map(|_| Vec::new()).collect(),
            cursor: 0,
            in_wheel: 0,
            far: BinaryHeap::new(),
        }
    }

    /// The slot of `at`, rounded up so that a timer never fires early.
    fn slot_of(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }

    fn schedule(&mut self, entry: TimerEntry) {
        let slot = self.slot_of(entry.at).max(self.cursor);
        if slot - self.cursor < WHEEL_SLOTS {
            self.slots[(slot % WHEEL_SLOTS) as usize].push(entry);
            self.in_wheel += 1;
        } else {
            self.far.push(Reverse(entry));
        }
    }

    /// Moves every timer due at `now` into `out`.
    fn due(&mut self, now: Instant, out: &mut Vec<TimerEntry>) {
        let now_slot = self.slot_of(now);
        // Slot `s` holds timers in (s - 1 ms, s ms]: it is due once `now` reaches its end.
        let last_due = if self.origin + Duration::from_millis(now_slot) <= now {
            now_slot
        } else {
            now_slot.saturating_sub(1)
        };
        loop {
            // Far timers that came within the wheel's reach move into it.
            while let Some(Reverse(entry)) = self.far.peek() {
                if self.slot_of(entry.at).max(self.cursor) - self.cursor >= WHEEL_SLOTS {
                    break;
                }
                let Some(Reverse(entry)) = self.far.pop() else { break };
                self.schedule(entry);
            }
            if self.cursor > last_due {
                return;
            }
            if self.in_wheel == 0 {
                // Nothing in the wheel: jump, but not past the first far timer.
                let far = self.far.peek().map_or(u64::MAX, |Reverse(e)| self.slot_of(e.at) - WHEEL_SLOTS + 1);
                self.cursor = self.cursor.max(far.min(last_due + 1));
                if self.cursor > last_due {
                    continue;
                }
            }
            let slot = &mut self.slots[(self.cursor % WHEEL_SLOTS) as usize];
            self.in_wheel -= slot.len();
            out.append(slot);
            self.cursor += 1;
        }
    }

    /// When to look again: the end of the first slot holding a timer, or the first far timer
    /// if that is sooner.
    fn next_wake(&self) -> Option<Instant> {
        let far = self.far.peek().map(|Reverse(entry)| entry.at);
        if self.in_wheel == 0 {
            return far;
        }
        // Some slot within the wheel's reach holds a timer: find the first.
        let ahead = (0..WHEEL_SLOTS)
            .find(|k| !self.slots[((self.cursor + k) % WHEEL_SLOTS) as usize].is_empty())
            .unwrap_or(0);
        let wheel = self.origin + Duration::from_millis(self.cursor + ahead);
        Some(far.map_or(wheel, |far| far.min(wheel)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_never_fire_early_nor_more_than_a_millisecond_late_and_none_is_lost() {
        let origin = Instant::now();
        let mut timers = Timers::new(origin);
        let mut rng = XorShift::new(3);
        let mut want = Vec::new();
        for bot in 0..2000 {
            // Up to 12 s ahead: most within the wheel, some far.
            let at = origin + Duration::from_micros(rng.below(12_000_000));
            timers.schedule(TimerEntry { at, bot, generation: 0, timer: Timer::Move });
            want.push((at, bot));
        }
        let mut got = Vec::new();
        let mut out = Vec::new();
        let mut now = origin;
        let mut wakes = 0;
        while got.len() < want.len() {
            let wake = timers.next_wake().expect("timers remain");
            assert!(wake >= now, "the next wake is not in the past");
            // Sometimes the loop is late, by up to 30 ms.
            let late =
                if rng.below(2) == 0 { Duration::ZERO } else { Duration::from_micros(rng.below(30_000)) };
            now = wake + late;
            timers.due(now, &mut out);
            wakes += 1;
            for e in out.drain(..) {
                assert!(e.at <= now, "fired early");
                if late == Duration::ZERO {
                    assert!(now - e.at < Duration::from_millis(1), "fired {:?} late", now - e.at);
                }
                got.push((e.at, e.bot));
            }
            assert!(now < origin + Duration::from_secs(20), "stuck");
        }
        assert!(wakes <= 2 * want.len(), "{wakes} wakeups for {} timers", want.len());
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(timers.next_wake(), None);
    }
}
