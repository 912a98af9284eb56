//! The connection's lifecycle: when to connect, the WebSocket opening, the link dropping
//! (calls sent fail, or on version 2 wait for the resume; a reconnect is scheduled with
//! backoff, or the session gives up), and stopping for good.

use std::time::Instant;

use ticksock_protocol::Version;

#[cfg(doc)]
use super::Outcome;
use super::{Event, LinkCommand, Session, State};
use crate::Error;

impl Session {
    /// Whether to open a connection now. Returns `true` once per attempt; the session then
    /// waits for [`Session::handle_connected`] or [`Session::handle_disconnect`].
    pub fn poll_connect(&mut self, now: Instant) -> bool {
        self.now = now;
        if self.state == State::Down && self.reconnect_at.is_some_and(|at| at <= now) {
            self.reconnect_at = None;
            self.state = State::Connecting { since: now };
            self.stats.connect_attempts += 1;
            // The I/O layer offers this one at the upgrade it opens now.
            self.link_token.clone_from(&self.token);
            return true;
        }
        false
    }

    /// The WebSocket is open, speaking `version`: the one the server selected in its answer
    /// to the upgrade (its `Sec-WebSocket-Protocol`). The session arms its heartbeat and waits
    /// for the welcome. A version not offered ([`Config::versions`](crate::Config::versions))
    /// is a protocol violation: the link is dropped.
    pub fn handle_connected(&mut self, version: Version, now: Instant) {
        self.now = now;
        if let State::Connecting { since } = self.state {
            // The connect timeout still counts from the start of the attempt.
            self.state = State::AwaitingWelcome { since };
            self.version = Some(version);
            self.closed_by_server = false;
            self.last_heard = now;
            self.arm_heartbeat(now.checked_add(self.config.heartbeat_interval));
            if !self.config.versions.offers(version) {
                self.violation(now, format!("the server selected {version:?}, which was not offered"));
            }
        }
    }

    /// The connection failed or dropped (or the connect attempt failed). On version 1, and on
    /// version 2 after the server's close frame, calls in flight fail with
    /// [`Outcome::Disconnected`]; on version 2 otherwise they wait for the resume. A reconnect
    /// is scheduled with backoff. Does nothing when the session is already down.
    pub fn handle_disconnect(&mut self, now: Instant) {
        self.now = now;
        self.link_down(now);
    }

    /// The server sent a close frame. On version 2 that ends the session the link carries
    /// (`docs/PROTOCOL.md` 11.4), so the drop that follows fails the calls in flight at once
    /// and the next link starts afresh, without asking to resume. A link that did not carry the
    /// session yet (before the welcome, or with the resume unanswered) leaves it to the next
    /// resume to learn whether it lives.
    pub fn handle_server_close(&mut self, now: Instant) {
        self.now = now;
        if matches!(self.state, State::Up { .. }) {
            self.closed_by_server = true;
        }
    }

    /// [`Session::handle_server_close`], knowing the close frame's `code`: a 4002 (a refused
    /// ticket, [`ticksock_protocol::CLOSE_BAD_TICKET`]) on the first link to the node of a
    /// redirect fails the redirected calls with
    /// [`RedirectFailure::TicketRefused`](super::RedirectFailure::TicketRefused), and the
    /// session reconnects to its own URL, with backoff, once the link is gone; a 4003 or
    /// 4004 (the token was refused, or expired) forgets the token
    /// ([`Event::TokenRefused`]).
    pub fn handle_server_close_code(&mut self, code: u16, now: Instant) {
        self.handle_server_close(now);
        self.closed_with(code, now);
        self.token_closed_with(code);
    }

    /// The transport received a ping or a pong: the server is alive.
    pub fn handle_heard(&mut self, now: Instant) {
        self.now = now;
        self.last_heard = now;
    }

    /// Closes the session for good: the connection is closed (a [`LinkCommand::Close`], which
    /// on version 2 ends the server session too), calls sent fail with
    /// [`Outcome::Disconnected`] and calls queued with [`Outcome::Closed`].
    pub fn close(&mut self, now: Instant) {
        self.now = now;
        self.stop(now, Error::Closed, 1000);
    }

    /// Whether a connection is open or being opened.
    fn link_open(&self) -> bool {
        matches!(
            self.state,
            State::Connecting { .. }
                | State::AwaitingWelcome { .. }
                | State::Resuming { .. }
                | State::Up { .. }
        )
    }

    /// How to end a link the session gives up on: without a close frame while a version 2
    /// session is held (a close frame would end it on the server; the next link resumes it),
    /// else with a close frame of `code`.
    pub(super) fn drop_command(&self, code: u16, reason: &'static str) -> LinkCommand {
        if self.sequencing.holds() { LinkCommand::Drop } else { LinkCommand::Close { code, reason } }
    }

    /// The server broke the protocol: drop the connection (a reconnect follows).
    pub(super) fn violation(&mut self, now: Instant, problem: String) {
        self.events.push_back(Event::ProtocolError { problem });
        self.link.push_back(LinkCommand::Close { code: 1002, reason: "protocol error" });
        self.link_down(now);
    }

    /// The connection is gone: calls sent fail (unless a version 2 session waits to be
    /// resumed), and a reconnect is scheduled with backoff, or the session stops after too many
    /// failed attempts in a row.
    pub(super) fn link_down(&mut self, now: Instant) {
        let up_since = match self.state {
            State::Up { since } => Some(since),
            State::Connecting { .. } | State::AwaitingWelcome { .. } | State::Resuming { .. } => None,
            State::Down | State::Closed => return,
        };
        self.state = State::Down;
        self.heartbeat = None;
        if up_since.is_none() {
            // The first link to the node of a redirect failed: back to the driver's URL.
            self.arrival_failed(None, now);
        }
        if self.sequencing.holds() && !std::mem::take(&mut self.closed_by_server) {
            // The server keeps the session: calls in flight wait for the resume.
            if up_since.is_some() {
                self.events.push_back(Event::LinkDropped);
            }
        } else {
            // The session ended with the link (version 1, or the server's close frame).
            self.sequencing.forget();
            self.disconnect_owed = up_since.is_some();
            self.fail_sent(now);
            if self.state != State::Down {
                return; // A callback closed the session; `stop` reported the disconnect.
            }
            if std::mem::take(&mut self.disconnect_owed) {
                self.events.push_back(Event::Disconnected);
            }
        }
        if up_since.is_some_and(|since| now.saturating_duration_since(since) >= self.config.stable_after) {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        if self.config.max_attempts.is_some_and(|max| self.failures > max) && self.give_up_on_node() {
            // The node a redirect moved the session to is gone: its own URL gets a chance
            // (`docs/PROTOCOL.md` 12.4), with a fresh count.
            self.failures = 1;
        }
        if self.config.max_attempts.is_some_and(|max| self.failures > max) {
            let attempts = self.failures - 1;
            self.stop(now, Error::GaveUp { attempts }, 1000);
            return;
        }
        let delay = self.backoff.delay(self.failures);
        // A delay too long to count to (a `backoff_max` of `Duration::MAX`) never comes due.
        self.reconnect_at = now.checked_add(delay);
        self.events.push_back(Event::Reconnecting { attempt: self.failures, delay });
    }

    /// Stops for good: the connection is closed with `code`, calls sent fail with
    /// [`Outcome::Disconnected`] and calls queued with [`Outcome::Closed`].
    pub(super) fn stop(&mut self, now: Instant, reason: Error, code: u16) {
        if self.state == State::Closed {
            return;
        }
        if self.link_open() {
            self.link.push_back(LinkCommand::Close { code, reason: "closing" });
        }
        // Up, or dropping from up with the callbacks of its calls running (one closed it).
        let was_up = matches!(self.state, State::Up { .. }) || std::mem::take(&mut self.disconnect_owed);
        self.state = State::Closed;
        self.heartbeat = None;
        self.reconnect_at = None;
        self.sequencing.forget();
        self.end_old_link(now);
        self.fail_sent(now);
        self.fail_unsent_redirected(now);
        self.fail_queued(now);
        if was_up {
            self.events.push_back(Event::Disconnected);
        }
        self.events.push_back(Event::Stopped { reason });
    }
}
