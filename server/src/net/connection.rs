//! One connection as the reactor sees it: first an HTTP exchange ([`Http`]), then a WebSocket
//! ([`WebSocketLink`]), and where it is in its life ([`Lifecycle`]).
//!
//! All I/O here is non-blocking. `WouldBlock` is turned into "not now" right at the call that
//! sees it; the reactor then waits for readiness instead of retrying.
//!
//! A connection is one slot of the reactor's slab, paid for every connection open, so it holds
//! by value only what an idle connection needs: the HTTP exchange, short and large, is boxed,
//! and tungstenite's state and read buffer are lent to it only while it has protocol state
//! (see [`websocket`](super::websocket)).

use std::io;
use std::time::Instant;

use mio::net::TcpStream;
use ticksock_protocol::{Encoding, Version};
use tungstenite::Message;
use tungstenite::protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode};

use super::heartbeat::Liveness;
use super::hold::Hold;
use super::http::Http;
use super::lifecycle::{Lifecycle, Strikes};
use super::outbound::QueueFull;
use super::rate::RateLimiter;
use super::socket::Socket;
use super::tls::Transport;
use super::websocket::{ContextPool, WebSocketLink};
use crate::ConnId;
use crate::bridge::DataOpcode;

/// Where a connection is in its life.
pub(super) enum Phase {
    /// Reading the HTTP request, then writing the response. Boxed: it lasts a round trip, and
    /// its buffers would make every open connection's slot larger.
    Http(Box<Http>),
    /// Speaking WebSocket.
    Open(WebSocketLink),
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
    /// Frames held back while its socket does not keep up (see [`hold`](super::hold)); boxed
    /// and made only then, so a connection that keeps up pays a pointer.
    pub(super) hold: Option<Box<Hold>>,
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
            phase: Phase::Http(Box::new(Http::new(stream))),
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
            hold: None,
        }
    }

    /// Switches to WebSocket, with the bytes that followed the HTTP request; the peer was
    /// last heard at `now`.
    pub(super) fn upgrade(
        &mut self,
        leftover: Vec<u8>,
        config: &WebSocketConfig,
        limits: OutboundLimits,
        now: Instant,
    ) {
        self.lifecycle = Lifecycle::Open;
        self.liveness.handle_heard(now);
        if let Phase::Http(http) = std::mem::replace(&mut self.phase, Phase::Moving) {
            let socket = Socket::new(http.stream, limits.max_queued, limits.coalesce);
            self.phase = Phase::Open(WebSocketLink::new(socket, leftover, config));
        }
    }

    pub(super) fn stream_mut(&mut self) -> Option<&mut TcpStream> {
        match &mut self.phase {
            Phase::Http(http) => Some(http.stream.tcp_mut()),
            Phase::Open(link) => Some(link.socket_mut().stream_mut()),
            Phase::Moving => None,
        }
    }

    /// The socket, with what is still queued for the peer, for a lingering close. The
    /// connection must be out of the poll: the socket is registered again under a new token.
    pub(super) fn into_socket(self) -> Option<Socket> {
        match self.phase {
            Phase::Open(link) => Some(link.into_socket()),
            // Its answer is written by the time it ends; nothing is queued.
            Phase::Http(http) => Some(Socket::new(http.stream, 0, 0)),
            Phase::Moving => None,
        }
    }

    /// The WebSocket, once upgraded.
    pub(super) fn link(&mut self) -> Option<&mut WebSocketLink> {
        match &mut self.phase {
            Phase::Open(link) => Some(link),
            _ => None,
        }
    }

    /// Queues a message; the reactor flushes at the end of its turn. Data frames are framed
    /// here, straight into the outbound queue; control frames go through tungstenite (with a
    /// context from `pool` if the connection holds none), which keeps the closing
    /// handshake's state.
    pub(super) fn write(&mut self, message: Message, pool: &mut ContextPool) -> WriteOutcome {
        match &message {
            Message::Binary(bytes) => return self.write_data(DataOpcode::Binary, bytes),
            Message::Text(text) => return self.write_data(DataOpcode::Text, text.as_bytes()),
            _ => {}
        }
        let Some(link) = self.link() else { return WriteOutcome::Closed };
        match link.write(pool, message) {
            Ok(()) => WriteOutcome::Queued,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => WriteOutcome::Queued,
            Err(tungstenite::Error::WriteBufferFull(_)) => WriteOutcome::Overflow,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Other => WriteOutcome::Overflow,
            Err(_) => WriteOutcome::Closed,
        }
    }

    /// Queues one data frame carrying `payload`, framed straight into the outbound queue.
    pub(super) fn write_data(&mut self, opcode: DataOpcode, payload: &[u8]) -> WriteOutcome {
        let Some(link) = self.link() else { return WriteOutcome::Closed };
        // No data after a close frame, sent or received.
        if !link.can_write() {
            return WriteOutcome::Closed;
        }
        match link.socket_mut().queue_data(opcode, payload) {
            Ok(()) => WriteOutcome::Queued,
            Err(QueueFull) => WriteOutcome::Overflow,
        }
    }

    /// Bytes in its outbound queue not written yet (0 before its upgrade).
    #[inline]
    pub(super) fn queued(&mut self) -> usize {
        self.link().map_or(0, |link| link.socket_mut().queued())
    }

    /// Whether the logic thread was told about it (so it must be told when it goes): from
    /// its upgrade on.
    pub(super) fn announced(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Queues a close frame and remembers when, for the close timeout.
    pub(super) fn close(
        &mut self,
        code: u16,
        reason: &'static str,
        now: Instant,
        pool: &mut ContextPool,
    ) -> WriteOutcome {
        // Only a WebSocket can carry a close frame; a connection still in its HTTP exchange
        // keeps its state (and a refused one its place in the count of refusals).
        if !matches!(self.lifecycle, Lifecycle::Open | Lifecycle::Ending { .. }) {
            return WriteOutcome::Closed;
        }
        self.lifecycle = Lifecycle::Closing { since: now };
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        self.write(Message::Close(Some(frame)), pool)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use super::*;
    use crate::Config;
    use crate::net::rate::RateLimits;

    /// The reactor's pool of contexts, with the default configuration.
    fn pool() -> ContextPool {
        ContextPool::new(Config::default().websocket_config())
    }

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
        conn.upgrade(leftover.to_vec(), &config.websocket_config(), limits, now);
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
    /// nothing more for now; waits (at most 5 s, a reactor turn a millisecond) for `expected`
    /// messages to arrive.
    fn read_until_empty(conn: &mut Connection, pool: &mut ContextPool, expected: usize) -> Vec<Message> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut messages = Vec::new();
        loop {
            let link = conn.link().expect("open");
            link.socket_mut().handle_readable();
            match link.read(pool) {
                Ok(message) => messages.push(message),
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.link().expect("open").give_back_if_idle(pool);
                    if messages.len() >= expected {
                        return messages;
                    }
                    assert!(Instant::now() < deadline, "got {} of {expected} messages", messages.len());
                    std::thread::sleep(Duration::from_millis(1));
                    // The reactor's next turn.
                    pool.start_turn();
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// Whether the connection holds a context of its own (it has protocol state).
    fn holds_context(conn: &mut Connection) -> bool {
        conn.link().expect("open").holds_context()
    }

    fn binary(len: usize, fill: u8) -> Message {
        Message::Binary(vec![fill; len].into())
    }

    /// Reads exactly `len` bytes from the client's end.
    fn client_reads(client: &mut std::net::TcpStream, len: usize) -> Vec<u8> {
        client.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut got = vec![0u8; len];
        client.read_exact(&mut got).expect("read");
        got
    }

    #[test]
    fn an_idle_connection_gives_its_context_back_and_one_context_serves_connections_in_turn() {
        let mut pool = pool();
        let (mut client_a, mut a) = open(&[]);
        let (mut client_b, mut b) = open(&[]);
        assert!(!holds_context(&mut a), "a new connection holds nothing");
        client_a.write_all(&frame(true, 2, 100, 1)).expect("send");
        client_a.write_all(&frame(true, 9, 2, 7)).expect("a ping");
        assert_eq!(
            read_until_empty(&mut a, &mut pool, 2),
            [binary(100, 1), Message::Ping(vec![7; 2].into())]
        );
        assert!(!holds_context(&mut a), "between messages, its context went back");
        assert_eq!(pool.held(), 1);
        pool.start_turn();
        client_b.write_all(&frame(true, 1, 3, b'b')).expect("send");
        assert_eq!(read_until_empty(&mut b, &mut pool, 1), [Message::Text("bbb".into())]);
        assert!(!holds_context(&mut b));
        assert_eq!(pool.held(), 1, "b read with a's context: no second one was made");
        // The pong owed to a went out on a, and nothing on b.
        a.link().expect("open").flush().expect("flush");
        b.link().expect("open").flush().expect("flush");
        assert_eq!(client_reads(&mut client_a, 4), [0x8A, 2, 7, 7]);
        client_b.set_nonblocking(true).expect("nonblocking");
        let mut none = [0u8; 1];
        assert_eq!(client_b.read(&mut none).map_err(|e| e.kind()), Err(io::ErrorKind::WouldBlock));
    }

    #[test]
    fn a_context_given_back_is_not_lent_again_in_the_same_turn() {
        let mut pool = pool();
        let (mut client_a, mut a) = open(&[]);
        let (mut client_b, mut b) = open(&[]);
        client_a.write_all(&frame(true, 2, 10, 1)).expect("send");
        assert_eq!(read_until_empty(&mut a, &mut pool, 1), [binary(10, 1)]);
        client_b.write_all(&frame(true, 2, 10, 2)).expect("send");
        assert_eq!(read_until_empty(&mut b, &mut pool, 1), [binary(10, 2)]);
        assert_eq!(pool.held(), 2, "a's body may still be on its way: b got a context of its own");
    }

    #[test]
    fn a_partly_read_frame_keeps_its_context_and_every_byte_arrives() {
        let mut pool = pool();
        let (mut client, mut conn) = open(&[]);
        let mut stream = frame(true, 2, 60_000, 1);
        stream.extend_from_slice(&frame(true, 2, 100, 2));
        stream.extend_from_slice(&frame(true, 9, 4, 3)); // a ping: its pong must not be lost
        let next = frame(true, 2, 5_000, 4);
        stream.extend_from_slice(&next[..2_500]);
        client.write_all(&stream).expect("send");
        let got = read_until_empty(&mut conn, &mut pool, 3);
        assert_eq!(got, [binary(60_000, 1), binary(100, 2), Message::Ping(vec![3; 4].into())]);
        assert!(holds_context(&mut conn), "half a frame is buffered: the context must stay");
        client.write_all(&next[2_500..]).expect("send the rest");
        assert_eq!(read_until_empty(&mut conn, &mut pool, 1), [binary(5_000, 4)]);
        assert!(!holds_context(&mut conn), "between messages, the context went");
        assert_eq!(pool.held(), 0, "a context whose buffer grew for a large frame is dropped");
        // The pong went out, though the context that owed it is gone.
        conn.link().expect("open").flush().expect("flush");
        assert_eq!(client_reads(&mut client, 6), [0x8A, 4, 3, 3, 3, 3]);
        // And the connection reads on, with a new context.
        client.write_all(&frame(true, 1, 3, b'a')).expect("send");
        assert_eq!(read_until_empty(&mut conn, &mut pool, 1), [Message::Text("aaa".into())]);
        assert_eq!(pool.held(), 1, "a context that read small frames only is pooled");
    }

    #[test]
    fn a_fragmented_message_keeps_its_context_until_its_last_fragment() {
        let mut pool = pool();
        let (mut client, mut conn) = open(&[]);
        let first = frame(false, 2, 300, 5);
        client.write_all(&first).expect("first fragment");
        // Until its header has come through: from then on the context must stay, whether the
        // rest of the fragment is buffered yet or not.
        let deadline = Instant::now() + Duration::from_secs(5);
        while conn.link().expect("open").socket().bounds().largest_frame() < first.len() as u64 {
            assert_eq!(read_until_empty(&mut conn, &mut pool, 0), []);
            assert!(Instant::now() < deadline, "the fragment did not arrive");
        }
        assert!(holds_context(&mut conn), "half a message is held: the context must stay");
        client.write_all(&frame(true, 0, 1_000, 5)).expect("last fragment");
        assert_eq!(read_until_empty(&mut conn, &mut pool, 1), [binary(1_300, 5)]);
        assert!(!holds_context(&mut conn));
        assert_eq!(pool.held(), 1);
    }

    #[test]
    fn bytes_that_followed_the_http_request_count_too() {
        let mut pool = pool();
        let large = frame(true, 2, 3_000, 6);
        let small = frame(true, 2, 10, 7);
        let mut leftover = large.clone();
        leftover.extend_from_slice(&small[..3]);
        let (mut client, mut conn) = open(&leftover);
        assert!(holds_context(&mut conn), "the bytes after the request are the context's, unread");
        conn.link().expect("open").give_back_if_idle(&mut pool);
        assert!(holds_context(&mut conn), "no read has said the socket is empty");
        assert_eq!(read_until_empty(&mut conn, &mut pool, 1), [binary(3_000, 6)]);
        assert!(holds_context(&mut conn), "three bytes of a header are buffered");
        client.write_all(&small[3..]).expect("the rest");
        assert_eq!(read_until_empty(&mut conn, &mut pool, 1), [binary(10, 7)]);
        assert!(!holds_context(&mut conn));
        assert_eq!(pool.held(), 0, "its buffer grew for the 3 000-byte frame");
    }

    #[test]
    fn pings_sent_share_one_context_and_a_closing_connection_keeps_one() {
        let mut pool = pool();
        let (mut client, mut conn) = open(&[]);
        let (_other_client, mut other) = open(&[]);
        assert_eq!(conn.write(Message::Ping(vec![9].into()), &mut pool), WriteOutcome::Queued);
        assert!(!holds_context(&mut conn), "a ping leaves nothing to keep");
        assert_eq!(other.write(Message::Ping(vec![9].into()), &mut pool), WriteOutcome::Queued);
        assert_eq!(pool.held(), 1, "the second ping, in the same turn, used the first one's context");
        client.write_all(&frame(true, 2, 10, 8)).expect("send");
        assert_eq!(read_until_empty(&mut conn, &mut pool, 1), [binary(10, 8)]);
        assert_eq!(conn.close(1000, "bye", Instant::now(), &mut pool), WriteOutcome::Queued);
        assert!(holds_context(&mut conn), "the closing handshake is the context's to follow");
        assert_eq!(
            conn.write_data(DataOpcode::Binary, b"late"),
            WriteOutcome::Closed,
            "no data after a close"
        );
        client.write_all(&frame(true, 2, 100, 9)).expect("send");
        assert_eq!(read_until_empty(&mut conn, &mut pool, 1), [binary(100, 9)]);
        assert!(holds_context(&mut conn), "a closing connection keeps tungstenite's close state");
        conn.link().expect("open").flush().expect("flush");
        let got = client_reads(&mut client, 3 + 2 + 2 + 3);
        assert_eq!(&got[..3], &[0x89, 1, 9], "the ping");
        assert_eq!(&got[3..7], &[0x88, 5, 0x03, 0xE8], "then the close, code 1000");
        assert_eq!(&got[7..], b"bye");
    }

    #[test]
    fn an_open_connection_slot_costs_at_most_272_bytes() {
        // Every open connection pays its slot in the slab, idle or not. With tungstenite's
        // `WebSocket` held by value (and the HTTP exchange unboxed) it was 512 bytes; 256
        // without, and 264 with the pointer to bytes read in place and not taken yet
        // (`Socket::keep_unread`). The outbound queue's test-only counter makes it 8 bytes
        // more here than in the server.
        assert!(std::mem::size_of::<Connection>() <= 272, "{} bytes", std::mem::size_of::<Connection>());
    }
}
