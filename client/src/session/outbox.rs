//! The offline queue: requests not yet handed to the transport, with their total size (which
//! the queue's byte bound is checked against), and the hold that keeps the queue back after a
//! welcome until the game has seen the connection.

use std::collections::VecDeque;

use super::request::OutRequest;

/// Requests waiting to be sent, each with its call's id. In call order, except while a
/// release has put the requests queued during a hold ahead of the held ones.
#[derive(Default)]
pub(super) struct Outbox {
    frames: VecDeque<Queued>,
    bytes: usize,
    /// How many frames at the front are held back: the offline queue as it was when the
    /// welcome arrived, until the game has seen [`Event::Connected`](super::Event::Connected).
    /// Frames behind them (calls made meanwhile, a login) go out first.
    held: usize,
    /// Frames queued so far, to number them.
    pushed: u64,
    /// A release moved frames queued during the hold ahead of older ones.
    reordered: bool,
}

/// One request, numbered in call order, with the bytes it counts for.
struct Queued {
    order: u64,
    id: u32,
    request: OutRequest,
    bytes: usize,
}

impl Outbox {
    /// Frames waiting.
    pub(super) fn len(&self) -> usize {
        self.frames.len()
    }

    /// Bytes waiting, all frames.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Queues call `id`'s request, counting `bytes` for it.
    pub(super) fn push_back(&mut self, id: u32, request: OutRequest, bytes: usize) {
        self.bytes += bytes;
        self.pushed += 1;
        self.frames.push_back(Queued { order: self.pushed, id, request, bytes });
    }

    /// The oldest request, held or not (to fail them all in call order).
    pub(super) fn pop_oldest(&mut self) -> Option<(u32, OutRequest)> {
        self.restore_call_order();
        let queued = self.frames.pop_front()?;
        self.held = self.held.saturating_sub(1);
        Some(self.took(queued))
    }

    /// The first request that is not held back: the next one to send.
    pub(super) fn pop_sendable(&mut self) -> Option<(u32, OutRequest)> {
        let queued = self.frames.remove(self.held)?;
        Some(self.took(queued))
    }

    fn took(&mut self, queued: Queued) -> (u32, OutRequest) {
        self.bytes -= queued.bytes;
        (queued.id, queued.request)
    }

    /// Holds back every frame queued now, in call order; frames queued later go first.
    pub(super) fn hold(&mut self) {
        // A link that dropped right after a release may have left them reordered.
        self.restore_call_order();
        self.held = self.frames.len();
    }

    /// Ends the hold. The frames queued during it stay ahead of the held ones (as if they
    /// had been sent at once, the way the TypeScript client sends them), each group in call
    /// order; frames queued later go after both.
    pub(super) fn release(&mut self) {
        if self.held > 0 && self.held < self.frames.len() {
            self.frames.rotate_left(self.held);
            self.reordered = true;
        }
        self.held = 0;
    }

    fn restore_call_order(&mut self) {
        if std::mem::take(&mut self.reordered) {
            self.frames.make_contiguous().sort_unstable_by_key(|queued| queued.order);
        }
    }

    /// Takes call `id`'s frame out of the queue, if it is there (a call that timed out before
    /// it could be sent, or one withdrawn); whether it was.
    pub(super) fn remove(&mut self, id: u32) -> bool {
        if let Some(at) = self.frames.iter().position(|queued| queued.id == id)
            && let Some(queued) = self.frames.remove(at)
        {
            if at < self.held {
                self.held -= 1;
            }
            self.took(queued);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request that counts `bytes`.
    fn push(outbox: &mut Outbox, id: u32, bytes: usize) {
        outbox.push_back(id, OutRequest::new("x", vec![0; bytes]), bytes);
    }

    #[test]
    fn bytes_follow_the_frames_in_and_out() {
        let mut outbox = Outbox::default();
        push(&mut outbox, 1, 10);
        push(&mut outbox, 2, 20);
        push(&mut outbox, 3, 30);
        assert_eq!((outbox.len(), outbox.bytes()), (3, 60));
        assert!(outbox.remove(2));
        assert!(!outbox.remove(9)); // Not queued: nothing changes.
        assert_eq!((outbox.len(), outbox.bytes()), (2, 40));
        assert_eq!(outbox.pop_oldest().map(|(id, r)| (id, r.body.len())), Some((1, 10)));
        assert_eq!(outbox.pop_oldest().map(|(id, r)| (id, r.body.len())), Some((3, 30)));
        assert_eq!((outbox.len(), outbox.bytes()), (0, 0));
        assert!(outbox.pop_oldest().is_none());
    }

    #[test]
    fn held_frames_wait_behind_later_ones_until_released_and_stay_in_call_order() {
        let ids = |outbox: &mut Outbox| {
            std::iter::from_fn(|| outbox.pop_sendable().map(|(id, _)| id)).collect::<Vec<_>>()
        };
        let mut outbox = Outbox::default();
        push(&mut outbox, 1, 10);
        push(&mut outbox, 2, 10);
        push(&mut outbox, 3, 10);
        outbox.hold();
        assert!(outbox.remove(2)); // A held call times out.
        push(&mut outbox, 4, 10);
        push(&mut outbox, 5, 10);
        assert_eq!(ids(&mut outbox), [4, 5], "the held frames wait");
        assert_eq!((outbox.len(), outbox.bytes()), (2, 20));
        // Frames queued during the hold and not sent before it ends still go first.
        push(&mut outbox, 6, 10);
        outbox.release();
        push(&mut outbox, 7, 10);
        assert_eq!(ids(&mut outbox), [6, 1, 3, 7]);
        // A drop right after a release: the next hold puts the rest back in call order.
        for id in [10, 11] {
            push(&mut outbox, id, 10);
        }
        outbox.hold();
        push(&mut outbox, 12, 10);
        outbox.release();
        push(&mut outbox, 13, 10);
        outbox.hold();
        assert!(outbox.pop_sendable().is_none(), "all held");
        outbox.release();
        assert_eq!(ids(&mut outbox), [10, 11, 12, 13]);
        // Failing them all takes the held frames too, in call order.
        for id in [8, 9] {
            push(&mut outbox, id, 10);
        }
        outbox.hold();
        push(&mut outbox, 10, 10);
        let all: Vec<u32> = std::iter::from_fn(|| outbox.pop_oldest().map(|(id, _)| id)).collect();
        assert_eq!(all, [8, 9, 10]);
        assert_eq!((outbox.len(), outbox.bytes()), (0, 0));
    }
}
