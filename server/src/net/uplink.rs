//! The uplink to the logic thread: messages batched up to [`TO_LOGIC_BATCH`], sent in order,
//! and held in a backlog (with reading paused) while the logic thread is behind.

use crossbeam_channel::TrySendError;

use super::Reactor;
use crate::bridge::{TO_LOGIC_BATCH, ToLogic};

impl Reactor {
    /// Queues a message for the logic thread; a full batch goes at once.
    pub(super) fn forward(&mut self, message: ToLogic) {
        self.pending.push(message);
        if self.pending.len() >= TO_LOGIC_BATCH {
            self.send_pending();
        }
    }

    /// Sends the batch being filled, behind any batches already waiting (order is kept: once
    /// anything waits, everything waits behind it), then as much of the backlog as fits.
    pub(super) fn send_pending(&mut self) {
        if !self.pending.is_empty() {
            // A batch the logic thread has emptied, if one is back, else a new one.
            let fresh = self.handled.try_recv().unwrap_or_else(|_| Vec::with_capacity(TO_LOGIC_BATCH));
            let batch = std::mem::replace(&mut self.pending, fresh);
            self.backlog.push_back(batch);
        }
        while let Some(batch) = self.backlog.pop_front() {
            let (n, queued) = (batch.len(), self.queued.get());
            // At most `inbound_queue` messages waiting for the logic thread; a batch always
            // goes when nothing waits, so a batch larger than the bound cannot stall.
            if queued > 0 && queued + n > self.config.inbound_queue {
                self.backlog.push_front(batch);
                return;
            }
            self.queued.add(n);
            match self.to_logic.try_send(batch) {
                Ok(()) => self.doorbell.ring(),
                Err(TrySendError::Full(batch)) => {
                    self.queued.sub(n);
                    self.backlog.push_front(batch);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.backlog.clear();
                    return;
                }
            }
        }
    }
}
