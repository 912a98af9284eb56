//! One connection as the reactor sees it: first an HTTP exchange, then a WebSocket.
//!
//! All I/O here is non-blocking. `WouldBlock` is turned into "not now" right at the call that
//! sees it; the reactor then waits for readiness instead of retrying.

use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode};
use tungstenite::{Message, WebSocket};

use crate::ConnId;
use crate::metrics::Metrics;
use crate::net::handshake::{self, Decision, Policy};
use crate::net::heartbeat::Liveness;
use crate::net::rate::RateLimiter;
use ticksock_protocol::Encoding;

use super::socket::Socket;
use crate::bridge::DataOpcode;
use crate::net::outbound::QueueFull;

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

/// The HTTP exchange before the upgrade.
pub(super) struct Http {
    pub(super) stream: TcpStream,
    received: Vec<u8>,
    response: Option<Response>,
    /// The server is full: whatever the request, the answer is 503. The request is read
    /// first, because closing a socket with unread data resets it and loses the answer.
    pub(super) refusing: bool,
}

struct Response {
    bytes: Vec<u8>,
    written: usize,
    upgrade_leftover: Option<(Vec<u8>, Encoding)>,
}

/// What the HTTP exchange led to.
pub(super) enum HttpProgress {
    /// Waiting for more bytes or for the socket to take the response.
    Pending,
    /// The response is written: speak WebSocket now, starting with these bytes, in this
    /// encoding.
    Upgraded(Vec<u8>, Encoding),
    /// The response is written (or the peer left): close.
    Done,
}

impl Http {
    pub(super) fn new(stream: TcpStream) -> Self {
        Self { stream, received: Vec::new(), response: None, refusing: false }
    }

    /// Reads what has arrived, decides once the request is complete, and writes the response
    /// as far as the socket takes it.
    pub(super) fn advance(&mut self, policy: &Policy, metrics: &Metrics) -> io::Result<HttpProgress> {
        if self.response.is_none() {
            let mut chunk = [0u8; 2048];
            loop {
                match self.stream.read(&mut chunk) {
                    Ok(0) => return Ok(HttpProgress::Done),
                    Ok(n) => {
                        self.received.extend_from_slice(&chunk[..n]);
                        match handshake::decide(&self.received, policy) {
                            Decision::NeedMore => continue,
                            _ if self.refusing => {
                                self.respond(handshake::service_unavailable_to(&self.received), None);
                                break;
                            }
                            Decision::Upgrade { response, leftover, encoding } => {
                                self.respond(response, Some((leftover, encoding)));
                                break;
                            }
                            Decision::Respond { response } => {
                                self.respond(response, None);
                                break;
                            }
                            Decision::Metrics => {
                                self.respond(handshake::metrics_response(&metrics.render()), None);
                                break;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(HttpProgress::Pending),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        self.write_response()
    }

    fn respond(&mut self, bytes: Vec<u8>, upgrade_leftover: Option<(Vec<u8>, Encoding)>) {
        self.received = Vec::new();
        self.response = Some(Response { bytes, written: 0, upgrade_leftover });
    }

    fn write_response(&mut self) -> io::Result<HttpProgress> {
        let Some(response) = self.response.as_mut() else { return Ok(HttpProgress::Pending) };
        while response.written < response.bytes.len() {
            match self.stream.write(&response.bytes[response.written..]) {
                Ok(0) => return Ok(HttpProgress::Done),
                Ok(n) => response.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(HttpProgress::Pending),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(match response.upgrade_leftover.take() {
            Some((leftover, encoding)) => HttpProgress::Upgraded(leftover, encoding),
            None => HttpProgress::Done,
        })
    }
}

/// A connection in the reactor's slab.
pub(super) struct Connection {
    pub(super) id: ConnId,
    pub(super) phase: Phase,
    pub(super) liveness: Liveness,
    pub(super) accepted_at: Instant,
    /// Set when the server sent its close frame; the connection is dropped if the peer has not
    /// answered by `close_timeout` after it.
    pub(super) closing_since: Option<Instant>,
    /// WRITABLE is registered only while a flush is waiting on the socket.
    pub(super) wants_writable: bool,
    /// Queued for a flush at the end of this reactor turn.
    pub(super) dirty: bool,
    /// Listed in the reactor's flush backlog (it was sent a broadcast not flushed yet).
    pub(super) in_flush_backlog: bool,
    /// Queued in the reactor's list of connections with unread data.
    pub(super) read_queued: bool,
    /// The logic thread was told about it (so it must be told when it goes).
    pub(super) announced: bool,
    /// The inbound rate limit.
    pub(super) limiter: RateLimiter,
    /// Messages refused for the rate in a row.
    pub(super) strikes: u32,
    /// The form of frames it speaks (set at the upgrade).
    pub(super) encoding: Encoding,
    /// Closing for what it sent: nothing more is read from it while the logic thread
    /// answers what came before.
    pub(super) read_stopped: bool,
    /// It broke the protocol: dropped right after its close frame.
    pub(super) violated: bool,
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
    pub(super) fn new(id: ConnId, stream: TcpStream, limiter: RateLimiter, now: Instant) -> Self {
        Self {
            id,
            phase: Phase::Http(Http::new(stream)),
            liveness: Liveness::new(now),
            accepted_at: now,
            closing_since: None,
            wants_writable: false,
            dirty: false,
            in_flush_backlog: false,
            read_queued: false,
            announced: false,
            limiter,
            strikes: 0,
            encoding: Encoding::Binary,
            read_stopped: false,
            violated: false,
        }
    }

    /// Switches to WebSocket, with the bytes that followed the HTTP request.
    pub(super) fn upgrade(&mut self, leftover: Vec<u8>, config: WebSocketConfig, limits: OutboundLimits) {
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

    /// Queues a close frame and remembers when, for the close timeout.
    pub(super) fn close(&mut self, code: u16, reason: &'static str, now: Instant) -> WriteOutcome {
        if self.closing_since.is_some() {
            return WriteOutcome::Closed;
        }
        self.closing_since = Some(now);
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        self.write(Message::Close(Some(frame)))
    }
}
