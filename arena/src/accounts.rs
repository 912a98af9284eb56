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

    /// Adds `delta` to the stats of the account named `name`, then reads its totals: what
    /// `flush_stats` answers, and so only what is committed.
    pub(crate) fn save_and_read(&self, name: &str, delta: Stats) -> Result<PlayerStats, StoreError> {
        self.with_store(|s| {
            let account = account_named(s, name)?;
            if delta != Stats::default() {
                s.add_stats(account, delta)?;
            }
            let totals = s.stats(account)?;
            Ok(PlayerStats { distance: totals.distance, messages: totals.messages, games: totals.games })
        })
    }

    /// Adds each player's earnings to their account, each in its own statement; the ones that
    /// failed, with why, to be kept for the next save.
    pub(crate) fn save(&self, batch: Vec<(String, Stats)>) -> Vec<(String, Stats, StoreError)> {
        let mut failed = Vec::new();
        for (name, delta) in batch {
            if let Err(e) = self.with_store(|s| s.add_stats(account_named(s, &name)?, delta)) {
                failed.push((name, delta, e));
            }
        }
        failed
    }
}

/// The account a session's name belongs to. Every authenticated name is an account's (the
/// arena signed it), so none is damage: a database swapped under a running server.
fn account_named(store: &SqliteStore, name: &str) -> Result<AccountId, StoreError> {
    store.account_id(name)?.ok_or_else(|| StoreError::Corrupt(format!("no account is named {name:?}")))
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
