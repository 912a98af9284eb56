//! The counter: about the smallest game there is. One route, `add`, adds a number to a total
//! that everyone shares and answers the new total. Every connection joins one group, gets the
//! total at once, and then gets it pushed once a second (counted in ticks).
//!
//! | route | request | reply | effect |
//! |-------|---------|-------|--------|
//! | `add` | `i64`   | `i64`, the new total | adds to the total; [`ERR_OVERFLOW`] if it would leave `i64` |
//!
//! Pushes: [`TOPIC_TOTAL`] carries the total (`i64`) to every connection.

use ticksock_protocol::error_code::APP_MIN;
use ticksock_server::{AppError, ConnId, Ctx, Game, Router, StaticFile, StaticFiles};

/// Route: add a number (`i64`, negative to subtract) to the total; answers the new total.
pub const ROUTE_ADD: &str = "add";
/// Push topic: the total (`i64`).
pub const TOPIC_TOTAL: &str = "total";
/// The group every connection joins, and the total is pushed to.
pub const GROUP: &str = "counter";
/// Error code: the total would overflow an `i64`; it is left as it was.
pub const ERR_OVERFLOW: u16 = APP_MIN;

/// The counter game.
#[derive(Debug)]
pub struct Counter {
    total: i64,
    pushes: Cadence,
}

impl Counter {
    /// A counter at zero that pushes the total to [`GROUP`] every `push_every` ticks (at least
    /// 1): the tick rate, for once a second.
    pub fn new(push_every: u32) -> Self {
        Self { total: 0, pushes: Cadence::new(push_every) }
    }

    /// The total.
    pub fn total(&self) -> i64 {
        self.total
    }

    /// Adds `n` to the total and returns it, or refuses if it would overflow.
    pub fn add(&mut self, n: i64) -> Result<i64, AppError> {
        self.total = self
            .total
            .checked_add(n)
            .ok_or_else(|| AppError::new(ERR_OVERFLOW, format!("adding {n} to {} overflows", self.total)))?;
        Ok(self.total)
    }
}

impl Game for Counter {
    fn routes(router: &mut Router<Self>) {
        router.route(ROUTE_ADD, |counter, _ctx, _caller, n: i64| counter.add(n));
    }

    fn on_connect(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        ctx.hub_mut().join(conn, GROUP);
        // So that a new page shows the total at once rather than at the next push.
        ctx.push(conn, TOPIC_TOTAL, &self.total);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        if self.pushes.tick() {
            ctx.send_to_group(GROUP, TOPIC_TOTAL, &self.total, &[]);
        }
    }
}

/// Once every `every` ticks: the first time on tick `every`. Counted here rather than from
/// [`Ctx::tick`], whose index jumps over the ticks a slow tick made the server skip, so a
/// multiple of `every` could be jumped over and a push missed; counting the ticks that ran
/// never misses one, at the price of pushing a little less often than once a second while
/// ticks are being skipped.
#[derive(Debug)]
struct Cadence {
    every: u32,
    since: u32,
}

impl Cadence {
    fn new(every: u32) -> Self {
        Self { every: every.max(1), since: 0 }
    }

    /// Counts a tick; true when it is the one to act on.
    fn tick(&mut self) -> bool {
        self.since += 1;
        if self.since < self.every {
            return false;
        }
        self.since = 0;
        true
    }
}

/// The counter's page (`examples/pages/counter/index.html`) and the browser client it
/// imports, built into the program.
pub fn page() -> StaticFiles {
    const FILES: &[StaticFile] = &[
        StaticFile {
            path: "/index.html",
            content_type: crate::HTML,
            body: include_bytes!("../pages/counter/index.html"),
        },
        crate::TICKSOCK_JS,
    ];
    StaticFiles::embedded(FILES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cadence_fires_on_every_nth_tick() {
        let mut every_third = Cadence::new(3);
        let fired: Vec<bool> = (0..7).map(|_| every_third.tick()).collect();
        assert_eq!(fired, [false, false, true, false, false, true, false]);
        let mut zero_means_one = Cadence::new(0);
        assert!((0..3).all(|_| zero_means_one.tick()));
    }

    #[test]
    fn add_answers_the_new_total_and_refuses_to_overflow() {
        let mut counter = Counter::new(1);
        assert_eq!(counter.add(5), Ok(5));
        assert_eq!(counter.add(-7), Ok(-2));
        assert_eq!(counter.add(i64::MIN).map_err(|e| e.code), Err(ERR_OVERFLOW));
        assert_eq!(counter.total(), -2, "a refused add leaves the total as it was");
        assert_eq!(counter.add(i64::MAX), Ok(i64::MAX - 2));
    }
}
