//! What the workers share with the main thread while the run goes on: their figures for the
//! progress line and the stop rules, and the flag that ends the run early.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::tally::{Tally, histogram};

/// What one worker publishes (every [`PUBLISH`](super::PUBLISH)).
#[derive(Debug, Default)]
pub(crate) struct LiveSlot {
    connected: AtomicU64,
    answered: AtomicU64,
    errors: AtomicU64,
    bots_connected: AtomicU64,
    connect_attempts: AtomicU64,
    /// The worker's latest connection error, and when it happened.
    last_connect_error: Mutex<Option<(Instant, String)>>,
}

/// What the workers share.
pub(crate) struct Live {
    slots: Vec<Arc<LiveSlot>>,
    /// Round trips so far, all workers.
    rtt: Mutex<Histogram<u64>>,
    /// Set to end the run now (Ctrl-C, or no server): each worker looks at it every turn.
    halt: AtomicBool,
    /// Workers whose event loop has ended.
    finished: AtomicUsize,
}

/// The workers' figures at one moment, summed.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LiveFigures {
    /// Bots connected now.
    pub connected: u64,
    /// Calls answered so far (replies and error replies).
    pub answered: u64,
    /// Errors so far, as the report counts them.
    pub errors: u64,
    /// Bots welcomed at least once so far.
    pub bots_connected: u64,
    /// Connection attempts so far.
    pub connect_attempts: u64,
    /// The 99th percentile of the round trips so far, µs.
    pub p99_us: u64,
    /// The latest connection error of any worker: how long ago, and what it said.
    pub last_connect_error: Option<(Duration, String)>,
}

impl Live {
    /// One slot per worker.
    pub(crate) fn new(workers: usize) -> Self {
        Self {
            slots: (0..workers).map(|_| Arc::new(LiveSlot::default())).collect(),
            rtt: Mutex::new(histogram()),
            halt: AtomicBool::new(false),
            finished: AtomicUsize::new(0),
        }
    }

    /// A worker's event loop has ended.
    pub(crate) fn finish(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether every worker's event loop has ended.
    pub(crate) fn all_finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed) >= self.slots.len()
    }

    /// Worker `i`'s slot.
    pub(crate) fn slot(&self, i: usize) -> Arc<LiveSlot> {
        self.slots[i].clone()
    }

    /// Asks every worker to end the run now.
    pub(crate) fn halt(&self) {
        self.halt.store(true, Ordering::Relaxed);
    }

    /// Whether the run is to end now.
    pub(crate) fn halted(&self) -> bool {
        self.halt.load(Ordering::Relaxed)
    }

    /// The figures all workers published, summed, as of `now`.
    pub(crate) fn figures(&self, now: Instant) -> LiveFigures {
        let sum =
            |f: fn(&LiveSlot) -> &AtomicU64| self.slots.iter().map(|s| f(s).load(Ordering::Relaxed)).sum();
        let last_connect_error = self
            .slots
            .iter()
            .filter_map(|s| s.last_connect_error.lock().ok().and_then(|e| e.clone()))
            .max_by_key(|(at, _)| *at)
            .map(|(at, message)| (now.saturating_duration_since(at), message));
        LiveFigures {
            connected: sum(|s| &s.connected),
            answered: sum(|s| &s.answered),
            errors: sum(|s| &s.errors),
            bots_connected: sum(|s| &s.bots_connected),
            connect_attempts: sum(|s| &s.connect_attempts),
            p99_us: self.rtt.lock().map(|h| h.value_at_quantile(0.99)).unwrap_or(0),
            last_connect_error,
        }
    }

    /// Publishes a worker's figures: its tally, the bots connected now, the round trips since
    /// the last call (`rtt_delta`, emptied), and its latest connection error if a new one.
    pub(crate) fn publish(
        &self,
        slot: &LiveSlot,
        tally: &Tally,
        connected_now: u64,
        rtt_delta: &mut Histogram<u64>,
        last_connect_error: &mut Option<(Instant, String)>,
    ) {
        let c = &tally.counters;
        slot.connected.store(connected_now, Ordering::Relaxed);
        slot.answered.store(c.replied + c.errored, Ordering::Relaxed);
        slot.errors.store(c.errors(), Ordering::Relaxed);
        slot.bots_connected.store(c.bots_connected, Ordering::Relaxed);
        slot.connect_attempts.store(c.connect_attempts, Ordering::Relaxed);
        if let Some(error) = last_connect_error.take()
            && let Ok(mut last) = slot.last_connect_error.lock()
        {
            *last = Some(error);
        }
        if let Ok(mut rtt) = self.rtt.lock() {
            // Both histograms have the same bounds, so adding cannot fail.
            let _ = rtt.add(&*rtt_delta);
        }
        rtt_delta.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Counters;

    #[test]
    fn figures_add_up_the_workers_and_keep_the_latest_connect_error() {
        let live = Live::new(2);
        let t0 = Instant::now();
        let tally = |replied, bots_connected| Tally {
            counters: Counters {
                replied,
                bots_connected,
                connect_attempts: 4,
                timed_out: 1,
                ..Counters::default()
            },
            ..Tally::default()
        };
        let mut rtt = histogram();
        rtt.saturating_record(2000);
        let mut error = Some((t0, "refused".to_owned()));
        live.publish(&live.slot(0), &tally(5, 0), 0, &mut rtt, &mut error);
        assert!(error.is_none() && rtt.is_empty(), "handed over");
        let mut later = Some((t0 + Duration::from_millis(300), "reset".to_owned()));
        live.publish(&live.slot(1), &tally(7, 2), 2, &mut rtt, &mut later);
        // Nothing new from worker 0: its error stays.
        live.publish(&live.slot(0), &tally(6, 1), 1, &mut rtt, &mut None);
        let f = live.figures(t0 + Duration::from_secs(1));
        assert_eq!(
            (f.connected, f.answered, f.errors, f.bots_connected, f.connect_attempts),
            (3, 13, 2, 3, 8)
        );
        assert!(f.p99_us >= 2000 && f.p99_us < 2010, "{}", f.p99_us);
        assert_eq!(f.last_connect_error, Some((Duration::from_millis(700), "reset".to_owned())));
        assert!(!live.halted());
        live.halt();
        assert!(live.halted());
        live.finish();
        assert!(!live.all_finished(), "one of two");
        live.finish();
        assert!(live.all_finished());
    }
}
