//! Exactly once across nodes, through a Redis that may restart and lose what it held.
//!
//! The sender numbers its deliveries to each receiver (1, 2, 3, ... per receiver epoch) and
//! keeps each one it wrote for `retain` after Redis took it ([`Outbox`]); after any failure of
//! Redis it writes the kept ones again, since a Redis that restarted without them would have
//! lost what the receiver had not read yet. The receiver takes each number once and counts the
//! numbers it never saw ([`Dedupe`]): a retry or a resend is dropped, and a loss (a receiver
//! that fell further behind than `retain`, or a stream trimmed past what it read) is reported
//! with the exact count, never passed over in silence.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A delivery ready for a receiver's inbox: its stream key and its encoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The receiver's inbox stream.
    pub inbox: String,
    /// The encoded [`Envelope`](super::wire::Envelope).
    pub entry: Vec<u8>,
}

/// The sender's side: numbers, and what Redis took recently.
#[derive(Debug)]
pub struct Outbox {
    retain: Duration,
    next: HashMap<(String, u64), u64>,
    written: VecDeque<(Instant, Sealed)>,
}

impl Outbox {
    /// Keeps what Redis took for `retain`.
    pub fn new(retain: Duration) -> Self {
        Self { retain, next: HashMap::new(), written: VecDeque::new() }
    }

    /// The next number for receiver `node` at `epoch`. A new epoch of a node ends the
    /// numbering of its earlier ones (that run has stopped), so what is kept grows with the
    /// nodes, not with their restarts.
    pub fn number(&mut self, node: &str, epoch: u64) -> u64 {
        let key = (node.to_owned(), epoch);
        if !self.next.contains_key(&key) {
            self.next.retain(|(n, _), _| n != node);
        }
        let next = self.next.entry(key).or_insert(1);
        let seq = *next;
        *next += 1;
        seq
    }

    /// Redis took `sealed` at `now`.
    pub fn handle_written(&mut self, sealed: Sealed, now: Instant) {
        self.written.push_back((now, sealed));
        self.trim(now);
    }

    /// What Redis took within `retain` of `now`, to write again after a failure.
    pub fn poll_resend(&mut self, now: Instant) -> Vec<Sealed> {
        self.trim(now);
        self.written.iter().map(|(_, s)| s.clone()).collect()
    }

    /// Forgets the numbering of a receiver that is gone.
    pub fn forget(&mut self, node: &str) {
        self.next.retain(|(n, _), _| n != node);
    }

    /// How many written deliveries are kept.
    pub fn retained(&self) -> usize {
        self.written.len()
    }

    fn trim(&mut self, now: Instant) {
        while self.written.front().is_some_and(|(at, _)| now.duration_since(*at) > self.retain) {
            self.written.pop_front();
        }
    }
}

/// What the receiver makes of a numbered delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The next one: deliver it.
    Deliver,
    /// Seen already (a retry, or a resend after a Redis failure): drop it.
    Duplicate,
    /// Deliver it; the `lost` numbers before it will never come.
    Gap {
        /// How many.
        lost: u64,
    },
}

/// The receiver's side: the last number taken from each sender epoch.
#[derive(Debug, Default)]
pub struct Dedupe {
    last: HashMap<(String, u64), u64>,
}

/// Senders remembered at most; past it all are forgotten (a cluster of that many nodes is
/// far beyond this design; a sender's restarts do not count, see [`Dedupe::handle`]).
const MAX_SENDERS: usize = 4096;

impl Dedupe {
    /// Judges delivery `seq` from `from` at `epoch`. A sender's new epoch ends what was kept
    /// of its earlier ones: that run has stopped, and its last deliveries came before the new
    /// run's first in the inbox.
    pub fn handle(&mut self, from: &str, epoch: u64, seq: u64) -> Verdict {
        if !self.last.contains_key(&(from.to_owned(), epoch)) {
            self.last.retain(|(sender, _), _| sender != from);
            if self.last.len() >= MAX_SENDERS {
                self.last.clear();
            }
        }
        let last = self.last.entry((from.to_owned(), epoch)).or_insert(0);
        if seq <= *last {
            return Verdict::Duplicate;
        }
        let lost = seq - *last - 1;
        *last = seq;
        if lost == 0 { Verdict::Deliver } else { Verdict::Gap { lost } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(n: u8) -> Sealed {
        Sealed { inbox: "ts:inbox:b".into(), entry: vec![n] }
    }

    #[test]
    fn numbers_run_per_receiver_epoch_and_written_entries_are_kept_for_the_retain_time() {
        let t0 = Instant::now();
        let mut out = Outbox::new(Duration::from_secs(2));
        assert_eq!((out.number("b", 1), out.number("b", 1), out.number("c", 1)), (1, 2, 1));
        assert_eq!(out.number("b", 2), 1, "a restarted receiver starts again at 1");
        assert_eq!(out.number("b", 2), 2);
        assert_eq!(out.next.len(), 2, "b's first run is forgotten; c is kept");
        out.handle_written(sealed(1), t0);
        out.handle_written(sealed(2), t0 + Duration::from_secs(1));
        assert_eq!(out.poll_resend(t0 + Duration::from_secs(2)), [sealed(1), sealed(2)]);
        assert_eq!(out.poll_resend(t0 + Duration::from_millis(2001)), [sealed(2)]);
        out.forget("b");
        assert_eq!(out.number("b", 1), 1);
    }

    #[test]
    fn the_receiver_drops_repeats_and_counts_exactly_what_never_came() {
        let mut d = Dedupe::default();
        assert_eq!(d.handle("a", 1, 1), Verdict::Deliver);
        assert_eq!(d.handle("a", 1, 2), Verdict::Deliver);
        assert_eq!(d.handle("a", 1, 2), Verdict::Duplicate);
        assert_eq!(d.handle("a", 1, 1), Verdict::Duplicate);
        assert_eq!(d.handle("a", 1, 6), Verdict::Gap { lost: 3 });
        assert_eq!(d.handle("a", 1, 4), Verdict::Duplicate, "too late: counted lost already");
        assert_eq!(d.handle("a", 2, 1), Verdict::Deliver, "a new epoch of the sender");
        assert_eq!(d.handle("b", 1, 3), Verdict::Gap { lost: 2 }, "a first delivery is number 1");
        assert_eq!(d.last.len(), 2, "a's first run is forgotten, b is kept");
    }
}
