//! What a connection reads and writes through: the TCP stream itself, or TLS over it.
//!
//! [`Transport`] is the one type the HTTP phase ([`Http`](super::http::Http)) and the
//! WebSocket phase ([`Socket`](super::socket::Socket)) hold, so nothing else in the reactor
//! knows whether a connection is encrypted. A plain transport is the `TcpStream`: reads and
//! writes go straight to it, with no copy and no extra branch beyond the variant's match.
//!
//! A TLS transport drives a rustls `ServerConnection`, which does no I/O of its own (sans-IO):
//! - **Reading** plaintext first takes what rustls has already decrypted; when it has none, it
//!   reads TLS records from the non-blocking socket (`read_tls`), decrypts them
//!   (`process_new_packets`), and tries again, until the socket says `WouldBlock` or the
//!   peer's stream ends. Records that processing produced for the peer (the handshake's
//!   answers, alerts, key updates) are written at once, as far as the socket takes them.
//! - **Writing** hands plaintext to rustls, which encrypts it into its own buffer (bounded by
//!   rustls' buffer limit, 64 KiB), then writes that buffer (`write_tls`) until it is empty or
//!   the socket says `WouldBlock`. While records from an earlier write still wait for the
//!   socket, a write takes nothing and answers `WouldBlock`, so the caller's queue, not
//!   rustls, holds what the peer has not read (and the queue's cap still applies).
//!   [`Transport::flush_pending`] writes what rustls holds; the reactor's flush calls it after
//!   the queue, so records left behind by a full socket go out on its next writable event.
//!
//! The handshake limits: a TLS handshake happens inside the connection's HTTP phase, so the
//! handshake deadline (`Config::handshake_timeout`) covers it as it covers the HTTP request. A
//! client may send at most `Config::max_handshake_bytes` of TLS records while the TLS handshake
//! is still unfinished; one that sends more (a ClientHello too large, or garbage that rustls
//! keeps waiting on) fails the connection.
//!
//! Short reads: a plain socket that returned less than asked is empty until the next readable
//! event ([`Socket`](super::socket::Socket) answers `WouldBlock` itself until then). With TLS a
//! short read of plaintext says nothing about the socket (a record may end there and another
//! wait behind it), so TLS reads always go to the socket until it says `WouldBlock`.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

/// The stream a connection speaks through.
#[derive(Debug)]
pub(crate) enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP. Boxed: rustls' state is large, and plain connections should not pay
    /// for its size.
    Tls(Box<TlsStream>),
}

/// A TLS server connection over a non-blocking TCP stream.
#[derive(Debug)]
pub(crate) struct TlsStream {
    tcp: TcpStream,
    tls: ServerConnection,
    /// Bytes of TLS records read while the handshake was unfinished.
    handshake_bytes: usize,
    /// The most of them allowed (`Config::max_handshake_bytes`).
    max_handshake_bytes: usize,
}

impl Transport {
    /// A TLS transport over `tcp` with the certificate and settings of `config`, whose
    /// handshake may take `max_handshake_bytes` from the client.
    pub(crate) fn tls(
        tcp: TcpStream,
        config: Arc<ServerConfig>,
        max_handshake_bytes: usize,
    ) -> Result<Self, rustls::Error> {
        let tls = ServerConnection::new(config)?;
        Ok(Self::Tls(Box::new(TlsStream { tcp, tls, handshake_bytes: 0, max_handshake_bytes })))
    }

    /// The TCP stream, for registering with the poll and for shutting it down.
    pub(crate) fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(tcp) => tcp,
            Transport::Tls(tls) => &mut tls.tcp,
        }
    }

    /// Whether a read that returned fewer bytes than asked means the socket is empty (see
    /// the module's doc).
    pub(crate) fn short_read_drains(&self) -> bool {
        matches!(self, Transport::Plain(_))
    }

    /// Writes the records TLS holds for the peer: `Ok` once none is left, `WouldBlock` while
    /// the socket takes no more. A plain transport holds nothing.
    pub(crate) fn flush_pending(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(tls) => tls.send_records(),
        }
    }
}

impl TlsStream {
    /// Writes rustls' records until none is left (`Ok`) or the socket is full (`WouldBlock`).
    fn send_records(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends what processing produced (handshake answers, alerts) as far as the socket takes
    /// it now; the rest waits for [`Transport::flush_pending`].
    fn send_records_now(&mut self) -> io::Result<()> {
        match self.send_records() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    fn read_plaintext(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The TCP stream ended without a TLS close_notify: for the reactor, as for a
                // plain socket, the end of the stream.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let handshaking = self.tls.is_handshaking();
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => return Ok(0),
                Ok(n) if handshaking => self.handshake_bytes += n,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // rustls queued an alert that says why; send it if the socket takes it.
                let _ = self.send_records_now();
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}")));
            }
            if self.tls.is_handshaking() && self.handshake_bytes > self.max_handshake_bytes {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "TLS handshake over {} bytes (--max-handshake-bytes) and unfinished",
                        self.max_handshake_bytes
                    ),
                ));
            }
            self.send_records_now()?;
        }
    }

    fn write_plaintext(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Records of an earlier write still wait: take nothing more until the socket drains.
        self.send_records()?;
        let n = self.tls.writer().write(buf)?;
        self.send_records_now()?;
        if n == 0 && !buf.is_empty() {
            // rustls' buffer is full (only before the handshake ends can this happen with an
            // empty socket queue): wait for the socket like a full socket.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => tcp.read(buf),
            Transport::Tls(tls) => tls.read_plaintext(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => tcp.write(buf),
            Transport::Tls(tls) => tls.write_plaintext(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_pending()
    }
}
