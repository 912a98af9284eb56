//! The arena's accounts as its routes use them: the database file, the session key, and the
//! blocking work each route hands to the job pool (never run on the logic thread).
//!
//! Each worker thread opens its own [`SqliteStore`] on the file the first time it needs one
//! and keeps it (a store is `Send`, not `Sync`), so the pool's threads read and write in
//! parallel through SQLite's WAL, and the logic thread never touches the file.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use ticksock_server::AppError;

use crate::proto::{
    ERR_BAD_CREDENTIALS, ERR_INVALID, ERR_NAME_TAKEN, ERR_STORE, GuestSession, LeaderboardBy,
    LeaderboardEntry, PlayerStats, Session,
};
use crate::session::SessionKey;
use crate::store::{AccountId, GUEST_PREFIX, Ranking, SqliteStore, Stats, Store, StoreError};

thread_local! {
    /// This thread's open stores, by database file: one in a server (its one file); tests
    /// that run jobs in their own thread may use several.
    static STORES: RefCell<HashMap<PathBuf, SqliteStore>> = RefCell::new(HashMap::new());
}

/// Where the accounts live: the database file, and the key that signs session tokens.
/// Cheap to clone into a job.
#[derive(Debug, Clone)]
pub struct Accounts {
    db: Arc<PathBuf>,
    key: SessionKey,
    /// The accounts' names when the file was opened (see [`Accounts::names_at_open`]).
    names_at_open: Arc<[String]>,
}

impl Accounts {
    /// Opens the database at `db` (creating it, running the migrations) and its session key
    /// file ([`SessionKey::path_for`]), made if missing. Called once at start, before the
    /// server runs: a failure stops the program, and says which file and why.
    pub fn open(db: &Path) -> Result<Self, StoreError> {
        // Opened here only to create and migrate it, and dropped: the pool's threads open
        // their own.
        let names_at_open = SqliteStore::open(db)?.account_names()?.into();
        let key = SessionKey::load_or_create(&SessionKey::path_for(db))?;
        Ok(Self { db: Arc::new(db.to_owned()), key, names_at_open })
    }

    /// The names of the accounts with a password when the file was opened: the arena keeps
    /// `login` by name off them (and off the ones registered since, which it adds itself).
    pub fn names_at_open(&self) -> &[String] {
        &self.names_at_open
    }

    /// The database file.
    pub fn db(&self) -> &Path {
        &self.db
    }

    /// The key that signs and checks session tokens.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// Runs `f` with this thread's store for the file, opening it on first use. Blocks: for
    /// the job pool only.
    fn with_store<T>(&self, f: impl FnOnce(&SqliteStore) -> Result<T, StoreError>) -> Result<T, StoreError> {
        STORES.with_borrow_mut(|stores| {
            let store = match stores.entry(self.db.to_path_buf()) {
                std::collections::hash_map::Entry::Occupied(open) => open.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => slot.insert(SqliteStore::open(&*self.db)?),
            };
            f(store)
        })
    }

    /// `register`'s work: a new account and its session token.
    pub(crate) fn register(&self, name: &str, password: &str) -> Result<Session, AppError> {
        let account = self.with_store(|s| s.create_account(name, password)).map_err(refusal)?;
        Ok(Session { token: self.key.issue(account, name, SystemTime::now()) })
    }

    /// `signin`'s work: a session token for the account the name and password open.
    pub(crate) fn sign_in(&self, name: &str, password: &str) -> Result<Session, AppError> {
        let account = self.with_store(|s| s.verify(name, password)).map_err(refusal)?;
        Ok(Session { token: self.key.issue(account, name, SystemTime::now()) })
    }

    /// `guest`'s work: the device's guest account (a new one when it has no device token),
    /// with a session token for it.
    pub(crate) fn guest(&self, device_token: Option<String>) -> Result<GuestSession, AppError> {
        let (account, device_token) = match device_token {
            Some(token) => {
                // A device token of the wrong form is as unknown as any other.
                let known = self.with_store(|s| s.verify_guest(&token)).map_err(|e| match e {
                    StoreError::Invalid { what: "token", .. } => StoreError::BadCredentials,
                    e => e,
                });
                (known.map_err(refusal)?, token)
            }
            None => {
                let (account, token) = self.with_store(|s| s.create_guest()).map_err(refusal)?;
                (account, token.into_string())
            }
        };
        let name = guest_name(account);
        Ok(GuestSession { token: self.key.issue(account, &name, SystemTime::now()), device_token })
    }

    /// `leaderboard`'s work.
    pub(crate) fn leaderboard(
        &self,
        by: LeaderboardBy,
        limit: u32,
    ) -> Result<Vec<LeaderboardEntry>, AppError> {
        let by = match by {
            LeaderboardBy::Distance => Ranking::Distance,
            LeaderboardBy::Messages => Ranking::Messages,
            LeaderboardBy::Games => Ranking::Games,
        };
        let rows = self.with_store(|s| s.leaderboard(by, limit as usize)).map_err(refusal)?;
        Ok(rows.into_iter().map(|(name, value)| LeaderboardEntry { name, value }).collect())
    }

    /// Adds `delta` to the stats of the account named `name` and reads its totals, in one
    /// write transaction: what `flush_stats` answers, and only once it has committed (an
    /// error otherwise).
    pub(crate) fn save_and_read(&self, name: &str, delta: Stats) -> Result<PlayerStats, StoreError> {
        self.with_store(|s| {
            s.write(|s| {
                let account = account_named(s, name)?;
                if delta != Stats::default() {
                    s.add_stats(account, delta)?;
                }
                let totals = s.stats(account)?;
                Ok(PlayerStats { distance: totals.distance, messages: totals.messages, games: totals.games })
            })
        })
    }

    /// Adds each player's earnings to their account; the ones that failed, with why, to be
    /// kept for the next save.
    ///
    /// The batch is one transaction, so one commit (every player's, every second: a commit
    /// per player cost the job pool more than the rest of the save). A row refused on its own
    /// (no such account, an amount past the cap) fails alone, and the others commit. If the
    /// transaction fails as a whole (the disk, a lock held past the busy timeout), none of it
    /// was written, and each row is tried again on its own, so each failure is the row's own.
    pub(crate) fn save(&self, batch: Vec<(String, Stats)>) -> Vec<(String, Stats, StoreError)> {
        let mut refused = Vec::new();
        let together = self.with_store(|s| {
            s.write(|s| {
                for (row, (name, delta)) in batch.iter().enumerate() {
                    if let Err(why) = save_row(s, name, *delta)? {
                        refused.push((row, why));
                    }
                }
                Ok(())
            })
        });
        if together.is_err() {
            return self.save_one_by_one(batch);
        }
        let mut refused = refused.into_iter().peekable();
        let mut failed = Vec::new();
        for (row, (name, delta)) in batch.into_iter().enumerate() {
            if let Some((_, why)) = refused.next_if(|(at, _)| *at == row) {
                failed.push((name, delta, why));
            }
        }
        failed
    }

    /// [`save`](Self::save)'s rows, each in its own transaction.
    fn save_one_by_one(&self, batch: Vec<(String, Stats)>) -> Vec<(String, Stats, StoreError)> {
        let mut failed = Vec::new();
        for (name, delta) in batch {
            match self.with_store(|s| save_row(s, &name, delta)) {
                Ok(Ok(())) => {}
                Ok(Err(why)) | Err(why) => failed.push((name, delta, why)),
            }
        }
        failed
    }
}

/// Adds one player's earnings to their account. The outer error fails the transaction it is
/// in (SQLite's, or the disk's); the inner one refuses this row alone, which wrote nothing (a
/// failed statement is undone by itself, and the transaction goes on).
fn save_row(store: &SqliteStore, name: &str, delta: Stats) -> Result<Result<(), StoreError>, StoreError> {
    let Some(account) = store.account_id(name)? else {
        return Ok(Err(no_account_named(name)));
    };
    match store.add_stats(account, delta) {
        Ok(()) => Ok(Ok(())),
        Err(why @ (StoreError::NoSuchAccount(_) | StoreError::Invalid { .. })) => Ok(Err(why)),
        Err(error) => Err(error),
    }
}

/// The account a session's name belongs to. Every authenticated name is an account's (the
/// arena signed it), so none is damage: a database swapped under a running server.
fn account_named(store: &SqliteStore, name: &str) -> Result<AccountId, StoreError> {
    store.account_id(name)?.ok_or_else(|| no_account_named(name))
}

/// The error of a session's name that no account has.
fn no_account_named(name: &str) -> StoreError {
    StoreError::Corrupt(format!("no account is named {name:?}"))
}

/// A guest account's name.
fn guest_name(account: AccountId) -> String {
    format!("{GUEST_PREFIX}{account}")
}

/// The arena error code a store refusal is answered with (PROTOCOL.md 8.5).
pub(crate) fn refusal(error: StoreError) -> AppError {
    match error {
        StoreError::Invalid { what, why } => AppError::new(ERR_INVALID, format!("{what}: {why}")),
        StoreError::NameTaken(_) => AppError::new(ERR_NAME_TAKEN, "that name is taken"),
        StoreError::BadCredentials => AppError::new(ERR_BAD_CREDENTIALS, "wrong name or password"),
        error => {
            tracing::warn!("the arena's database failed: {error}");
            AppError::new(ERR_STORE, "the database failed; retry later")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accounts on a fresh database file under the system's temp dir, and ann's and bob's
    /// accounts in it.
    fn accounts(test: &str) -> (Accounts, PathBuf) {
        let dir = std::env::temp_dir().join(format!("ticksock-accounts-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        let accounts = Accounts::open(&dir.join("arena.db")).expect("opens");
        for name in ["ann", "bob"] {
            accounts.register(name, "pw").expect("registered");
        }
        (accounts, dir)
    }

    fn totals(accounts: &Accounts, name: &str) -> Stats {
        accounts.with_store(|s| s.stats(account_named(s, name)?)).expect("reads")
    }

    const ONE: Stats = Stats { distance: 1, messages: 2, games: 3 };

    #[test]
    fn a_batch_saves_every_row_it_can_and_returns_the_refused_ones_in_order() {
        let (accounts, dir) = accounts("batch");
        let too_much = Stats { distance: crate::store::MAX_STATS_DELTA + 1, ..ONE };
        let failed = accounts.save(vec![
            ("ann".into(), ONE),
            ("ghost".into(), ONE),
            ("bob".into(), too_much),
            ("bob".into(), ONE),
            ("ann".into(), ONE),
        ]);
        let failed: Vec<(&str, Stats, String)> =
            failed.iter().map(|(name, delta, why)| (name.as_str(), *delta, why.to_string())).collect();
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert_eq!((failed[0].0, failed[0].1), ("ghost", ONE));
        assert!(failed[0].2.contains("no account is named"), "{failed:?}");
        assert_eq!((failed[1].0, failed[1].1), ("bob", too_much));
        assert!(failed[1].2.contains("invalid stats"), "{failed:?}");
        // The refused rows wrote nothing; the others all committed.
        assert_eq!(totals(&accounts, "ann"), Stats { distance: 2, messages: 4, games: 6 });
        assert_eq!(totals(&accounts, "bob"), ONE);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The frames in the database's write-ahead log (each commit appends the pages it
    /// changed, and a commit frame), after emptying it first if `reset`.
    fn wal_frames(accounts: &Accounts, reset: bool) -> i64 {
        let mode = if reset { "TRUNCATE" } else { "PASSIVE" };
        let sql = format!("PRAGMA wal_checkpoint({mode})");
        let frames = accounts.with_store(|s| Ok(s.connection().query_row(&sql, [], |row| row.get(1))?));
        frames.expect("checkpoints")
    }

    #[test]
    fn a_batch_is_one_commit_not_one_per_player() {
        let (accounts, dir) = accounts("one-commit");
        let names: Vec<String> = (0..40)
            .map(|_| {
                accounts.with_store(|s| s.create_guest()).map(|(id, _)| guest_name(id)).expect("a guest")
            })
            .collect();
        let batch = |names: &[String]| names.iter().map(|name| (name.clone(), ONE)).collect::<Vec<_>>();
        // Every row new, then every row an update: both ways one commit of the few pages
        // the stats and their indexes fill (a commit per row wrote each again, 40 times).
        for round in 1..=2 {
            assert_eq!(wal_frames(&accounts, true), 0);
            assert!(accounts.save(batch(&names)).is_empty());
            let frames = wal_frames(&accounts, false);
            assert!(frames < 20, "round {round}: {frames} frames for 40 rows");
        }
        assert_eq!(totals(&accounts, &names[39]), Stats { distance: 2, messages: 4, games: 6 });
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_batch_whose_transaction_fails_is_tried_row_by_row_and_each_failure_is_its_own() {
        let (accounts, dir) = accounts("whole");
        // A store that may not write: the batch's transaction fails as a whole, then so does
        // each row on its own, with SQLite's answer.
        accounts.with_store(|s| Ok(s.connection().execute_batch("PRAGMA query_only = ON")?)).expect("pragma");
        let failed = accounts.save(vec![("ann".into(), ONE), ("ghost".into(), ONE), ("bob".into(), ONE)]);
        let names: Vec<&str> = failed.iter().map(|(name, _, _)| name.as_str()).collect();
        assert_eq!(names, ["ann", "ghost", "bob"]);
        assert!(matches!(failed[0].2, StoreError::Sqlite(_)), "{:?}", failed[0].2);
        assert!(failed[1].2.to_string().contains("no account is named"), "{:?}", failed[1].2);
        assert!(matches!(accounts.save_and_read("ann", ONE), Err(StoreError::Sqlite(_))));
        accounts
            .with_store(|s| Ok(s.connection().execute_batch("PRAGMA query_only = OFF")?))
            .expect("pragma");
        assert_eq!(totals(&accounts, "ann"), Stats::default(), "nothing was written");
        // Writable again: a flush adds and answers the committed totals.
        assert_eq!(
            accounts.save_and_read("ann", ONE).expect("saved"),
            PlayerStats { distance: 1, messages: 2, games: 3 }
        );
        assert_eq!(accounts.save_and_read("ann", Stats::default()).expect("read").games, 3);
        let _ = std::fs::remove_dir_all(dir);
    }
}
