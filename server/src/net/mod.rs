//! The reactor thread: one mio `Poll` owns the listener and every connection.
//!
//! A turn of the loop: wait for readiness (or the next deadline); accept; advance HTTP
//! exchanges; read WebSocket messages and pass requests to the logic thread; apply the logic
//! thread's batches; flush every connection written to, once, and a slice of the recipients of
//! a burst of broadcasts (`Config::broadcast_flush_slice`); sweep for heartbeats and
//! timeouts. Reads drain until `WouldBlock` (or a short read: see [`socket`]) within a
//! per-connection budget; a connection left with unread data is queued and served on the next
//! turn, so nothing is lost to edge-triggered readiness and no client starves the others.
//!
//! Messages for the logic thread travel in batches of up to [`TO_LOGIC_BATCH`], sent when
//! full and at the end of each step of a turn, so that a busy turn costs one channel hop per
//! batch rather than per request, while the logic thread still starts on the first requests
//! before the turn is over.
//!
//! Backpressure: when the channel to the logic thread is full, batches wait in a small
//! backlog and the reactor stops reading sockets until it drains, so TCP pushes back on
//! the clients instead of memory growing.

mod connection;
pub mod handshake;
pub(crate) mod heartbeat;
pub mod inbound;
pub mod outbound;
pub(crate) mod rate;
mod socket;

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use ticksock_protocol::error_code;
use tungstenite::Message;
use tungstenite::protocol::WebSocketConfig;

use self::connection::{Connection, HttpProgress, OutboundLimits, Phase, WriteOutcome};
use self::heartbeat::Verdict;
use self::inbound::{Inbound, Mode, close};
use self::rate::RateLimiter;
use crate::bridge::wake::Wake;
use crate::bridge::{
    Batch, Bell, Command, DataOpcode, InboundCount, ReactorEnds, RouteTable, TO_LOGIC_BATCH, ToLogic,
};
use crate::metrics::{Metrics, ReactorCounters};
use crate::{Config, ConnId};

/// The listener's token; connections use their slab index.
const LISTENER: Token = Token(usize::MAX - 1);
/// The waker's token.
pub(crate) const WAKER: Token = Token(usize::MAX - 2);

/// How many connections over the limit may wait for their 503 at once; more are dropped.
fn refusal_slots(max_connections: usize) -> usize {
    (max_connections / 16).clamp(16, 1024)
}

/// Where the reactor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Running,
    /// Told the logic thread to finish; waiting for its last batch.
    Draining,
    /// Sent close frames to everyone; waiting for them to go, until the deadline.
    Closing {
        deadline: Instant,
    },
}

/// The reactor's state. Built on the calling thread, then moved into its own.
pub(crate) struct Reactor {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Slab<Connection>,
    next_generation: u32,
    config: Config,
    ws_config: WebSocketConfig,
    policy: handshake::Policy,
    routes: RouteTable,
    to_logic: Sender<Vec<ToLogic>>,
    /// Messages for the logic thread not sent yet: the batch being filled.
    pending: Vec<ToLogic>,
    /// Batches the channel had no room for, oldest first.
    backlog: VecDeque<Vec<ToLogic>>,
    from_logic: Receiver<Batch>,
    spent: Sender<Batch>,
    handled: Receiver<Vec<ToLogic>>,
    queued: InboundCount,
    /// Wakes the logic thread after a send on `to_logic`; declared after it, so that the
    /// channel is closed before the drop's ring.
    doorbell: Bell,
    wake: Arc<Wake>,
    stop: Arc<AtomicBool>,
    /// Connections that may have unread data: budget spent, or paused by backpressure.
    read_queue: VecDeque<usize>,
    /// Connections written to this turn, to flush once each (at the end of the turn).
    dirty: Vec<usize>,
    /// Connections sent a broadcast (`SendMany`: a tick's pushes to thousands) and not
    /// flushed since, each once: `Config::broadcast_flush_slice` of them are written per
    /// turn, after the turn's other writes, so that replies do not wait for a whole burst to
    /// be written.
    flush_backlog: VecDeque<ConnId>,
    next_sweep: Instant,
    /// When `poll` last returned: the time every message read in this turn is stamped with
    /// (for liveness and the rate limit), so reading costs no clock call per message.
    turn_started: Instant,
    stage: Stage,
    accept_blocked: bool,
    /// Connections in the slab only to be answered 503.
    refusing: usize,
    metrics: Arc<Metrics>,
    counters: ReactorCounters,
}

impl Reactor {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        poll: Poll,
        mut listener: TcpListener,
        config: Config,
        routes: RouteTable,
        ends: ReactorEnds,
        wake: Arc<Wake>,
        stop: Arc<AtomicBool>,
        metrics: Arc<Metrics>,
    ) -> io::Result<Self> {
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let ws_config = config.websocket_config();
        let policy = handshake::Policy::of(&config);
        Ok(Self {
            poll,
            listener: Some(listener),
            conns: Slab::new(),
            next_generation: 0,
            next_sweep: Instant::now(),
            turn_started: Instant::now(),
            ws_config,
            policy,
            routes,
            to_logic: ends.to_logic,
            pending: Vec::new(),
            backlog: VecDeque::new(),
            from_logic: ends.from_logic,
            spent: ends.spent,
            handled: ends.handled,
            queued: ends.queued,
            doorbell: ends.doorbell,
            wake,
            stop,
            read_queue: VecDeque::new(),
            dirty: Vec::new(),
            flush_backlog: VecDeque::new(),
            stage: Stage::Running,
            accept_blocked: false,
            refusing: 0,
            metrics,
            counters: ReactorCounters::default(),
            config,
        })
    }

    /// Runs until shutdown completes.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            // Turns at most every `min_turn_interval`: under a steady trickle of messages each
            // turn then carries several, and the logic thread is woken once for them all
            // instead of once per message or two (see `Config::min_turn_interval`).
            let since = self.turn_started.elapsed();
            if since < self.config.min_turn_interval {
                std::thread::sleep(self.config.min_turn_interval - since);
            }
            let timeout = self.poll_timeout(Instant::now());
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.turn_started = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => self.wake.clear(),
                    Token(index) => {
                        let (readable, writable) = (event.is_readable(), event.is_writable());
                        self.guarded(index, |reactor| reactor.handle_ready(index, readable, writable));
                    }
                }
            }
            self.send_pending();
            let logic_done = self.apply_batches();
            if self.accept_blocked {
                self.accept();
            }
            self.serve_read_queue();
            self.send_pending();
            self.flush_dirty();
            let now = Instant::now();
            if now >= self.next_sweep {
                self.sweep(now);
            }
            let done = self.advance_stage(logic_done, now);
            // Disconnects found by the sweep or the shutdown sequence go now, not next turn.
            self.send_pending();
            self.publish_counters();
            if done {
                return Ok(());
            }
        }
    }

    /// Runs one connection's work; a panic in it (a bug) costs that connection, not the
    /// server.
    fn guarded(&mut self, index: usize, work: impl FnOnce(&mut Self)) {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(self))).is_err() {
            tracing::error!("a bug panicked while serving connection {index}; dropping it");
            self.remove(index);
        }
    }

    fn publish_counters(&mut self) {
        let c = &mut self.counters;
        c.open = self.conns.len() as u64;
        c.backlog = self.backlog.iter().map(Vec::len).sum::<usize>() as u64;
        c.backlog_max = c.backlog_max.max(c.backlog);
        c.flush_backlog = self.flush_backlog.len() as u64;
        c.flush_backlog_max = c.flush_backlog_max.max(c.flush_backlog);
        self.metrics.publish_reactor(c);
    }

    fn poll_timeout(&self, now: Instant) -> Duration {
        if (!self.read_queue.is_empty() && self.backlog.is_empty()) || !self.flush_backlog.is_empty() {
            return Duration::ZERO;
        }
        let mut wait = self.next_sweep.saturating_duration_since(now);
        if !self.backlog.is_empty() || self.accept_blocked {
            // The logic thread is behind or accept hit a limit: look again soon.
            wait = wait.min(Duration::from_millis(1));
        }
        if let Stage::Closing { deadline } = self.stage {
            wait = wait.min(deadline.saturating_duration_since(now));
        }
        wait
    }

    fn accept(&mut self) {
        self.accept_blocked = false;
        let Some(listener) = self.listener.as_ref() else { return };
        loop {
            let (mut stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of file descriptors, typically. The pending connections stay queued
                    // in the kernel; edge-triggered readiness will not repeat, so retry soon.
                    tracing::warn!("accept failed: {e}");
                    self.accept_blocked = true;
                    return;
                }
            };
            self.counters.accepted += 1;
            let refuse = self.conns.len() - self.refusing >= self.config.max_connections;
            self.counters.refused += u64::from(refuse);
            if refuse && self.refusing >= refusal_slots(self.config.max_connections) {
                // Even the refusals are too many: drop without a word.
                tracing::debug!("dropped {peer}: at max_connections");
                continue;
            }
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!("set_nodelay for {peer}: {e}");
            }
            let entry = self.conns.vacant_entry();
            let index = entry.key();
            let Ok(slot) = u32::try_from(index) else { continue };
            self.next_generation = self.next_generation.wrapping_add(1);
            let id = ConnId::new(slot, self.next_generation);
            if let Err(e) = self.poll.registry().register(&mut stream, Token(index), Interest::READABLE) {
                tracing::warn!("register {peer}: {e}");
                continue;
            }
            let now = Instant::now();
            let limiter =
                RateLimiter::new(self.config.rate_messages_per_sec, self.config.rate_bytes_per_sec, now);
            let mut conn = Connection::new(id, stream, limiter, now);
            if refuse {
                tracing::debug!("refusing {peer}: at max_connections");
                if let Phase::Http(http) = &mut conn.phase {
                    http.refusing = true;
                }
                self.refusing += 1;
            }
            entry.insert(conn);
        }
    }

    fn handle_ready(&mut self, index: usize, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        match &mut conn.phase {
            Phase::Http(_) => self.advance_http(index),
            Phase::Open(ws) => {
                if readable {
                    ws.get_mut().handle_readable();
                }
                if writable {
                    self.mark_dirty(index);
                }
                if readable {
                    self.read_messages(index);
                }
            }
            Phase::Moving => {}
        }
    }

    fn advance_http(&mut self, index: usize) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let Phase::Http(http) = &mut conn.phase else { return };
        match http.advance(&self.policy, &self.metrics) {
            Ok(HttpProgress::Pending) => self.want_writable(index, true),
            Ok(HttpProgress::Upgraded(leftover, encoding)) => {
                conn.upgrade(
                    leftover,
                    self.ws_config,
                    OutboundLimits {
                        max_queued: self.config.max_outbound_bytes,
                        coalesce: self.config.write_coalesce_bytes,
                    },
                );
                conn.encoding = encoding;
                conn.liveness.handle_heard(Instant::now());
                let id = conn.id;
                if !self.config.echo {
                    let mut welcome = Vec::new();
                    ticksock_protocol::write_welcome(
                        encoding,
                        &mut welcome,
                        self.config.tick_hz,
                        id.to_u64(),
                    );
                    let _ = conn.write_data(DataOpcode::of(encoding), &welcome);
                }
                conn.announced = true;
                self.counters.upgraded += 1;
                self.want_writable(index, false);
                self.mark_dirty(index);
                self.forward(ToLogic::Connected { conn: id, encoding });
                // Frames may have arrived with the request.
                self.queue_read(index);
            }
            Ok(HttpProgress::Done) => self.remove(index),
            Err(e) => {
                tracing::debug!("http exchange failed: {e}");
                self.remove(index);
            }
        }
    }

    /// Reads messages from one connection, within its budget.
    fn read_messages(&mut self, index: usize) {
        for _ in 0..self.config.read_budget {
            if !self.backlog.is_empty() {
                // The logic thread is behind: stop reading, let TCP push back.
                self.queue_read(index);
                return;
            }
            let Some(conn) = self.conns.get_mut(index) else { return };
            if conn.read_stopped {
                return;
            }
            let Some(ws) = conn.ws() else { return };
            let result = ws.read();
            let now = self.turn_started;
            match result {
                Ok(message) => {
                    conn.liveness.handle_heard(now);
                    self.handle_message(index, message, now);
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    // tungstenite may have queued a pong or a close reply while reading.
                    self.mark_dirty(index);
                    return;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.handle_read_error(index, e);
                    return;
                }
            }
        }
        self.queue_read(index);
    }

    fn handle_message(&mut self, index: usize, message: Message, now: Instant) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let id = conn.id;
        if self.stage != Stage::Running {
            // Shutting down: no new requests; control frames are handled by tungstenite.
            self.mark_dirty(index);
            return;
        }
        // Pings and pongs count against the rate too: a ping flood is a flood.
        if let Message::Binary(_) | Message::Text(_) | Message::Ping(_) | Message::Pong(_) = &message {
            let len = message.len();
            if message.is_binary() || message.is_text() {
                self.counters.frames_in += 1;
                self.counters.bytes_in += len as u64;
            }
            if !conn.limiter.admit(len, now) {
                conn.strikes += 1;
                if conn.strikes > self.config.rate_strikes {
                    self.counters.rate_limited_closes += 1;
                    self.close(index, close::POLICY, "rate limit exceeded");
                } else if !self.config.echo
                    && let Some(callback) = inbound::callback_id(&message, conn.encoding)
                {
                    let code = error_code::RATE_LIMITED;
                    let answer =
                        inbound::answer(callback, conn.encoding, code, "too many requests; slow down");
                    self.counters.errors[usize::from(code)] += 1;
                    if let Inbound::Answer { opcode, frame, .. } = answer {
                        self.send_data(index, opcode, &frame);
                    }
                }
                return;
            }
            conn.strikes = 0;
        }
        let encoding = conn.encoding;
        let mode = if self.config.echo { Mode::Echo } else { Mode::Protocol(encoding) };
        match inbound::classify(message, &self.routes, mode) {
            Inbound::Request { id: callback, route, body } => {
                self.counters.requests_forwarded += 1;
                self.forward(ToLogic::Request { conn: id, id: callback, route, body, encoding });
            }
            Inbound::Echo { opcode, payload } => self.forward(ToLogic::Echo { conn: id, opcode, payload }),
            Inbound::Answer { code, opcode, frame } => {
                self.counters.errors[usize::from(code).min(7)] += 1;
                self.send_data(index, opcode, &frame);
            }
            Inbound::Close { code, reason } => self.close_after_replies(index, code, reason, false),
            // Pongs and close replies are queued by tungstenite; get them out.
            Inbound::Control => self.mark_dirty(index),
        }
    }

    fn handle_read_error(&mut self, index: usize, error: tungstenite::Error) {
        match inbound::close_code_for(&error) {
            Some((code, reason)) => {
                tracing::debug!("closing with {code}: {error}");
                self.close_after_replies(index, code, reason, true);
            }
            None => {
                tracing::debug!("connection gone: {error}");
                self.remove(index);
            }
        }
    }

    /// Applies every batch the logic thread has sent. Returns true when it has finished.
    fn apply_batches(&mut self) -> bool {
        loop {
            match self.from_logic.try_recv() {
                Ok(mut batch) => {
                    let Batch { commands, payloads } = &mut batch;
                    // A batch that broadcasts to more connections than one slice (a tick's
                    // state for everyone) is a burst: its recipients go to the flush backlog.
                    // Smaller broadcasts (a user's devices, a chat line) go out this turn.
                    let recipients: usize = commands
                        .iter()
                        .map(|c| if let Command::SendMany { conns, .. } = c { conns.len() } else { 0 })
                        .sum();
                    let burst = recipients > self.config.broadcast_flush_slice;
                    for command in commands.drain(..) {
                        self.apply(command, payloads, burst);
                    }
                    // Back for reuse; if the logic thread has spares enough, drop it.
                    let _ = self.spent.try_send(batch);
                }
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
    }

    /// Applies one command of a batch whose frames' bytes are `payloads`; `burst` sends its
    /// broadcasts' recipients to the flush backlog.
    fn apply(&mut self, command: Command, payloads: &[u8], burst: bool) {
        match command {
            Command::Send { conn, payload } => {
                if let Some(index) = self.live_index(conn) {
                    self.send_data(index, payload.opcode(), payload.bytes(payloads));
                }
            }
            Command::SendMany { conns, payload } => {
                let bytes = payload.bytes(payloads);
                for conn in conns {
                    match self.live_index(conn) {
                        Some(index) if burst => self.send_broadcast(index, payload.opcode(), bytes),
                        Some(index) => self.send_data(index, payload.opcode(), bytes),
                        None => {}
                    }
                }
            }
            // Indexing cannot panic: `live_index` found the slot occupied.
            Command::Close { conn, code, reason } => match self.live_index(conn) {
                Some(index) if self.conns[index].violated => self.close_and_drop(index, code, reason),
                Some(index) => self.close(index, code, reason),
                None => {}
            },
        }
    }

    /// The slot of `conn` if it is still open. A command for a connection that has gone (and
    /// maybe been replaced by a newer one in its slot) finds another generation there.
    fn live_index(&self, conn: ConnId) -> Option<usize> {
        let index = conn.index() as usize;
        self.conns.get(index).is_some_and(|c| c.id == conn).then_some(index)
    }

    /// Sends one of the reactor's own messages: an error answer, or a ping.
    fn send(&mut self, index: usize, message: Message) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let len = message.len() as u64;
        let data = message.is_binary() || message.is_text();
        let outcome = conn.write(message);
        self.after_write(index, outcome, data.then_some(len), false);
    }

    /// Queues one data frame carrying `payload`, flushed at the end of this turn.
    fn send_data(&mut self, index: usize, opcode: DataOpcode, payload: &[u8]) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let outcome = conn.write_data(opcode, payload);
        self.after_write(index, outcome, Some(payload.len() as u64), false);
    }

    /// Queues one recipient's copy of a broadcast, flushed with a slice of the flush backlog
    /// (or sooner, with anything else written to the connection).
    fn send_broadcast(&mut self, index: usize, opcode: DataOpcode, payload: &[u8]) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let outcome = conn.write_data(opcode, payload);
        self.after_write(index, outcome, Some(payload.len() as u64), true);
    }

    /// Counts a queued data frame of `data_len` bytes and lists the connection for a flush
    /// (this turn's, or a later slice's for a `broadcast` of a burst); closes a peer too slow
    /// to take it.
    fn after_write(&mut self, index: usize, outcome: WriteOutcome, data_len: Option<u64>, broadcast: bool) {
        match outcome {
            WriteOutcome::Queued => {
                if let Some(len) = data_len {
                    self.counters.frames_out += 1;
                    self.counters.bytes_out += len;
                }
                if broadcast { self.mark_broadcast(index) } else { self.mark_dirty(index) }
            }
            WriteOutcome::Overflow => {
                let Some(conn) = self.conns.get_mut(index) else { return };
                // The peer does not read. A close frame is small enough to fit where the
                // refused message did not; if even that fails, drop the connection.
                tracing::debug!("{}: outbound buffer full, closing with 1008", conn.id);
                self.counters.overflow_closes += 1;
                match conn.close(close::POLICY, "outbound buffer full", Instant::now()) {
                    WriteOutcome::Queued => self.mark_dirty(index),
                    _ => self.remove(index),
                }
            }
            WriteOutcome::Closed => {}
        }
    }

    /// Starts the closing handshake; the connection goes when the peer answers or times out.
    fn close(&mut self, index: usize, code: u16, reason: &'static str) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        match conn.close(code, reason, Instant::now()) {
            WriteOutcome::Queued => self.mark_dirty(index),
            WriteOutcome::Overflow => self.remove(index),
            WriteOutcome::Closed => {}
        }
    }

    /// Closes a connection for what it sent, after the replies to everything it sent before:
    /// it is read no more, and the logic thread, which handles messages in order, sends the
    /// close back behind those replies. `drop` (after a protocol violation, when its stream
    /// cannot be trusted to carry a close reply) drops it right after the close frame instead
    /// of waiting for the peer's.
    fn close_after_replies(&mut self, index: usize, code: u16, reason: &'static str, drop: bool) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        if !conn.announced || self.stage != Stage::Running {
            // The logic thread does not know it, or takes no more messages: close now.
            return if drop {
                self.close_and_drop(index, code, reason)
            } else {
                self.close(index, code, reason)
            };
        }
        conn.violated = conn.violated || drop;
        conn.read_stopped = true;
        let id = conn.id;
        self.forward(ToLogic::CloseAfterReplies { conn: id, code, reason });
    }

    /// Sends a close frame as a courtesy and drops the connection: after a protocol
    /// violation nothing more is read from it.
    fn close_and_drop(&mut self, index: usize, code: u16, reason: &'static str) {
        if let Some(conn) = self.conns.get_mut(index) {
            let _ = conn.close(code, reason, Instant::now());
            if let Some(ws) = conn.ws() {
                let _ = ws.flush();
            }
        }
        self.remove(index);
    }

    /// Lists a connection that was sent a broadcast for a later slice of flushes. Once: its
    /// flag is cleared only when its entry leaves the list, so the list never holds more
    /// entries than there are connections.
    fn mark_broadcast(&mut self, index: usize) {
        if let Some(conn) = self.conns.get_mut(index)
            && !conn.in_flush_backlog
        {
            conn.in_flush_backlog = true;
            self.flush_backlog.push_back(conn.id);
        }
    }

    fn mark_dirty(&mut self, index: usize) {
        if let Some(conn) = self.conns.get_mut(index)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(index);
        }
    }

    fn queue_read(&mut self, index: usize) {
        if let Some(conn) = self.conns.get_mut(index)
            && !conn.read_queued
        {
            conn.read_queued = true;
            self.read_queue.push_back(index);
        }
    }

    fn serve_read_queue(&mut self) {
        for _ in 0..self.read_queue.len() {
            if !self.backlog.is_empty() {
                return;
            }
            let Some(index) = self.read_queue.pop_front() else { return };
            let Some(conn) = self.conns.get_mut(index) else { continue };
            conn.read_queued = false;
            self.guarded(index, |reactor| reactor.read_messages(index));
        }
    }

    /// Writes out the connections written to: one flush, so usually one write syscall, per
    /// connection. Those written to this turn go first (replies, pongs, closes: whatever they
    /// have queued goes with them, broadcasts included), then `Config::broadcast_flush_slice`
    /// of the flush backlog, so reads and replies go on between the slices of a tick's burst
    /// instead of waiting for all of it.
    fn flush_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &index in &dirty {
            let Some(conn) = self.conns.get_mut(index) else { continue };
            conn.dirty = false;
            self.flush(index);
        }
        // Reuse the allocation.
        self.dirty = dirty;
        self.dirty.clear();
        for _ in 0..self.config.broadcast_flush_slice {
            let Some(id) = self.flush_backlog.pop_front() else { break };
            // A connection that has gone (its slot maybe reused) is skipped; one whose frames
            // already went out with another flush costs no syscall.
            if let Some(index) = self.live_index(id) {
                self.conns[index].in_flush_backlog = false;
                self.flush(index);
            }
        }
    }

    /// Writes one connection's queue (one `write` syscall unless the socket takes less).
    fn flush(&mut self, index: usize) {
        let Some(ws) = self.conns.get_mut(index).and_then(Connection::ws) else { return };
        self.counters.flushes += 1;
        let flushed = ws.flush();
        self.counters.write_syscalls += u64::from(ws.get_mut().take_writes());
        match flushed {
            Ok(()) => self.want_writable(index, false),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.want_writable(index, true)
            }
            Err(tungstenite::Error::ConnectionClosed) => self.remove(index),
            Err(e) => {
                tracing::debug!("flush failed: {e}");
                self.remove(index);
            }
        }
    }

    fn want_writable(&mut self, index: usize, wanted: bool) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        if conn.wants_writable == wanted {
            return;
        }
        conn.wants_writable = wanted;
        let interest = if wanted { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        if let Some(stream) = conn.stream_mut()
            && let Err(e) = self.poll.registry().reregister(stream, Token(index), interest)
        {
            tracing::debug!("reregister: {e}");
        }
    }

    /// Queues a message for the logic thread; a full batch goes at once.
    fn forward(&mut self, message: ToLogic) {
        self.pending.push(message);
        if self.pending.len() >= TO_LOGIC_BATCH {
            self.send_pending();
        }
    }

    /// Sends the batch being filled, behind any batches already waiting (order is kept: once
    /// anything waits, everything waits behind it), then as much of the backlog as fits.
    fn send_pending(&mut self) {
        if !self.pending.is_empty() {
            // A batch the logic thread has emptied, if one is back, else a new one.
            let fresh = self.handled.try_recv().unwrap_or_default();
            let batch = std::mem::replace(&mut self.pending, fresh);
            self.backlog.push_back(batch);
        }
        while let Some(batch) = self.backlog.pop_front() {
            let (n, queued) = (batch.len(), self.queued.get());
            // At most `inbound_queue` messages waiting for the logic thread; a batch always
            // goes when nothing waits, so a batch larger than the bound cannot stall.
            if queued > 0 && queued + n > self.config.inbound_queue {
                self.backlog.push_front(batch);
                return;
            }
            self.queued.add(n);
            match self.to_logic.try_send(batch) {
                Ok(()) => self.doorbell.ring(),
                Err(TrySendError::Full(batch)) => {
                    self.queued.sub(n);
                    self.backlog.push_front(batch);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.backlog.clear();
                    return;
                }
            }
        }
    }

    fn remove(&mut self, index: usize) {
        let Some(mut conn) = self.conns.try_remove(index) else { return };
        if matches!(&conn.phase, Phase::Http(http) if http.refusing) {
            self.refusing -= 1;
        }
        if let Some(ws) = conn.ws() {
            // tungstenite ends a finished closing handshake by reporting the connection
            // closed, with its close reply still in our queue: one last non-blocking try, so
            // the peer sees a clean close. Whatever the socket does not take is dropped.
            let _ = ws.get_mut().write_queued();
        }
        if let Some(stream) = conn.stream_mut() {
            let _ = self.poll.registry().deregister(stream);
        }
        if conn.announced {
            self.forward(ToLogic::Disconnected(conn.id));
        }
    }

    /// Heartbeats and timeouts, for every connection.
    fn sweep(&mut self, now: Instant) {
        let period = (self.config.ping_interval.min(self.config.handshake_timeout) / 4)
            .clamp(Duration::from_millis(5), Duration::from_secs(1));
        self.next_sweep = now + period;
        let mut doomed = Vec::new();
        let mut ping = Vec::new();
        for (index, conn) in &mut self.conns {
            if let Some(since) = conn.closing_since {
                if now.duration_since(since) >= self.config.close_timeout {
                    doomed.push(index);
                }
                continue;
            }
            match conn.phase {
                Phase::Http(_) if now.duration_since(conn.accepted_at) >= self.config.handshake_timeout => {
                    doomed.push(index);
                }
                Phase::Open(_) => {
                    match conn.liveness.poll(now, self.config.ping_interval, self.config.idle_timeout) {
                        Verdict::Alive => {}
                        Verdict::SendPing => ping.push(index),
                        Verdict::Dead => doomed.push(index),
                    }
                }
                _ => {}
            }
        }
        self.counters.timeouts += doomed.len() as u64;
        for index in doomed {
            tracing::debug!("timed out: {:?}", self.conns.get(index).map(|c| c.id));
            self.remove(index);
        }
        for index in ping {
            self.send(index, Message::Ping(Bytes::new()));
        }
        self.flush_dirty();
    }

    /// Moves shutdown along. Returns true when the reactor is done.
    fn advance_stage(&mut self, logic_done: bool, now: Instant) -> bool {
        match self.stage {
            Stage::Running if self.stop.load(Ordering::Acquire) || logic_done => {
                // Stop accepting; everything read so far reaches the logic thread before this.
                if let Some(mut listener) = self.listener.take() {
                    let _ = self.poll.registry().deregister(&mut listener);
                }
                self.forward(ToLogic::Shutdown);
                self.send_pending();
                self.stage = Stage::Draining;
                if logic_done {
                    return self.advance_stage(true, now);
                }
                false
            }
            Stage::Draining if logic_done => {
                let indices: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
                for index in indices {
                    match self.conns.get(index).map(|c| matches!(c.phase, Phase::Open(_))) {
                        Some(true) => self.close(index, close::GOING_AWAY, "server shutting down"),
                        _ => self.remove(index),
                    }
                }
                self.flush_dirty();
                self.stage = Stage::Closing { deadline: now + self.config.close_timeout };
                self.conns.is_empty()
            }
            Stage::Closing { deadline } => self.conns.is_empty() || now >= deadline,
            _ => false,
        }
    }
}
