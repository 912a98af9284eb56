//! A connection's TCP stream and its outbound queue.
//!
//! **Reads.** mio registers sockets edge-triggered (`EPOLLET`), and the kernel raises a new
//! edge each time data arrives on a socket, whether or not the last read drained it. So once a
//! `read` returns fewer bytes than asked for, the socket was empty at that moment and a further
//! `read` would only return `WouldBlock`: [`Socket`] answers that `WouldBlock` itself, until the
//! reactor sees the next readable event and calls [`Socket::handle_readable`]. This is the rule
//! tokio applies to its own TCP streams; under load it halves the `recv` calls.
//!
//! **Writes.** Every byte bound for the peer goes through one [`OutboundQueue`], in order: data
//! frames that the reactor frames itself ([`Socket::queue_data`]), and the control frames
//! tungstenite writes (pongs, close), which it hands over at once because its own write buffer
//! is set to zero. [`Socket::write_queued`] (the `flush` tungstenite calls) writes the queue
//! with as few syscalls as the socket allows. The queue itself is [`crate::net::outbound`].
//!
//! **Frame boundaries.** Every byte tungstenite reads comes through [`Socket`]'s `read`, which
//! follows the frame headers in them ([`FrameBounds`]), so the connection can tell when
//! tungstenite holds no part of a message and its context (with the read buffer) may go back
//! to the reactor's pool.
//!
//! **Reads that bypass tungstenite.** Between messages the reactor reads the socket itself
//! ([`Socket::read_raw`], into its own buffer) and takes whole data frames where they lie
//! ([`data_frames`](super::data_frames)). Bytes it read but did not take (a frame cut by the
//! end of the read, one for tungstenite, or frames past the turn's budget) wait in the
//! socket ([`Socket::keep_unread`]): the reactor's next read starts with them, and
//! tungstenite's reads get them before anything new, through the frame boundaries like every
//! byte tungstenite sees.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

use crate::bridge::DataOpcode;
use crate::net::frame_bounds::FrameBounds;
use crate::net::outbound::{OutboundQueue, QueueFull};
use crate::net::tls::Transport;

/// A connection's stream (plain or TLS, see [`Transport`]) that remembers a short read, with
/// the queue of bytes for its peer.
#[derive(Debug)]
pub(crate) struct Socket {
    stream: Transport,
    /// The last read came back short: the socket is empty until the next readable event.
    drained: bool,
    /// Bytes for the peer, capped at `Config::max_outbound_bytes`; written once
    /// `Config::write_coalesce_bytes` are queued, else at the end of the reactor's turn.
    out: OutboundQueue,
    /// Where the frames end in the bytes read so far.
    bounds: FrameBounds,
    /// tungstenite waits for bytes: its last read found the socket empty, and each of its
    /// writes since reached the queue (see [`Socket::reader_waiting`]).
    reader_waiting: bool,
    /// Bytes read from the stream and not taken yet (see the module's doc); `None` most of
    /// the time, so an idle connection holds no buffer for them (and its slot one pointer).
    unread: Option<Box<Unread>>,
}

/// Bytes read from the stream that neither the reactor nor tungstenite has taken yet.
#[derive(Debug)]
struct Unread {
    bytes: Vec<u8>,
    /// `bytes[taken..]` are still to be read.
    taken: usize,
}

impl Socket {
    pub(crate) fn new(stream: Transport, max_queued: usize, coalesce: usize) -> Self {
        Self {
            stream,
            drained: false,
            out: OutboundQueue::new(max_queued, coalesce),
            bounds: FrameBounds::default(),
            reader_waiting: false,
            unread: None,
        }
    }

    /// Reads from the stream into `buf` past tungstenite and the frame boundaries: the
    /// reactor's own read of a connection that holds no tungstenite context (see the module's
    /// doc). Bytes kept with [`Socket::keep_unread`] come first. Like any read here, it
    /// answers `WouldBlock` after a short read until the next readable event.
    pub(crate) fn read_raw(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(n) = self.take_unread(buf) {
            return Ok(n);
        }
        self.read_stream(buf)
    }

    /// Keeps `bytes`, read with [`Socket::read_raw`] and not taken, for the next read (the
    /// reactor's or tungstenite's), ahead of anything still unread.
    pub(crate) fn keep_unread(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match &mut self.unread {
            Some(unread) => {
                unread.bytes.drain(..unread.taken);
                unread.bytes.splice(0..0, bytes.iter().copied());
                unread.taken = 0;
            }
            None => self.unread = Some(Box::new(Unread { bytes: bytes.to_vec(), taken: 0 })),
        }
    }

    /// Copies kept bytes into `buf`; `None` if there are none (or `buf` is empty).
    fn take_unread(&mut self, buf: &mut [u8]) -> Option<usize> {
        let unread = self.unread.as_mut().filter(|_| !buf.is_empty())?;
        let rest = &unread.bytes[unread.taken..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        unread.taken += n;
        if unread.taken == unread.bytes.len() {
            self.unread = None;
        }
        Some(n)
    }

    /// One read of the stream, remembering a short one.
    fn read_stream(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.drained && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.stream.read(buf)?;
        // `n == 0` is end of stream, which is not "empty for now".
        self.drained = n > 0 && n < buf.len() && self.stream.short_read_drains();
        Ok(n)
    }

    /// The frame boundaries in the bytes read so far.
    pub(crate) fn bounds(&self) -> &FrameBounds {
        &self.bounds
    }

    /// The frame boundaries, to count bytes tungstenite got another way (those that followed
    /// the HTTP request) or to start counting the largest frame afresh.
    pub(crate) fn bounds_mut(&mut self) -> &mut FrameBounds {
        &mut self.bounds
    }

    /// Whether tungstenite waits for bytes: its last read of the socket said `WouldBlock`,
    /// which tungstenite passes straight up (so it had asked for more than it holds whole),
    /// and none of its writes failed since (a failed one may have left a frame in its write
    /// buffer). Data that arrived since, unread, does not change it: tungstenite has not
    /// seen it.
    pub(crate) fn reader_waiting(&self) -> bool {
        self.reader_waiting
    }

    /// A readable event arrived: data may be waiting again.
    pub(crate) fn handle_readable(&mut self) {
        self.drained = false;
    }

    /// The TCP stream, for registering with the poll.
    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        self.stream.tcp_mut()
    }

    /// Releases the outbound queue's buffer if nothing is queued (see
    /// [`OutboundQueue::release_if_empty`]).
    pub(crate) fn release_idle_buffer(&mut self) {
        self.out.release_if_empty();
    }

    /// Bytes queued for the peer and not written yet.
    #[inline]
    pub(crate) fn queued(&self) -> usize {
        self.out.queued()
    }

    /// The `write` syscalls made since the last call.
    pub(crate) fn take_writes(&mut self) -> u32 {
        self.out.take_writes()
    }

    /// Queues one unfragmented data frame carrying `payload`. Refused whole, with nothing
    /// queued, if it would pass the cap.
    #[inline]
    pub(crate) fn queue_data(&mut self, opcode: DataOpcode, payload: &[u8]) -> Result<(), QueueFull> {
        self.out.queue_data(opcode, payload)?;
        if self.out.wants_write() {
            // Big enough to be worth a syscall now; what the socket does not take waits for
            // the flush, which also reports any error.
            let _ = self.write_queued();
        }
        Ok(())
    }

    /// Writes the queue until it is empty (`Ok`) or the socket is full (`WouldBlock`); with
    /// TLS, the records the queue's bytes became too.
    pub(crate) fn write_queued(&mut self) -> io::Result<()> {
        self.out.write_to(&mut self.stream)?;
        self.stream.flush_pending()
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.read_raw(buf) {
            Ok(n) => n,
            Err(e) => {
                self.reader_waiting = e.kind() == io::ErrorKind::WouldBlock;
                return Err(e);
            }
        };
        self.reader_waiting = false;
        self.bounds.observe(&buf[..n]);
        Ok(n)
    }
}

/// tungstenite's writes: control frames (pong, close), queued behind the data before them.
impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Over the cap: a peer that sends pings but reads nothing goes, like any other.
        if let Err(full) = self.out.queue_raw(buf) {
            self.reader_waiting = false;
            return Err(io::Error::other(full));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_queued()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn pair() -> (std::net::TcpStream, Socket) {
        pair_capped(1 << 20)
    }

    fn pair_capped(max_queued: usize) -> (std::net::TcpStream, Socket) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        (client, Socket::new(Transport::Plain(TcpStream::from_std(server)), max_queued, 64 << 10))
    }

    fn read_when_ready(socket: &mut Socket, buf: &mut [u8]) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match socket.read(buf) {
                Ok(n) => return n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    socket.handle_readable();
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    #[test]
    fn a_short_read_answers_would_block_until_the_next_readable_event() {
        let (mut client, mut socket) = pair();
        client.write_all(b"abc").expect("write");
        let mut buf = [0u8; 16];
        assert_eq!(read_when_ready(&mut socket, &mut buf), 3);
        client.write_all(b"de").expect("write");
        std::thread::sleep(Duration::from_millis(20));
        // Data is waiting, but no readable event has been seen since the short read.
        let err = socket.read(&mut buf).expect_err("drained");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        socket.handle_readable();
        assert_eq!(socket.read(&mut buf).expect("read"), 2);
        assert_eq!(&buf[..2], b"de");
    }

    #[test]
    fn a_full_read_keeps_reading() {
        let (mut client, mut socket) = pair();
        client.write_all(&[7u8; 24]).expect("write");
        std::thread::sleep(Duration::from_millis(20));
        let mut buf = [0u8; 16];
        assert_eq!(read_when_ready(&mut socket, &mut buf), 16);
        assert_eq!(socket.read(&mut buf).expect("rest"), 8);
    }

    #[test]
    fn the_reader_waits_from_a_read_that_would_block_until_a_read_or_a_failed_write() {
        let (mut client, mut socket) = pair_capped(8);
        assert!(!socket.reader_waiting(), "nothing was asked yet");
        client.write_all(b"abc").expect("write");
        let mut buf = [0u8; 16];
        assert_eq!(read_when_ready(&mut socket, &mut buf), 3);
        assert!(!socket.reader_waiting(), "the last read returned bytes");
        let err = socket.read(&mut buf).expect_err("drained");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(socket.reader_waiting());
        socket.write_all(&[0x8a, 0x00]).expect("a pong fits");
        assert!(socket.reader_waiting(), "a write that reached the queue changes nothing");
        socket.write(&[0; 40]).expect_err("over the cap");
        assert!(!socket.reader_waiting(), "a failed write may have left a frame with the writer");
        socket.handle_readable();
        let err = socket.read(&mut buf).expect_err("nothing more");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "the socket's own WouldBlock");
        assert!(socket.reader_waiting());
    }

    #[test]
    fn bytes_kept_unread_come_first_to_either_reader() {
        let (mut client, mut socket) = pair();
        client.write_all(b"abcdef").expect("write");
        let mut buf = [0u8; 16];
        let n = loop {
            match socket.read_raw(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    socket.handle_readable();
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("read failed: {e}"),
            }
        };
        assert_eq!(&buf[..n], b"abcdef");
        socket.keep_unread(b"def");
        // The reactor's next read gets them, in pieces as small as it asks.
        assert_eq!(socket.read_raw(&mut buf[..2]).expect("kept"), 2);
        assert_eq!(&buf[..2], b"de");
        socket.keep_unread(b"de");
        client.write_all(b"gh").expect("write");
        std::thread::sleep(Duration::from_millis(20));
        socket.handle_readable();
        // tungstenite's read: the kept bytes first, then the stream.
        assert_eq!(socket.read(&mut buf).expect("kept"), 3);
        assert_eq!(&buf[..3], b"def");
        assert_eq!(socket.read(&mut buf).expect("stream"), 2);
        assert_eq!(&buf[..2], b"gh");
        assert!(socket.unread.is_none(), "nothing held once read");
    }

    #[test]
    fn end_of_stream_is_not_mistaken_for_empty() {
        let (client, mut socket) = pair();
        drop(client);
        let mut buf = [0u8; 16];
        assert_eq!(read_when_ready(&mut socket, &mut buf), 0);
        assert_eq!(socket.read(&mut buf).expect("eof again"), 0);
    }

    #[test]
    fn the_queue_refuses_a_frame_over_the_cap_whole_and_writes_in_order() {
        let (mut client, mut socket) = pair_capped(64);
        socket.queue_data(DataOpcode::Binary, &[1; 30]).expect("fits");
        assert_eq!(socket.out.queued(), 32);
        assert_eq!(socket.queue_data(DataOpcode::Binary, &[2; 40]), Err(QueueFull));
        assert_eq!(socket.out.queued(), 32, "nothing of the refused frame is queued");
        let err = socket.write(&[0; 40]).expect_err("a control frame over the cap");
        assert_eq!(err.kind(), io::ErrorKind::Other, "the kind the connection reads as overflow");
        socket.write_all(&[0x8a, 0x00]).expect("a pong from tungstenite fits");
        socket.flush().expect("written");
        assert_eq!(socket.out.queued(), 0);
        assert_eq!(socket.take_writes(), 1, "one write syscall for the frame and the pong");
        let mut got = vec![0u8; 34];
        client.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        client.read_exact(&mut got).expect("read");
        assert_eq!(&got[..2], &[0x82, 30]);
        assert_eq!(&got[32..], &[0x8a, 0x00]);
    }
}
