//! The I/O layer a game loop drives: a [`Session`] over one non-blocking WebSocket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::connection::{Connection, Progress, ask_tick_stamps, offer_token, resolve, upgrade_request};
use crate::session::{CallId, CallOptions, Event, Outcome, Session};
use crate::{Config, Error};

const SOCKET: Token = Token(0);

/// A ticksock client for a game loop: call [`Client::update`] once per frame, then read
/// [`Client::poll_event`]. Nothing blocks except [`Client::wait`], which is optional.
///
/// ```no_run
/// use std::time::Instant;
/// use ticksock_client::{Client, Config, Event};
/// use ticksock_arena::proto::{Login, LoggedIn, ROUTE_LOGIN};
///
/// let mut client = Client::new("ws://127.0.0.1:7777/", Config::default())?;
/// client.call_then(ROUTE_LOGIN, &Login { name: "ann".into() }, |_session, outcome| {
///     match outcome.decode::<LoggedIn>() {
///         Ok(me) => println!("player {}", me.player_id),
///         Err(e) => eprintln!("login failed: {e}"),
///     }
/// })?;
/// loop {
///     client.update(Instant::now());
///     while let Some(event) = client.poll_event() {
///         if let Event::Connected { tick_hz, .. } = event {
///             println!("connected, {tick_hz} Hz");
///         }
///     }
///     // ... the rest of the frame ...
///     # break;
/// }
/// # Ok::<(), ticksock_client::Error>(())
/// ```
pub struct Client {
    /// The URL the client was made with; a redirect may take the session elsewhere
    /// ([`Session::connect_url`]).
    url: String,
    addr: SocketAddr,
    session: Session,
    conn: Option<Connection>,
    /// The old link of a redirect, while calls wait for their answers on it.
    old: Option<Connection>,
    /// An old link we closed, until the server answers the close frame (or `close_wait` ends).
    closing: Option<(Connection, Option<Instant>)>,
    poll: Poll,
    events: Events,
    last_error: Option<Error>,
    /// TLS settings, made at the first `wss://` URL (the client's own, or a redirect's).
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field("session", &self.session)
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `url` (`ws://host:port/`, or `wss://host:port/` for TLS,
    /// trusting Mozilla's roots and [`Config::extra_roots`]). It connects on the first
    /// [`Client::update`]; calls made before that wait in the offline queue. The host name is
    /// resolved here, once (this may block on DNS).
    pub fn new(url: &str, config: Config) -> Result<Self, Error> {
        let addr = resolve(url)?;
        // Check the URL now rather than at every connect, and the roots for a wss URL.
        let request = upgrade_request(url, config.versions)?;
        let tls = match request.uri().scheme_str() {
            Some("wss") => Some(crate::tls::client_config(&config.extra_roots)?),
            _ => None,
        };
        Ok(Self {
            tls,
            url: url.to_owned(),
            addr,
            session: Session::new(config, Instant::now()),
            conn: None,
            old: None,
            closing: None,
            poll: Poll::new()?,
            events: Events::with_capacity(4),
            last_error: None,
        })
    }

    /// Does everything due at `now`: connects or reconnects, reads what arrived, handles
    /// timeouts and heartbeats, sends what is queued. Call it once per frame.
    pub fn update(&mut self, now: Instant) {
        self.connect_if_due(now);
        if let Some(conn) = &mut self.conn {
            let progress = conn.pump(&mut self.session, now, |_, _| false);
            self.after(progress, now);
        }
        self.tend_old_link(now);
        // A redirect connects to the node at once.
        self.connect_if_due(now);
    }

    fn connect_if_due(&mut self, now: Instant) {
        if self.conn.is_some() {
            return;
        }
        if self.session.poll_timeout().is_some_and(|at| at <= now) {
            self.session.handle_timeout(now);
        }
        // Commands for a connection that no longer exists.
        while self.session.poll_link().is_some() {}
        if self.session.poll_connect(now) {
            self.open(now);
        }
    }

    /// Reads the old link of a redirect while the session keeps it, closes it (1000) once it
    /// does not, and finishes that close.
    fn tend_old_link(&mut self, now: Instant) {
        if let Some(old) = &mut self.old {
            if !self.session.keeps_old_link() {
                self.retire_old_link(now);
            } else if let Progress::Finished(_) = old.receive_old(&mut self.session, now) {
                self.old = None;
                self.session.handle_old_link_gone(now);
            }
        }
        if let Some((conn, deadline)) = &mut self.closing
            && (conn.finish_close() || deadline.is_some_and(|at| at <= now))
        {
            self.closing = None;
        }
    }

    /// Closes the old link with 1000 (`docs/PROTOCOL.md` 12.2: the new link is the client's).
    fn retire_old_link(&mut self, now: Instant) {
        if let Some(mut old) = self.old.take() {
            old.close(1000, "redirected");
            self.closing = Some((old, now.checked_add(self.session.config().close_wait)));
        }
    }

    fn open(&mut self, now: Instant) {
        let versions = self.session.config().versions;
        let target = match self.session.connect_url() {
            None => upgrade_request(&self.url, versions).map(|request| (self.addr, request)),
            // After a redirect, the node's URL, resolved now (a host name may block on DNS).
            Some(url) => resolve(url).and_then(|addr| Ok((addr, upgrade_request(url, versions)?))),
        };
        let target = target.and_then(|(addr, mut request)| {
            if let Some(token) = self.session.token() {
                offer_token(&mut request, token)?;
            }
            if self.session.config().tick_stamps {
                ask_tick_stamps(&mut request)?;
            }
            Ok((addr, request))
        });
        let (addr, request) = match target {
            Ok(target) => target,
            Err(e) => {
                self.session.handle_unusable_url(e.to_string(), now);
                self.last_error = Some(e);
                return;
            }
        };
        let config = self.session.config().websocket_config();
        let opened = self.open_connection(addr, request, config).and_then(|mut conn| {
            if let Some(tcp) = conn.tcp_mut() {
                self.poll.registry().register(tcp, SOCKET, Interest::READABLE | Interest::WRITABLE)?;
            }
            Ok(conn)
        });
        match opened {
            Ok(conn) => self.conn = Some(conn),
            Err(e) => {
                self.last_error = Some(e);
                self.session.handle_disconnect(now);
            }
        }
    }

    /// A connection to `addr` for `request`: over TLS when its URL is `wss://`.
    fn open_connection(
        &mut self,
        addr: SocketAddr,
        request: tungstenite::handshake::client::Request,
        config: tungstenite::protocol::WebSocketConfig,
    ) -> Result<Connection, Error> {
        if request.uri().scheme_str() != Some("wss") {
            return Connection::open(addr, request, config, false);
        }
        let tls = match &self.tls {
            Some(tls) => tls.clone(),
            None => {
                let tls = crate::tls::client_config(&self.session.config().extra_roots)?;
                self.tls.insert(tls).clone()
            }
        };
        Connection::open_tls(addr, request, config, tls)
    }

    fn after(&mut self, progress: Progress, now: Instant) {
        match progress {
            Progress::Finished(error) => {
                if let Some(e) = error {
                    self.last_error = Some(e);
                }
                // Dropping the connection closes its socket, which leaves the poll by itself.
                self.conn = None;
                self.session.handle_disconnect(now);
            }
            Progress::Redirected => {
                // One old link at a time: the session has let go of the previous one.
                self.retire_old_link(now);
                self.old = self.conn.take();
            }
            Progress::Connecting | Progress::Open => {}
        }
    }

    /// Sends what the session has queued, without reading (used right after a call).
    fn flush(&mut self) {
        if let Some(conn) = &mut self.conn
            && conn.is_open()
        {
            let progress = conn.transmit(&mut self.session);
            self.after(progress, Instant::now());
        }
    }

    /// Blocks until the socket has something to read, the session has a timer due, or `max`
    /// has passed, whichever is first. For tools and tests; a game loop does not need it.
    pub fn wait(&mut self, max: Duration) -> Result<(), Error> {
        let now = Instant::now();
        let mut timeout = max;
        if let Some(at) = self.session.poll_timeout() {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Err(e) if e.kind() != std::io::ErrorKind::Interrupted => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Calls `route`; the outcome comes as an [`Event::Outcome`]. Sent at once when connected,
    /// else queued (see [`Session::call`] for what fails at once).
    pub fn call<Req: Serialize + ?Sized>(&mut self, route: &str, request: &Req) -> Result<CallId, Error> {
        self.call_with(route, request, CallOptions::default())
    }

    /// Calls `route`; `then` gets the outcome during a later [`Client::update`].
    pub fn call_then<Req: Serialize + ?Sized>(
        &mut self,
        route: &str,
        request: &Req,
        then: impl FnOnce(&mut Session, Outcome) + Send + 'static,
    ) -> Result<CallId, Error> {
        self.call_with(route, request, CallOptions::default().then(then))
    }

    /// Calls `route` with per-call options (timeout, callback).
    pub fn call_with<Req: Serialize + ?Sized>(
        &mut self,
        route: &str,
        request: &Req,
        options: CallOptions,
    ) -> Result<CallId, Error> {
        let id = self.session.call_with(route, request, options, Instant::now())?;
        self.flush();
        Ok(id)
    }

    /// Calls `route` with a body already encoded (raw routes such as `echo`).
    pub fn call_raw(&mut self, route: &str, body: &[u8], options: CallOptions) -> Result<CallId, Error> {
        let id = self.session.call_raw(route, body, options, Instant::now())?;
        self.flush();
        Ok(id)
    }

    /// Registers the handler of `topic`'s pushes (see [`Session::on_push`]).
    pub fn on_push(&mut self, topic: &str, handler: impl FnMut(&[u8]) + Send + 'static) {
        self.session.on_push(topic, handler);
    }

    /// Registers a typed handler of `topic`'s pushes (see [`Session::on_push_typed`]).
    pub fn on_push_typed<T: DeserializeOwned>(
        &mut self,
        topic: &str,
        handler: impl FnMut(T) + Send + 'static,
    ) {
        self.session.on_push_typed(topic, handler);
    }

    /// The next event (see [`Event`]).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.session.poll_event()
    }

    /// Closes the connection and stops the session for good. Blocks until the server answers
    /// the close frame, at most [`Config::close_wait`].
    pub fn close(&mut self) {
        let now = Instant::now();
        self.session.close(now);
        // The session let go of the old link of a redirect, if any: it is closed too.
        self.tend_old_link(now);
        let Some(mut conn) = self.conn.take() else { return };
        if let Progress::Finished(Some(e)) = conn.transmit(&mut self.session) {
            self.last_error = Some(e);
        }
        self.session.handle_disconnect(now);
        // `None` (a `close_wait` of `Duration::MAX`): wait as long as the server takes.
        let deadline = now.checked_add(self.session.config().close_wait);
        while !conn.finish_close() {
            let left = deadline.map(|at| at.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                break;
            }
            if let Err(e) = self.poll.poll(&mut self.events, left)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                break;
            }
        }
    }

    /// Ends the current connection at once at the TCP level (both directions shut down),
    /// without a close frame, as a lost network does; the next [`Client::update`] notices, and
    /// the session reconnects (on version 2 it resumes, and calls in flight survive). For an
    /// app that learns its network changed, and for tests. Does nothing while not connected.
    pub fn drop_link(&mut self) {
        if let Some(tcp) = self.conn.as_mut().and_then(Connection::tcp_mut) {
            // A socket that is already gone has nothing left to shut down.
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Whether the server's welcome has arrived on the current connection.
    pub fn is_connected(&self) -> bool {
        self.session.is_connected()
    }

    /// The session (state, counters, pending calls).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session, to change it (push handlers, ids for tests).
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The last I/O or WebSocket error, if any (why the last connection failed or ended).
    pub fn last_error(&self) -> Option<&Error> {
        self.last_error.as_ref()
    }

    /// Takes the last error, leaving none.
    pub fn take_last_error(&mut self) -> Option<Error> {
        self.last_error.take()
    }

    /// The address of the server the client was made with (a redirect may take the session
    /// to another: [`Client::current_url`]).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the session connects now: the URL the client was made with, or the node a
    /// redirect moved it to (with the redirect's ticket until the first connection there).
    pub fn current_url(&self) -> &str {
        self.session.connect_url().unwrap_or(&self.url)
    }
}
