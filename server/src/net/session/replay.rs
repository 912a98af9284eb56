//! A session's replay buffer: the sequenced frames sent to the client that it has not
//! acknowledged yet, bounded in bytes (PROTOCOL.md 11.2, 11.6).
//!
//! Sequence numbers are implicit: the buffer counts every frame ever pushed (`sent`), and the
//! frames it holds are the last ones, numbered `sent - held + 1 ..= sent`. A frame's bytes are a
//! `Bytes`, so a broadcast held by thousands of sessions is one allocation.

use std::collections::VecDeque;

use bytes::Bytes;
use rustc_hash::FxHashMap;

use crate::bridge::DataOpcode;

/// One sequenced frame, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldFrame {
    /// Text or binary, as the link's encoding sends it.
    pub(crate) opcode: DataOpcode,
    /// The frame's payload.
    pub(crate) bytes: Bytes,
    /// The callback id it answers, for a Reply or an Error.
    pub(crate) answers: Option<u32>,
}

/// A frame's size as it is sent: its payload and a server's WebSocket header (RFC 6455 5.2:
/// 2 bytes, 4 from 126 bytes of payload, 10 from 64 KiB). The bound counts what a replay puts
/// in the new link's outbound queue.
fn framed_len(frame: &HeldFrame) -> usize {
    let len = frame.bytes.len();
    let header = match len {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    len + header
}

/// What [`ReplayBuffer::push`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// Held, within the bound.
    Kept,
    /// Held, but older unacknowledged frames were dropped to stay within the bound: the
    /// session can no longer be replayed in full.
    DroppedOlder,
}

/// Why frames after a count cannot be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplayError {
    /// The client claims more frames than were ever sent.
    AheadOfSent,
    /// Some of the frames after that count are no longer held.
    GapLost,
}

/// The frames a client has not acknowledged.
#[derive(Debug)]
pub(crate) struct ReplayBuffer {
    frames: VecDeque<HeldFrame>,
    /// Sequenced frames ever sent: the last held frame's number.
    sent: u64,
    /// Bytes of the held frames' payloads.
    bytes: usize,
    /// `Config::session_replay_bytes`.
    cap: usize,
    /// The number of the last frame dropped without the client's acknowledgement (0: none).
    lost_up_to: u64,
    /// The number of the held answer to each callback id, so that a duplicate request finds
    /// it without a scan of the buffer.
    /// Boxed and made on the first answer held: an idle session's size counts for every player.
    answers: Option<Box<FxHashMap<u32, u64>>>,
}

impl ReplayBuffer {
    /// An empty buffer holding at most `cap` bytes of frames.
    pub(crate) fn new(cap: usize) -> Self {
        Self { frames: VecDeque::new(), sent: 0, bytes: 0, cap, lost_up_to: 0, answers: None }
    }

    /// Sequenced frames ever sent.
    #[cfg(test)]
    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }

    /// Bytes held now, as sent (each frame with its WebSocket header).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The number of the first frame held (`sent + 1` when none is).
    fn first(&self) -> u64 {
        self.sent + 1 - self.frames.len() as u64
    }

    /// Holds the next frame, dropping the oldest ones if the bound requires.
    pub(crate) fn push(&mut self, frame: HeldFrame) -> Held {
        self.sent += 1;
        self.bytes += framed_len(&frame);
        if let Some(id) = frame.answers {
            self.answers.get_or_insert_with(Box::default).insert(id, self.sent);
        }
        self.frames.push_back(frame);
        let mut held = Held::Kept;
        // The newest frame always stays, even alone over the bound: it is being sent now.
        while self.bytes > self.cap && self.frames.len() > 1 {
            let first = self.first();
            if let Some(old) = self.frames.pop_front() {
                self.forget(&old, first);
                self.lost_up_to = first;
                held = Held::DroppedOlder;
            }
        }
        held
    }

    /// Forgets the frames the client has received, by its received count. A count above what
    /// was sent is refused (and changes nothing).
    pub(crate) fn acknowledge(&mut self, received: u64) -> Result<(), ReplayError> {
        if received > self.sent {
            return Err(ReplayError::AheadOfSent);
        }
        while self.first() <= received {
            let first = self.first();
            match self.frames.pop_front() {
                Some(old) => self.forget(&old, first),
                None => break,
            }
        }
        if self.frames.is_empty() {
            // All acknowledged: an idle session keeps no allocation.
            self.frames = VecDeque::new();
            self.answers = None;
        }
        Ok(())
    }

    /// Accounts for frame number `number` leaving the buffer.
    fn forget(&mut self, frame: &HeldFrame, number: u64) {
        self.bytes -= framed_len(frame);
        // Only if that entry is this frame's: a later answer to a reused id stays findable.
        if let Some(id) = frame.answers
            && let Some(answers) = &mut self.answers
            && answers.get(&id) == Some(&number)
        {
            answers.remove(&id);
        }
    }

    /// The frames after a client's received count, in order, if every one is still held.
    pub(crate) fn after(&self, received: u64) -> Result<impl Iterator<Item = &HeldFrame>, ReplayError> {
        if received > self.sent {
            return Err(ReplayError::AheadOfSent);
        }
        // Frames up to `first - 1` are gone, acknowledged or dropped: a client that claims fewer
        // has lost some the server no longer holds.
        if received < self.lost_up_to || received + 1 < self.first() {
            return Err(ReplayError::GapLost);
        }
        // Frames up to `received` may still be held (not acknowledged yet): skip them.
        let skip = received.saturating_sub(self.first() - 1);
        Ok(self.frames.iter().skip(skip as usize))
    }

    /// Whether every frame the client has not acknowledged is still held.
    #[cfg(test)]
    pub(crate) fn is_whole(&self, received: u64) -> bool {
        received >= self.lost_up_to
    }

    /// The held answer to callback id `id`, if any.
    pub(crate) fn answer_to(&self, id: u32) -> Option<&HeldFrame> {
        let number = *self.answers.as_ref()?.get(&id)?;
        self.frames.get(usize::try_from(number.checked_sub(self.first())?).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize, answers: Option<u32>) -> HeldFrame {
        HeldFrame { opcode: DataOpcode::Binary, bytes: Bytes::from(vec![7; len]), answers }
    }

    fn numbers(buffer: &ReplayBuffer, received: u64) -> Vec<usize> {
        buffer.after(received).expect("replayable").map(|f| f.bytes.len()).collect()
    }

    #[test]
    fn frames_are_held_until_acknowledged_and_replayed_after_a_count() {
        let mut b = ReplayBuffer::new(1000);
        for len in 1..=5 {
            assert_eq!(b.push(frame(len, None)), Held::Kept);
        }
        // Each frame counts with its 2-byte header.
        assert_eq!((b.sent(), b.bytes()), (5, 15 + 5 * 2));
        assert_eq!(numbers(&b, 2), [3, 4, 5], "frames 3..=5, the lengths standing in for numbers");
        b.acknowledge(3).expect("ack");
        assert_eq!((b.sent(), b.bytes()), (5, 9 + 2 * 2));
        assert_eq!(numbers(&b, 3), [4, 5]);
        assert_eq!(numbers(&b, 4), [5], "a count between the acknowledged one and sent");
        assert_eq!(numbers(&b, 5), Vec::<usize>::new());
        b.acknowledge(5).expect("ack all");
        assert_eq!(b.bytes(), 0);
        assert_eq!(numbers(&b, 5), Vec::<usize>::new());
    }

    #[test]
    fn a_count_above_what_was_sent_is_refused() {
        let mut b = ReplayBuffer::new(1000);
        b.push(frame(1, None));
        assert_eq!(b.acknowledge(2), Err(ReplayError::AheadOfSent));
        assert!(matches!(b.after(2), Err(ReplayError::AheadOfSent)));
        assert_eq!(b.bytes(), 3, "a refused acknowledgement changes nothing");
    }

    #[test]
    fn over_the_bound_the_oldest_go_and_replay_before_them_is_refused() {
        let mut b = ReplayBuffer::new(14);
        assert_eq!(b.push(frame(4, None)), Held::Kept);
        assert_eq!(b.push(frame(4, None)), Held::Kept);
        assert_eq!(b.push(frame(4, None)), Held::DroppedOlder);
        // 3 x 6 bytes sent > 14: frame 1 was dropped when frame 3 came.
        assert_eq!(b.bytes(), 12);
        assert!(!b.is_whole(0));
        assert!(matches!(b.after(0), Err(ReplayError::GapLost)));
        assert_eq!(numbers(&b, 1), [4, 4], "a client that had frame 1 can still be replayed");
        assert!(b.is_whole(1));
    }

    #[test]
    fn a_frame_larger_than_the_bound_is_still_held_alone() {
        let mut b = ReplayBuffer::new(10);
        b.push(frame(4, None));
        assert_eq!(b.push(frame(50, None)), Held::DroppedOlder);
        assert_eq!(b.bytes(), 52);
        assert_eq!(numbers(&b, 1), [50]);
    }

    #[test]
    fn a_frame_counts_with_the_header_it_is_sent_with() {
        let sizes: Vec<usize> =
            [0, 125, 126, 65_535, 65_536].iter().map(|&n| framed_len(&frame(n, None))).collect();
        assert_eq!(sizes, [2, 127, 130, 65_539, 65_546]);
    }

    #[test]
    fn an_answer_is_found_by_its_callback_id_until_acknowledged() {
        let mut b = ReplayBuffer::new(1000);
        b.push(frame(1, Some(7)));
        b.push(frame(2, None));
        b.push(frame(3, Some(9)));
        assert_eq!(b.answer_to(9).map(|f| f.bytes.len()), Some(3));
        assert_eq!(b.answer_to(7).map(|f| f.bytes.len()), Some(1));
        b.acknowledge(1).expect("ack");
        assert_eq!(b.answer_to(7), None);
        assert_eq!(b.answer_to(8), None);
        assert_eq!(b.answers.as_ref().map(|a| a.len()), Some(1), "the index forgets what the buffer lets go");
        // A reused id: the later answer is the one found, and stays after the earlier goes.
        b.push(frame(4, Some(9)));
        assert_eq!(b.answer_to(9).map(|f| f.bytes.len()), Some(4));
        b.acknowledge(3).expect("ack");
        assert_eq!(b.answer_to(9).map(|f| f.bytes.len()), Some(4));
    }

    #[test]
    fn a_count_below_what_the_client_acknowledged_is_a_gap() {
        let mut b = ReplayBuffer::new(1000);
        for len in 1..=4 {
            b.push(frame(len, None));
        }
        b.acknowledge(3).expect("ack");
        assert!(matches!(b.after(2), Err(ReplayError::GapLost)), "frame 3 is gone");
        assert_eq!(numbers(&b, 3), [4]);
    }
}
