//! Ending a connection's TCP without a reset: a lingering close.
//!
//! Closing a socket whose input holds unread bytes (or that receives more afterwards) makes the
//! kernel answer with a reset (RFC 1122, 4.2.2.13). The reset travels right behind the last
//! frames the server wrote, and a client stack may report it before handing over the bytes
//! it already received: the reply and the close frame that a client sent an oversize message
//! after are then lost. So when the server ends a connection it does what nginx's
//! `lingering_close` does: it writes out what is queued, shuts down its side of TCP (the peer
//! reads end of stream right after the last frame, which is the RFC 6455 7.1.1 "server closes
//! the TCP connection first"), then reads and discards the peer's input until the peer closes
//! too, or for at most `Config::linger_timeout` and `Config::linger_bytes`.
//!
//! [`Linger`] is the decision, pure: it counts what was discarded and tells when to stop.
//! [`Lingering`] carries it out on one socket; the reactor holds the lingering sockets in a
//! slab of their own (they are no longer connections: the game has been told they dropped).

use std::io::{self, Read};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::socket::Socket;

/// The bounds of a lingering close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LingerLimits {
    /// `Config::linger_timeout`.
    pub(crate) timeout: Duration,
    /// `Config::linger_bytes`.
    pub(crate) bytes: u64,
}

/// Why a lingering close ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LingerEnd {
    /// The peer closed its side: nothing more can arrive, so closing cannot reset.
    PeerClosed,
    /// `linger_timeout` passed; the peer had the time to read what was sent.
    TimedOut,
    /// The peer sent more than `linger_bytes` after the end: not a client in good faith.
    TooMuchInput,
    /// The socket failed (the peer reset it, say).
    Broken,
}

/// What to do with a lingering socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LingerStep {
    /// Keep it; look again on its next readiness or at the next sweep.
    Wait,
    /// Close it.
    Close(LingerEnd),
}

/// A lingering close's progress: since when, and how much input it has discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Linger {
    since: Instant,
    discarded: u64,
}

impl Linger {
    /// A lingering close that starts at `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Self { since: now, discarded: 0 }
    }

    /// Counts one read of `n` bytes, discarded; `n == 0` is the peer's end of stream.
    pub(crate) fn handle_read(&mut self, n: usize, limits: &LingerLimits) -> LingerStep {
        if n == 0 {
            return LingerStep::Close(LingerEnd::PeerClosed);
        }
        self.discarded = self.discarded.saturating_add(n as u64);
        if self.discarded > limits.bytes {
            LingerStep::Close(LingerEnd::TooMuchInput)
        } else {
            LingerStep::Wait
        }
    }

    /// Whether it has lingered long enough at `now`.
    pub(crate) fn handle_sweep(&self, now: Instant, limits: &LingerLimits) -> LingerStep {
        if now.saturating_duration_since(self.since) >= limits.timeout {
            LingerStep::Close(LingerEnd::TimedOut)
        } else {
            LingerStep::Wait
        }
    }
}

/// A socket in its lingering close: the rest of its outbound queue, then the write side shut,
/// then its input drained.
#[derive(Debug)]
pub(crate) struct Lingering {
    socket: Socket,
    linger: Linger,
    write_shut: bool,
    /// The peer closed its side while the queue was still going out: read no more, write on.
    peer_closed: bool,
}

impl Lingering {
    /// Starts the lingering close of `socket` at `now`.
    pub(crate) fn new(socket: Socket, now: Instant) -> Self {
        Self { socket, linger: Linger::new(now), write_shut: false, peer_closed: false }
    }

    /// The stream, for the poll's registration.
    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        self.socket.stream_mut()
    }

    /// Whether it waits for the socket to take the rest of its queue.
    pub(crate) fn wants_writable(&self) -> bool {
        !self.write_shut
    }

    /// Writes what the socket takes of the queue, shuts the write side once it is all out,
    /// and discards the input until the socket is empty. Call it on every readiness.
    pub(crate) fn advance(&mut self, limits: &LingerLimits) -> LingerStep {
        if !self.write_shut {
            match self.socket.write_queued() {
                Ok(()) => {
                    // The peer reads end of stream after the last frame. A failure means the
                    // peer is gone, which the read below reports.
                    let _ = self.socket.stream_mut().shutdown(Shutdown::Write);
                    self.write_shut = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return LingerStep::Close(LingerEnd::Broken),
            }
        }
        if self.peer_closed {
            // Its end of stream came before our last frames had gone: they go first.
            return if self.write_shut { LingerStep::Close(LingerEnd::PeerClosed) } else { LingerStep::Wait };
        }
        // Its contents are thrown away, so one buffer on the stack serves every socket.
        let mut scratch = [0u8; 16 << 10];
        loop {
            match self.socket.stream_mut().read(&mut scratch) {
                Ok(0) if !self.write_shut => {
                    self.peer_closed = true;
                    return LingerStep::Wait;
                }
                Ok(n) => {
                    if let LingerStep::Close(end) = self.linger.handle_read(n, limits) {
                        return LingerStep::Close(end);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return LingerStep::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return LingerStep::Close(LingerEnd::Broken),
            }
        }
    }

    /// Whether it has lingered long enough at `now`.
    pub(crate) fn handle_sweep(&self, now: Instant, limits: &LingerLimits) -> LingerStep {
        self.linger.handle_sweep(now, limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limits() -> LingerLimits {
        LingerLimits { timeout: 2000 * MS, bytes: 100 }
    }

    #[test]
    fn the_peers_end_of_stream_ends_it_at_once() {
        let mut linger = Linger::new(Instant::now());
        assert_eq!(linger.handle_read(40, &limits()), LingerStep::Wait);
        assert_eq!(linger.handle_read(0, &limits()), LingerStep::Close(LingerEnd::PeerClosed));
    }

    #[test]
    fn input_is_discarded_up_to_the_byte_bound_and_not_one_more() {
        let mut linger = Linger::new(Instant::now());
        assert_eq!(linger.handle_read(60, &limits()), LingerStep::Wait);
        assert_eq!(linger.handle_read(40, &limits()), LingerStep::Wait, "100 bytes is the bound itself");
        assert_eq!(linger.handle_read(1, &limits()), LingerStep::Close(LingerEnd::TooMuchInput));
    }

    #[test]
    fn it_ends_at_the_timeout_and_not_before() {
        let t0 = Instant::now();
        let linger = Linger::new(t0);
        assert_eq!(linger.handle_sweep(t0 + 1999 * MS, &limits()), LingerStep::Wait);
        assert_eq!(linger.handle_sweep(t0 + 2000 * MS, &limits()), LingerStep::Close(LingerEnd::TimedOut));
    }

    /// Over a real socket pair: the queued bytes go out, the peer reads end of stream right
    /// after them, and its late input is drained instead of resetting the connection.
    #[test]
    fn it_writes_the_queue_shuts_the_write_side_and_drains_late_input() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        let mut socket =
            Socket::new(crate::net::tls::Transport::Plain(TcpStream::from_std(server)), 1 << 20, 1 << 20);
        socket.write_all(b"last frame").expect("queued");
        client.write_all(b"unread input").expect("client writes");
        let mut lingering = Lingering::new(socket, Instant::now());
        let limits = LingerLimits { timeout: 2000 * MS, bytes: 1 << 20 };
        // The client's input may not have arrived yet; either way it is not the end.
        assert_eq!(lingering.advance(&limits), LingerStep::Wait);
        assert!(!lingering.wants_writable(), "the queue went out and the write side is shut");
        let mut got = Vec::new();
        client.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        client.read_to_end(&mut got).expect("end of stream, not a reset");
        assert_eq!(got, b"last frame");
        client.write_all(b"more input after our end").expect("the server still takes input");
        drop(client);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match lingering.advance(&limits) {
                LingerStep::Close(end) => {
                    assert_eq!(end, LingerEnd::PeerClosed);
                    break;
                }
                LingerStep::Wait => {
                    assert!(Instant::now() < deadline, "the client's close never arrived");
                    std::thread::sleep(MS);
                }
            }
        }
    }
}
