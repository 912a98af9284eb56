//! One connection as the reactor sees it: first an HTTP exchange ([`Http`]), then a WebSocket,
//! and where it is in its life ([`Lifecycle`]).
//!
//! All I/O here is non-blocking. `WouldBlock` is turned into "not now" right at the call that
//! sees it; the reactor then waits for readiness instead of retrying.

use std::io;
use std::time::Instant;

use mio::net::TcpStream;
use ticksock_protocol::Encoding;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode};
use tungstenite::{Message, WebSocket};

use super::heartbeat::Liveness;
use super::http::Http;
use super::lifecycle::{Lifecycle, Strikes};
use super::outbound::QueueFull;
use super::rate::RateLimiter;
use super::socket::Socket;
use crate::ConnId;
use crate::bridge::DataOpcode;

/// Where a connection is in its life.
// Nearly every connection lives in `Open`; boxing it would cost an allocation and a pointer
// chase per connection to save bytes only during the short HTTP exchange.
#[allow(clippy::large_enum_variant)]
pub(super) enum Phase {
    /// Reading the HTTP request, then writing the response.
    Http(Http),
    /// Speaking WebSocket.
    Open(WebSocket<Socket>),
    /// Transient while moving between phases.
    Moving,
}

/// A connection in the reactor's slab.
pub(super) struct Connection {
    pub(super) id: ConnId,
    pub(super) phase: Phase,
    /// Where it is in its life (see [`Lifecycle`]).
    pub(super) lifecycle: Lifecycle,
    pub(super) liveness: Liveness,
    /// WRITABLE is registered only while a flush is waiting on the socket.
    pub(super) wants_writable: bool,
    /// Queued for a flush at the end of this reactor turn.
    pub(super) dirty: bool,
    /// Listed in the reactor's flush backlog (it was sent a broadcast not flushed yet).
    pub(super) in_flush_backlog: bool,
    /// Queued in the reactor's list of connections with unread data.
    pub(super) read_queued: bool,
    /// The inbound rate limit.
    pub(super) limiter: RateLimiter,
    /// Messages refused for the rate in a row.
    pub(super) strikes: Strikes,
    /// The form of frames it speaks (set at the upgrade).
    pub(super) encoding: Encoding,
}

/// The caps of a connection's outbound queue (see [`Socket`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct OutboundLimits {
    /// `Config::max_outbound_bytes`.
    pub(super) max_queued: usize,
    /// `Config::write_coalesce_bytes`.
    pub(super) coalesce: usize,
}

/// What writing to a connection led to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum WriteOutcome {
    /// Queued (and maybe partly written).
    Queued,
    /// The peer is not reading and its outbound buffer is full: drop it.
    Overflow,
    /// The connection is closing or broken: drop what was being sent.
    Closed,
}

impl Connection {
    /// A connection accepted at `now`; `refusing` when the server is full.
    pub(super) fn new(
        id: ConnId,
        stream: TcpStream,
        limiter: RateLimiter,
        now: Instant,
        refusing: bool,
    ) -> Self {
        Self {
            id,
            phase: Phase::Http(Http::new(stream)),
            lifecycle: Lifecycle::Handshaking { since: now, refusing },
            liveness: Liveness::new(now),
            wants_writable: false,
            dirty: false,
            in_flush_backlog: false,
            read_queued: false,
            limiter,
            strikes: Strikes::default(),
            encoding: Encoding::Binary,
        }
    }

    /// Switches to WebSocket, with the bytes that followed the HTTP request; the peer was
    /// last heard at `now`.
    pub(super) fn upgrade(
        &mut self,
        leftover: Vec<u8>,
        config: WebSocketConfig,
        limits: OutboundLimits,
        now: Instant,
    ) {
        self.lifecycle = Lifecycle::Open;
        self.liveness.handle_heard(now);
        if let Phase::Http(http) = std::mem::replace(&mut self.phase, Phase::Moving) {
            self.phase = Phase::Open(WebSocket::from_partially_read(
                Socket::new(http.stream, limits.max_queued, limits.coalesce),
                leftover,
                Role::Server,
                Some(config),
            ));
        }
    }

    pub(super) fn stream_mut(&mut self) -> Option<&mut TcpStream> {
        match &mut self.phase {
            Phase::Http(http) => Some(&mut http.stream),
            Phase::Open(ws) => Some(ws.get_mut().stream_mut()),
            Phase::Moving => None,
        }
    }

    pub(super) fn ws(&mut self) -> Option<&mut WebSocket<Socket>> {
        match &mut self.phase {
            Phase::Open(ws) => Some(ws),
            _ => None,
        }
    }

    /// Queues a message; the reactor flushes at the end of its turn. Data frames are framed
    /// here, straight into the outbound queue; control frames go through tungstenite, which
    /// keeps the closing handshake's state.
    pub(super) fn write(&mut self, message: Message) -> WriteOutcome {
        match &message {
            Message::Binary(bytes) => return self.write_data(DataOpcode::Binary, bytes),
            Message::Text(text) => return self.write_data(DataOpcode::Text, text.as_bytes()),
            _ => {}
        }
        let Some(ws) = self.ws() else { return WriteOutcome::Closed };
        match ws.write(message) {
            Ok(()) => WriteOutcome::Queued,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => WriteOutcome::Queued,
            Err(tungstenite::Error::WriteBufferFull(_)) => WriteOutcome::Overflow,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Other => WriteOutcome::Overflow,
            Err(_) => WriteOutcome::Closed,
        }
    }

    /// Queues one data frame carrying `payload`, framed straight into the outbound queue.
    pub(super) fn write_data(&mut self, opcode: DataOpcode, payload: &[u8]) -> WriteOutcome {
        let Some(ws) = self.ws() else { return WriteOutcome::Closed };
        // No data after a close frame, sent or received.
        if !ws.can_write() {
            return WriteOutcome::Closed;
        }
        match ws.get_mut().queue_data(opcode, payload) {
            Ok(()) => WriteOutcome::Queued,
            Err(QueueFull) => WriteOutcome::Overflow,
        }
    }

    /// Whether the logic thread was told about it (so it must be told when it goes): from
    /// its upgrade on.
    pub(super) fn announced(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Queues a close frame and remembers when, for the close timeout.
    pub(super) fn close(&mut self, code: u16, reason: &'static str, now: Instant) -> WriteOutcome {
        // Only a WebSocket can carry a close frame; a connection still in its HTTP exchange
        // keeps its state (and a refused one its place in the count of refusals).
        if !matches!(self.lifecycle, Lifecycle::Open | Lifecycle::Ending { .. }) {
            return WriteOutcome::Closed;
        }
        self.lifecycle = Lifecycle::Closing { since: now };
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        self.write(Message::Close(Some(frame)))
    }
}
