//! A server session's start and end, and version 2's resume (`docs/PROTOCOL.md` 11.4, 11.5).
//!
//! A welcome starts a fresh session ([`Event::Connected`]), unless a version 2 session is held:
//! then the link asks to resume it ([`LinkState::Resuming`](super::LinkState::Resuming)), and
//! the server's answer decides: [`Event::Resumed`] (nothing lost), or [`Event::SessionEnded`]
//! followed by [`Event::Connected`] for the welcome's new session.

use std::time::Instant;

use ticksock_protocol::Secret;

use super::sequence::Identity;
use super::{Event, Session, SessionEnd, State};

impl Session {
    /// A version 2 welcome: resume the session held, or start the welcome's.
    pub(super) fn welcomed_v2(&mut self, tick_hz: u16, welcome: Identity, now: Instant) {
        let State::AwaitingWelcome { since } = self.state else { return };
        self.link_tick_hz = tick_hz;
        self.stats.connections += 1;
        if self.sequencing.holds() {
            // The connect timeout still counts from the start of the attempt.
            self.state = State::Resuming { since };
            self.sequencing.begin_resume(welcome);
        } else {
            self.sequencing.start(welcome, true);
            self.start_fresh(tick_hz, welcome.conn_id, now);
        }
    }

    /// A version 1 welcome, or a version 2 welcome of a fresh session (also after a refused
    /// resume): the link is up and the game logs in; or, on the first link to the node of a
    /// redirect, the session has moved there (`redirect`).
    pub(super) fn start_fresh(&mut self, tick_hz: u16, conn_id: u64, now: Instant) {
        if self.arrived(tick_hz, conn_id, now) {
            return;
        }
        self.state = State::Up { since: now };
        self.welcome = Some((tick_hz, conn_id));
        // The offline queue waits until the game has seen this session (and logged in).
        self.outbox.hold();
        self.release_on_poll = false;
        self.queued_connected += 1;
        self.events.push_back(Event::Connected { tick_hz, conn_id });
    }

    /// The server resumed the session held, having taken `received` of its requests.
    pub(super) fn resumed(&mut self, received: u64, secret: Secret, now: Instant) {
        if !matches!(self.state, State::Resuming { .. }) {
            return self.violation(now, "a Resumed that answers no Resume".into());
        }
        match self.sequencing.resumed(received, secret) {
            Ok(_) => {
                self.state = State::Up { since: now };
                let conn_id = self.sequencing.conn_id().unwrap_or_default();
                self.welcome = Some((self.link_tick_hz, conn_id));
                self.stats.resumes += 1;
                self.events.push_back(Event::Resumed { tick_hz: self.link_tick_hz, conn_id });
            }
            Err(problem) => {
                // Going on could skip or repeat requests. The link is closed (which ends the
                // session on the server too), and the next one starts afresh.
                let reason = SessionEnd::CountMismatch { problem: problem.clone() };
                if self.end_session(reason, now) {
                    self.violation(now, problem);
                }
            }
        }
    }

    /// The server refused the resume: the session held is gone, and the link carries on as
    /// the new session of its welcome, which the server has started already.
    pub(super) fn resume_failed(&mut self, reason: u16, message: String, now: Instant) {
        if !matches!(self.state, State::Resuming { .. }) {
            return self.violation(now, "a ResumeFailed that answers no Resume".into());
        }
        self.stats.resume_failures += 1;
        let spare = self.sequencing.take_spare();
        if !self.end_session(SessionEnd::ResumeFailed { reason, message }, now) {
            return;
        }
        if let Some(spare) = spare {
            self.sequencing.start(spare, false);
            self.start_fresh(self.link_tick_hz, spare.conn_id, now);
        }
    }

    /// The version 2 session held ended for `reason`: calls sent on it fail with
    /// [`Outcome::Disconnected`](super::Outcome::Disconnected) (they may or may not have run),
    /// then [`Event::SessionEnded`] says why. Returns whether the link goes on as it was (a
    /// callback of a failed call may have dropped it, or closed the session).
    pub(super) fn end_session(&mut self, reason: SessionEnd, now: Instant) -> bool {
        self.sequencing.forget();
        let before = self.state;
        self.fail_sent(now);
        if self.state != State::Closed {
            self.events.push_back(Event::SessionEnded { reason });
        }
        self.state == before
    }
}
