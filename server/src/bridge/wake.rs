//! Waking the reactor from the logic thread, at most once per reactor turn.

use std::sync::atomic::{AtomicBool, Ordering};

/// A `mio::Waker` that coalesces wakes: while one is pending, further calls cost an atomic
/// swap instead of a syscall.
#[derive(Debug)]
pub(crate) struct Wake {
    waker: mio::Waker,
    pending: AtomicBool,
}

impl Wake {
    pub(crate) fn new(waker: mio::Waker) -> Self {
        Self { waker, pending: AtomicBool::new(false) }
    }

    /// Wakes the reactor unless a wake is already pending.
    pub(crate) fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel)
            && let Err(e) = self.waker.wake()
        {
            // Only fails if the eventfd is gone, which means the reactor is gone too.
            tracing::warn!("waking the reactor failed: {e}");
        }
    }

    /// Called by the reactor *before* it drains the channel, so a batch sent after the drain
    /// wakes it again.
    pub(crate) fn clear(&self) {
        self.pending.store(false, Ordering::Release);
    }

    /// Wakes the reactor even if a wake is pending, for rare control events.
    pub(crate) fn wake_now(&self) {
        self.pending.store(true, Ordering::Release);
        if let Err(e) = self.waker.wake() {
            tracing::warn!("waking the reactor failed: {e}");
        }
    }
}
