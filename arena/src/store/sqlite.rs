//! [`SqliteStore`]: the [`Store`] in one SQLite file, through `rusqlite`.

use super::guest_token::{GuestToken, token_hash};
use super::migrations::{MIGRATIONS, SCHEMA_VERSION, migrate, schema_version};
use super::{
    AccountId, GUEST_PREFIX, Ranking, Stats, Store, StoreError, check_delta, check_limit, check_name,
    check_password, password,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::path::Path;
use std::time::Duration;

/// How long a write waits for another connection's write to finish before it gives up with
/// [`StoreError::Busy`]. Writes here are single statements of microseconds, so a wait this
/// long means something is stuck; it blocks a job-pool thread, never the tick.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How hard a commit holds on to the disk: `PRAGMA synchronous`. The module doc of
/// [`store`](super) says what each loses to a killed process and to a power cut.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = NORMAL`: a killed process loses nothing committed; a power cut may
    /// lose the commits since the last checkpoint, never the file.
    #[default]
    Normal,
    /// `synchronous = FULL`: nothing committed is lost to either, for an `fsync` per commit.
    Full,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "PRAGMA synchronous = NORMAL",
            Self::Full => "PRAGMA synchronous = FULL",
        }
    }
}

/// The [`Store`] in one SQLite file in WAL mode. One per thread: open one on each job-pool
/// thread, all on the same path.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating it if needed) the database at `path` with [`Durability::Normal`],
    /// and migrates it to [`SCHEMA_VERSION`](super::SCHEMA_VERSION).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::default())
    }

    /// [`open`](Self::open) with the given durability.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // A newer program's file is refused before anything here writes to it (WAL mode is
        // recorded in the file).
        let found = schema_version(&conn)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { found, supported: SCHEMA_VERSION });
        }
        // Another process opening the same new file at this moment can keep the switch from
        // happening (SQLite then answers the old mode, or that the file is busy): try again for
        // as long as a busy database is waited for.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            let mode = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get::<_, String>(0));
            match mode {
                Ok(mode) if mode.eq_ignore_ascii_case("wal") => break,
                Ok(_) | Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Ok(mode) => return Err(StoreError::NoWal(mode)),
                Err(e) => return Err(e.into()),
            }
        }
        conn.execute_batch(durability.pragma())?;
        // Off by default in SQLite, for compatibility; stats must not outlive their account.
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
        migrate(&mut conn, MIGRATIONS)?;
        Ok(Self { conn })
    }

    /// Runs `f` as one write transaction: the writes `f` makes commit together, in one commit,
    /// or none does (when `f` fails, or the commit does). It begins `IMMEDIATE`, taking the
    /// write lock before anything is read: a transaction that read first and then wrote would
    /// have to upgrade its lock, which fails at once with [`StoreError::Busy`] while another
    /// connection writes, where this waits for the lock (the busy timeout) instead.
    ///
    /// `f` must not begin a transaction itself ([`Store::create_guest`] does): SQLite has no
    /// nested `BEGIN`, and that call would fail.
    pub fn write<T>(&self, f: impl FnOnce(&Self) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        // On an error the transaction is dropped, which rolls it back.
        let value = f(self)?;
        tx.commit()?;
        Ok(value)
    }

    /// The connection, for tests that need to put it in a state no caller can (read-only).
    #[cfg(test)]
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl Store for SqliteStore {
    fn create_account(&self, name: &str, password: &str) -> Result<AccountId, StoreError> {
        check_name(name)?;
        check_password(password)?;
        // Answered before hashing so a taken name costs no hash; the UNIQUE constraint below
        // still decides a race between two creators.
        let taken =
            self.conn.query_row("SELECT 1 FROM accounts WHERE name = ?1", [name], |_| Ok(())).optional()?;
        if taken.is_some() {
            return Err(StoreError::NameTaken(name.to_owned()));
        }
        let hash = password::hash(password)?;
        match self
            .conn
            .execute("INSERT INTO accounts (name, password_hash) VALUES (?1, ?2)", params![name, hash])
        {
            Ok(_) => Ok(AccountId(self.conn.last_insert_rowid())),
            Err(error) => match StoreError::from(error) {
                error if error.is_unique_violation() => Err(StoreError::NameTaken(name.to_owned())),
                error => Err(error),
            },
        }
    }

    fn verify(&self, name: &str, password: &str) -> Result<AccountId, StoreError> {
        check_name(name)?;
        check_password(password)?;
        let found: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT id, password_hash FROM accounts WHERE name = ?1 AND password_hash IS NOT NULL",
                [name],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        match found {
            Some((id, stored)) if password::verify(password, &stored)? => Ok(AccountId(id)),
            Some(_) => Err(StoreError::BadCredentials),
            None => {
                password::verify_nothing(password);
                Err(StoreError::BadCredentials)
            }
        }
    }

    fn create_guest(&self) -> Result<(AccountId, GuestToken), StoreError> {
        let token = GuestToken::generate()?;
        let hash = token_hash(token.as_str())?;
        // The name needs the id, which exists only after the insert: a placeholder unique to
        // this token (its hash in hex: 64 bytes, longer than
        // any registered name, and unique as the token is), then the real name, in one transaction
        // so no one sees the placeholder.
        let placeholder: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO accounts (name, guest_token_hash) VALUES (?1, ?2)",
            params![placeholder, hash],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE accounts SET name = ?1 WHERE id = ?2",
            params![format!("{GUEST_PREFIX}{id}"), id],
        )?;
        tx.commit()?;
        Ok((AccountId(id), token))
    }

    fn verify_guest(&self, token: &str) -> Result<AccountId, StoreError> {
        let hash = token_hash(token)?;
        let id = self
            .conn
            .query_row("SELECT id FROM accounts WHERE guest_token_hash = ?1", [&hash[..]], |row| row.get(0))
            .optional()?;
        id.map(AccountId).ok_or(StoreError::BadCredentials)
    }

    fn account_id(&self, name: &str) -> Result<Option<AccountId>, StoreError> {
        let id = self
            .conn
            .prepare_cached("SELECT id FROM accounts WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()?;
        Ok(id.map(AccountId))
    }

    fn add_stats(&self, account: AccountId, delta: Stats) -> Result<(), StoreError> {
        check_delta(delta)?;
        let amounts = [delta.distance, delta.messages, delta.games].map(|amount| amount as i64);
        // Cached: a server runs this for every player every second, and for every
        // `flush_stats`; parsing it each time cost more than running it.
        let result = self
            .conn
            .prepare_cached(
                "INSERT INTO stats (account, distance, messages, games) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account) DO UPDATE SET
                     distance = distance + excluded.distance,
                     messages = messages + excluded.messages,
                     games = games + excluded.games",
            )
            .and_then(|mut statement| {
                statement.execute(params![account.0, amounts[0], amounts[1], amounts[2]])
            });
        match result.map_err(StoreError::from) {
            Ok(_) => Ok(()),
            Err(error) if error.is_foreign_key_violation() => Err(StoreError::NoSuchAccount(account)),
            Err(error) => Err(error),
        }
    }

    fn stats(&self, account: AccountId) -> Result<Stats, StoreError> {
        let row: Option<[Option<i64>; 3]> = self
            .conn
            .prepare_cached(
                "SELECT s.distance, s.messages, s.games FROM accounts a LEFT JOIN stats s ON s.account = a.id
                 WHERE a.id = ?1",
            )?
            .query_row([account.0], |row| Ok([row.get(0)?, row.get(1)?, row.get(2)?]))
            .optional()?;
        let Some([distance, messages, games]) = row else {
            return Err(StoreError::NoSuchAccount(account));
        };
        Ok(Stats { distance: total(distance)?, messages: total(messages)?, games: total(games)? })
    }

    fn account_names(&self) -> Result<Vec<String>, StoreError> {
        let mut statement = self.conn.prepare("SELECT name FROM accounts WHERE password_hash IS NOT NULL")?;
        let names = statement.query_map([], |row| row.get(0))?;
        Ok(names.collect::<Result<_, _>>()?)
    }

    fn leaderboard(&self, by: Ranking, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        check_limit(limit)?;
        // The column comes from this fixed list, never from the caller's text.
        let sql = match by {
            Ranking::Distance => {
                "SELECT a.name, s.distance FROM stats s JOIN accounts a ON a.id = s.account
                 ORDER BY s.distance DESC, a.name LIMIT ?1"
            }
            Ranking::Messages => {
                "SELECT a.name, s.messages FROM stats s JOIN accounts a ON a.id = s.account
                 ORDER BY s.messages DESC, a.name LIMIT ?1"
            }
            Ranking::Games => {
                "SELECT a.name, s.games FROM stats s JOIN accounts a ON a.id = s.account
                 ORDER BY s.games DESC, a.name LIMIT ?1"
            }
        };
        let mut statement = self.conn.prepare_cached(sql)?;
        let rows = statement
            .query_map([limit as i64], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
        rows.map(|row| {
            let (name, value) = row?;
            Ok((name, total(Some(value))?))
        })
        .collect()
    }
}

/// A stored total as a `u64`: none yet is 0, and a negative one (which the schema's `CHECK`
/// forbids) is damage.
fn total(stored: Option<i64>) -> Result<u64, StoreError> {
    let stored = stored.unwrap_or(0);
    u64::try_from(stored).map_err(|_| StoreError::Corrupt(format!("a negative stat total {stored}")))
}

#[cfg(test)]
mod tests;
