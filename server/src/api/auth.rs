//! Who a connection is, when the game verifies tokens (PROTOCOL.md section 13): the game's
//! [`Authenticator`], the [`Identity`] it answers, and the [`Guard`]s routes declare.
//!
//! The verifier runs on the worker pool ([`crate::jobs`]), never on the reactor or the logic
//! thread, so one that asks a database or an HTTP service stalls no one.

use std::time::{Duration, Instant, SystemTime};

/// The game's token verifier. Called on a worker thread, once per token offered (at the
/// upgrade, or in an `auth` request).
pub trait Authenticator: Send + Sync + 'static {
    /// Who the token says the connection is, or why it is refused (the reason is logged, and
    /// sent to the client in the `unauthenticated` error of an `auth` request).
    fn verify(&self, token: &str) -> Result<Identity, String>;
}

/// Who a token says a connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user the connection is bound to (as with `Ctx::bind_user`).
    pub user: String,
    /// Its roles, for routes that require one.
    pub roles: Vec<String>,
    /// When the identity expires (wall-clock: tokens carry such times); `None`: never.
    pub expires: Option<SystemTime>,
}

impl Identity {
    /// The instant, on this machine's monotonic clock, at which it expires, seen at `now`
    /// (`now_wall` being the same moment on the wall clock).
    pub(crate) fn expires_at(&self, now: Instant, now_wall: SystemTime) -> Option<Instant> {
        self.expires.map(|at| now + at.duration_since(now_wall).unwrap_or(Duration::ZERO))
    }
}

/// What a route requires before its handler runs (PROTOCOL.md 13.3). Requirements add up:
/// `Guard::role("admin")` implies an authenticated connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Guard {
    pub(crate) authenticated: bool,
    pub(crate) role: Option<String>,
    pub(crate) rate: Option<RouteRate>,
}

impl Guard {
    /// The connection must be authenticated (not anonymous, not expired past the grace).
    pub fn authenticated() -> Self {
        Self { authenticated: true, ..Self::default() }
    }

    /// The connection's identity must have `role`.
    pub fn role(role: &str) -> Self {
        Self { authenticated: true, role: Some(role.to_owned()), ..Self::default() }
    }

    /// Each connection may call the route `per_sec` times a second on average, `burst` at
    /// once; past it the route answers `rate_limited` (the connection is not closed).
    pub fn rate(per_sec: u32, burst: u32) -> Self {
        Self {
            rate: Some(RouteRate { per_sec: f64::from(per_sec), burst: f64::from(burst.max(1)) }),
            ..Self::default()
        }
    }

    /// This guard and `other` together.
    pub(crate) fn and(self, other: Guard) -> Guard {
        Guard {
            authenticated: self.authenticated || other.authenticated,
            role: other.role.or(self.role),
            rate: other.rate.or(self.rate),
        }
    }
}

/// A route's own rate, per connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RouteRate {
    per_sec: f64,
    burst: f64,
}

/// A token bucket: full at first, refilled at the rate, one token per call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket at `now`.
    pub(crate) fn full(rate: RouteRate, now: Instant) -> Self {
        Self { tokens: rate.burst, at: now }
    }

    /// Takes a token at `now`; `false` if there is none.
    pub(crate) fn take(&mut self, rate: RouteRate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(rate.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What a connection's identity is now, as the hub keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Authenticated {
    pub(crate) roles: Vec<String>,
    pub(crate) expires_at: Option<Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let Some(rate) = Guard::rate(2, 3).rate else { panic!("a rate") };
        let t0 = Instant::now();
        let mut bucket = Bucket::full(rate, t0);
        assert!((0..3).all(|_| bucket.take(rate, t0)), "the burst");
        assert!(!bucket.take(rate, t0));
        assert!(!bucket.take(rate, t0 + Duration::from_millis(499)));
        assert!(bucket.take(rate, t0 + Duration::from_millis(500)), "two a second");
        assert!(!bucket.take(rate, t0 + Duration::from_millis(500)));
    }

    #[test]
    fn guards_add_up_and_a_role_implies_authentication() {
        let g = Guard::rate(1, 1).and(Guard::role("admin"));
        assert!(g.authenticated);
        assert_eq!(g.role.as_deref(), Some("admin"));
        assert!(g.rate.is_some());
    }

    #[test]
    fn expiry_is_carried_from_the_wall_clock_to_the_monotonic_one() {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let id = Identity { user: "a".into(), roles: vec![], expires: Some(wall + Duration::from_secs(60)) };
        assert_eq!(id.expires_at(now, wall), Some(now + Duration::from_secs(60)));
        let past = Identity { expires: Some(wall - Duration::from_secs(1)), ..id };
        assert_eq!(past.expires_at(now, wall), Some(now), "already expired: now");
    }
}
