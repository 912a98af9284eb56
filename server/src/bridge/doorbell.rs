//! Waking the logic thread when the reactor sends it work, and counting what it has not
//! handled yet.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Instant;

/// How the reactor wakes the logic thread when it has sent it a batch.
///
/// The logic thread waits for `inbound` with [`Doorbell::wait_until`] (a park) instead of a
/// blocking channel receive: crossbeam's receive spins and then yields (`sched_yield`) a few
/// times before it sleeps, which pays off when the next message comes within microseconds and
/// is waste when batches come a reactor turn apart. Measured with `server --echo` at
/// 2000 connections x 20 messages/s, the logic thread's CPU fell from 67–70 to 39–43 ticks
/// in 8 s with the park (docs/BENCHMARKS.md, commit `49de683`).
///
/// No wake-up is lost: the reactor rings after it sends, and the logic thread checks the
/// channel before it waits; a ring that comes in between makes the wait return at once.
#[derive(Debug, Default)]
pub(crate) struct Doorbell {
    logic: OnceLock<Thread>,
}

impl Doorbell {
    /// Names the thread that waits (the logic thread), once, before the reactor starts:
    /// from then on rings wake it. A ring before would be lost, which is harmless, as the
    /// thread checks the channel before each wait.
    pub(crate) fn answered_by(&self, logic: Thread) {
        let first = self.logic.set(logic).is_ok();
        debug_assert!(first, "a doorbell has one thread that answers it");
    }

    /// Sleeps until `deadline` or a ring, whichever is first; may return early for no reason,
    /// so the caller checks what it waits for and calls again.
    pub(crate) fn wait_until(&self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            std::thread::park_timeout(left);
        }
    }

    /// Wakes the logic thread if it waits (the cluster's threads ring it directly).
    pub(crate) fn ring(&self) {
        // An atomic swap, and a futex wake only if the thread is asleep.
        if let Some(logic) = self.logic.get() {
            logic.unpark();
        }
    }
}

/// The reactor's side of the [`Doorbell`]: it also rings when dropped, so the logic thread
/// sees at once that the reactor is gone.
#[derive(Debug)]
pub(crate) struct Bell(pub(super) Arc<Doorbell>);

impl Bell {
    /// Wakes the logic thread if it waits.
    pub(crate) fn ring(&self) {
        self.0.ring();
    }
}

impl Drop for Bell {
    fn drop(&mut self) {
        self.0.ring();
    }
}

/// How many messages the reactor has sent to the logic thread that it has not handled yet.
/// Batches vary from one message to [`TO_LOGIC_BATCH`](super::TO_LOGIC_BATCH), so the channel's capacity (in
/// batches) cannot bound them; this count does (`Config::inbound_queue`).
#[derive(Debug, Clone, Default)]
pub(crate) struct InboundCount(Arc<AtomicUsize>);

impl InboundCount {
    /// Messages sent and not handled yet.
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    /// The reactor is about to send `n` messages. Counted before the send, so the logic thread
    /// never takes away what was not added.
    pub(crate) fn add(&self, n: usize) {
        self.0.fetch_add(n, Ordering::AcqRel);
    }

    /// `n` messages were handled, or were not sent after all.
    pub(crate) fn sub(&self, n: usize) {
        self.0.fetch_sub(n, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bridge::{ToLogic, channels};

    /// Waits on `doorbell` the way the logic thread does, until `done` says so or 10 s
    /// passes; returns how long it took.
    fn wait_for(doorbell: &Doorbell, done: impl Fn() -> bool) -> Duration {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(10);
        while !done() && Instant::now() < deadline {
            doorbell.wait_until(deadline);
        }
        started.elapsed()
    }

    #[test]
    fn a_ring_wakes_the_waiting_thread_long_before_its_deadline() {
        let (reactor, logic) = channels(8, 8);
        let waiter = std::thread::spawn(move || {
            logic.doorbell.answered_by(std::thread::current());
            let took = wait_for(&logic.doorbell, || !logic.inbound.is_empty());
            (took, logic.inbound.try_recv().map(|batch| batch.len()))
        });
        // Whether the send lands before or after the waiter first checks, it is not missed.
        std::thread::sleep(Duration::from_millis(50));
        reactor.to_logic.send(vec![ToLogic::Shutdown]).expect("send");
        reactor.doorbell.ring();
        let (took, received) = waiter.join().expect("waiter");
        assert_eq!(received, Ok(1));
        assert!(took < Duration::from_secs(5), "woken after {took:?}");
    }

    #[test]
    fn dropping_the_reactor_end_wakes_the_logic_thread_to_see_the_channel_closed() {
        let (reactor, logic) = channels(8, 8);
        let waiter = std::thread::spawn(move || {
            logic.doorbell.answered_by(std::thread::current());
            let closed =
                || matches!(logic.inbound.try_recv(), Err(crossbeam_channel::TryRecvError::Disconnected));
            wait_for(&logic.doorbell, closed)
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(reactor);
        let took = waiter.join().expect("waiter");
        assert!(took < Duration::from_secs(5), "woken after {took:?}");
    }
}
