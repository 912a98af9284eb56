//! A blocking convenience over [`Client`], for tools and tests.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use ticksock_protocol::{AuthReply, ROUTE_AUTH};

use crate::session::{CallId, CallOptions, Event, Outcome};
use crate::{Client, Config, Error};

/// A [`Client`] whose calls block until their outcome. Events that arrive meanwhile (pushes,
/// connection events) are kept for [`BlockingClient::poll_event`]; pushes beyond
/// [`Config::max_queued_pushes`] are dropped. Since it reads events while it waits, calls
/// queued offline go out as soon as a reconnect's [`Event::Connected`] is kept: a game that
/// must log in again before them drives a [`Client`] itself.
///
/// ```no_run
/// use ticksock_client::{BlockingClient, Config};
/// use ticksock_arena::proto::{Login, LoggedIn, ROUTE_LOGIN};
/// use std::time::Duration;
///
/// let mut c = BlockingClient::connect("ws://127.0.0.1:7777/", Config::default(), Duration::from_secs(5))?;
/// let me: LoggedIn = c.call(ROUTE_LOGIN, &Login { name: "ann".into() })?;
/// # Ok::<(), ticksock_client::Error>(())
/// ```
#[derive(Debug)]
pub struct BlockingClient {
    client: Client,
    stash: VecDeque<Event>,
    stashed_pushes: usize,
}

impl BlockingClient {
    /// Connects to `url` and waits for the welcome, at most `within` (retrying with the
    /// session's backoff meanwhile; `Duration::MAX` waits until it connects or gives up).
    pub fn connect(url: &str, config: Config, within: Duration) -> Result<Self, Error> {
        Self::connect_with_token(url, config, None, within)
    }

    /// [`BlockingClient::connect`], offering `token` at the upgrade (and at every reconnect,
    /// see [`Session::set_token`](crate::Session::set_token)): a game that kept the token of
    /// an earlier sign-in is authenticated before its first call. A refused token closes the
    /// connection (4003) right after the welcome: the next call fails with
    /// [`Outcome::Disconnected`], an [`Event::TokenRefused`] is among the events, and the
    /// client reconnects anonymous.
    pub fn connect_with_token(
        url: &str,
        config: Config,
        token: Option<String>,
        within: Duration,
    ) -> Result<Self, Error> {
        let mut client = Client::new(url, config)?;
        client.session_mut().set_token(token)?;
        let mut this = Self { client, stash: VecDeque::new(), stashed_pushes: 0 };
        let deadline = Deadline::after(within);
        loop {
            this.client.update(Instant::now());
            while let Some(event) = this.client.poll_event() {
                match event {
                    Event::Connected { .. } => {
                        this.stash.push_back(event);
                        return Ok(this);
                    }
                    Event::Stopped { reason } => return Err(reason),
                    other => this.keep(other),
                }
            }
            let Some(left) = deadline.left() else {
                return Err(this.client.take_last_error().unwrap_or(Error::ConnectTimeout(within)));
            };
            this.client.wait(left)?;
        }
    }

    /// Calls `route` with `request` and waits for the reply, decoded as `Resp`.
    pub fn call<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &mut self,
        route: &str,
        request: &Req,
    ) -> Result<Resp, Error> {
        let id = self.client.call(route, request)?;
        self.wait_outcome(id).decode()
    }

    /// Sends `token` in band (`auth`, `docs/PROTOCOL.md` 13.2) and waits for the answer; if
    /// the server accepts it, every reconnect offers it from now on. A refused token is
    /// [`Error::Server`] with code 10 (`unauthenticated`) and leaves the kept token as it was.
    pub fn authenticate(&mut self, token: &str) -> Result<AuthReply, Error> {
        // Checked before anything is sent, so a token the server cannot read costs no call.
        crate::session::check_token(token)?;
        let reply: AuthReply = self.call(ROUTE_AUTH, &token)?;
        self.client.session_mut().set_token(Some(token.to_owned()))?;
        Ok(reply)
    }

    /// Calls `route` with a body already encoded and waits for the reply's body.
    pub fn call_raw(&mut self, route: &str, body: &[u8]) -> Result<Vec<u8>, Error> {
        let id = self.client.call_raw(route, body, CallOptions::default())?;
        self.wait_outcome(id).into_result()
    }

    /// Waits for the outcome of a call made through [`BlockingClient::client_mut`] without a
    /// callback. Returns at the latest when the call times out.
    pub fn wait_outcome(&mut self, id: CallId) -> Outcome {
        if let Some(at) =
            self.stash.iter().position(|e| matches!(e, Event::Outcome { id: i, .. } if *i == id))
            && let Some(Event::Outcome { outcome, .. }) = self.stash.remove(at)
        {
            return outcome;
        }
        loop {
            self.client.update(Instant::now());
            while let Some(event) = self.client.poll_event() {
                match event {
                    Event::Outcome { id: done, outcome, .. } if done == id => return outcome,
                    other => self.keep(other),
                }
            }
            if !self.client.session().is_pending(id) {
                // Its outcome went to a callback, or it never existed.
                return Outcome::Closed;
            }
            // The call's own timeout bounds this loop; a second is just the longest nap.
            let _ = self.client.wait(Duration::from_secs(1));
        }
    }

    /// Waits up to `within` for the next event (`Duration::MAX`: until there is one).
    pub fn wait_event(&mut self, within: Duration) -> Option<Event> {
        let deadline = Deadline::after(within);
        loop {
            if let Some(event) = self.poll_event() {
                return Some(event);
            }
            let left = deadline.left()?;
            let _ = self.client.wait(left);
            self.client.update(Instant::now());
        }
    }

    /// The next event already received, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(event) = self.stash.pop_front() {
            if let Event::Push { .. } = event {
                self.stashed_pushes -= 1;
            }
            return Some(event);
        }
        self.client.poll_event()
    }

    /// The client underneath.
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The client underneath (read-only).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Closes the connection and stops the session.
    pub fn close(mut self) {
        self.client.close();
    }

    fn keep(&mut self, event: Event) {
        if let Event::Push { .. } = event {
            if self.stashed_pushes >= self.client.session().config().max_queued_pushes {
                return;
            }
            self.stashed_pushes += 1;
        }
        self.stash.push_back(event);
    }
}

/// When a blocking wait ends; `None` for a wait too long for an `Instant` to count to
/// (`Duration::MAX`), which never ends.
#[derive(Debug, Clone, Copy)]
struct Deadline(Option<Instant>);

impl Deadline {
    fn after(within: Duration) -> Self {
        Self(Instant::now().checked_add(within))
    }

    /// The time left, or `None` once it has passed. A wait without end has a day left at a
    /// time, which [`Client::wait`] cuts short anyway at the session's next timer.
    fn left(self) -> Option<Duration> {
        const A_DAY: Duration = Duration::from_secs(24 * 3600);
        match self.0 {
            None => Some(A_DAY),
            Some(at) => Some(at.saturating_duration_since(Instant::now())).filter(|left| !left.is_zero()),
        }
    }
}
