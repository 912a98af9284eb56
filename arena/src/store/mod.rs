//! What the arena keeps across restarts: accounts, per-player stats and the leaderboard,
//! behind the small [`Store`] trait, with [`SqliteStore`] as the embedded default.
//!
//! Every call blocks (a password hash takes tens of milliseconds, a write may wait for the
//! lock, a commit may wait for the disk), so none is ever made on the logic thread: the game
//! runs them on the server's job pool and answers the player when the result comes back.
//! Nothing here knows about the server's threads.
//!
//! # SQLite: files, WAL and what a crash loses
//! [`SqliteStore::open`] creates the file if needed, switches it to WAL mode, sets a busy
//! timeout ([`BUSY_TIMEOUT`]), turns foreign keys on, and runs the migrations
//! ([`SCHEMA_VERSION`]; a file from a newer program is refused with [`StoreError::TooNew`]).
//! WAL lets readers read while a writer writes: the leaderboard never waits for a stat
//! update. Writers still take turns; a writer that waits past the busy timeout gets
//! [`StoreError::Busy`]. Each thread of the job pool opens its own [`SqliteStore`] on the
//! same file (a store is `Send`, not `Sync`).
//!
//! [`Durability`] chooses `PRAGMA synchronous`:
//! - [`Durability::Normal`] (the default): a commit is written to the WAL file but not
//!   flushed to the disk; the WAL is flushed at each checkpoint.
//!   - The process killed (SIGKILL, a panic, the OOM killer): **nothing** committed is lost.
//!     The written WAL is in the operating system's cache, which outlives the process, and
//!     the next open replays it.
//!   - Power lost or the kernel crashed: the transactions committed since the last
//!     checkpoint may be lost (at most the WAL's worth, by default about 1000 pages),
//!     so a player may lose their latest stats or a just-created account. The file is never
//!     corrupted: it comes back as it was at an earlier commit.
//! - [`Durability::Full`]: each commit also flushes the WAL to the disk before it returns.
//!   SIGKILL and power loss both lose nothing committed (given a disk that does not lie
//!   about flushes), at the price of one `fsync` per commit, on the order of a millisecond
//!   on an SSD and more on a busy or spinning disk, with the writers in a single line.
//!
//! Normal is the default because the stats are a game's, not a bank's: they are written
//! often (every player, every few seconds), losing the last seconds of them to a power cut
//! is acceptable, and a crash of the server process, far the likelier event, loses nothing.
//! A game that acknowledges purchases should open with [`Durability::Full`].
//!
//! # Adding Postgres
//! A `PostgresStore` would implement the same [`Store`] trait with the `postgres` crate's
//! synchronous client (no async runtime: it blocks like `rusqlite` does, and runs on the
//! same job pool). Each pool thread holds its own `postgres::Client` (or one from an
//! `r2d2_postgres` pool sized to the job pool); migrations are the same numbered steps in
//! a table `schema_version` (Postgres has no `user_version`), run in a transaction under
//! `pg_advisory_xact_lock` so that two servers starting at once do not both migrate. The
//! SQL carries over with small changes: `BIGSERIAL` for the ids, `BYTEA` for the token
//! hash, and the same `INSERT ... ON CONFLICT DO UPDATE` for [`Store::add_stats`]. Its
//! durability is the server's (`synchronous_commit = on` loses nothing committed). The game
//! then picks a store by a setting (a file path or a `postgres://` URL) and holds a
//! `Box<dyn Store>`; nothing else changes.

mod error;
mod guest_token;
mod migrations;
mod password;
mod sqlite;

pub use error::StoreError;
pub use guest_token::GuestToken;
pub use migrations::SCHEMA_VERSION;
pub use sqlite::{BUSY_TIMEOUT, Durability, SqliteStore};

use crate::proto::MAX_NAME_LEN;
use std::fmt;

/// The most rows [`Store::leaderboard`] answers: a page of a leaderboard, not a dump of
/// the accounts table.
pub const MAX_LEADERBOARD_LIMIT: usize = crate::proto::MAX_LEADERBOARD_LEN as usize;
/// The longest password [`Store::create_account`] accepts, in bytes: longer than any
/// passphrase, short enough that hashing it costs nothing extra.
pub const MAX_PASSWORD_LEN: usize = crate::proto::MAX_PASSWORD_LEN;
/// The most [`Store::add_stats`] adds to one stat in one call: far more than a player earns
/// between two saves, and small enough that no total can overflow.
pub const MAX_STATS_DELTA: u64 = u32::MAX as u64;
/// The start of every guest's name (`guest-17`), which registered names may not take.
pub const GUEST_PREFIX: &str = "guest-";

/// An account's id, stable for the account's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A player's stats: totals from [`Store::stats`], or amounts to add to them in
/// [`Store::add_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Distance moved, in arena units.
    pub distance: u64,
    /// Chat lines and whispers sent.
    pub messages: u64,
    /// Games (arenas) played.
    pub games: u64,
}

/// Which stat a leaderboard ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// [`Stats::distance`].
    Distance,
    /// [`Stats::messages`].
    Messages,
    /// [`Stats::games`].
    Games,
}

/// Accounts, stats and the leaderboard. Every call blocks; run it on the job pool.
pub trait Store: Send {
    /// Creates an account with a password (hashed with Argon2id, see the module doc).
    /// Names follow `login`'s rule, 1 to [`MAX_NAME_LEN`] bytes, and may not start with
    /// [`GUEST_PREFIX`]; passwords are 1 to [`MAX_PASSWORD_LEN`] bytes.
    /// [`StoreError::NameTaken`] if another account has the name (compared byte for byte).
    fn create_account(&self, name: &str, password: &str) -> Result<AccountId, StoreError>;

    /// The account that `name` and `password` log in to. An unknown name and a wrong
    /// password both answer [`StoreError::BadCredentials`], after the same work (one
    /// Argon2 verification), so neither the answer nor its timing tells which. A name or
    /// password that breaks [`create_account`](Self::create_account)'s rules answers
    /// [`StoreError::Invalid`] at once: no account can have it, and the rules are public.
    fn verify(&self, name: &str, password: &str) -> Result<AccountId, StoreError>;

    /// Creates a guest account, named [`GUEST_PREFIX`] and its id, and the device token
    /// that logs in to it. Only the token's hash is stored: the token is shown this once.
    fn create_guest(&self) -> Result<(AccountId, GuestToken), StoreError>;

    /// The guest account a device token logs in to; [`StoreError::BadCredentials`] if none.
    fn verify_guest(&self, token: &str) -> Result<AccountId, StoreError>;

    /// The id of the account named `name` (registered or guest), if there is one. Names
    /// never change, so a caller may keep the answer.
    fn account_id(&self, name: &str) -> Result<Option<AccountId>, StoreError>;

    /// The names of the accounts that have a password (guests are [`GUEST_PREFIX`] and their
    /// id), read once at start so that `login` by name stays off them.
    fn account_names(&self) -> Result<Vec<String>, StoreError>;

    /// Adds `delta` to the account's stats, all three in one statement (so at once or not
    /// at all). Each amount is at most [`MAX_STATS_DELTA`].
    fn add_stats(&self, account: AccountId, delta: Stats) -> Result<(), StoreError>;

    /// The account's totals (zero for an account that has none yet).
    fn stats(&self, account: AccountId) -> Result<Stats, StoreError>;

    /// The top `limit` accounts by one stat, highest first, ties by name: `(name, value)`.
    /// `limit` is 1 to [`MAX_LEADERBOARD_LIMIT`]. Accounts with no stats are not listed.
    fn leaderboard(&self, by: Ranking, limit: usize) -> Result<Vec<(String, u64)>, StoreError>;
}

/// Checks a name for [`Store::create_account`] and [`Store::verify`].
fn check_name(name: &str) -> Result<(), StoreError> {
    let why = if name.is_empty() || name.len() > MAX_NAME_LEN {
        format!("must be 1 to {MAX_NAME_LEN} bytes")
    } else if name.starts_with(GUEST_PREFIX) {
        format!("names starting with {GUEST_PREFIX:?} are kept for guests")
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid { what: "name", why })
}

/// Checks a password for [`Store::create_account`] and [`Store::verify`].
fn check_password(password: &str) -> Result<(), StoreError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Err(StoreError::Invalid {
            what: "password",
            why: format!("must be 1 to {MAX_PASSWORD_LEN} bytes"),
        });
    }
    Ok(())
}

/// Checks the amounts for [`Store::add_stats`].
fn check_delta(delta: Stats) -> Result<(), StoreError> {
    if [delta.distance, delta.messages, delta.games].iter().any(|&amount| amount > MAX_STATS_DELTA) {
        return Err(StoreError::Invalid {
            what: "stats",
            why: format!("each amount must be at most {MAX_STATS_DELTA}"),
        });
    }
    Ok(())
}

/// Checks the limit for [`Store::leaderboard`].
fn check_limit(limit: usize) -> Result<(), StoreError> {
    if limit == 0 || limit > MAX_LEADERBOARD_LIMIT {
        return Err(StoreError::Invalid {
            what: "limit",
            why: format!("must be 1 to {MAX_LEADERBOARD_LIMIT}"),
        });
    }
    Ok(())
}
