//! The logic thread: receives from the reactor, runs the tick on schedule, and sends each
//! batch of commands back with one wake.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::Logic;
use crate::app::Game;
use crate::bridge::{Batch, Doorbell, LogicEnds, ToLogic};
use crate::config::LogicPriority;
use crate::metrics::Metrics;
use crate::tick::TickSchedule;
use crate::wake::Wake;

/// Messages handled (in whole batches from the reactor) before the thread sends its replies,
/// so a flood of requests does not hold them back for long. A due tick cuts the drain short
/// sooner: the deadline is checked after every batch.
const DRAIN_BUDGET: usize = 256;

/// How long before a tick's deadline a `Realtime` logic thread switches to real-time
/// scheduling, at most. It sleeps until then as an ordinary thread, whose wake-up the
/// scheduler may delay by a few milliseconds on a busy machine: the window absorbs that, and
/// from its start every wake-up, the tick's own included, preempts ordinary threads at once.
/// At tick rates of 100 Hz and more the window is a third of the period instead, so that it
/// still closes between ticks.
const REALTIME_WINDOW: Duration = Duration::from_millis(10);

/// The real-time window for ticks `period` apart: [`REALTIME_WINDOW`], or a third of the
/// period when that is shorter.
fn realtime_window(period: Duration) -> Duration {
    REALTIME_WINDOW.min(period / 3)
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

/// Moves the calling thread to the ordinary policy (`SCHED_OTHER`) at nice -10 when `raised`,
/// at nice 0 otherwise.
fn to_ordinary(raised: bool) -> Result<(), String> {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let other = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
    // Of 0..=99, 75 maps to nice -10 under the ordinary policy and 50 to nice 0.
    let value: u8 = if raised { 75 } else { 50 };
    let nice = ThreadPriorityValue::try_from(value).map_err(|e| format!("{e:?}"))?;
    set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Crossplatform(nice), other)
        .map_err(|e| format!("{e:?}"))
}

/// How a thread that may switch to real-time around ticks is scheduled between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Between {
    /// Nice -10.
    Raised,
    /// Nice 0: where real-time is permitted (`RLIMIT_RTPRIO`) but a raised nice value is not
    /// (`RLIMIT_NICE`).
    Normal,
}

/// Moves the calling thread to the ordinary policy, at nice -10 if permitted and at nice 0
/// otherwise. Returns which applied.
fn to_between() -> Result<Between, String> {
    between_with(to_ordinary)
}

/// [`to_between`] with the switch (`to_ordinary`) passed in, so that the fallback can be
/// tested on a machine that permits everything.
fn between_with(to_ordinary: impl Fn(bool) -> Result<(), String>) -> Result<Between, String> {
    match to_ordinary(true) {
        Ok(()) => Ok(Between::Raised),
        Err(raised) => to_ordinary(false)
            .map(|()| Between::Normal)
            .map_err(|normal| format!("nice -10: {raised}; nice 0: {normal}")),
    }
}

/// Asks the OS to schedule the calling thread as `wanted`, falling back one step at a time
/// (real-time, then nice -10, then normal) where it is not permitted. Returns what applied.
/// A `Realtime` thread starts as an ordinary one (nice -10 if permitted, else nice 0):
/// [`run`] moves it to real-time around each tick.
pub(crate) fn set_priority(wanted: LogicPriority) -> LogicPriority {
    if wanted == LogicPriority::Realtime {
        // Real-time is tried now, so that a refusal falls back at once and not at the first
        // tick, then left until the first tick's window.
        match to_realtime().and_then(|()| to_between()) {
            Ok(between) => {
                tracing::debug!("logic thread scheduled as Realtime, {between:?} between ticks");
                return LogicPriority::Realtime;
            }
            Err(e) => tracing::info!("logic thread cannot be scheduled as Realtime: {e}"),
        }
    }
    if wanted != LogicPriority::Normal {
        match to_ordinary(true) {
            Ok(()) => {
                tracing::debug!("logic thread scheduled as Raised");
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
struct RealtimeWindow {
    enabled: bool,
    on: bool,
    length: Duration,
    /// Whether nice -10 is still tried between ticks; cleared at its first refusal, so that
    /// a refused nice value costs one failed call and not one per tick.
    raised_between: bool,
}

impl RealtimeWindow {
    fn new(priority: LogicPriority, period: Duration) -> Self {
        Self {
            enabled: priority == LogicPriority::Realtime,
            on: false,
            length: realtime_window(period),
            raised_between: true,
        }
    }

    /// Until when to sleep before a tick due at `deadline`: the window's start, if it is
    /// enabled and not open yet; there the loop comes back and opens it.
    fn sleep_until(&mut self, now: Instant, deadline: Instant) -> Instant {
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
    fn close(&mut self) {
        if !self.on {
            return;
        }
        let switched = if self.raised_between {
            to_between().map(|between| self.raised_between = between == Between::Raised)
        } else {
            to_ordinary(false)
        };
        match switched {
            Ok(()) => self.on = false,
            Err(e) => {
                // Lowering one's own priority is always permitted; if it still fails, the
                // thread stays real-time rather than retry every tick.
                tracing::warn!("logic thread stays real-time between ticks: {e}");
                self.enabled = false;
            }
        }
    }
}

/// The next batch from the reactor, waiting for it until `deadline` at most.
fn receive(
    inbound: &Receiver<Vec<ToLogic>>,
    doorbell: &Doorbell,
    deadline: Instant,
) -> Result<Vec<ToLogic>, RecvTimeoutError> {
    loop {
        match inbound.try_recv() {
            Ok(batch) => return Ok(batch),
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) if Instant::now() >= deadline => {
                return Err(RecvTimeoutError::Timeout);
            }
            Err(TryRecvError::Empty) => doorbell.wait_until(deadline),
        }
    }
}

/// Runs `logic` until the reactor says [`ToLogic::Shutdown`] or goes away.
pub(crate) fn run<G: Game>(
    mut logic: Logic<G>,
    period: Duration,
    priority: LogicPriority,
    ends: LogicEnds,
    wake: Arc<Wake>,
    metrics: &Metrics,
) -> Logic<G> {
    let mut window = RealtimeWindow::new(priority, period);
    let LogicEnds { inbound, outbound, spent, handled: handled_batches, queued, doorbell } = ends;
    doorbell.answer_from_this_thread();
    let mut schedule = TickSchedule::new(Instant::now() + period, period);
    let send = |batch: Option<Batch>| {
        if let Some(batch) = batch {
            // A full channel blocks here: the reactor drains it on every turn, so this is
            // a short wait, and it keeps the outbound queue bounded.
            if outbound.send(batch).is_ok() {
                wake.wake();
            }
        }
    };
    let mut shutting_down = false;
    while !shutting_down {
        let wait_until = window.sleep_until(Instant::now(), schedule.next_deadline());
        match receive(&inbound, &doorbell, wait_until) {
            Ok(first) => {
                let now = Instant::now();
                let mut next = Some(first);
                let mut handled = 0;
                while let Some(mut batch) = next.take() {
                    let n = batch.len();
                    handled += n;
                    for message in batch.drain(..) {
                        shutting_down |= matches!(message, ToLogic::Shutdown);
                        logic.handle_message(message, now);
                    }
                    queued.sub(n);
                    // Back to the reactor for reuse; if it has spares enough, dropped.
                    let _ = handled_batches.try_send(batch);
                    // A due tick goes first: checked per batch, so it starts within one
                    // batch's work of its deadline.
                    if handled >= DRAIN_BUDGET || Instant::now() >= schedule.next_deadline() {
                        break;
                    }
                    match inbound.try_recv() {
                        Ok(batch) => next = Some(batch),
                        Err(TryRecvError::Empty) => {}
                        Err(TryRecvError::Disconnected) => shutting_down = true,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => shutting_down = true,
        }
        let now = Instant::now();
        if let Some(tick) = schedule.poll(now) {
            logic.handle_tick(tick, now);
            metrics.record_tick(tick.lateness, now.elapsed());
            window.close();
        }
        // Published before the batch leaves, so a client that has its reply sees it counted.
        metrics.publish_logic(&logic.counters(queued.get()));
        send(logic.poll_batch());
        if let Ok(batch) = spent.try_recv() {
            logic.recycle(batch);
        }
    }
    logic.handle_shutdown(Instant::now());
    metrics.publish_logic(&logic.counters(queued.get()));
    send(logic.poll_batch());
    logic
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
    fn the_thread_gets_the_priority_reported_or_keeps_a_normal_one() {
        // In fresh threads, since a thread's own policy is what changes.
        let normal = std::thread::spawn(|| (set_priority(LogicPriority::Normal), current_policy()))
            .join()
            .expect("thread");
        assert_eq!(normal.0, LogicPriority::Normal);
        assert!(matches!(normal.1, ThreadSchedulePolicy::Normal(_)), "{:?}", normal.1);

        let seen = std::thread::spawn(|| {
            let applied = set_priority(LogicPriority::Realtime);
            // Between ticks: the ordinary policy, whatever was granted.
            let between = current_policy();
            let mut window = RealtimeWindow::new(applied, Duration::from_secs(1) / 30);
            let now = Instant::now();
            let far = now + Duration::from_secs(1);
            let early = window.sleep_until(now, far);
            let before_window = current_policy();
            let due = window.sleep_until(now, now + REALTIME_WINDOW / 2);
            let in_window = current_policy();
            window.close();
            (
                applied,
                between,
                early == far - REALTIME_WINDOW,
                before_window,
                due,
                in_window,
                current_policy(),
            )
        })
        .join()
        .expect("thread");
        let (applied, between, wakes_at_window_start, before_window, _, in_window, after_tick) = seen;
        assert!(matches!(between, ThreadSchedulePolicy::Normal(_)), "{between:?}");
        assert!(wakes_at_window_start, "a far tick is slept toward the window's start first");
        assert!(matches!(before_window, ThreadSchedulePolicy::Normal(_)), "{before_window:?}");
        // Which step applies depends on the privileges the tests run with; whichever it is,
        // the thread must really have it.
        match applied {
            LogicPriority::Realtime => {
                assert!(matches!(in_window, ThreadSchedulePolicy::Realtime(_)), "{in_window:?}")
            }
            LogicPriority::Raised | LogicPriority::Normal => {
                assert!(matches!(in_window, ThreadSchedulePolicy::Normal(_)), "{in_window:?}")
            }
        }
        assert!(matches!(after_tick, ThreadSchedulePolicy::Normal(_)), "{after_tick:?}");
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
    fn between_ticks_falls_back_to_nice_zero_when_nice_minus_ten_is_refused() {
        let tried = std::cell::RefCell::new(Vec::new());
        let refuse_raised = |raised: bool| {
            tried.borrow_mut().push(raised);
            if raised { Err("EPERM".to_owned()) } else { Ok(()) }
        };
        assert_eq!(between_with(refuse_raised), Ok(Between::Normal));
        assert_eq!(*tried.borrow(), [true, false]);
        assert_eq!(between_with(|_| Ok(())), Ok(Between::Raised));
        let refused = between_with(|_| Err("EPERM".to_owned())).expect_err("both refused");
        assert!(refused.contains("nice -10") && refused.contains("nice 0"), "{refused}");
    }
}
