//! A connection's TCP stream and its outbound queue.
//!
//! **Reads.** mio registers sockets edge-triggered (`EPOLLET`), and the kernel raises a new
//! edge each time data arrives on a socket, whether or not the last read drained it. So once a
//! `read` returns fewer bytes than asked for, the socket was empty at that moment and a further
//! `read` would only return `WouldBlock`: [`Socket`] answers that `WouldBlock` itself, until the
//! reactor sees the next readable event and calls [`Socket::handle_readable`]. This is the rule
//! tokio applies to its own TCP streams; under load it halves the `recv` calls.
//!
//! **Writes.** Every byte bound for the peer goes through one queue, in order: data frames
//! that the reactor frames itself ([`Socket::queue_data`]: a server frame is a 2 to 10 byte
//! header and the unmasked payload, so the payload is copied once, straight from the shared
//! broadcast buffer), and the control frames tungstenite writes (pongs, close), which it hands
//! over at once because its own write buffer is set to zero. [`Socket::write_queued`] (the
//! `flush` tungstenite calls) writes the queue with as few syscalls as the socket allows.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

/// WebSocket opcode of a text frame (RFC 6455, 5.2).
pub(crate) const OPCODE_TEXT: u8 = 0x1;
/// WebSocket opcode of a binary frame.
pub(crate) const OPCODE_BINARY: u8 = 0x2;

/// An empty queue keeps at most this much capacity, so an idle connection holds no large
/// buffer after a burst, while the usual frames (a reply, a room's state) reuse it.
const IDLE_CAPACITY: usize = 1024;

/// The queue would pass its cap: the peer is not reading.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct QueueFull;

/// A TCP stream that remembers a short read, with the queue of bytes for its peer.
#[derive(Debug)]
pub(crate) struct Socket {
    stream: TcpStream,
    /// The last read came back short: the socket is empty until the next readable event.
    drained: bool,
    /// Bytes for the peer; `out[written..]` has not been written yet.
    out: Vec<u8>,
    written: usize,
    /// The most bytes the queue may hold (`Config::max_outbound_bytes`).
    max_queued: usize,
    /// Once this many bytes are queued they are written without waiting for the end of the
    /// reactor's turn (`Config::write_coalesce_bytes`).
    coalesce: usize,
    /// `write` syscalls since the reactor last took the count, for the metrics.
    writes: u32,
}

impl Socket {
    pub(crate) fn new(stream: TcpStream, max_queued: usize, coalesce: usize) -> Self {
        Self { stream, drained: false, out: Vec::new(), written: 0, max_queued, coalesce, writes: 0 }
    }

    /// A readable event arrived: data may be waiting again.
    pub(crate) fn handle_readable(&mut self) {
        self.drained = false;
    }

    /// The stream, for registering with the poll.
    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The `write` syscalls made since the last call.
    pub(crate) fn take_writes(&mut self) -> u32 {
        std::mem::take(&mut self.writes)
    }

    /// Bytes queued and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.out.len() - self.written
    }

    /// Queues one unfragmented data frame (`OPCODE_TEXT` or `OPCODE_BINARY`) carrying
    /// `payload`. Refused whole, with nothing queued, if it would pass the cap.
    pub(crate) fn queue_data(&mut self, opcode: u8, payload: &[u8]) -> Result<(), QueueFull> {
        let header = data_frame_header(opcode, payload.len());
        if self.queued() + header.len() + payload.len() > self.max_queued {
            return Err(QueueFull);
        }
        self.out.extend_from_slice(&header);
        self.out.extend_from_slice(payload);
        if self.queued() >= self.coalesce {
            // Big enough to be worth a syscall now; what the socket does not take waits for
            // the flush, which also reports any error.
            let _ = self.write_queued();
        }
        Ok(())
    }

    /// Writes the queue until it is empty (`Ok`) or the socket is full (`WouldBlock`).
    pub(crate) fn write_queued(&mut self) -> io::Result<()> {
        while self.written < self.out.len() {
            self.writes += 1;
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.written = 0;
        if self.out.capacity() > IDLE_CAPACITY {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        Ok(())
    }
}

/// The header of an unmasked, final data frame of `len` payload bytes: 2, 4 or 10 bytes.
fn data_frame_header(opcode: u8, len: usize) -> HeaderBytes {
    let mut header = HeaderBytes { bytes: [0; 10], len: 2 };
    header.bytes[0] = 0x80 | opcode;
    match len {
        0..=125 => header.bytes[1] = len as u8,
        126..=0xFFFF => {
            header.bytes[1] = 126;
            header.bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            header.len = 4;
        }
        _ => {
            header.bytes[1] = 127;
            header.bytes[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            header.len = 10;
        }
    }
    header
}

struct HeaderBytes {
    bytes: [u8; 10],
    len: usize,
}

impl std::ops::Deref for HeaderBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.drained && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.stream.read(buf)?;
        // `n == 0` is end of stream, which is not "empty for now".
        self.drained = n > 0 && n < buf.len();
        Ok(n)
    }
}

/// tungstenite's writes: control frames (pong, close), queued behind the data before them.
impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.queued() + buf.len() > self.max_queued {
            // A peer that sends pings but reads nothing: it goes, like any peer over the cap.
            return Err(io::Error::other("outbound buffer full"));
        }
        self.out.extend_from_slice(buf);
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
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        (client, Socket::new(TcpStream::from_std(server), 1 << 20, 64 << 10))
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
    fn end_of_stream_is_not_mistaken_for_empty() {
        let (client, mut socket) = pair();
        drop(client);
        let mut buf = [0u8; 16];
        assert_eq!(read_when_ready(&mut socket, &mut buf), 0);
        assert_eq!(socket.read(&mut buf).expect("eof again"), 0);
    }

    #[test]
    fn data_frame_headers_match_tungstenite() {
        use tungstenite::protocol::frame::Frame;
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = vec![0xabu8; len];
            for (opcode, text) in [(OPCODE_BINARY, false), (OPCODE_TEXT, true)] {
                let frame = if text {
                    Frame::message(
                        payload.clone(),
                        tungstenite::protocol::frame::coding::OpCode::Data(
                            tungstenite::protocol::frame::coding::Data::Text,
                        ),
                        true,
                    )
                } else {
                    Frame::message(
                        payload.clone(),
                        tungstenite::protocol::frame::coding::OpCode::Data(
                            tungstenite::protocol::frame::coding::Data::Binary,
                        ),
                        true,
                    )
                };
                let mut expected = Vec::new();
                frame.format(&mut expected).expect("format");
                let mut ours = data_frame_header(opcode, len).to_vec();
                ours.extend_from_slice(&payload);
                assert_eq!(ours, expected, "len {len} text {text}");
            }
        }
    }

    #[test]
    fn the_queue_refuses_a_frame_over_the_cap_whole_and_writes_in_order() {
        let (mut client, server) = pair();
        let mut socket = Socket { max_queued: 64, ..server };
        socket.queue_data(OPCODE_BINARY, &[1; 30]).expect("fits");
        assert_eq!(socket.queued(), 32);
        assert_eq!(socket.queue_data(OPCODE_BINARY, &[2; 40]), Err(QueueFull));
        assert_eq!(socket.queued(), 32, "nothing of the refused frame is queued");
        socket.write_all(&[0x8a, 0x00]).expect("a pong from tungstenite fits");
        socket.flush().expect("written");
        assert_eq!(socket.queued(), 0);
        let mut got = vec![0u8; 34];
        client.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        client.read_exact(&mut got).expect("read");
        assert_eq!(&got[..2], &[0x82, 30]);
        assert_eq!(&got[32..], &[0x8a, 0x00]);
    }
}
