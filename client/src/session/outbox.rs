//! The offline queue: request frames not yet handed to the transport, in call order, with
//! their total size (which the queue's byte bound is checked against).

use std::collections::VecDeque;

/// Request frames waiting to be sent, each with its call's id.
#[derive(Default)]
pub(super) struct Outbox {
    frames: VecDeque<(u32, Vec<u8>)>,
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

    pub(super) fn push_back(&mut self, id: u32, frame: Vec<u8>) {
        self.bytes += frame.len();
        self.frames.push_back((id, frame));
    }

    pub(super) fn pop_front(&mut self) -> Option<(u32, Vec<u8>)> {
        let (id, frame) = self.frames.pop_front()?;
        self.bytes -= frame.len();
        Some((id, frame))
    }

    /// Takes call `id`'s frame out of the queue, if it is there (a call that timed out before
    /// it could be sent).
    pub(super) fn remove(&mut self, id: u32) {
        if let Some(at) = self.frames.iter().position(|(queued, _)| *queued == id)
            && let Some((_, frame)) = self.frames.remove(at)
        {
            self.bytes -= frame.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_follow_the_frames_in_and_out() {
        let mut outbox = Outbox::default();
        outbox.push_back(1, vec![0; 10]);
        outbox.push_back(2, vec![0; 20]);
        outbox.push_back(3, vec![0; 30]);
        assert_eq!((outbox.len(), outbox.bytes()), (3, 60));
        outbox.remove(2);
        outbox.remove(9); // Not queued: nothing changes.
        assert_eq!((outbox.len(), outbox.bytes()), (2, 40));
        assert_eq!(outbox.pop_front().map(|(id, f)| (id, f.len())), Some((1, 10)));
        assert_eq!(outbox.pop_front().map(|(id, f)| (id, f.len())), Some((3, 30)));
        assert_eq!((outbox.len(), outbox.bytes()), (0, 0));
        assert!(outbox.pop_front().is_none());
    }
}
