//! The store's one error type.

use super::AccountId;
use rusqlite::ffi;

/// What went wrong in a [`Store`](super::Store) call. Each variant says what the caller does
/// next; in every case the call changed nothing (each write is one statement or one
/// transaction).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The caller's input breaks a rule (an empty or too long name, a limit past its cap):
    /// fix it; nothing was read or written.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// Which input: "name", "password", "limit", "token", "stats".
        what: &'static str,
        /// The rule it breaks.
        why: String,
    },
    /// Another account has that name: pick another.
    #[error("the name {0:?} is taken")]
    NameTaken(String),
    /// Unknown name, wrong password or unknown guest token: one answer for all three, so it
    /// tells a guesser nothing. Ask the player again.
    #[error("wrong name or password")]
    BadCredentials,
    /// No account has this id: the caller holds a stale or made-up id; drop it.
    #[error("no account has id {0}")]
    NoSuchAccount(AccountId),
    /// Another connection held the write lock past the busy timeout: retry later.
    #[error("the database stayed locked past the busy timeout")]
    Busy,
    /// The file was written by a newer program (its schema version is past what this one
    /// knows): run the newer program; never open the file with an older one.
    #[error("the database's schema version {found} is newer than this program's {supported}")]
    TooNew {
        /// The file's `PRAGMA user_version`.
        found: i64,
        /// The latest version this program migrates to.
        supported: i64,
    },
    /// The database would not go into WAL mode (an in-memory database, or a file system
    /// without shared memory): put the file on a local disk.
    #[error("the database is in journal mode {0:?}, not WAL")]
    NoWal(String),
    /// The file is not a database, is damaged, or holds a value this program cannot read:
    /// restore it from a backup.
    #[error("the database is damaged: {0}")]
    Corrupt(String),
    /// The operating system's random source failed (salts and tokens need it): report it.
    #[error("no randomness from the operating system: {0}")]
    NoRandomness(getrandom::Error),
    /// The session key file next to the database ([`SessionKey`](crate::session::SessionKey))
    /// could not be read or made, or does not hold a key: fix or remove it (removing it signs
    /// every player out).
    #[error("session key file {}: {why}", path.display())]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        why: String,
    },
    /// Any other failure of SQLite (disk full, I/O error, permissions, a file that cannot be
    /// created): report it; the call did not happen.
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
}

impl StoreError {
    /// Whether this error came from SQLite's `UNIQUE` constraint (a name or token taken).
    pub(crate) fn is_unique_violation(&self) -> bool {
        self.extended_code() == Some(ffi::SQLITE_CONSTRAINT_UNIQUE)
    }

    /// Whether this error came from SQLite's foreign key check (an account that is not there).
    pub(crate) fn is_foreign_key_violation(&self) -> bool {
        self.extended_code() == Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
    }

    fn extended_code(&self) -> Option<i32> {
        match self {
            Self::Sqlite(error) => error.sqlite_error().map(|e| e.extended_code),
            _ => None,
        }
    }
}

/// Sorts SQLite's errors into the variants a caller acts on differently: locked (retry),
/// damaged (restore), the rest (report).
impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ffi::ErrorCode::DatabaseBusy | ffi::ErrorCode::DatabaseLocked) => Self::Busy,
            Some(ffi::ErrorCode::DatabaseCorrupt | ffi::ErrorCode::NotADatabase) => {
                Self::Corrupt(error.to_string())
            }
            _ => Self::Sqlite(error),
        }
    }
}

impl From<getrandom::Error> for StoreError {
    fn from(error: getrandom::Error) -> Self {
        Self::NoRandomness(error)
    }
}
