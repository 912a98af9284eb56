use super::*;
use crate::proto::MAX_NAME_LEN;
use crate::store::{MAX_LEADERBOARD_LIMIT, MAX_PASSWORD_LEN, MAX_STATS_DELTA};
use std::path::PathBuf;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ticksock-store-{}-{test}-{unique}", std::process::id()));
        // A leftover from a killed earlier run with the same pid would make the test lie.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        Self(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("arena.sqlite")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(dir.db()).expect("the database opens")
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .expect("opens")
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("reads")
}

#[test]
fn open_creates_the_file_in_wal_mode_at_the_latest_version() {
    let dir = TempDir::new("create");
    let store = open(&dir);
    assert!(dir.db().exists());
    let mode: String = store.conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).expect("reads");
    assert_eq!(mode, "wal");
    // 1 is NORMAL, 2 is FULL.
    let synchronous: i64 = store.conn.query_row("PRAGMA synchronous", [], |row| row.get(0)).expect("reads");
    assert_eq!(synchronous, 1);
    let foreign_keys: i64 = store.conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0)).expect("reads");
    assert_eq!(foreign_keys, 1);
    drop(store);
    assert_eq!(user_version(&dir.db()), SCHEMA_VERSION);

    let full = SqliteStore::open_with(dir.db(), Durability::Full).expect("reopens");
    let synchronous: i64 = full.conn.query_row("PRAGMA synchronous", [], |row| row.get(0)).expect("reads");
    assert_eq!(synchronous, 2);
}

#[test]
fn a_version_0_file_is_migrated_and_a_latest_one_keeps_its_data() {
    let dir = TempDir::new("versions");
    // An existing SQLite file with no schema yet: version 0.
    Connection::open(dir.db()).expect("creates").execute_batch("CREATE TABLE unrelated (x)").expect("writes");
    assert_eq!(user_version(&dir.db()), 0);
    let store = open(&dir);
    let ann = store.create_account("ann", "pw").expect("creates");
    drop(store);
    assert_eq!(user_version(&dir.db()), SCHEMA_VERSION);
    // At the latest version no step runs again (they would fail on CREATE TABLE), and the
    // data is there.
    let store = open(&dir);
    assert_eq!(store.verify("ann", "pw").expect("verifies"), ann);
}

#[test]
fn a_file_from_a_newer_program_is_refused_and_left_alone() {
    let dir = TempDir::new("future");
    Connection::open(dir.db())
        .expect("creates")
        .execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .expect("writes");
    let error = SqliteStore::open(dir.db()).expect_err("refused");
    assert!(
        matches!(error, StoreError::TooNew { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{error:?}"
    );
    assert!(error.to_string().contains("newer"), "{error}");
    assert_eq!(user_version(&dir.db()), SCHEMA_VERSION + 1);
    let mode: String = Connection::open(dir.db())
        .expect("opens")
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("reads");
    assert_eq!(mode, "delete", "not switched to WAL either");
}

#[test]
fn a_file_that_is_not_a_database_is_damage_and_a_missing_directory_an_error() {
    let dir = TempDir::new("garbage");
    std::fs::write(dir.db(), vec![0x5a; 8192]).expect("writes");
    assert!(matches!(SqliteStore::open(dir.db()), Err(StoreError::Corrupt(_))));
    assert!(matches!(SqliteStore::open(dir.0.join("no/such/dir.sqlite")), Err(StoreError::Sqlite(_))));
}

#[test]
fn accounts_are_created_verified_and_names_are_unique() {
    let dir = TempDir::new("accounts");
    let store = open(&dir);
    let ann = store.create_account("ann", "secret one").expect("creates");
    let bob = store.create_account("bob", "secret two").expect("creates");
    assert_ne!(ann, bob);
    assert_eq!(store.verify("ann", "secret one").expect("verifies"), ann);
    assert_eq!(store.verify("bob", "secret two").expect("verifies"), bob);
    assert!(
        matches!(store.create_account("ann", "other"), Err(StoreError::NameTaken(name)) if name == "ann")
    );
    // Names are compared byte for byte, like login's.
    store.create_account("Ann", "other").expect("a different name");
    // The refused duplicate did not replace the password.
    assert_eq!(store.verify("ann", "secret one").expect("verifies"), ann);
    // The password hash is stored, never the password.
    let stored: String = store
        .conn
        .query_row("SELECT password_hash FROM accounts WHERE id = ?1", [ann.0], |row| row.get(0))
        .expect("reads");
    assert!(stored.starts_with("$argon2id$") && !stored.contains("secret one"), "{stored}");
}

#[test]
fn an_account_id_is_found_by_its_name_registered_or_guest() {
    let dir = TempDir::new("account-id");
    let store = open(&dir);
    let ann = store.create_account("ann", "secret one").expect("creates");
    let (guest, _) = store.create_guest().expect("creates");
    assert_eq!(store.account_id("ann").expect("reads"), Some(ann));
    assert_eq!(store.account_id(&format!("{GUEST_PREFIX}{guest}")).expect("reads"), Some(guest));
    assert_eq!(store.account_id("bob").expect("reads"), None);
    assert_eq!(store.account_id("").expect("reads"), None);
}

#[test]
fn a_wrong_password_and_an_unknown_name_answer_alike_in_about_the_same_time() {
    let dir = TempDir::new("verify");
    let store = open(&dir);
    store.create_account("ann", "right").expect("creates");
    // Warm the unknown-name path's one-off work (its dummy hash) out of the timing.
    assert!(matches!(store.verify("nobody", "x"), Err(StoreError::BadCredentials)));
    let time = |name: &str| {
        let start = Instant::now();
        let result = store.verify(name, "wrong");
        assert!(matches!(result, Err(StoreError::BadCredentials)), "{result:?}");
        start.elapsed()
    };
    // The fastest of several, taken in turns: other tests and processes on the machine only
    // ever add time, and taking turns gives both the same machine.
    let (mut wrong_password, mut unknown_name) = (Duration::MAX, Duration::MAX);
    for _ in 0..7 {
        wrong_password = wrong_password.min(time("ann"));
        unknown_name = unknown_name.min(time("nobody"));
    }
    // Without the dummy verification an unknown name answers in microseconds against tens
    // of milliseconds; a factor of 4 either way is far from that and from noise.
    assert!(
        unknown_name * 4 > wrong_password && wrong_password * 4 > unknown_name,
        "wrong password {wrong_password:?}, unknown name {unknown_name:?}"
    );
    assert_eq!(StoreError::BadCredentials.to_string(), "wrong name or password", "the message names neither");
}

#[test]
fn guests_get_a_token_that_logs_in_and_only_its_hash_is_stored() {
    let dir = TempDir::new("guests");
    let store = open(&dir);
    let (first, token) = store.create_guest().expect("creates");
    let (second, other) = store.create_guest().expect("creates");
    assert_ne!(first, second);
    assert_eq!(store.verify_guest(token.as_str()).expect("verifies"), first);
    assert_eq!(store.verify_guest(other.as_str()).expect("verifies"), second);
    // A well-formed token that no one was given.
    let stranger = GuestToken::generate().expect("random");
    assert!(matches!(store.verify_guest(stranger.as_str()), Err(StoreError::BadCredentials)));
    assert!(matches!(store.verify_guest("not a token"), Err(StoreError::Invalid { what: "token", .. })));

    let (name, stored): (String, Vec<u8>) = store
        .conn
        .query_row("SELECT name, guest_token_hash FROM accounts WHERE id = ?1", [first.0], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("reads");
    assert_eq!(name, format!("guest-{}", first.0));
    assert_eq!(stored.len(), 32);
    assert!(!stored.windows(8).any(|w| token.as_str().as_bytes().windows(8).any(|t| t == w)));
    // A guest cannot be logged in to by name and password, nor its name registered.
    assert!(matches!(store.verify(&name, "x"), Err(StoreError::Invalid { what: "name", .. })));
    assert!(matches!(store.create_account(&name, "x"), Err(StoreError::Invalid { what: "name", .. })));
    // Guests have stats like anyone.
    store.add_stats(first, Stats { distance: 3, messages: 0, games: 1 }).expect("adds");
    assert_eq!(store.leaderboard(Ranking::Distance, 10).expect("reads"), vec![(name, 3)]);
}

#[test]
fn stats_add_up_across_a_close_and_reopen() {
    let dir = TempDir::new("stats");
    let (ann, bob) = {
        let store = open(&dir);
        let ann = store.create_account("ann", "pw").expect("creates");
        let bob = store.create_account("bob", "pw").expect("creates");
        assert_eq!(store.stats(ann).expect("reads"), Stats::default(), "zero before any");
        store.add_stats(ann, Stats { distance: 10, messages: 2, games: 1 }).expect("adds");
        store.add_stats(ann, Stats { distance: 5, messages: 0, games: 1 }).expect("adds");
        (ann, bob)
    };
    let store = open(&dir);
    store.add_stats(ann, Stats { distance: 1, messages: 1, games: 0 }).expect("adds");
    assert_eq!(store.stats(ann).expect("reads"), Stats { distance: 16, messages: 3, games: 2 });
    assert_eq!(store.stats(bob).expect("reads"), Stats::default(), "another account's are its own");
    // The largest amount is accepted, and the total stays exact.
    store.add_stats(bob, Stats { distance: MAX_STATS_DELTA, messages: 0, games: 0 }).expect("adds");
    store.add_stats(bob, Stats { distance: MAX_STATS_DELTA, messages: 0, games: 0 }).expect("adds");
    assert_eq!(store.stats(bob).expect("reads").distance, 2 * MAX_STATS_DELTA);
}

#[test]
fn a_write_transaction_commits_all_its_writes_or_none_and_a_refused_statement_alone_is_undone() {
    let dir = TempDir::new("write");
    let store = open(&dir);
    let other = open(&dir);
    let ann = store.create_account("ann", "pw").expect("creates");
    let one = Stats { distance: 1, messages: 0, games: 0 };
    let failed = store.write(|s| {
        s.add_stats(ann, one)?;
        // Inside, the transaction sees its own write; another connection does not.
        assert_eq!(s.stats(ann)?.distance, 1);
        assert_eq!(other.stats(ann).expect("reads").distance, 0);
        Err::<(), _>(StoreError::Busy)
    });
    assert!(matches!(failed, Err(StoreError::Busy)));
    assert_eq!(store.stats(ann).expect("reads"), Stats::default(), "rolled back");
    let ghost = AccountId(4242);
    let totals = store
        .write(|s| {
            s.add_stats(ann, one)?;
            // Refused by the foreign key: this statement is undone, the transaction goes on.
            assert!(matches!(s.add_stats(ghost, one), Err(StoreError::NoSuchAccount(_))));
            s.add_stats(ann, one)?;
            s.stats(ann)
        })
        .expect("commits");
    assert_eq!(totals.distance, 2);
    assert_eq!(other.stats(ann).expect("reads").distance, 2, "committed for everyone");
    // No nested transaction: a call that begins one fails inside, and its error fails the write.
    assert!(store.write(|s| s.create_guest()).is_err());
    assert_eq!(store.account_id("guest-2").expect("reads"), None);
}

#[test]
fn stats_of_an_account_that_is_not_there_are_refused() {
    let dir = TempDir::new("noaccount");
    let store = open(&dir);
    let ghost = AccountId(4242);
    assert!(
        matches!(store.add_stats(ghost, Stats { distance: 1, messages: 0, games: 0 }), Err(StoreError::NoSuchAccount(id)) if id == ghost)
    );
    assert!(matches!(store.stats(ghost), Err(StoreError::NoSuchAccount(id)) if id == ghost));
    let rows: i64 = store.conn.query_row("SELECT count(*) FROM stats", [], |row| row.get(0)).expect("reads");
    assert_eq!(rows, 0);
}

#[test]
fn the_leaderboard_ranks_highest_first_ties_by_name_and_stops_at_the_limit() {
    let dir = TempDir::new("leaderboard");
    let store = open(&dir);
    for (name, distance, messages) in [("cat", 30, 1), ("ann", 10, 7), ("bob", 30, 2), ("dan", 5, 0)] {
        let id = store.create_account(name, "pw").expect("creates");
        store.add_stats(id, Stats { distance, messages, games: 0 }).expect("adds");
    }
    store.create_account("eve", "pw").expect("an account with no stats is not listed");
    let owned = |rows: &[(&str, u64)]| rows.iter().map(|&(n, v)| (n.to_owned(), v)).collect::<Vec<_>>();
    assert_eq!(
        store.leaderboard(Ranking::Distance, 10).expect("reads"),
        owned(&[("bob", 30), ("cat", 30), ("ann", 10), ("dan", 5)])
    );
    assert_eq!(store.leaderboard(Ranking::Distance, 2).expect("reads"), owned(&[("bob", 30), ("cat", 30)]));
    assert_eq!(store.leaderboard(Ranking::Messages, 1).expect("reads"), owned(&[("ann", 7)]));
    assert_eq!(
        store.leaderboard(Ranking::Games, MAX_LEADERBOARD_LIMIT).expect("the cap itself is allowed").len(),
        4
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let dir = TempDir::new("badinput");
    let store = open(&dir);
    let long_name = "n".repeat(MAX_NAME_LEN + 1);
    let long_password = "p".repeat(MAX_PASSWORD_LEN + 1);
    for (name, password, what) in [
        ("", "pw", "name"),
        (long_name.as_str(), "pw", "name"),
        ("guest-1", "pw", "name"),
        ("ann", "", "password"),
        ("ann", long_password.as_str(), "password"),
    ] {
        let created = store.create_account(name, password);
        assert!(matches!(&created, Err(StoreError::Invalid { what: w, .. }) if *w == what), "{created:?}");
        let verified = store.verify(name, password);
        assert!(matches!(&verified, Err(StoreError::Invalid { what: w, .. }) if *w == what), "{verified:?}");
    }
    let accounts: i64 =
        store.conn.query_row("SELECT count(*) FROM accounts", [], |row| row.get(0)).expect("reads");
    assert_eq!(accounts, 0);
    // The longest name and password are accepted (1..=MAX, like login).
    store.create_account(&"n".repeat(MAX_NAME_LEN), &"p".repeat(MAX_PASSWORD_LEN)).expect("at the limits");

    for limit in [0, MAX_LEADERBOARD_LIMIT + 1, usize::MAX] {
        let error = store.leaderboard(Ranking::Distance, limit).expect_err("refused");
        assert!(matches!(error, StoreError::Invalid { what: "limit", .. }), "{error:?}");
        assert!(error.to_string().contains(&MAX_LEADERBOARD_LIMIT.to_string()), "{error}");
    }
    let ann = store.create_account("ann", "pw").expect("creates");
    let too_much = Stats { distance: 1, messages: MAX_STATS_DELTA + 1, games: 1 };
    assert!(matches!(store.add_stats(ann, too_much), Err(StoreError::Invalid { what: "stats", .. })));
    assert_eq!(store.stats(ann).expect("reads"), Stats::default(), "none of the three was added");
}

#[test]
fn a_reader_reads_while_a_writer_commits() {
    let dir = TempDir::new("wal");
    let writer = open(&dir);
    let ann = writer.create_account("ann", "pw").expect("creates");
    writer.add_stats(ann, Stats { distance: 1, messages: 0, games: 0 }).expect("adds");
    let reader = open(&dir);
    // The reader holds a read transaction open. In a rollback journal the writer's commit
    // would wait for it to end (and give up with Busy after the timeout); in WAL it does not.
    reader.conn.execute_batch("BEGIN").expect("begins");
    assert_eq!(reader.stats(ann).expect("reads").distance, 1);
    let start = Instant::now();
    writer.add_stats(ann, Stats { distance: 10, messages: 0, games: 0 }).expect("commits beside the reader");
    assert!(start.elapsed() < BUSY_TIMEOUT / 2, "the commit did not wait for the reader");
    // The reader's snapshot is the one it began with; after it, it sees the commit.
    assert_eq!(reader.stats(ann).expect("reads").distance, 1);
    reader.conn.execute_batch("COMMIT").expect("ends");
    assert_eq!(reader.stats(ann).expect("reads").distance, 11);
}

#[test]
fn readers_on_other_threads_never_fail_or_go_back_while_a_writer_writes() {
    /// Tells the readers the writer is done, also when it panics, so they never spin on.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }

    let dir = TempDir::new("walthreads");
    let writer = open(&dir);
    let ann = writer.create_account("ann", "pw").expect("creates");
    const WRITES: u64 = 200;
    let done = AtomicBool::new(false);
    let started = Barrier::new(3);
    std::thread::scope(|scope| {
        // Opened here, so that a failed open cannot leave the barrier one short.
        let readers: Vec<_> = [open(&dir), open(&dir)]
            .into_iter()
            .map(|reader| {
                let (done, started) = (&done, &started);
                scope.spawn(move || {
                    // The writer starts once both readers are about to read.
                    started.wait();
                    let mut last = 0;
                    loop {
                        let now = reader.stats(ann).expect("a read never fails beside the writer").distance;
                        assert!(now >= last, "went back from {last} to {now}");
                        last = now;
                        reader.leaderboard(Ranking::Distance, 10).expect("reads");
                        if done.load(Ordering::Acquire) {
                            break;
                        }
                    }
                    assert_eq!(reader.stats(ann).expect("reads").distance, WRITES);
                })
            })
            .collect();
        let _done = Done(&done);
        started.wait();
        for _ in 0..WRITES {
            writer.add_stats(ann, Stats { distance: 1, messages: 0, games: 0 }).expect("adds");
        }
        drop(_done);
        for reader in readers {
            reader.join().expect("the reader passed");
        }
    });
}

#[test]
fn stores_opened_at_once_on_a_new_file_all_migrate_it_without_error() {
    let dir = TempDir::new("open-at-once");
    let barrier = Barrier::new(4);
    std::thread::scope(|scope| {
        let opens: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    SqliteStore::open(dir.db()).map(|_| ())
                })
            })
            .collect();
        for open in opens {
            open.join().expect("no panic").expect("every open succeeds");
        }
    });
    assert_eq!(user_version(&dir.db()), SCHEMA_VERSION);
}
