//! The logic thread: receives from the reactor, runs the tick on schedule, and sends each
//! batch of commands back with one wake.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, TryRecvError};

use super::Logic;
use crate::app::Game;
use crate::bridge::{Batch, LogicEnds, ToLogic};
use crate::config::LogicPriority;
use crate::metrics::Metrics;
use crate::tick::TickSchedule;
use crate::wake::Wake;

/// Messages handled (in whole batches from the reactor) before the thread sends its replies,
/// so a flood of requests does not hold them back for long. A due tick cuts the drain short
/// sooner: the deadline is checked after every batch.
const DRAIN_BUDGET: usize = 256;

/// Asks the OS to schedule the calling thread as `wanted`, falling back one step at a time
/// (real-time, then nice -10, then normal) where it is not permitted. Returns what applied.
pub(crate) fn set_priority(wanted: LogicPriority) -> LogicPriority {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_current_thread_priority, set_thread_priority_and_policy, thread_native_id,
    };
    let realtime = || {
        let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
        // 1 is the lowest real-time priority: above every ordinary thread, below any other
        // real-time work on the machine.
        let lowest = ThreadPriority::from_posix(thread_priority::ScheduleParams { sched_priority: 1 });
        set_thread_priority_and_policy(thread_native_id(), lowest, fifo).map_err(|e| format!("{e:?}"))
    };
    let raised = || {
        // 75 of 0..=99 maps to nice -10 under the normal (CFS) policy.
        ThreadPriorityValue::try_from(75u8).map_err(|e| format!("{e:?}")).and_then(|v| {
            set_current_thread_priority(ThreadPriority::Crossplatform(v)).map_err(|e| format!("{e:?}"))
        })
    };
    let steps: &[LogicPriority] = match wanted {
        LogicPriority::Realtime => &[LogicPriority::Realtime, LogicPriority::Raised],
        LogicPriority::Raised => &[LogicPriority::Raised],
        LogicPriority::Normal => &[],
    };
    for &priority in steps {
        let applied = if priority == LogicPriority::Realtime { realtime() } else { raised() };
        match applied {
            Ok(()) => {
                tracing::debug!("logic thread scheduled as {priority:?}");
                return priority;
            }
            Err(e) => tracing::info!("logic thread cannot be scheduled as {priority:?}: {e}"),
        }
    }
    LogicPriority::Normal
}

/// Runs `logic` until the reactor says [`ToLogic::Shutdown`] or goes away.
pub(crate) fn run<G: Game>(
    mut logic: Logic<G>,
    period: Duration,
    ends: LogicEnds,
    wake: Arc<Wake>,
    metrics: &Metrics,
) -> Logic<G> {
    let LogicEnds { inbound, outbound, spent, handled: handled_batches, queued } = ends;
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
        match inbound.recv_deadline(schedule.next_deadline()) {
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

        let (applied, policy) =
            std::thread::spawn(|| (set_priority(LogicPriority::Realtime), current_policy()))
                .join()
                .expect("thread");
        // Which step applies depends on the privileges the tests run with; whichever it is,
        // the thread must really have it.
        match applied {
            LogicPriority::Realtime => {
                assert!(matches!(policy, ThreadSchedulePolicy::Realtime(_)), "{policy:?}")
            }
            LogicPriority::Raised | LogicPriority::Normal => {
                assert!(matches!(policy, ThreadSchedulePolicy::Normal(_)), "{policy:?}")
            }
        }
    }
}
