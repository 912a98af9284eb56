//! The logic thread: receives from the reactor, runs the tick on schedule, and sends each
//! batch of commands back with one wake.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::Logic;
use super::priority::RealtimeWindow;
use crate::Game;
use crate::bridge::wake::Wake;
use crate::bridge::{Batch, Doorbell, LogicEnds, ToLogic};
use crate::config::LogicPriority;
use crate::logic::tick::TickSchedule;
use crate::metrics::Metrics;

/// Messages handled (in whole batches from the reactor) before the thread sends its replies,
/// so a flood of requests does not hold them back for long. A due tick cuts the drain short
/// sooner: the deadline is checked after every batch.
const DRAIN_BUDGET: usize = 256;

/// The next batch from the reactor, waiting for it until `deadline` at most.
/// Returns early (as a timeout) when `news` says the cluster's bridge sent something.
fn receive(
    inbound: &Receiver<Vec<ToLogic>>,
    doorbell: &Doorbell,
    deadline: Instant,
    news: impl Fn() -> bool,
) -> Result<Vec<ToLogic>, RecvTimeoutError> {
    loop {
        match inbound.try_recv() {
            Ok(batch) => return Ok(batch),
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) if news() || Instant::now() >= deadline => {
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
        match receive(&inbound, &doorbell, wait_until, || logic.cluster_has_news() || logic.jobs_have_news())
        {
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
        logic.handle_cluster_news(now);
        logic.run_inline_jobs(now);
        if let Some(tick) = schedule.poll(now) {
            logic.handle_tick(tick, now);
            metrics.record_tick(tick.lateness, now.elapsed());
            window.close();
        }
        // Published before the batch leaves, so a client that has its reply sees it counted.
        metrics.publish_logic(&logic.counters(queued.get()));
        send(logic.poll_batch());
        while let Ok(batch) = spent.try_recv() {
            logic.recycle(batch);
        }
    }
    logic.finish_jobs(Instant::now() + crate::jobs::JOB_DRAIN);
    logic.handle_shutdown(Instant::now());
    metrics.publish_logic(&logic.counters(queued.get()));
    send(logic.poll_batch());
    // The reactor learns that the logic thread is done when the channel closes; wake it to
    // look, or a shutdown with nothing left to send would wait for its next timer (its sweep,
    // up to 1 s later).
    drop(outbound);
    wake.wake_now();
    logic
}
