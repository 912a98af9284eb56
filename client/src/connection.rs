//! One WebSocket connection, entirely non-blocking: TCP connect, the HTTP upgrade offering the
//! configured versions (`ticksock.v2, ticksock.v1` by default), then messages, each step
//! resumed where it left off on `WouldBlock`. The version the server selected in its `101`
//! answer is handed to the session, which speaks it.
//!
//! A [`Connection`] moves bytes between its socket and a [`Session`]; it decides nothing. Both
//! [`Client`](crate::Client) and the load simulator drive their sessions through it, so the
//! bridging between socket and protocol exists once.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::{ClientHandshake, Request};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{WebSocket, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes};

use crate::config::Versions;
use crate::session::{LinkCommand, Session};
use crate::tls::TlsLink;
use crate::{Error, LinkState};

/// The upgrade request for `url`, offering the subprotocols of `versions` (the session's
/// [`Config::versions`](crate::Config::versions): the session must speak what is offered).
pub fn upgrade_request(url: &str, versions: Versions) -> Result<Request, Error> {
    let mut request = url.into_client_request().map_err(|e| Error::Url(format!("{url}: {e}")))?;
    let value = versions.header().parse().map_err(|_| Error::Url("subprotocol header".into()))?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", value);
    Ok(request)
}

/// Asks for tick-stamped replies in `request`: adds `ticks=1` to its URL's query
/// (`docs/PROTOCOL.md` 4.3), for a session whose [`Config::tick_stamps`](crate::Config::tick_stamps)
/// is on.
pub fn ask_tick_stamps(request: &mut Request) -> Result<(), Error> {
    let uri = request.uri();
    let parameter = ticksock_protocol::QUERY_TICKS;
    let with = match uri.query() {
        Some(query) if query.split('&').any(|pair| pair.starts_with(&format!("{parameter}="))) => {
            return Ok(());
        }
        Some(_) => format!("{uri}&{parameter}=1"),
        None => format!("{uri}?{parameter}=1"),
    };
    *request.uri_mut() = with.parse().map_err(|e| Error::Url(format!("{with}: {e}")))?;
    Ok(())
}

/// Offers `token` in `request` (`Authorization: Bearer`, `docs/PROTOCOL.md` 13.1): the I/O
/// layer adds the session's [`Session::token`](crate::Session::token) to every upgrade.
pub fn offer_token(request: &mut Request, token: &str) -> Result<(), Error> {
    let value =
        format!("Bearer {token}").parse().map_err(|_| Error::BadToken("not a header value".into()))?;
    request.headers_mut().insert("Authorization", value);
    Ok(())
}

/// The socket address of a `ws://host:port/...` or `wss://host:port/...` URL (ports 80 and
/// 443 by default). Resolves names with the system resolver, which blocks: call it once, not
/// every frame.
pub fn resolve(url: &str) -> Result<SocketAddr, Error> {
    let uri: tungstenite::http::Uri = url.parse().map_err(|e| Error::Url(format!("{url}: {e}")))?;
    let default_port = match uri.scheme_str() {
        Some("ws") => 80,
        Some("wss") => 443,
        _ => return Err(Error::Url(format!("{url}: the scheme must be ws or wss"))),
    };
    let host = uri.host().ok_or_else(|| Error::Url(format!("{url}: no host")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(default_port);
    (host, port).to_socket_addrs()?.next().ok_or_else(|| Error::Url(format!("{url}: {host} has no address")))
}

/// The host a URL names, as TLS checks it against the server's certificate (an IPv6 address
/// without its brackets).
fn host_of(uri: &tungstenite::http::Uri) -> Result<&str, Error> {
    let host = uri.host().ok_or_else(|| Error::Url(format!("{uri}: no host")))?;
    Ok(host.trim_start_matches('[').trim_end_matches(']'))
}

/// The socket under the WebSocket: a mio `TcpStream`, with TLS over it for a `wss://` URL
/// (see [`crate::tls`]), that can remember it was drained.
///
/// With edge-triggered readiness (mio), a read that returns fewer bytes than asked means the
/// kernel buffer is empty, and new data will raise a new readiness event. With `edge_hint` on,
/// the next read then says `WouldBlock` without a system call, until
/// [`Connection::mark_readable`]. This saves one `read` per wakeup; it is only correct when
/// the owner calls `mark_readable` on every readable event, so it is off unless asked for.
/// With TLS a short read of plaintext says nothing about the socket, so the hint is not used.
#[derive(Debug)]
pub struct Stream {
    tcp: TcpStream,
    edge_hint: bool,
    drained: bool,
    /// TLS over `tcp`, for `wss://`. Boxed: a plain connection should not pay for its size.
    tls: Option<Box<rustls::ClientConnection>>,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(tls) = &mut self.tls {
            return TlsLink { tls, tcp: &mut self.tcp }.read(buf);
        }
        if self.drained {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.tcp.read(buf)?;
        if self.edge_hint && n < buf.len() {
            self.drained = true;
        }
        Ok(n)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(tls) => TlsLink { tls, tcp: &mut self.tcp }.write(buf),
            None => self.tcp.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.tls {
            Some(tls) => TlsLink { tls, tcp: &mut self.tcp }.flush(),
            None => self.tcp.flush(),
        }
    }
}

/// Where a connection is, after a [`Connection::receive`], [`Connection::transmit`] or
/// [`Connection::pump`].
#[derive(Debug)]
pub enum Progress {
    /// Still connecting (TCP or the upgrade).
    Connecting,
    /// Open.
    Open,
    /// Over: drop the connection and call [`Session::handle_disconnect`]. Carries the error,
    /// if it ended with one (`None`: closed normally, or closed because the session asked).
    Finished(Option<Error>),
    /// The session followed a redirect ([`LinkCommand::Redirect`]): this connection is now the
    /// old link, still open. Keep it aside ([`Connection::receive_old`], and
    /// [`Connection::close`] once [`Session::keeps_old_link`] says `false`) and open the next.
    Redirected,
}

enum Stage {
    Tcp {
        stream: Stream,
        request: Box<Request>,
        config: WebSocketConfig,
    },
    Handshake(MidHandshake<ClientHandshake<Stream>>),
    Open(WebSocket<Stream>),
    /// Our close frame is sent; waiting for the server's (see [`Connection::finish_close`]).
    Closing(WebSocket<Stream>),
    Gone,
}

/// One non-blocking WebSocket connection to the server.
pub struct Connection {
    stage: Stage,
    /// A frame tungstenite refused because its write buffer was full; it goes first next time.
    stalled: Option<Message>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match self.stage {
            Stage::Tcp { .. } => "tcp",
            Stage::Handshake(_) => "handshake",
            Stage::Open(_) => "open",
            Stage::Closing(_) => "closing",
            Stage::Gone => "gone",
        };
        f.debug_struct("Connection").field("stage", &stage).finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts connecting to `addr` (non-blocking; the connect completes later), to upgrade
    /// with `request` (see [`upgrade_request`]).
    pub fn open(
        addr: SocketAddr,
        request: Request,
        config: WebSocketConfig,
        edge_hint: bool,
    ) -> Result<Self, Error> {
        Self::open_with(addr, request, config, edge_hint, None)
    }

    /// [`Connection::open`] for a `wss://` URL: TLS with `tls`'s settings (see
    /// [`crate::tls::client_config`]), checking the server's certificate against the
    /// request's host, then the upgrade over it.
    pub fn open_tls(
        addr: SocketAddr,
        request: Request,
        config: WebSocketConfig,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self, Error> {
        let tls = crate::tls::connect(tls, host_of(request.uri())?)?;
        Self::open_with(addr, request, config, false, Some(Box::new(tls)))
    }

    fn open_with(
        addr: SocketAddr,
        request: Request,
        config: WebSocketConfig,
        edge_hint: bool,
        tls: Option<Box<rustls::ClientConnection>>,
    ) -> Result<Self, Error> {
        let tcp = TcpStream::connect(addr)?;
        // Requests are small and latency matters more than packet count.
        tcp.set_nodelay(true)?;
        let stream = Stream { tcp, edge_hint, drained: false, tls };
        Ok(Self { stage: Stage::Tcp { stream, request: Box::new(request), config }, stalled: None })
    }

    /// The TCP socket, to register with a mio `Poll` (for readable and writable events).
    pub fn tcp_mut(&mut self) -> Option<&mut TcpStream> {
        match &mut self.stage {
            Stage::Tcp { stream, .. } => Some(&mut stream.tcp),
            Stage::Handshake(mid) => Some(&mut mid.get_mut().get_mut().tcp),
            Stage::Open(ws) | Stage::Closing(ws) => Some(&mut ws.get_mut().tcp),
            Stage::Gone => None,
        }
    }

    /// A readable event arrived for the socket: the next read goes to the kernel again.
    pub fn mark_readable(&mut self) {
        let stream = match &mut self.stage {
            Stage::Tcp { stream, .. } => stream,
            Stage::Handshake(mid) => mid.get_mut().get_mut(),
            Stage::Open(ws) | Stage::Closing(ws) => ws.get_mut(),
            Stage::Gone => return,
        };
        stream.drained = false;
    }

    /// Whether the WebSocket is open.
    pub fn is_open(&self) -> bool {
        matches!(self.stage, Stage::Open(_))
    }

    /// [`Connection::receive`], then [`Connection::transmit`].
    pub fn pump(
        &mut self,
        session: &mut Session,
        now: Instant,
        sink: impl FnMut(&str, &[u8]) -> bool,
    ) -> Progress {
        match self.receive(session, now, sink) {
            Progress::Finished(e) => Progress::Finished(e),
            _ => self.transmit(session),
        }
    }

    /// Moves the connect and the upgrade along, reads every message available into the
    /// session (pushes without a handler are offered to `sink`, see
    /// [`Session::handle_frame_with`]), and lets the session handle what is due at `now`.
    pub fn receive(
        &mut self,
        session: &mut Session,
        now: Instant,
        mut sink: impl FnMut(&str, &[u8]) -> bool,
    ) -> Progress {
        self.receive_with(session, now, |session, frame| {
            session.handle_frame_with(frame, now, &mut sink);
            true
        })
    }

    /// [`Connection::receive`], except that each binary message goes to `frame` instead of
    /// the session, for a caller that hands it over later with [`Session::handle_frame_with`]
    /// (the load simulator's link conditioner holds frames so). Pings, pongs and close frames
    /// still go to the session at once. When `frame` returns `false` (the caller holds enough
    /// for now) reading stops after that message; the next call goes on where it stopped.
    pub fn receive_frames(
        &mut self,
        session: &mut Session,
        now: Instant,
        mut frame: impl FnMut(&[u8]) -> bool,
    ) -> Progress {
        self.receive_with(session, now, |_, bytes| frame(bytes))
    }

    /// The body of [`Connection::receive`], each binary message handed to `on_binary`, which
    /// says whether to read on.
    fn receive_with(
        &mut self,
        session: &mut Session,
        now: Instant,
        mut on_binary: impl FnMut(&mut Session, &[u8]) -> bool,
    ) -> Progress {
        if let Err(e) = self.advance(session, now) {
            self.stage = Stage::Gone;
            return Progress::Finished(Some(e));
        }
        if let Stage::Open(ws) = &mut self.stage {
            loop {
                match ws.read() {
                    Ok(Message::Binary(bytes)) => {
                        if !on_binary(session, &bytes) {
                            break;
                        }
                    }
                    Ok(Message::Ping(_) | Message::Pong(_)) => session.handle_heard(now),
                    Ok(Message::Text(_)) => {
                        self.stage = Stage::Gone;
                        let problem = "a text message on the binary subprotocol".to_owned();
                        return Progress::Finished(Some(Error::Protocol(problem)));
                    }
                    // tungstenite answers a close by itself; the read that follows ends it.
                    Ok(Message::Close(frame)) => match frame {
                        Some(frame) => session.handle_server_close_code(frame.code.into(), now),
                        None => session.handle_server_close(now),
                    },
                    Ok(Message::Frame(_)) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                        self.stage = Stage::Gone;
                        return Progress::Finished(None);
                    }
                    Err(e) => {
                        self.stage = Stage::Gone;
                        return Progress::Finished(Some(e.into()));
                    }
                }
                if !matches!(
                    session.link_state(),
                    LinkState::Up | LinkState::AwaitingWelcome | LinkState::Resuming
                ) {
                    break; // The session dropped this connection; transmit closes it.
                }
            }
        }
        if session.poll_timeout().is_some_and(|at| at <= now) {
            session.handle_timeout(now);
        }
        self.progress()
    }

    /// Carries out the session's link commands, writes every frame it has to send, and flushes.
    pub fn transmit(&mut self, session: &mut Session) -> Progress {
        self.transmit_with(session, Session::poll_transmit)
    }

    /// [`Connection::transmit`], writing the frames `next_frame` gives instead of the
    /// session's own, for a caller that takes the session's frames ([`Session::poll_transmit`])
    /// and holds them a while (the load simulator's link conditioner). The session's link
    /// commands are carried out as usual; `next_frame` is asked only while the socket can take
    /// a frame.
    pub fn transmit_frames(
        &mut self,
        session: &mut Session,
        mut next_frame: impl FnMut() -> Option<Vec<u8>>,
    ) -> Progress {
        self.transmit_with(session, |_| next_frame())
    }

    /// The body of [`Connection::transmit`], the frames to write taken from `next_frame`.
    fn transmit_with(
        &mut self,
        session: &mut Session,
        mut next_frame: impl FnMut(&mut Session) -> Option<Vec<u8>>,
    ) -> Progress {
        while let Some(command) = session.poll_link() {
            match command {
                LinkCommand::Ping => {
                    if let Stage::Open(ws) = &mut self.stage
                        && ws.can_write()
                    {
                        // A full buffer or a blocked socket just skips this ping.
                        let _ = ws.write(Message::Ping(Default::default()));
                    }
                }
                LinkCommand::Drop => {
                    // No close frame: dropping the socket is what a lost network looks like.
                    self.stage = Stage::Gone;
                    return Progress::Finished(None);
                }
                LinkCommand::Close { code, reason } => {
                    self.close(code, reason);
                    return Progress::Finished(None);
                }
                LinkCommand::Redirect => return Progress::Redirected,
            }
        }
        let Stage::Open(ws) = &mut self.stage else { return self.progress() };
        if let Some(message) = self.stalled.take() {
            match ws.write(message) {
                Err(tungstenite::Error::WriteBufferFull(message)) => self.stalled = Some(*message),
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.stage = Stage::Gone;
                    return Progress::Finished(Some(e.into()));
                }
            }
        }
        while self.stalled.is_none() && ws.can_write() {
            let Some(frame) = next_frame(session) else { break };
            match ws.write(Message::Binary(frame.into())) {
                Ok(()) => {}
                Err(tungstenite::Error::WriteBufferFull(message)) => self.stalled = Some(*message),
                // Buffered; the flush below or a later one sends it.
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.stage = Stage::Gone;
                    return Progress::Finished(Some(e.into()));
                }
            }
        }
        match ws.flush() {
            Ok(()) => Progress::Open,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Progress::Open,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                self.stage = Stage::Gone;
                Progress::Finished(None)
            }
            Err(e) => {
                self.stage = Stage::Gone;
                Progress::Finished(Some(e.into()))
            }
        }
    }

    /// Sends a close frame with `code` (best effort: for the session the link is over either
    /// way); [`Connection::finish_close`] then waits for the server's.
    pub fn close(&mut self, code: u16, reason: &'static str) {
        self.stage = match std::mem::replace(&mut self.stage, Stage::Gone) {
            Stage::Open(mut ws) => {
                let frame = CloseFrame { code: code.into(), reason: Utf8Bytes::from(reason) };
                let _ = ws.close(Some(frame));
                let _ = ws.flush();
                Stage::Closing(ws)
            }
            _ => Stage::Gone,
        };
    }

    /// Reads what the old link of a redirect ([`Progress::Redirected`]) receives into
    /// [`Session::handle_old_link_frame`]. Returns [`Progress::Finished`] once it is gone
    /// (then call [`Session::handle_old_link_gone`]).
    pub fn receive_old(&mut self, session: &mut Session, now: Instant) -> Progress {
        let Stage::Open(ws) = &mut self.stage else { return self.progress() };
        loop {
            match ws.read() {
                Ok(Message::Binary(bytes)) => session.handle_old_link_frame(&bytes, now),
                // Pings are answered by tungstenite; nothing else on the old link matters.
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = ws.flush();
                    return Progress::Open;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    self.stage = Stage::Gone;
                    return Progress::Finished(None);
                }
                Err(e) => {
                    self.stage = Stage::Gone;
                    return Progress::Finished(Some(e.into()));
                }
            }
        }
    }

    fn progress(&self) -> Progress {
        match self.stage {
            Stage::Tcp { .. } | Stage::Handshake(_) => Progress::Connecting,
            Stage::Open(_) => Progress::Open,
            Stage::Closing(_) | Stage::Gone => Progress::Finished(None),
        }
    }

    /// After the session closed the link (a [`LinkCommand::Close`], carried out by
    /// [`Connection::transmit`]), reads and discards what the server still sends until its
    /// close frame arrives. Returns true once the closing handshake is over (or the socket
    /// failed, or there was no handshake to finish); false while it waits, in which case call
    /// again when the socket is readable. Whoever gives up first just drops the connection.
    pub fn finish_close(&mut self) -> bool {
        let Stage::Closing(ws) = &mut self.stage else { return true };
        loop {
            match ws.read() {
                // Frames sent before the server saw our close; nobody waits for them now.
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Our close frame may still be queued behind a full socket.
                    let _ = ws.flush();
                    return false;
                }
                // `ConnectionClosed`: the server's close frame arrived; anything else: the
                // socket is gone. Either way there is nothing left to wait for.
                Err(_) => {
                    self.stage = Stage::Gone;
                    return true;
                }
            }
        }
    }

    /// Moves from TCP connect to upgrade to open as far as the socket allows.
    fn advance(&mut self, session: &mut Session, now: Instant) -> Result<(), Error> {
        loop {
            match std::mem::replace(&mut self.stage, Stage::Gone) {
                Stage::Tcp { stream, request, config } => {
                    if let Some(e) = stream.tcp.take_error()? {
                        return Err(e.into());
                    }
                    match stream.tcp.peer_addr() {
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::NotConnected | io::ErrorKind::WouldBlock
                            ) =>
                        {
                            self.stage = Stage::Tcp { stream, request, config };
                            return Ok(());
                        }
                        Err(e) => return Err(e.into()),
                    }
                    let mid = ClientHandshake::start(stream, *request, Some(config))?;
                    self.stage = Stage::Handshake(mid);
                }
                Stage::Handshake(mid) => match mid.handshake() {
                    Ok((ws, response)) => {
                        let selected =
                            response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok());
                        let version = session.config().versions.selected(selected)?;
                        self.stage = Stage::Open(ws);
                        session.handle_connected(version, now);
                        return Ok(());
                    }
                    Err(HandshakeError::Interrupted(mid)) => {
                        self.stage = Stage::Handshake(mid);
                        return Ok(());
                    }
                    Err(HandshakeError::Failure(e)) => return Err(e.into()),
                },
                other => {
                    self.stage = other;
                    return Ok(());
                }
            }
        }
    }
}
