//! Liveness of one connection, as pure arithmetic on instants the caller passes in.
//!
//! One `Liveness` per connection, owned by the connection and swept by the reactor: there is
//! no timer per connection to pile up or leak.

use std::time::{Duration, Instant};

/// What the sweep should do with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Alive,
    /// It has been quiet for a ping interval: send it a ping.
    SendPing,
    /// It has been silent past the idle timeout: close it.
    Dead,
}

/// When a connection was last heard from and whether a ping is outstanding.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    last_heard: Instant,
    ping_outstanding: bool,
}

impl Liveness {
    /// A connection heard from at `now`.
    pub fn new(now: Instant) -> Self {
        Self { last_heard: now, ping_outstanding: false }
    }

    /// Anything arrived from the peer (data, pong, ping): it is alive.
    pub fn handle_heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.ping_outstanding = false;
    }

    /// How long it has been quiet at `now`: since it was last heard from.
    pub fn quiet_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_heard)
    }

    /// Decides what to do at `now`. Returns [`Verdict::SendPing`] at most once per quiet spell.
    pub fn poll(&mut self, now: Instant, ping_interval: Duration, idle_timeout: Duration) -> Verdict {
        let quiet = now.saturating_duration_since(self.last_heard);
        if quiet >= idle_timeout {
            Verdict::Dead
        } else if quiet >= ping_interval && !self.ping_outstanding {
            self.ping_outstanding = true;
            Verdict::SendPing
        } else {
            Verdict::Alive
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(30);

    #[test]
    fn pings_once_per_quiet_spell_then_declares_death() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        assert_eq!(l.poll(t0 + Duration::from_secs(9), PING, IDLE), Verdict::Alive);
        assert_eq!(l.poll(t0 + Duration::from_secs(10), PING, IDLE), Verdict::SendPing);
        assert_eq!(l.poll(t0 + Duration::from_secs(20), PING, IDLE), Verdict::Alive);
        assert_eq!(l.poll(t0 + Duration::from_secs(30), PING, IDLE), Verdict::Dead);
    }

    #[test]
    fn quiet_for_counts_from_the_last_time_it_was_heard() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        assert_eq!(l.quiet_for(t0 + PING), PING);
        l.handle_heard(t0 + Duration::from_secs(4));
        assert_eq!(l.quiet_for(t0 + PING), Duration::from_secs(6));
        assert_eq!(l.quiet_for(t0), Duration::ZERO, "a reading older than the last hearing");
    }

    #[test]
    fn hearing_from_the_peer_resets_everything() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        assert_eq!(l.poll(t0 + PING, PING, IDLE), Verdict::SendPing);
        l.handle_heard(t0 + Duration::from_secs(25));
        // 35 s after start is only 10 s after the peer was heard: not dead, ping again.
        assert_eq!(l.poll(t0 + Duration::from_secs(30), PING, IDLE), Verdict::Alive);
        assert_eq!(l.poll(t0 + Duration::from_secs(35), PING, IDLE), Verdict::SendPing);
    }
}
