//! The logic thread: receives from the reactor, runs the tick on schedule, and sends each
//! batch of commands back with one wake.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, TryRecvError};

use super::Logic;
use crate::app::Game;
use crate::bridge::{Batch, LogicEnds, ToLogic};
use crate::metrics::Metrics;
use crate::tick::TickSchedule;
use crate::wake::Wake;

/// Messages handled (in whole batches from the reactor) before the thread checks the tick
/// deadline and flushes a batch, so a flood of requests neither delays the tick nor holds
/// replies back for long.
const DRAIN_BUDGET: usize = 256;

/// Asks the scheduler to run this thread ahead of ordinary ones (nice -10), so that a tick
/// starts on time even when both cores are busy with the reactor and other processes. Needs
/// `CAP_SYS_NICE` (or root); without it the thread keeps its normal priority.
pub(crate) fn raise_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    // 75 of 0..=99 maps to nice -10 under the normal (CFS) policy.
    let result = ThreadPriorityValue::try_from(75u8).map_err(|e| format!("{e:?}")).and_then(|v| {
        set_current_thread_priority(ThreadPriority::Crossplatform(v)).map_err(|e| format!("{e:?}"))
    });
    match result {
        Ok(()) => tracing::debug!("logic thread runs at raised priority"),
        Err(e) => tracing::info!("logic thread keeps normal priority (raising it failed: {e})"),
    }
}

/// Runs `logic` until the reactor says [`ToLogic::Shutdown`] or goes away.
pub(crate) fn run<G: Game>(
    mut logic: Logic<G>,
    period: Duration,
    ends: LogicEnds,
    wake: Arc<Wake>,
    metrics: &Metrics,
) -> Logic<G> {
    let LogicEnds { inbound, outbound, spent } = ends;
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
                while let Some(batch) = next.take() {
                    handled += batch.len();
                    for message in batch {
                        shutting_down |= matches!(message, ToLogic::Shutdown);
                        logic.handle_message(message, now);
                    }
                    if handled >= DRAIN_BUDGET {
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
        metrics.publish_logic(&logic.counters(inbound.len()));
        send(logic.poll_batch());
        if let Ok(batch) = spent.try_recv() {
            logic.recycle(batch);
        }
    }
    logic.handle_shutdown(Instant::now());
    metrics.publish_logic(&logic.counters(inbound.len()));
    send(logic.poll_batch());
    logic
}
