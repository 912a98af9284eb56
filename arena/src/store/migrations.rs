//! The schema, as numbered migrations run on open. The file's `PRAGMA user_version` is the
//! number of steps applied; each step runs in its own transaction together with the bump of
//! that number, so a crash mid-step leaves the file at the step before, and the next open
//! runs it again.

use super::StoreError;
use rusqlite::Connection;

/// The migrations, in order: step `i` takes a database from version `i` to `i + 1`. Append
/// only: a step that has shipped is never edited, since files out there already ran it.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: accounts (a password hash, or a guest's token hash) and their stats. The `CHECK`s
    // keep totals integers: SQLite turns an overflowing integer sum into a float, which
    // would then be refused here instead of silently losing precision.
    "CREATE TABLE accounts (
         id INTEGER PRIMARY KEY,
         name TEXT NOT NULL UNIQUE,
         password_hash TEXT,
         guest_token_hash BLOB UNIQUE,
         created_at INTEGER NOT NULL DEFAULT (unixepoch()),
         CHECK ((password_hash IS NULL) <> (guest_token_hash IS NULL))
     );
     CREATE TABLE stats (
         account INTEGER PRIMARY KEY REFERENCES accounts(id),
         distance INTEGER NOT NULL DEFAULT 0 CHECK (typeof(distance) = 'integer' AND distance >= 0),
         messages INTEGER NOT NULL DEFAULT 0 CHECK (typeof(messages) = 'integer' AND messages >= 0),
         games INTEGER NOT NULL DEFAULT 0 CHECK (typeof(games) = 'integer' AND games >= 0)
     );",
    // 2: the leaderboard reads the top of each column.
    "CREATE INDEX stats_by_distance ON stats(distance DESC);
     CREATE INDEX stats_by_messages ON stats(messages DESC);
     CREATE INDEX stats_by_games ON stats(games DESC);",
];

/// The schema version this program writes (`PRAGMA user_version`): the number of
/// migrations it knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to `steps.len()`, one transaction a step, and answers the version
/// it found. A file from a newer program ([`StoreError::TooNew`]) is left untouched.
pub(crate) fn migrate(conn: &mut Connection, steps: &[&str]) -> Result<i64, StoreError> {
    let supported = steps.len() as i64;
    let found = schema_version(conn)?;
    if found > supported {
        return Err(StoreError::TooNew { found, supported });
    }
    if found < 0 {
        return Err(StoreError::Corrupt(format!("negative schema version {found}")));
    }
    for (version, sql) in (found..).zip(&steps[found as usize..]) {
        // Under the write lock, the version read again decides: another program starting on
        // the same file at once (two servers, say) may have run this step meanwhile.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if schema_version(&tx)? > version {
            continue;
        }
        tx.execute_batch(sql)?;
        // `user_version` lives in the file's header, which the transaction covers: the step
        // and its number commit together or not at all.
        tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))?;
        tx.commit()?;
    }
    Ok(found)
}

/// The file's schema version: `PRAGMA user_version`, 0 for a new file.
pub(crate) fn schema_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_exists(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |row| row.get::<_, i64>(0),
        )
        .expect("sqlite_master is always there")
            == 1
    }

    #[test]
    fn a_new_database_runs_every_step_and_a_current_one_runs_none() {
        let mut conn = Connection::open_in_memory().expect("in-memory databases open");
        assert_eq!(migrate(&mut conn, MIGRATIONS).expect("migrates"), 0);
        assert_eq!(schema_version(&conn).expect("reads"), SCHEMA_VERSION);
        assert!(table_exists(&conn, "accounts") && table_exists(&conn, "stats"));
        // A second run finds it current; rerunning a step would fail on CREATE TABLE.
        assert_eq!(migrate(&mut conn, MIGRATIONS).expect("migrates"), SCHEMA_VERSION);
    }

    #[test]
    fn an_older_database_runs_only_the_missing_steps() {
        let mut conn = Connection::open_in_memory().expect("in-memory databases open");
        migrate(&mut conn, &MIGRATIONS[..1]).expect("migrates to 1");
        assert_eq!(schema_version(&conn).expect("reads"), 1);
        assert_eq!(migrate(&mut conn, MIGRATIONS).expect("migrates"), 1);
        assert_eq!(schema_version(&conn).expect("reads"), SCHEMA_VERSION);
    }

    #[test]
    fn a_database_from_a_newer_program_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().expect("in-memory databases open");
        conn.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1)).expect("sets");
        let error = migrate(&mut conn, MIGRATIONS).expect_err("a newer file is refused");
        assert!(
            matches!(error, StoreError::TooNew { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
            "{error:?}"
        );
        assert!(!table_exists(&conn, "accounts"));
        assert_eq!(schema_version(&conn).expect("reads"), SCHEMA_VERSION + 1);
    }

    #[test]
    fn a_failing_step_rolls_back_whole_and_leaves_the_version_before_it() {
        let mut conn = Connection::open_in_memory().expect("in-memory databases open");
        let steps = ["CREATE TABLE a (x INTEGER);", "CREATE TABLE b (x INTEGER); THIS IS NOT SQL;"];
        assert!(matches!(migrate(&mut conn, &steps), Err(StoreError::Sqlite(_))));
        assert_eq!(schema_version(&conn).expect("reads"), 1);
        assert!(table_exists(&conn, "a"));
        assert!(!table_exists(&conn, "b"), "the failed step's first statement was rolled back");
    }
}
