//! Exponential backoff with jitter, as pure arithmetic (no clock, no global random source).

use std::time::Duration;

/// The delays between reconnect attempts: `initial * 2^(attempt - 1)`, capped at `max`, of
/// which a random fraction up to `jitter` is taken off.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    rng: XorShift,
}

impl Backoff {
    /// A backoff with these bounds; `seed` drives the jitter (`None`: a random seed).
    pub fn new(initial: Duration, max: Duration, jitter: f64, seed: Option<u64>) -> Self {
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        Self { initial, max: max.max(initial), jitter, rng: XorShift::new(seed.unwrap_or_else(random_seed)) }
    }

    /// The delay before attempt number `attempt` (1 for the first retry).
    pub fn delay(&mut self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let base = self.initial.saturating_mul(1u32 << doublings).min(self.max);
        base.mul_f64(1.0 - self.jitter * self.rng.next_f64())
    }

    /// The delay before `attempt` without jitter: the upper bound of [`Backoff::delay`].
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// A xorshift64* generator: tiny, fast, and good enough for jitter. Not for anything secret.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced, as xorshift cannot leave it).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `[0, n)` (`n` > 0; 0 gives 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// A seed from the standard library's per-process random hasher keys: no clock, no extra crate.
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_stays_in_bounds() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 0.5, Some(7));
        for attempt in 1..=20 {
            let ceiling = b.ceiling(attempt);
            let d = b.delay(attempt);
            assert!(d <= ceiling && d >= ceiling / 2, "attempt {attempt}: {d:?} vs {ceiling:?}");
        }
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(200));
        assert_eq!(b.ceiling(4), Duration::from_millis(800));
        assert_eq!(b.ceiling(5), Duration::from_secs(1));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1), 1.0, Some(1));
        let delays: std::collections::HashSet<Duration> = (0..50).map(|_| b.delay(1)).collect();
        assert!(delays.len() > 40, "jitter should rarely repeat a delay");
    }

    #[test]
    fn no_jitter_gives_exact_delays() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 0.0, None);
        assert_eq!(b.delay(3), Duration::from_millis(40));
    }
}
