//! Whether the machine can hold a tick rate, decided from the OS timer's shortest wait.
//!
//! The logic thread waits for each tick's deadline with a timed park, and the OS wakes it no
//! sooner than its timer allows: every tick starts at least one *timer floor* (the shortest
//! wait the timer gives) after its deadline. That is some 50–60 µs on Linux, where an ordinary
//! thread's timer slack is 50 µs, and a millisecond or more where timers are coarse (some
//! virtual machines and other systems). A tick that starts a whole period late is skipped, not
//! run twice (`TickSchedule`). Once the floor reaches half the period, the wait alone costs
//! half of every period, and any hiccup on top (the tick's own work, a batch of requests, a
//! busy core) pushes ticks past their slots: they are skipped, and the game runs at a lower
//! rate than it asked for. So a rate is held when its period spans [`FLOORS_PER_PERIOD`]
//! timer floors.
//!
//! The floor is measured once at start ([`crate::Server::start`]) on the starting thread, at
//! ordinary priority; a real-time logic thread has no timer slack, so the check errs towards
//! warning, and only at rates in the kHz on Linux.

use std::time::Duration;

/// Timer floors a tick period must span for the rate to be held: the wait may cost up to half
/// the period, and the other half is left for the tick's work and for lateness.
pub(crate) const FLOORS_PER_PERIOD: u32 = 2;

/// Whether a tick of `period` can be held by a timer whose shortest wait is `timer_floor`.
pub(crate) fn holds(period: Duration, timer_floor: Duration) -> bool {
    timer_floor.saturating_mul(FLOORS_PER_PERIOD) <= period
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn linux_timers_hold_every_game_rate() {
        // 30 Hz and 1 kHz with the 55 µs an ordinary Linux thread waits at least.
        assert!(holds(Duration::from_nanos(33_333_333), 55 * US));
        assert!(holds(MS, 55 * US));
    }

    #[test]
    fn a_period_under_two_floors_is_not_held() {
        let floor = 60 * US;
        assert!(holds(120 * US, floor), "exactly two floors");
        assert!(!holds(119 * US, floor));
        // 10 kHz (100 µs) on the same timer.
        assert!(!holds(100 * US, floor));
    }

    #[test]
    fn a_coarse_timer_caps_the_rate() {
        // A 15.6 ms timer (a coarse system tick) holds 30 Hz but not 60 Hz.
        let floor = Duration::from_micros(15_600);
        assert!(holds(Duration::from_nanos(33_333_333), floor));
        assert!(!holds(Duration::from_nanos(16_666_667), floor));
    }

    #[test]
    fn an_absurd_floor_does_not_overflow() {
        assert!(!holds(MS, Duration::MAX));
    }
}
