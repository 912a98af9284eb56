//! Call deadlines, earliest first.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

/// Call deadlines, earliest first.
///
/// Most calls take the default timeout, so their deadlines arrive in order: those go in a FIFO,
/// O(1) each way. A deadline earlier than the FIFO's last (a call with a shorter timeout) goes
/// in a tree. FIFO entries of calls that ended are dropped lazily from the front ([`Deadlines::prune`]).
#[derive(Default)]
pub(super) struct Deadlines {
    fifo: VecDeque<(Instant, u32)>,
    tree: BTreeSet<(Instant, u32)>,
}

impl Deadlines {
    pub(super) fn insert(&mut self, at: Instant, id: u32) {
        if self.fifo.back().is_none_or(|&(last, _)| last <= at) {
            self.fifo.push_back((at, id));
        } else {
            self.tree.insert((at, id));
        }
    }

    /// Forgets a tree entry now; a FIFO entry waits for [`Deadlines::prune`].
    pub(super) fn remove(&mut self, at: Instant, id: u32) {
        if !self.tree.is_empty() {
            self.tree.remove(&(at, id));
        }
    }

    /// Drops FIFO entries at the front whose call has ended (`live` says which still wait).
    pub(super) fn prune(&mut self, live: impl Fn(Instant, u32) -> bool) {
        while let Some(&(at, id)) = self.fifo.front() {
            if live(at, id) {
                return;
            }
            self.fifo.pop_front();
        }
    }

    pub(super) fn first(&self) -> Option<(Instant, u32)> {
        match (self.fifo.front(), self.tree.first()) {
            (Some(&a), Some(&b)) => Some(a.min(b)),
            (a, b) => a.or(b).copied(),
        }
    }

    pub(super) fn pop_first(&mut self) {
        let from_fifo = match (self.fifo.front(), self.tree.first()) {
            (Some(a), Some(b)) => a <= b,
            (a, _) => a.is_some(),
        };
        if from_fifo {
            self.fifo.pop_front();
        } else {
            self.tree.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn deadlines_come_out_earliest_first_whichever_side_holds_them() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut d = Deadlines::default();
        // In order (the FIFO), then two earlier ones (the tree), then a tie with the FIFO.
        for (at, id) in [(10, 1), (20, 2), (30, 3), (15, 4), (5, 5), (20, 6)] {
            d.insert(ms(at), id);
        }
        let mut order = Vec::new();
        while let Some((_, id)) = d.first() {
            order.push(id);
            d.pop_first();
        }
        assert_eq!(order, [5, 1, 4, 2, 6, 3]);
    }

    #[test]
    fn ended_calls_leave_the_tree_at_once_and_the_fifo_when_pruned() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut d = Deadlines::default();
        d.insert(ms(10), 1);
        d.insert(ms(20), 2);
        d.insert(ms(5), 3); // The tree.
        d.remove(ms(5), 3);
        assert_eq!(d.first(), Some((ms(10), 1)));
        // Call 1 ended: a prune that says so drops it from the front of the FIFO.
        d.remove(ms(10), 1);
        assert_eq!(d.first(), Some((ms(10), 1)), "FIFO entries wait for the prune");
        d.prune(|_, id| id != 1);
        assert_eq!(d.first(), Some((ms(20), 2)));
    }
}
