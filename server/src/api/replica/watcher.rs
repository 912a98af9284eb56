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
    /// that was the baseline, the client has none (its next update is a full snapshot).
    pub(crate) fn record(&mut self, view: SentView, max_held: usize) {
        self.sent.push_back(view);
        while self.sent.len() > max_held.max(1) {
            self.sent.pop_front();
            self.acked = false;
        }
    }

    /// The client acknowledges the update of `tick`.
    pub(crate) fn handle_ack(&mut self, tick: u64) -> AckOutcome {
        if self.baseline().is_some_and(|b| tick <= b.tick) {
            return AckOutcome::Stale;
        }
        let Some(at) = self.sent.iter().position(|v| v.tick == tick) else {
            return AckOutcome::Unknown;
        };
        // Views older than the new baseline can never be a baseline again.
        self.sent.drain(..at);
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

    fn view(tick: u64) -> SentView {
        SentView { tick, version: tick, entities: vec![1, 2], digest: None }
    }

    #[test]
    fn an_ack_makes_a_baseline_drops_older_views_and_bad_acks_change_nothing() {
        let mut w = Watcher::new(Encoding::Binary, "g", None, 0);
        assert!(w.baseline().is_none());
        for tick in 1..=4 {
            w.record(view(tick), 8);
        }
        assert_eq!(w.handle_ack(9), AckOutcome::Unknown, "never sent");
        assert_eq!(w.handle_ack(3), AckOutcome::Accepted);
        assert_eq!(w.baseline().map(|b| b.tick), Some(3));
        assert_eq!(w.held(), 2, "views 1 and 2 are gone");
        assert_eq!(w.handle_ack(2), AckOutcome::Stale);
        assert_eq!(w.handle_ack(3), AckOutcome::Stale, "repeated");
        assert_eq!(w.handle_ack(4), AckOutcome::Accepted);
        assert_eq!(w.held(), 1);
    }

    #[test]
    fn past_the_bound_the_oldest_view_goes_and_with_it_the_baseline() {
        let mut w = Watcher::new(Encoding::Binary, "g", None, 0);
        w.record(view(1), 3);
        assert_eq!(w.handle_ack(1), AckOutcome::Accepted);
        w.record(view(2), 3);
        w.record(view(3), 3);
        assert_eq!(w.baseline().map(|b| b.tick), Some(1));
        w.record(view(4), 3);
        assert!(w.baseline().is_none(), "the baseline was the oldest: the next update is full");
        assert_eq!(w.held(), 3);
        assert_eq!(w.handle_ack(1), AckOutcome::Unknown, "no longer held");
        assert_eq!(w.handle_ack(3), AckOutcome::Accepted);
    }
}
