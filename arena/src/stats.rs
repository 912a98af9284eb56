//! What authenticated players earn between two saves: [`StatsBook`], kept by the game on the
//! logic thread and emptied into the store in batches through the job pool (once a second,
//! and at the tick after a player's last connection goes), never per move.

use std::collections::HashMap;

use ticksock_server::ConnId;

use crate::store::{MAX_STATS_DELTA, Stats};

/// The stats not saved yet, per account name, of the names with an authenticated connection.
#[derive(Debug, Default)]
pub(crate) struct StatsBook {
    /// Each authenticated connection's name.
    conns: HashMap<ConnId, String>,
    /// Per name: its authenticated connections and what it earned since its last save.
    names: HashMap<String, Tracked>,
}

#[derive(Debug, Default)]
struct Tracked {
    conns: usize,
    pending: Stats,
}

impl StatsBook {
    /// `conn` is authenticated as `name` (again, or instead of another name).
    pub(crate) fn authenticated(&mut self, conn: ConnId, name: &str) {
        if self.conns.get(&conn).is_some_and(|old| old == name) {
            return;
        }
        self.forget(conn);
        self.conns.insert(conn, name.to_owned());
        self.names.entry(name.to_owned()).or_default().conns += 1;
    }

    /// `conn` is no longer authenticated as its name (it went, or took another name). When it
    /// was the name's last connection, what the name earned is taken, to save at the tick.
    pub(crate) fn forget(&mut self, conn: ConnId) -> Option<(String, Stats)> {
        let name = self.conns.remove(&conn)?;
        let tracked = self.names.get_mut(&name)?;
        tracked.conns -= 1;
        if tracked.conns > 0 {
            return None;
        }
        let pending = self.names.remove(&name).map(|t| t.pending).unwrap_or_default();
        (pending != Stats::default()).then_some((name, pending))
    }

    /// Whether `conn` is authenticated (its earnings count).
    pub(crate) fn counts(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// Adds to what `name` earned, if it is authenticated.
    pub(crate) fn add(&mut self, name: &str, earned: impl FnOnce(&mut Stats)) {
        if let Some(tracked) = self.names.get_mut(name) {
            earned(&mut tracked.pending);
        }
    }

    /// Takes what `name` earned since its last save (up to what one save may add).
    pub(crate) fn take(&mut self, name: &str) -> Stats {
        self.names.get_mut(name).map(|t| take_part(&mut t.pending)).unwrap_or_default()
    }

    /// Takes what every name earned since its last save: the batch to save now.
    pub(crate) fn take_all(&mut self) -> Vec<(String, Stats)> {
        let batch = self
            .names
            .iter_mut()
            .filter(|(_, t)| t.pending != Stats::default())
            .map(|(name, t)| (name.clone(), take_part(&mut t.pending)))
            .collect();
        // Names kept only for a failed save of theirs (see `restore`) have been taken now.
        self.names.retain(|_, t| t.conns > 0 || t.pending != Stats::default());
        batch
    }

    /// Puts back what a failed save took, to go with the next one; kept even if the name has
    /// gone meanwhile.
    pub(crate) fn restore(&mut self, name: &str, delta: Stats) {
        let pending = &mut self.names.entry(name.to_owned()).or_default().pending;
        pending.distance = pending.distance.saturating_add(delta.distance);
        pending.messages = pending.messages.saturating_add(delta.messages);
        pending.games = pending.games.saturating_add(delta.games);
    }
}

/// Takes from `pending` what one save may add ([`MAX_STATS_DELTA`] of each), leaving the rest.
fn take_part(pending: &mut Stats) -> Stats {
    let part = Stats {
        distance: pending.distance.min(MAX_STATS_DELTA),
        messages: pending.messages.min(MAX_STATS_DELTA),
        games: pending.games.min(MAX_STATS_DELTA),
    };
    pending.distance -= part.distance;
    pending.messages -= part.messages;
    pending.games -= part.games;
    part
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(n: u32) -> ConnId {
        ConnId::new(n, 1)
    }

    #[test]
    fn only_authenticated_names_earn_and_the_last_connection_takes_the_rest() {
        let mut book = StatsBook::default();
        book.add("ann", |s| s.messages += 1);
        assert!(book.take_all().is_empty(), "ann is not authenticated yet");
        book.authenticated(conn(1), "ann");
        book.authenticated(conn(2), "ann");
        book.authenticated(conn(1), "ann"); // A refresh counts once.
        assert!(book.counts(conn(1)) && !book.counts(conn(3)));
        book.add("ann", |s| s.distance += 5);
        assert_eq!(book.forget(conn(1)), None, "conn 2 is still ann");
        book.add("ann", |s| s.games += 1);
        assert_eq!(book.forget(conn(2)), Some(("ann".into(), Stats { distance: 5, messages: 0, games: 1 })));
        book.add("ann", |s| s.games += 1);
        assert!(book.take_all().is_empty(), "gone: no longer earns");
    }

    #[test]
    fn a_batch_takes_everything_once_and_a_failed_save_comes_back() {
        let mut book = StatsBook::default();
        book.authenticated(conn(1), "ann");
        book.authenticated(conn(2), "bob");
        book.add("ann", |s| s.messages += 2);
        let batch = book.take_all();
        assert_eq!(batch, [("ann".to_owned(), Stats { messages: 2, ..Stats::default() })]);
        assert!(book.take_all().is_empty(), "taken");
        book.restore("ann", Stats { messages: 2, ..Stats::default() });
        let last = book.forget(conn(1));
        assert_eq!(
            last,
            Some(("ann".to_owned(), Stats { messages: 2, ..Stats::default() })),
            "saved on leaving"
        );
        // A name that has gone keeps a failed save's stats for the next batch.
        book.restore("ann", Stats { messages: 2, ..Stats::default() });
        book.restore("cyd", Stats { games: 1, ..Stats::default() });
        let mut batch = book.take_all();
        batch.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(batch.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["ann", "cyd"]);
        assert!(book.take_all().is_empty());
        assert_eq!(book.names.len(), 1, "only bob, still connected, is kept");
    }

    #[test]
    fn a_take_never_exceeds_what_one_save_may_add() {
        let mut book = StatsBook::default();
        book.authenticated(conn(1), "ann");
        book.add("ann", |s| s.distance = MAX_STATS_DELTA + 3);
        assert_eq!(book.take("ann").distance, MAX_STATS_DELTA);
        assert_eq!(book.take("ann").distance, 3);
        assert_eq!(book.take("nobody"), Stats::default());
    }
}
