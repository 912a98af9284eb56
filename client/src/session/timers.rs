//! What is due when: call timeouts, the connect timeout, the heartbeat (a ping after a quiet
//! spell, a drop after a silent one), and the reset of the failure count once a connection has
//! stayed up long enough.
//!
//! A timing too long for an `Instant` to count to (`Duration::MAX`) never comes due: every
//! instant here is a `checked_add`, and `None` means "never".

use std::time::Instant;

use super::{LinkCommand, Outcome, Session, State};

impl Session {
    /// When [`Session::handle_timeout`] (or, while down, [`Session::poll_connect`]) should be
    /// called next; `None` when nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.deadlines.first().map(|(t, _)| t);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        match self.state {
            State::Connecting { since } | State::AwaitingWelcome { since } | State::Resuming { since } => {
                consider(since.checked_add(self.config.connect_timeout))
            }
            State::Up { since } => {
                if self.failures > 0 {
                    consider(since.checked_add(self.config.stable_after));
                }
                consider(self.sequencing.ack_deadline(self.config.ack_delay));
            }
            State::Down => consider(self.reconnect_at),
            State::Closed => {}
        }
        consider(self.heartbeat);
        consider(self.old_link_deadline());
        next
    }

    /// Handles everything due at `now`: call timeouts, the end of a redirect's old link, the connect timeout (which covers a
    /// resume's answer too), the heartbeat, the reset of the failure count after a stable
    /// connection, and (version 2) the Ack owed for frames received: it is then given by
    /// [`Session::poll_transmit`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.time_out_calls(now);
        self.settle_old_link(now);
        match self.state {
            State::Connecting { since } | State::AwaitingWelcome { since } | State::Resuming { since }
                if now.saturating_duration_since(since) >= self.config.connect_timeout =>
            {
                self.link.push_back(self.drop_command(1000, "connect timeout"));
                self.link_down(now);
            }
            State::Up { since } => {
                if now.saturating_duration_since(since) >= self.config.stable_after {
                    self.failures = 0;
                }
                self.sequencing.check_ack(now, self.config.ack_delay);
            }
            _ => {}
        }
        self.beat(now);
    }

    /// Ends every call whose deadline has passed with [`Outcome::Timeout`], earliest first; a
    /// call that had not been sent yet leaves the offline queue.
    fn time_out_calls(&mut self, now: Instant) {
        loop {
            let calls = &self.calls;
            self.deadlines.prune(|at, id| calls.has_deadline(at, id));
            let Some((deadline, id)) = self.deadlines.first() else { break };
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(entry) = self.calls.remove(id) {
                if entry.sent_at.is_none() {
                    let _ = self.outbox.remove(id);
                }
                self.finish(id, entry, Outcome::Timeout, now);
            }
        }
    }

    /// The heartbeat, if due: drop a connection silent for `idle_timeout` (on version 2
    /// without a close frame, to resume the session on the next), ping one quiet for
    /// `heartbeat_interval`, and re-arm for whichever comes next.
    fn beat(&mut self, now: Instant) {
        let Some(at) = self.heartbeat else { return };
        if at > now {
            return;
        }
        let quiet = now.saturating_duration_since(self.last_heard);
        if quiet >= self.config.idle_timeout {
            self.link.push_back(self.drop_command(1001, "no sign of life"));
            self.link_down(now);
        } else {
            let interval = self.config.heartbeat_interval;
            let ping_at = if quiet >= interval {
                self.link.push_back(LinkCommand::Ping);
                self.stats.pings += 1;
                now.checked_add(interval)
            } else {
                self.last_heard.checked_add(interval)
            };
            self.arm_heartbeat(ping_at);
        }
    }

    /// Arms the one heartbeat timer for the next ping at `ping_at`, or for the drop of a link
    /// silent since `last_heard`, whichever comes first (neither, if both timings are too long
    /// to count to).
    pub(super) fn arm_heartbeat(&mut self, ping_at: Option<Instant>) {
        let dead_at = self.last_heard.checked_add(self.config.idle_timeout);
        self.heartbeat = match (ping_at, dead_at) {
            (Some(ping), Some(dead)) => Some(ping.min(dead)),
            (ping, dead) => ping.or(dead),
        };
    }
}
