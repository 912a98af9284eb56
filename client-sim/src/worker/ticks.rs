//! The exact check of `state` pushes under `--faults`: which ticks any bot saw, and which
//! ticks each session missed, so that a gap is a loss unless the server skipped that tick.
//!
//! The arena runs one tick counter for the whole server and pushes a `state` to every arena
//! that has a connection in it, at every tick it runs (PROTOCOL.md 8.6); a version 2 session
//! stays in its arena while its link is down, and its pushes are held for the resume. So the
//! ticks of one session must go up by exactly one, except over tick slots the server skipped
//! because it ran late (it counts them in `ticksock_ticks_skipped_total`), which no arena got.
//! A tick that one session missed and another saw was run: that session lost a push. A tick
//! that sessions missed and none saw was skipped, or lost by all: the run compares how many
//! such ticks there are with the server's skipped count.

use std::collections::{BTreeMap, BTreeSet};

/// A gap longer than this many ticks is not listed tick by tick: it counts as lost whole
/// (a session does not miss minutes of ticks to skipped slots).
const LONGEST_LISTED_GAP: u64 = 1 << 16;

/// The ticks seen and missed, by one worker's sessions or (merged) by all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TickLedger {
    /// Every tick some session saw.
    seen: BTreeSet<u64>,
    /// The last tick added to `seen` (most pushes repeat it: every arena gets the same tick).
    last_noted: Option<u64>,
    /// For each tick some session missed, how many sessions missed it.
    missing: BTreeMap<u64, u64>,
    /// Ticks missed in gaps too long to list, all counted lost.
    missing_unlisted: u64,
}

/// What the ledger says once every worker's share is in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TickVerdict {
    /// Pushes a session missed of a tick another session saw: lost.
    pub lost: u64,
    /// Pushes sessions missed of ticks no session saw (skipped by the server, or lost by all).
    pub unseen_missed: u64,
    /// The distinct ticks among those: at most the slots the server says it skipped.
    pub unseen_ticks: u64,
}

impl TickLedger {
    /// A session saw `tick`.
    pub(crate) fn saw(&mut self, tick: u64) {
        if self.last_noted != Some(tick) {
            self.last_noted = Some(tick);
            self.seen.insert(tick);
        }
    }

    /// A session saw `tick` right after `last`, with nothing between: it missed `last + 1` to
    /// `tick - 1`.
    pub(crate) fn missed_between(&mut self, last: u64, tick: u64) {
        let first = last.saturating_add(1);
        if tick <= first {
            return;
        }
        if tick - first > LONGEST_LISTED_GAP {
            self.missing_unlisted += tick - first;
            return;
        }
        for t in first..tick {
            *self.missing.entry(t).or_default() += 1;
        }
    }

    /// Adds `other`'s ticks to these.
    pub(crate) fn merge(&mut self, other: &TickLedger) {
        self.seen.extend(other.seen.iter().copied());
        for (tick, n) in &other.missing {
            *self.missing.entry(*tick).or_default() += n;
        }
        self.missing_unlisted += other.missing_unlisted;
    }

    /// Every missed tick judged against every tick seen.
    pub(crate) fn verdict(&self) -> TickVerdict {
        let mut v = TickVerdict { lost: self.missing_unlisted, ..TickVerdict::default() };
        for (tick, n) in &self.missing {
            if self.seen.contains(tick) {
                v.lost += n;
            } else {
                v.unseen_missed += n;
                v.unseen_ticks += 1;
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One session's ticks into `ledger`, as `Track` does it: a tick that does not increase
    /// is a repeat (counted apart), and the gap runs from the highest tick so far.
    fn session(ledger: &mut TickLedger, ticks: &[u64]) {
        let mut last: Option<u64> = None;
        for &tick in ticks {
            ledger.saw(tick);
            match last {
                Some(l) if tick <= l => continue,
                Some(l) => ledger.missed_between(l, tick),
                None => {}
            }
            last = Some(tick);
        }
    }

    #[test]
    fn a_tick_one_session_missed_and_another_saw_is_lost_and_one_none_saw_is_skipped() {
        let mut a = TickLedger::default();
        session(&mut a, &[10, 11, 13, 14, 17]); // misses 12, and 15 and 16
        let mut b = TickLedger::default();
        session(&mut b, &[11, 12, 13, 14, 17, 18]); // misses 15 and 16 as well: skipped
        assert_eq!(a.verdict(), TickVerdict { lost: 0, unseen_missed: 3, unseen_ticks: 3 }, "alone");
        a.merge(&b);
        assert_eq!(a.verdict(), TickVerdict { lost: 1, unseen_missed: 4, unseen_ticks: 2 });
    }

    #[test]
    fn a_gap_too_long_to_list_is_lost_whole_and_a_repeat_misses_nothing() {
        let mut ledger = TickLedger::default();
        session(&mut ledger, &[5, 5, 4, 6]);
        assert_eq!(ledger.verdict(), TickVerdict::default(), "repeats are the caller's to count");
        session(&mut ledger, &[1, 2 + LONGEST_LISTED_GAP + 1]);
        assert_eq!(ledger.verdict().lost, LONGEST_LISTED_GAP + 1);
        let mut total = TickLedger::default();
        total.merge(&ledger);
        assert_eq!(total, TickLedger { last_noted: None, ..ledger }, "merging carries everything");
    }
}
