//! The reactor thread: one mio `Poll` owns the listener and every connection.
//!
//! The `Reactor` is one struct whose work is split by job, one file each: [`accept`] (new
//! connections and their HTTP upgrade), [`read`] (WebSocket messages in), [`uplink`] (what
//! goes to the logic thread), [`apply`] (the logic thread's batches), [`write`](mod@write) (frames out,
//! one flush per connection per turn), [`teardown`] (closes, timeouts, the shutdown stages).
//! What it decides about a connection's life is pure code in [`lifecycle`], and the rest of
//! its decisions are the pure modules [`handshake`], [`inbound`], [`heartbeat`], [`rate`] and
//! [`outbound`]: all of them take `now` as an argument. The clock is read once per turn, when
//! `poll` returns, and every decision of the turn uses that reading. One more pure module,
//! [`frame_bounds`], follows the frame boundaries in what each socket reads, so that a
//! connection's WebSocket ([`websocket`]) can tell when it holds no part of a message and give
//! tungstenite's state and read buffer back to the reactor's pool: an idle connection holds
//! neither. Such a connection is read in place ([`read_in_place`]): the reactor reads it into
//! its own buffer and takes whole data frames where they lie (the pure parser
//! [`data_frames`]), and lends a context only for what tungstenite must handle. An ended
//! connection's socket closes through [`linger`]: write side shut, input drained for a
//! bounded time, so that a reset cannot destroy the last frames.
//!
//! A turn of the loop: wait for readiness (or the next deadline); accept; advance HTTP
//! exchanges; read WebSocket messages and pass requests to the logic thread; apply the logic
//! thread's batches; flush every connection written to, once, and a slice of the recipients of
//! a burst of broadcasts (`Config::broadcast_flush_slice`); sweep for heartbeats and
//! timeouts. Reads drain until `WouldBlock` (or a short read: see [`socket`]) within a
//! per-connection budget; a connection left with unread data is queued and served on the next
//! turn, so nothing is lost to edge-triggered readiness and no client starves the others.
//!
//! Messages for the logic thread travel in batches of up to [`TO_LOGIC_BATCH`](crate::bridge::TO_LOGIC_BATCH), sent when
//! full and at the end of each step of a turn, so that a busy turn costs one channel hop per
//! batch rather than per request, while the logic thread still starts on the first requests
//! before the turn is over.
//!
//! Backpressure: when the channel to the logic thread is full, batches wait in a small
//! backlog and the reactor stops reading sockets until it drains, so TCP pushes back on
//! the clients instead of memory growing.

mod accept;
mod apply;
pub(crate) mod certs;
mod connection;
pub(crate) mod data_frames;
mod frame_bounds;
pub mod handshake;
pub(crate) mod heartbeat;
pub mod hold;
mod http;
pub mod inbound;
pub(crate) mod lifecycle;
mod linger;
mod link;
pub mod outbound;
pub(crate) mod rate;
mod read;
mod read_in_place;
pub(crate) mod session;
mod socket;
mod teardown;
mod tls;
mod uplink;
mod websocket;
mod write;

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use self::connection::Connection;
use self::lifecycle::{Stage, Timeouts};
use self::linger::{LingerLimits, Lingering};
use self::read_in_place::InPlaceReader;
use self::session::{SessionLimits, Sessions};
use self::websocket::ContextPool;
use crate::bridge::wake::Wake;
use crate::bridge::{Batch, Bell, InboundCount, ReactorEnds, RouteTable, ToLogic};
use crate::metrics::{Metrics, ReactorCounters};
use crate::{Config, ConnId};

/// The listener's token; connections use their slab index.
const LISTENER: Token = Token(usize::MAX - 1);
/// Lingering sockets use this plus their index in their own slab: far above any connection's
/// index (a `u32`) and below the listener's and the waker's tokens.
const LINGER_BASE: usize = usize::MAX / 2;
/// The waker's token.
pub(crate) const WAKER: Token = Token(usize::MAX - 2);

/// The reactor's state. Built on the calling thread, then moved into its own.
pub(crate) struct Reactor {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Slab<Connection>,
    /// Sockets of ended connections in their lingering close (see [`linger`]).
    lingering: Slab<Lingering>,
    linger_limits: LingerLimits,
    /// Version 2 sessions, with or without a link (see [`session`], [`link`]).
    sessions: Sessions,
    /// Tickets offered by version 2 links whose session the game has not heard of yet (it
    /// does at their first frame), by the link's index; only links that offered one have an
    /// entry. By index, not id: a link that resumes a session takes the session's id, and
    /// its entry must still go with it.
    tickets: rustc_hash::FxHashMap<usize, Box<crate::bridge::Credentials>>,
    next_generation: u32,
    config: Config,
    /// tungstenite's per-connection state and read buffers, lent to connections while they
    /// have protocol state (see [`websocket`]).
    contexts: ContextPool,
    /// The buffer and parser of reads that take whole data frames in place, bypassing
    /// tungstenite (see [`read_in_place`]).
    in_place: InPlaceReader,
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
    /// When `poll` last returned: the one clock reading of this turn, which every decision
    /// in it uses (liveness and rate stamps, timeouts, closes), so that reading costs no
    /// clock call per message and a turn's decisions agree on the time.
    now: Instant,
    /// The timeouts the sweep applies, from the configuration.
    timeouts: Timeouts,
    stage: Stage,
    accept_blocked: bool,
    /// Connections in the slab only to be answered 503.
    refusing: usize,
    metrics: Arc<Metrics>,
    counters: ReactorCounters,
    /// With `--tls-cert` and `--tls-key`: the certificate every new connection speaks TLS
    /// with (see [`tls`]); `None` for plain TCP.
    tls: Option<Arc<certs::Certs>>,
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
        tls: Option<Arc<certs::Certs>>,
    ) -> io::Result<Self> {
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let contexts = ContextPool::new(config.websocket_config());
        let in_place = InPlaceReader::new(
            config.read_buffer_bytes.min(config.max_frame_bytes).min(config.max_message_bytes),
        );
        let policy = handshake::Policy::of(&config);
        Ok(Self {
            poll,
            listener: Some(listener),
            conns: Slab::new(),
            lingering: Slab::new(),
            linger_limits: LingerLimits { timeout: config.linger_timeout, bytes: config.linger_bytes },
            tickets: rustc_hash::FxHashMap::default(),
            sessions: Sessions::new(
                link::new_epoch(),
                SessionLimits {
                    grace: config.session_grace,
                    replay_bytes: config.session_replay_bound(),
                    ack_interval: config.ack_interval,
                },
            ),
            next_generation: 0,
            next_sweep: Instant::now(),
            now: Instant::now(),
            timeouts: Timeouts {
                handshake: config.handshake_timeout,
                ping_interval: config.ping_interval,
                idle: config.idle_timeout,
                close: config.close_timeout,
                linger: config.linger_timeout,
                ack: config.ack_interval,
            },
            contexts,
            in_place,
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
            tls,
        })
    }

    /// Runs until shutdown completes.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            // Turns at most every `min_turn_interval`: under a steady trickle of messages each
            // turn then carries several, and the logic thread is woken once for them all
            // instead of once per message or two (see `Config::min_turn_interval`).
            let since = self.now.elapsed();
            if since < self.config.min_turn_interval {
                std::thread::sleep(self.config.min_turn_interval - since);
            }
            let timeout = self.poll_timeout(Instant::now());
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.now = Instant::now();
            self.contexts.start_turn();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => self.wake.clear(),
                    Token(token) if token >= LINGER_BASE => self.advance_lingering(token - LINGER_BASE),
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
            if self.now >= self.next_sweep {
                self.sweep();
            }
            let done = self.advance_stage(logic_done);
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
        c.lingering = self.lingering.len() as u64;
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

    /// The slot of `conn` if it is still open. A command for a connection that has gone (and
    /// maybe been replaced by a newer one in its slot) finds another generation there.
    pub(super) fn live_index(&self, conn: ConnId) -> Option<usize> {
        let index = conn.index() as usize;
        if self.conns.get(index).is_some_and(|c| c.id == conn) {
            return Some(index);
        }
        // A version 2 session resumed on another link keeps its first link's name.
        self.sessions.get(conn).and_then(|s| s.link()).filter(|&i| self.conns.contains(i))
    }
}
