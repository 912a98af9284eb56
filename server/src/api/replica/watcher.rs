//! One client's side of replication: what it watches, the views it was sent and has not
//! acknowledged yet, and its baseline (the last view it acknowledged). Pure bookkeeping.

use std::collections::VecDeque;

use ticksock_protocol::Encoding;
use ticksock_protocol::replica::AckOutcome;

use super::Cell;

/// A view sent: the update's tick, the version it carried the entities to, and which
/// entities the client saw (sorted ids).
#[derive(Debug)]
pub(crate) struct SentView {
    pub(crate) tick: u64,
    pub(crate) version: u64,
    pub(crate) entities: Vec<u32>,
    /// The digest of what the client holds after this update (when digests are on).
    pub(crate) digest: Option<u64>,
}

/// Id lists of views no longer held, kept for the next views: every client is sent a view
/// per update, so without them a flush allocates one list per client and frees as many.
#[derive(Debug, Default)]
pub(crate) struct Spare(Vec<Vec<u32>>);

impl Spare {
    /// Lists kept at most: beyond, a list is freed (the pool stays bounded when clients go).
    const MAX: usize = 4096;

    fn keep(&mut self, mut list: Vec<u32>) {
        if self.0.len() < Self::MAX {
            list.clear();
            self.0.push(list);
        }
    }

    /// A list holding a copy of `ids`.
    pub(crate) fn copy_of(&mut self, ids: &[u32]) -> Vec<u32> {
        let mut list = self.0.pop().unwrap_or_default();
        list.extend_from_slice(ids);
        list
    }
}

/// What one connection watches, and what it was sent.
#[derive(Debug)]
pub(crate) struct Watcher {
    pub(crate) encoding: Encoding,
    pub(crate) group: Box<str>,
    pub(crate) center: Option<Cell>,
    pub(crate) radius: u32,
    /// Views sent, oldest first; the first is the baseline when `acked`.
    sent: VecDeque<SentView>,
    /// Whether `sent[0]` is a view the client acknowledged (its baseline).
    acked: bool,
}

impl Watcher {
    pub(crate) fn new(encoding: Encoding, group: &str, center: Option<Cell>, radius: u32) -> Self {
        Self { encoding, group: group.into(), center, radius, sent: VecDeque::new(), acked: false }
    }

    /// The baseline: the acknowledged view, if the client has one.
    pub(crate) fn baseline(&self) -> Option<&SentView> {
        self.sent.front().filter(|_| self.acked)
    }

    /// The latest view sent.
    pub(crate) fn latest(&self) -> Option<&SentView> {
        self.sent.back()
    }

    /// How many views are held (the baseline and those not acknowledged yet).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.sent.len()
    }

    /// Records a view sent. Holds at most `max_held` views: past it the oldest goes, and if
    /// that was the baseline, the client has none (its next update is a full snapshot). The
    /// id lists of views that go are handed to `spare`, for the next views.
    pub(crate) fn record(&mut self, view: SentView, max_held: usize, spare: &mut Spare) {
        self.sent.push_back(view);
        while self.sent.len() > max_held.max(1) {
            if let Some(gone) = self.sent.pop_front() {
                spare.keep(gone.entities);
            }
            self.acked = false;
        }
    }

    /// The client acknowledges the update of `tick`.
    pub(crate) fn handle_ack(&mut self, tick: u64, spare: &mut Spare) -> AckOutcome {
        if self.baseline().is_some_and(|b| tick <= b.tick) {
            return AckOutcome::Stale;
        }
        let Some(at) = self.sent.iter().position(|v| v.tick == tick) else {
            return AckOutcome::Unknown;
        };
        // Views older than the new baseline can never be a baseline again.
        for gone in self.sent.drain(..at) {
            spare.keep(gone.entities);
        }
        self.acked = true;
        AckOutcome::Accepted
    }

    /// Bytes held for the views (their id lists), for the metrics.
    pub(crate) fn held_ids(&self) -> usize {
        self.sent.iter().map(|v| v.entities.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Watcher {
        fn record_test(&mut self, view: SentView, max_held: usize) {
            self.record(view, max_held, &mut Spare::default());
        }

        fn handle_ack_test(&mut self, tick: u64) -> AckOutcome {
            self.handle_ack(tick, &mut Spare::default())
        }
    }

    fn view(tick: u64) -> SentView {
        SentView { tick, version: tick, entities: vec![1, 2], digest: None }
    }

    #[test]
    fn an_ack_makes_a_baseline_drops_older_views_and_bad_acks_change_nothing() {
        let mut w = Watcher::new(Encoding::Binary, "g", None, 0);
        assert!(w.baseline().is_none());
        for tick in 1..=4 {
            w.record_test(view(tick), 8);
        }
        assert_eq!(w.handle_ack_test(9), AckOutcome::Unknown, "never sent");
        assert_eq!(w.handle_ack_test(3), AckOutcome::Accepted);
        assert_eq!(w.baseline().map(|b| b.tick), Some(3));
        assert_eq!(w.held(), 2, "views 1 and 2 are gone");
        assert_eq!(w.handle_ack_test(2), AckOutcome::Stale);
        assert_eq!(w.handle_ack_test(3), AckOutcome::Stale, "repeated");
        assert_eq!(w.handle_ack_test(4), AckOutcome::Accepted);
        assert_eq!(w.held(), 1);
    }

    #[test]
    fn past_the_bound_the_oldest_view_goes_and_with_it_the_baseline() {
        let mut w = Watcher::new(Encoding::Binary, "g", None, 0);
        w.record_test(view(1), 3);
        assert_eq!(w.handle_ack_test(1), AckOutcome::Accepted);
        w.record_test(view(2), 3);
        w.record_test(view(3), 3);
        assert_eq!(w.baseline().map(|b| b.tick), Some(1));
        w.record_test(view(4), 3);
        assert!(w.baseline().is_none(), "the baseline was the oldest: the next update is full");
        assert_eq!(w.held(), 3);
        assert_eq!(w.handle_ack_test(1), AckOutcome::Unknown, "no longer held");
        assert_eq!(w.handle_ack_test(3), AckOutcome::Accepted);
    }
}
