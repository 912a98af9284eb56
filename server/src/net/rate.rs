//! A per-connection inbound rate limit: two token buckets (messages and bytes), as pure
//! arithmetic on instants the caller passes in.
//!
//! A bucket holds at most `burst` tokens and refills at `rate` tokens a second; a message
//! takes one message token and one byte token per payload byte, from both buckets or from
//! neither. So a connection is never refused while, over every span of time `T`, it sends at
//! most `burst + T * rate` messages (and bytes): its bursts are free as long as its average
//! stays under the rate.

use std::time::Instant;

/// The rate and burst of both buckets (`Config::rate_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimits {
    /// `Config::rate_messages_per_sec`.
    pub(crate) messages_per_sec: u32,
    /// `Config::rate_burst_messages`.
    pub(crate) burst_messages: u32,
    /// `Config::rate_bytes_per_sec`.
    pub(crate) bytes_per_sec: u32,
    /// `Config::rate_burst_bytes`.
    pub(crate) burst_bytes: u32,
}

/// One token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    per_sec: f64,
    capacity: f64,
    tokens: f64,
}

impl Bucket {
    /// A full bucket.
    fn new(per_sec: u32, capacity: u32) -> Self {
        let capacity = f64::from(capacity);
        Self { per_sec: f64::from(per_sec), capacity, tokens: capacity }
    }

    fn refill(&mut self, elapsed_secs: f64) {
        self.tokens = (self.tokens + elapsed_secs * self.per_sec).min(self.capacity);
    }
}

/// Token buckets for one connection.
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    messages: Bucket,
    bytes: Bucket,
    last: Instant,
}

impl RateLimiter {
    /// A limiter that starts full: a new connection may send a whole burst at once.
    pub(crate) fn new(limits: RateLimits, now: Instant) -> Self {
        Self {
            messages: Bucket::new(limits.messages_per_sec, limits.burst_messages),
            bytes: Bucket::new(limits.bytes_per_sec, limits.burst_bytes),
            last: now,
        }
    }

    /// Whether a message of `len` bytes arriving at `now` is within the rate. A refused message
    /// costs no tokens.
    // Inlined into the reactor's read loop, which calls it once per message: left to itself
    // the compiler inlined it or not depending on unrelated code, and the loop with the call
    // cost 346 instructions a message in the echo bench under callgrind, 329 inlined.
    #[inline]
    pub(crate) fn admit(&mut self, len: usize, now: Instant) -> bool {
        // The reactor reads the clock once per turn, so the messages of one read, and of one
        // turn, come with the same `now`: nothing to refill, and no clock arithmetic (about 90
        // instructions a message).
        if now != self.last {
            let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
            self.last = now;
            self.messages.refill(elapsed);
            self.bytes.refill(elapsed);
        }
        let len = len as f64;
        if self.messages.tokens >= 1.0 && self.bytes.tokens >= len {
            self.messages.tokens -= 1.0;
            self.bytes.tokens -= len;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: Duration = Duration::from_millis(1);

    fn limits(messages_per_sec: u32, burst_messages: u32) -> RateLimits {
        RateLimits { messages_per_sec, burst_messages, bytes_per_sec: u32::MAX, burst_bytes: u32::MAX }
    }

    #[test]
    fn a_whole_burst_passes_at_once_then_tokens_come_back_at_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(limits(10, 30), t0);
        assert!((0..30).all(|_| r.admit(1, t0)), "the burst, not one second's worth, is the bound");
        assert!(!r.admit(1, t0), "the 31st in the same instant is over");
        assert!(r.admit(1, t0 + 100 * MS), "one token back after 100 ms");
        assert!(!r.admit(1, t0 + 100 * MS));
    }

    /// The contract: over every span T, at most `burst + T * rate` messages, and a client
    /// that keeps within it is never refused, however bursty.
    #[test]
    fn bursts_within_burst_plus_rate_times_span_are_never_refused() {
        let t0 = Instant::now();
        let (rate, burst) = (1000, 1000);
        let mut r = RateLimiter::new(limits(rate, burst), t0);
        // A whole burst every 1.25 s: 800 a second on average, 1000 at a time. Ten rounds.
        for round in 0..10u32 {
            let at = t0 + round * 1250 * MS;
            let refused = (0..burst).filter(|_| !r.admit(1, at)).count();
            assert_eq!(refused, 0, "round {round}");
        }
        // The same client with one message too many in a round is refused that one.
        let at = t0 + 10 * 1250 * MS;
        assert!((0..burst).all(|_| r.admit(1, at)));
        assert!(!r.admit(1, at));
    }

    #[test]
    fn a_client_over_the_rate_is_refused_what_exceeds_it_and_no_more() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(limits(1000, 100), t0);
        // 2000 a second for 2 s, one message every 0.5 ms: the burst, then the rate.
        let admitted = (0..4000u32).filter(|&i| r.admit(1, t0 + i * MS / 2)).count();
        let expected = 100 + 2000 - 1;
        assert!(admitted.abs_diff(expected) <= 2, "{admitted} admitted, about {expected} expected");
    }

    #[test]
    fn limits_bytes_too() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(
            RateLimits { messages_per_sec: 1000, burst_messages: 1000, bytes_per_sec: 100, burst_bytes: 100 },
            t0,
        );
        assert!(r.admit(60, t0));
        assert!(!r.admit(60, t0));
        assert!(r.admit(40, t0));
        assert!(r.admit(50, t0 + 500 * MS));
    }
}
