//! The fixed-tick schedule, as pure arithmetic on instants the caller passes in.
//!
//! Ticks fall on absolute deadlines, `start + n * period`, so rounding never accumulates into
//! drift. A tick that starts more than a period late does not trigger a burst of catch-up
//! ticks: the missed slots are counted as skipped and the schedule moves on to the next
//! deadline after `now`.

use std::time::{Duration, Instant};

/// When the next tick is due, and what happened to the past ones.
#[derive(Debug, Clone)]
pub struct TickSchedule {
    start: Instant,
    period: Duration,
    next_index: u64,
    skipped: u64,
}

/// A tick that is due now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// The tick's slot: it was scheduled for `start + index * period`.
    pub index: u64,
    /// When it was scheduled.
    pub scheduled: Instant,
    /// How late it starts.
    pub lateness: Duration,
    /// Slots skipped just before this one because the previous tick overran.
    pub skipped: u64,
}

impl TickSchedule {
    /// A schedule whose tick 0 is due at `start`.
    pub fn new(start: Instant, period: Duration) -> Self {
        assert!(!period.is_zero(), "a tick period must be positive");
        Self { start, period, next_index: 0, skipped: 0 }
    }

    /// When the next tick is due.
    pub fn next_deadline(&self) -> Instant {
        self.deadline_of(self.next_index)
    }

    /// Slots skipped so far because ticks overran.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Returns the tick due at `now`, if any, and advances the schedule past it.
    pub fn poll(&mut self, now: Instant) -> Option<Tick> {
        let scheduled = self.next_deadline();
        if now < scheduled {
            return None;
        }
        let behind = now.duration_since(scheduled);
        // Slots whose deadline has also passed are skipped, not run back to back.
        let missed = (behind.as_nanos() / self.period.as_nanos()) as u64;
        let index = self.next_index + missed;
        self.next_index = index + 1;
        self.skipped += missed;
        let scheduled = self.deadline_of(index);
        Some(Tick { index, scheduled, lateness: now.duration_since(scheduled), skipped: missed })
    }

    fn deadline_of(&self, index: u64) -> Instant {
        // u32 ticks at 1 kHz last 49 days; beyond that the multiply is split.
        let whole = u32::try_from(index).unwrap_or(u32::MAX);
        let mut at = self.start + self.period * whole;
        let mut remaining = index - u64::from(whole);
        while remaining > 0 {
            let step = u32::try_from(remaining).unwrap_or(u32::MAX);
            at += self.period * step;
            remaining -= u64::from(step);
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_millis(10);

    #[test]
    fn nothing_is_due_before_the_deadline() {
        let t0 = Instant::now();
        let mut s = TickSchedule::new(t0 + PERIOD, PERIOD);
        assert_eq!(s.poll(t0), None);
        assert_eq!(s.poll(t0 + PERIOD - Duration::from_nanos(1)), None);
    }

    #[test]
    fn deadlines_are_absolute_so_lateness_does_not_drift() {
        let t0 = Instant::now();
        let mut s = TickSchedule::new(t0, PERIOD);
        for i in 0..100u32 {
            // Every tick starts 3 ms late; the deadlines stay on the grid anyway.
            let tick = s.poll(t0 + PERIOD * i + Duration::from_millis(3)).expect("due");
            assert_eq!(tick.index, u64::from(i));
            assert_eq!(tick.lateness, Duration::from_millis(3));
            assert_eq!(tick.skipped, 0);
        }
        assert_eq!(s.next_deadline(), t0 + PERIOD * 100);
    }

    #[test]
    fn an_overrun_skips_slots_instead_of_bursting() {
        let t0 = Instant::now();
        let mut s = TickSchedule::new(t0, PERIOD);
        s.poll(t0).expect("tick 0");
        // The game stalls for 35 ms: ticks 1, 2 and 3 are overdue.
        let tick = s.poll(t0 + Duration::from_millis(35)).expect("due");
        assert_eq!(tick.index, 3);
        assert_eq!(tick.skipped, 2);
        assert_eq!(tick.lateness, Duration::from_millis(5));
        assert_eq!(s.skipped(), 2);
        // No burst: the next tick waits for its own deadline.
        assert_eq!(s.poll(t0 + Duration::from_millis(36)), None);
        assert_eq!(s.next_deadline(), t0 + Duration::from_millis(40));
    }
}
