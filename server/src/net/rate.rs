//! A per-connection inbound rate limit: two token buckets (messages and bytes), as pure
//! arithmetic on instants the caller passes in.

use std::time::Instant;

/// Token buckets for one connection. Each holds at most one second's worth of tokens, so a
/// client may burst up to its per-second allowance and then sustain it.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    messages_per_sec: f64,
    bytes_per_sec: f64,
    messages: f64,
    bytes: f64,
    last: Instant,
}

impl RateLimiter {
    /// A limiter that starts full.
    pub fn new(messages_per_sec: u32, bytes_per_sec: u32, now: Instant) -> Self {
        let (m, b) = (f64::from(messages_per_sec), f64::from(bytes_per_sec));
        Self { messages_per_sec: m, bytes_per_sec: b, messages: m, bytes: b, last: now }
    }

    /// Whether a message of `len` bytes arriving at `now` is within the rate. A refused message
    /// costs no tokens.
    pub fn admit(&mut self, len: usize, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.messages = (self.messages + elapsed * self.messages_per_sec).min(self.messages_per_sec);
        self.bytes = (self.bytes + elapsed * self.bytes_per_sec).min(self.bytes_per_sec);
        let len = len as f64;
        if self.messages >= 1.0 && self.bytes >= len {
            self.messages -= 1.0;
            self.bytes -= len;
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

    #[test]
    fn allows_a_burst_of_one_second_then_the_sustained_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10, 1_000_000, t0);
        assert!((0..10).all(|_| r.admit(1, t0)));
        assert!(!r.admit(1, t0), "the 11th in the same instant is over");
        assert!(r.admit(1, t0 + Duration::from_millis(100)), "one token back after 100 ms");
        assert!(!r.admit(1, t0 + Duration::from_millis(100)));
    }

    #[test]
    fn limits_bytes_too() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(1000, 100, t0);
        assert!(r.admit(60, t0));
        assert!(!r.admit(60, t0));
        assert!(r.admit(40, t0));
        assert!(r.admit(50, t0 + Duration::from_millis(500)));
    }
}
