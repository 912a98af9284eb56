//! One connection as the reactor sees it: first an HTTP exchange ([`Http`]), then a WebSocket,
//! and where it is in its life ([`Lifecycle`]).
//!
//! All I/O here is non-blocking. `WouldBlock` is turned into "not now" right at the call that
//! sees it; the reactor then waits for readiness instead of retrying.
//!
//! **The read buffer.** tungstenite grows a connection's read buffer to hold each whole frame
//! and keeps the allocation: without help, an idle connection would hold a buffer as large as
//! the largest message it ever sent (and bytes' own growth can double that). tungstenite 0.30
//! has no call that shrinks, clears or even shows that buffer (it lives in the private
//! `FrameCodec` of a `WebSocketContext`; `set_config` changes only the write limits), so
//! [`Connection::renew_read_buffer`] gives it a fresh one the only way there is: when a read
//! finds the socket empty, no part of a message is buffered ([`FrameBounds`]) and a frame since
//! the last fresh buffer was larger than the configured size (`Config::read_buffer_bytes`), it
//! takes the socket out of the `WebSocket` and wraps it in a new one with the same
//! configuration. Nothing is lost: tungstenite asked the socket for more, so it holds no whole
//! frame, and by the frame boundaries no partial one nor a fragmented message; the connection
//! is open (no close sent or received), so there is no close state; the pong of a ping it read
//! went to the outbound queue when it asked for more, and its own write buffer is always
//! empty (`write_buffer_size` 0, see `Config::websocket_config`).
//!
//! [`FrameBounds`]: super::frame_bounds::FrameBounds

use std::io;
use std::time::Instant;

use mio::net::TcpStream;
use ticksock_protocol::{Encoding, Version};
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode};
use tungstenite::{Message, WebSocket};

use super::heartbeat::Liveness;
use super::http::Http;
use super::lifecycle::{Lifecycle, Strikes};
use super::outbound::QueueFull;
use super::rate::RateLimiter;
use super::socket::Socket;
use super::tls::Transport;
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
    /// The protocol version it speaks (set at the upgrade).
    pub(super) version: Version,
    /// What it carries: its own connection (version 1), or a session (version 2).
    pub(super) carries: Carries,
    /// A close frame came from the peer: for a session, the end, not a drop.
    pub(super) peer_closed: bool,
}

/// What a link carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carries {
    /// Version 1 (and HTTP, and echo mode): itself. The game knows it from its upgrade.
    Itself,
    /// Version 2 before its first frame: its Welcome's session (named by the connection's
    /// `id`) exists, but the first frame may resume an earlier one instead. The game does not
    /// know it yet.
    Undecided,
    /// Version 2: the session named by the connection's `id`.
    Session,
    /// Version 2: a link whose session was resumed on another; it goes without a word.
    Nothing,
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
        stream: Transport,
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
            version: Version::V1,
            carries: Carries::Itself,
            peer_closed: false,
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
            let mut socket = Socket::new(http.stream, limits.max_queued, limits.coalesce);
            // tungstenite gets these without reading them through the socket.
            socket.bounds_mut().observe(&leftover);
            self.phase =
                Phase::Open(WebSocket::from_partially_read(socket, leftover, Role::Server, Some(config)));
        }
    }

    pub(super) fn stream_mut(&mut self) -> Option<&mut TcpStream> {
        match &mut self.phase {
            Phase::Http(http) => Some(http.stream.tcp_mut()),
            Phase::Open(ws) => Some(ws.get_mut().stream_mut()),
            Phase::Moving => None,
        }
    }

    /// The socket, with what is still queued for the peer, for a lingering close. The
    /// connection must be out of the poll: the socket is registered again under a new token.
    pub(super) fn into_socket(self) -> Option<Socket> {
        match self.phase {
            Phase::Open(ws) => Some(ws.into_inner()),
            // Its answer is written by the time it ends; nothing is queued.
            Phase::Http(http) => Some(Socket::new(http.stream, 0, 0)),
            Phase::Moving => None,
        }
    }

    pub(super) fn ws(&mut self) -> Option<&mut WebSocket<Socket>> {
        match &mut self.phase {
            Phase::Open(ws) => Some(ws),
            _ => None,
        }
    }

    /// Replaces tungstenite's read buffer with a fresh one of the configured size, if a frame
    /// outgrew it since the last time and no part of a message is buffered (see the module's
    /// doc). Call it only right after tungstenite's read returned `WouldBlock`: it then holds
    /// no whole frame.
    pub(super) fn renew_read_buffer(&mut self) {
        let Phase::Open(ws) = &self.phase else { return };
        let bounds = ws.get_ref().bounds();
        let outgrown = bounds.largest_frame() > ws.get_config().read_buffer_size as u64;
        if !outgrown || !bounds.at_message_boundary() || !self.lifecycle.takes_requests() || !ws.can_write() {
            return;
        }
        let Phase::Open(ws) = std::mem::replace(&mut self.phase, Phase::Moving) else { return };
        let config = *ws.get_config();
        let mut socket = ws.into_inner();
        socket.bounds_mut().forget_largest();
        self.phase = Phase::Open(WebSocket::from_raw_socket(socket, Role::Server, Some(config)));
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use super::*;
    use crate::Config;
    use crate::net::rate::RateLimits;

    /// An open connection as the reactor holds one, whose HTTP request was followed by
    /// `leftover`, and the client's end of its socket.
    fn open(leftover: &[u8]) -> (std::net::TcpStream, Connection) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        let config = Config::default();
        let now = Instant::now();
        let unlimited = RateLimits {
            messages_per_sec: u32::MAX,
            burst_messages: u32::MAX,
            bytes_per_sec: u32::MAX,
            burst_bytes: u32::MAX,
        };
        let limiter = RateLimiter::new(unlimited, now);
        let stream = Transport::Plain(TcpStream::from_std(server));
        let mut conn = Connection::new(ConnId::new(0, 0), stream, limiter, now, false);
        let limits =
            OutboundLimits { max_queued: config.max_outbound_bytes, coalesce: config.write_coalesce_bytes };
        conn.upgrade(leftover.to_vec(), config.websocket_config(), limits, now);
        (client, conn)
    }

    /// A client frame (masked, as clients send them) of `len` bytes, each `fill`.
    fn frame(fin: bool, opcode: u8, len: usize, fill: u8) -> Vec<u8> {
        let mut bytes = vec![if fin { 0x80 } else { 0 } | opcode];
        match len {
            0..=125 => bytes.push(0x80 | len as u8),
            _ => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(len as u16).to_be_bytes());
            }
        }
        let mask = [0x0F, 0xF0, 0x3C, 0xC3];
        bytes.extend_from_slice(&mask);
        bytes.extend((0..len).map(|i| fill ^ mask[i % 4]));
        bytes
    }

    /// Reads messages as the reactor does (`Reactor::read_messages`), until the socket has
    /// nothing more for now; waits (at most 5 s) for `expected` messages to arrive.
    fn read_until_empty(conn: &mut Connection, expected: usize) -> Vec<Message> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut messages = Vec::new();
        loop {
            let ws = conn.ws().expect("open");
            ws.get_mut().handle_readable();
            match ws.read() {
                Ok(message) => messages.push(message),
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.renew_read_buffer();
                    if messages.len() >= expected {
                        return messages;
                    }
                    assert!(Instant::now() < deadline, "got {} of {expected} messages", messages.len());
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// Whether the read buffer was renewed since the last large frame: its count starts
    /// afresh then.
    fn renewed(conn: &mut Connection) -> bool {
        conn.ws().expect("open").get_ref().bounds().largest_frame() == 0
    }

    fn binary(len: usize, fill: u8) -> Message {
        Message::Binary(vec![fill; len].into())
    }

    #[test]
    fn a_partly_read_frame_waits_and_every_byte_arrives() {
        let (mut client, mut conn) = open(&[]);
        let mut stream = frame(true, 2, 60_000, 1);
        stream.extend_from_slice(&frame(true, 2, 100, 2));
        stream.extend_from_slice(&frame(true, 9, 4, 3)); // a ping: its pong must not be lost
        let next = frame(true, 2, 5_000, 4);
        stream.extend_from_slice(&next[..2_500]);
        client.write_all(&stream).expect("send");
        let got = read_until_empty(&mut conn, 3);
        assert_eq!(got, [binary(60_000, 1), binary(100, 2), Message::Ping(vec![3; 4].into())]);
        assert!(!renewed(&mut conn), "half a frame is buffered: the buffer must stay");
        client.write_all(&next[2_500..]).expect("send the rest");
        assert_eq!(read_until_empty(&mut conn, 1), [binary(5_000, 4)]);
        assert!(renewed(&mut conn), "between messages, after a large one");
        // The pong went out through the renewal.
        conn.ws().expect("open").flush().expect("flush");
        let mut pong = [0u8; 6];
        client.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        client.read_exact(&mut pong).expect("pong");
        assert_eq!(pong, [0x8A, 4, 3, 3, 3, 3]);
        // And the renewed WebSocket reads on.
        client.write_all(&frame(true, 1, 3, b'a')).expect("send");
        assert_eq!(read_until_empty(&mut conn, 1), [Message::Text("aaa".into())]);
    }

    #[test]
    fn a_fragmented_message_keeps_the_buffer_until_its_last_fragment() {
        let (mut client, mut conn) = open(&[]);
        let first = frame(false, 2, 3_000, 5);
        client.write_all(&first).expect("first fragment");
        // Until its header has come through: from then on the buffer must stay, whether the
        // rest of the fragment is buffered yet or not.
        let deadline = Instant::now() + Duration::from_secs(5);
        while conn.ws().expect("open").get_ref().bounds().largest_frame() < first.len() as u64 {
            assert_eq!(read_until_empty(&mut conn, 0), []);
            assert!(Instant::now() < deadline, "the fragment did not arrive");
        }
        assert!(!renewed(&mut conn), "half a message is held: the buffer must stay");
        client.write_all(&frame(true, 0, 1_000, 5)).expect("last fragment");
        assert_eq!(read_until_empty(&mut conn, 1), [binary(4_000, 5)]);
        assert!(renewed(&mut conn));
    }

    #[test]
    fn bytes_that_followed_the_http_request_count_too() {
        let large = frame(true, 2, 3_000, 6);
        let small = frame(true, 2, 10, 7);
        let mut leftover = large.clone();
        leftover.extend_from_slice(&small[..3]);
        let (mut client, mut conn) = open(&leftover);
        assert_eq!(read_until_empty(&mut conn, 1), [binary(3_000, 6)]);
        assert!(!renewed(&mut conn), "three bytes of a header are buffered");
        client.write_all(&small[3..]).expect("the rest");
        assert_eq!(read_until_empty(&mut conn, 1), [binary(10, 7)]);
        assert!(renewed(&mut conn));
    }

    #[test]
    fn small_messages_and_closing_connections_keep_their_buffer() {
        let (mut client, mut conn) = open(&[]);
        client.write_all(&frame(true, 2, 2_000, 8)).expect("send");
        assert_eq!(read_until_empty(&mut conn, 1), [binary(2_000, 8)]);
        assert!(!renewed(&mut conn), "a frame that fits the configured read buffer grows nothing");
        assert_eq!(conn.close(1000, "bye", Instant::now()), WriteOutcome::Queued);
        client.write_all(&frame(true, 2, 3_000, 9)).expect("send");
        assert_eq!(read_until_empty(&mut conn, 1), [binary(3_000, 9)]);
        assert!(!renewed(&mut conn), "a closing connection keeps tungstenite's close state");
    }
}
