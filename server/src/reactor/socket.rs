//! A connection's TCP stream as tungstenite reads and writes it, minus one syscall per
//! readable event.
//!
//! mio registers sockets edge-triggered (`EPOLLET`), and the kernel raises a new edge each
//! time data arrives on a socket, whether or not the last read drained it. So once a `read`
//! returns fewer bytes than asked for, the socket was empty at that moment and a further
//! `read` would only return `WouldBlock`: [`Socket`] answers that `WouldBlock` itself, until
//! the reactor sees the next readable event and calls [`Socket::handle_readable`]. This is
//! the rule tokio applies to its own TCP streams; under load it halves the `recv` calls.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

/// A TCP stream that remembers a short read.
#[derive(Debug)]
pub(crate) struct Socket {
    stream: TcpStream,
    /// The last read came back short: the socket is empty until the next readable event.
    drained: bool,
}

impl Socket {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self { stream, drained: false }
    }

    /// A readable event arrived: data may be waiting again.
    pub(crate) fn handle_readable(&mut self) {
        self.drained = false;
    }

    /// The stream, for registering with the poll.
    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
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

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.stream.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
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
        (client, Socket::new(TcpStream::from_std(server)))
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
}
