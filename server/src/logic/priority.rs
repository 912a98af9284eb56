//! How the logic thread asks the OS to schedule it ([`LogicPriority`]), and the real-time
//! window around each tick of a `Realtime` thread.
//!
//! Nice values are set exactly and read back from `/proc/thread-self/stat`: an unprivileged
//! thread may raise its nice value but never lower it again (`RLIMIT_NICE`, usually 0), so a
//! fallback must land on the value the thread started with, not on a value near it.

use std::time::{Duration, Instant};

use crate::config::LogicPriority;

/// The nice value of a raised logic thread (or the one it started with, if that is lower).
const RAISED_NICE: i32 = -10;

/// How long before a tick's deadline a `Realtime` logic thread switches to real-time
/// scheduling, at most. It sleeps until then as an ordinary thread, whose wake-up the
/// scheduler may delay by a few milliseconds on a busy machine: the window absorbs that, and
/// from its start every wake-up, the tick's own included, preempts ordinary threads at once.
/// Above 33 Hz the window is a third of the period instead, so that it closes between ticks.
pub(crate) const REALTIME_WINDOW: Duration = Duration::from_millis(10);

/// The real-time window for ticks `period` apart: [`REALTIME_WINDOW`], or a third of the
/// period when that is shorter.
fn realtime_window(period: Duration) -> Duration {
    REALTIME_WINDOW.min(period / 3)
}

/// The calling thread's nice value (field 19 of `/proc/thread-self/stat`); 0 where procfs
/// cannot be read (not Linux), which is every process's default.
fn current_nice() -> i32 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else { return 0 };
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    // After it, the state is field 3, so the nice value (field 19) is the 17th.
    stat.rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().nth(16))
        .and_then(|nice| nice.parse().ok())
        .unwrap_or(0)
}

/// Moves the calling thread to `SCHED_FIFO` at priority 1: above every ordinary thread, below
/// any other real-time work on the machine.
fn to_realtime() -> Result<(), String> {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ScheduleParams, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
    let lowest = ThreadPriority::from_posix(ScheduleParams { sched_priority: 1 });
    set_thread_priority_and_policy(thread_native_id(), lowest, fifo).map_err(|e| format!("{e:?}"))
}

/// Moves the calling thread to the ordinary policy (`SCHED_OTHER`) at nice value `nice`.
fn to_ordinary(nice: i32) -> Result<(), String> {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let other = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
    // thread_priority takes a value of 0..=99 and maps it to a nice value; the one that maps
    // to `nice` is found through its own mapping, so that no formula of its is assumed.
    let value = (0..=99u8)
        .filter_map(|v| ThreadPriorityValue::try_from(v).ok())
        .find(|&v| ThreadPriority::Crossplatform(v).to_posix(other).ok() == Some(nice))
        .ok_or_else(|| format!("no priority value maps to nice {nice}"))?;
    set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Crossplatform(value), other)
        .map_err(|e| format!("nice {nice}: {e:?}"))
}

/// Moves to the ordinary policy at nice `raised` if permitted, else at `base` (the value the
/// thread started with, which is always permitted), through `switch` ([`to_ordinary`], or a
/// stand-in in tests). Returns the nice value that applied.
fn ordinary_with(switch: impl Fn(i32) -> Result<(), String>, raised: i32, base: i32) -> Result<i32, String> {
    match switch(raised) {
        Ok(()) => Ok(raised),
        Err(refused) => switch(base).map(|()| base).map_err(|e| format!("{refused}; {e}")),
    }
}

/// Asks the OS to schedule the calling thread as `wanted`, falling back one step at a time
/// (real-time, then raised, then normal) where it is not permitted. Returns what applied.
/// A `Realtime` thread then runs as an ordinary one, at nice -10 if permitted and else at the
/// nice value it started with; [`RealtimeWindow`] moves it to real-time around each tick.
pub(crate) fn set_priority(wanted: LogicPriority) -> LogicPriority {
    let base = current_nice();
    let raised = RAISED_NICE.min(base);
    if wanted == LogicPriority::Realtime {
        // Real-time is tried now, so that a refusal falls back at once and not at the first
        // tick, then left until the first tick's window.
        match to_realtime() {
            Ok(()) => {
                match ordinary_with(to_ordinary, raised, base) {
                    Ok(nice) => tracing::debug!("logic thread: real-time around ticks, nice {nice} between"),
                    // Leaving real-time at the nice value the thread already has is always
                    // permitted; should it fail all the same, the thread stays real-time.
                    Err(e) => tracing::warn!("logic thread stays real-time between ticks: {e}"),
                }
                return LogicPriority::Realtime;
            }
            Err(e) => tracing::info!("logic thread cannot be scheduled as Realtime: {e}"),
        }
    }
    if wanted != LogicPriority::Normal {
        match to_ordinary(raised) {
            Ok(()) => {
                tracing::debug!("logic thread scheduled as Raised (nice {raised})");
                return LogicPriority::Raised;
            }
            Err(e) => tracing::info!("logic thread cannot be scheduled as Raised: {e}"),
        }
    }
    LogicPriority::Normal
}

/// The real-time window of a `Realtime` logic thread: on from [`realtime_window`] before a
/// tick's deadline until the tick has run, off in between, so that requests between ticks are
/// handled as an ordinary thread's work (woken with the scheduler's batching, not at once for
/// every batch of requests), and ticks start on time.
///
/// Call order, per tick: [`RealtimeWindow::sleep_until`] before each wait (it opens the window
/// once its start has come), [`RealtimeWindow::close`] after the tick has run.
pub(crate) struct RealtimeWindow {
    enabled: bool,
    on: bool,
    length: Duration,
    /// The nice value the thread has between ticks, restored when the window closes.
    nice_between: i32,
}

impl RealtimeWindow {
    /// For a thread that [`set_priority`] scheduled as `priority`, ticking every `period`;
    /// created on that thread, whose nice value between ticks it takes as it is now.
    pub(crate) fn new(priority: LogicPriority, period: Duration) -> Self {
        Self {
            enabled: priority == LogicPriority::Realtime,
            on: false,
            length: realtime_window(period),
            nice_between: current_nice(),
        }
    }

    /// Until when to sleep before a tick due at `deadline`: the window's start, if it is
    /// enabled and not open yet; there the loop comes back and opens it.
    pub(crate) fn sleep_until(&mut self, now: Instant, deadline: Instant) -> Instant {
        if !self.enabled {
            return deadline;
        }
        match deadline.checked_sub(self.length) {
            Some(start) if now < start => start,
            _ => {
                self.open();
                deadline
            }
        }
    }

    fn open(&mut self) {
        if self.on {
            return;
        }
        match to_realtime() {
            Ok(()) => self.on = true,
            Err(e) => {
                // Permitted at start, refused now (a changed rlimit): stay as we are.
                tracing::warn!("logic thread stops switching to real-time around ticks: {e}");
                self.enabled = false;
            }
        }
    }

    /// The tick has run: back to the ordinary policy until the next window.
    pub(crate) fn close(&mut self) {
        if !self.on {
            return;
        }
        if let Err(e) = to_ordinary(self.nice_between) {
            // Not expected: the nice value is the thread's own of before. Stop switching, and
            // say where the thread was left (the policy may have changed before the nice
            // value failed).
            self.enabled = false;
            let realtime = matches!(
                thread_priority::thread_schedule_policy(),
                Ok(thread_priority::ThreadSchedulePolicy::Realtime(_))
            );
            self.on = realtime;
            let left = if realtime { "real-time" } else { "ordinary, at another nice value" };
            tracing::warn!("logic thread stops switching around ticks and stays {left}: {e}");
            return;
        }
        self.on = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thread_priority::{ThreadSchedulePolicy, thread_schedule_policy};

    /// The policy the calling thread has now.
    fn current_policy() -> ThreadSchedulePolicy {
        thread_schedule_policy().expect("sched_getscheduler")
    }

    #[test]
    fn the_thread_gets_the_priority_and_nice_value_reported_or_keeps_its_own() {
        // In fresh threads, since a thread's own policy is what changes.
        let normal = std::thread::spawn(|| {
            let base = current_nice();
            (set_priority(LogicPriority::Normal), current_policy(), current_nice() == base)
        })
        .join()
        .expect("thread");
        assert_eq!(normal.0, LogicPriority::Normal);
        assert!(matches!(normal.1, ThreadSchedulePolicy::Normal(_)), "{:?}", normal.1);
        assert!(normal.2, "Normal leaves the nice value alone");

        let raised = std::thread::spawn(|| {
            let base = current_nice();
            (set_priority(LogicPriority::Raised), base, current_nice())
        })
        .join()
        .expect("thread");
        match raised.0 {
            LogicPriority::Raised => assert_eq!(raised.2, RAISED_NICE.min(raised.1)),
            _ => assert_eq!(raised.2, raised.1, "a refused raise leaves the nice value alone"),
        }

        let seen = std::thread::spawn(|| {
            let base = current_nice();
            let applied = set_priority(LogicPriority::Realtime);
            // Between ticks: the ordinary policy, whatever was granted.
            let between = (current_policy(), current_nice());
            let mut window = RealtimeWindow::new(applied, Duration::from_secs(1) / 30);
            let now = Instant::now();
            let far = now + Duration::from_secs(1);
            let early = window.sleep_until(now, far);
            let before_window = current_policy();
            window.sleep_until(now, now + REALTIME_WINDOW / 2);
            let in_window = current_policy();
            window.close();
            (
                base,
                applied,
                between,
                early == far - REALTIME_WINDOW,
                before_window,
                in_window,
                (current_policy(), current_nice()),
            )
        })
        .join()
        .expect("thread");
        let (base, applied, between, wakes_at_window_start, before_window, in_window, after_tick) = seen;
        assert!(matches!(between.0, ThreadSchedulePolicy::Normal(_)), "{between:?}");
        assert!(wakes_at_window_start, "a far tick is slept toward the window's start first");
        assert!(matches!(before_window, ThreadSchedulePolicy::Normal(_)), "{before_window:?}");
        // Which step applies depends on the privileges the tests run with; whichever it is,
        // the thread must really have it.
        match applied {
            LogicPriority::Realtime => {
                assert!(matches!(in_window, ThreadSchedulePolicy::Realtime(_)), "{in_window:?}");
                assert!(between.1 == RAISED_NICE.min(base) || between.1 == base, "nice {between:?}");
            }
            LogicPriority::Raised => {
                assert!(matches!(in_window, ThreadSchedulePolicy::Normal(_)), "{in_window:?}");
                assert_eq!(between.1, RAISED_NICE.min(base));
            }
            LogicPriority::Normal => {
                assert!(matches!(in_window, ThreadSchedulePolicy::Normal(_)), "{in_window:?}");
                assert_eq!(between.1, base);
            }
        }
        assert!(matches!(after_tick.0, ThreadSchedulePolicy::Normal(_)), "{after_tick:?}");
        assert_eq!(after_tick.1, between.1, "closing the window restores the nice value");
    }

    #[test]
    fn every_nice_value_can_be_set_exactly() {
        // thread_priority's 0..=99 scale is mapped to nice values by its own formula; each
        // value the logic thread may need must be reachable.
        use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue};
        let other = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
        for nice in -20..=19 {
            let reachable = (0..=99u8)
                .filter_map(|v| ThreadPriorityValue::try_from(v).ok())
                .any(|v| ThreadPriority::Crossplatform(v).to_posix(other).ok() == Some(nice));
            assert!(reachable, "nice {nice}");
        }
    }

    #[test]
    fn the_window_is_ten_ms_or_a_third_of_a_short_period() {
        assert_eq!(realtime_window(Duration::from_secs(1) / 30), REALTIME_WINDOW);
        assert_eq!(realtime_window(Duration::from_millis(10)), Duration::from_millis(10) / 3);
        // At 100 Hz and more a window of 10 ms would never close: the thread would be
        // real-time all the time. A tick one period away is slept toward the window's start.
        let period = Duration::from_millis(5);
        let mut window = RealtimeWindow::new(LogicPriority::Realtime, period);
        let now = Instant::now();
        assert_eq!(window.sleep_until(now, now + period), now + period - period / 3);
        assert!(!window.on, "the window opens only at its start");
    }

    #[test]
    fn between_ticks_falls_back_to_the_starting_nice_value_when_a_raise_is_refused() {
        let tried = std::cell::RefCell::new(Vec::new());
        let refuse_raise = |nice: i32| {
            tried.borrow_mut().push(nice);
            if nice < 5 { Err("EACCES".to_owned()) } else { Ok(()) }
        };
        assert_eq!(ordinary_with(refuse_raise, -10, 5), Ok(5));
        assert_eq!(*tried.borrow(), [-10, 5]);
        assert_eq!(ordinary_with(|_| Ok(()), -10, 0), Ok(-10));
        let refused = ordinary_with(|n| Err(format!("nice {n} refused")), -10, 0).expect_err("both refused");
        assert!(refused.contains("nice -10") && refused.contains("nice 0"), "{refused}");
    }
}
