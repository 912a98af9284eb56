//! `--accounts guest` and `--persist-per-sec` against an arena in this process that keeps
//! accounts in a database file of each test's own: bots that get a guest account once and log
//! in by `auth` on every new server session (a version 1 reconnect to a restarted server, a
//! version 2 session after a refused resume), auth failures counted by code, and `flush_stats`
//! writes timed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use client_sim::report::Report;
use client_sim::{Accounts, Options};
use ticksock_arena::accounts::Accounts as ArenaAccounts;
use ticksock_arena::proto::{Leaderboard, LeaderboardBy, LeaderboardEntry, ROUTE_LEADERBOARD};
use ticksock_arena::{Arena, ArenaConfig};
use ticksock_client::BlockingClient;
use ticksock_server::{Config, RunningServer, Server};

/// A fresh database file for `test`, in the target dir's temp dir.
fn fresh_db(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("client-sim-accounts-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the target dir is writable");
    dir.join("arena.db")
}

/// An arena on `listen` keeping its accounts in `db` (its session key beside it).
fn start_arena(db: &Path, listen: SocketAddr, config: Config) -> RunningServer {
    let accounts = ArenaAccounts::open(db).expect("the database opens");
    let config = Config { listen, close_timeout: Duration::from_millis(300), ..config };
    let game = Arena::new(ArenaConfig { accounts: Some(accounts), ..ArenaConfig::default() });
    Server::start(config, game).expect("server starts")
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// Guest bots in rooms of 10, moving 5 times a second, quiet.
fn guests(addr: SocketAddr, bots: u32, duration: f64) -> Options {
    Options {
        bots,
        rate: 5.0,
        duration,
        ramp: 200.0,
        room_size: 10,
        accounts: Accounts::Guest,
        quiet: true,
        ..Options::new(&url(addr))
    }
}

/// The leaderboard by distance, as a client sees it.
fn leaderboard(addr: SocketAddr) -> Vec<LeaderboardEntry> {
    let mut client =
        BlockingClient::connect(&url(addr), Default::default(), Duration::from_secs(5)).expect("connects");
    let board = client
        .call(ROUTE_LEADERBOARD, &Leaderboard { by: LeaderboardBy::Distance, limit: 100 })
        .expect("a leaderboard");
    client.close();
    board
}

#[test]
fn guest_bots_get_an_account_once_log_in_by_auth_and_earn_saved_stats() {
    let db = fresh_db("auth");
    let server = start_arena(&db, any_port(), Config::default());
    let addr = server.local_addr();
    let report = client_sim::run(&guests(addr, 30, 2.0)).expect("runs");
    println!("{}", report.table());
    let c = &report.counters;
    assert_eq!(report.errors, 0, "{:?} {:?}", report.error_codes, report.accounts);
    let a = report.accounts.as_ref().expect("account figures");
    assert_eq!((a.guests_created, a.auths_ok), (30, 30), "one guest and one auth per bot");
    assert_eq!((a.guest_failures, a.auth_failures, a.failures.len()), (0, 0, 0));
    // Logged in as the account, the bots joined and play: every one gets its arena's state.
    assert_eq!((c.bots_connected, report.connected_at_end), (30, 30));
    assert!(c.pushes_state > 30 * 30, "{c:?}");
    // The player's id came from the join's roster: the first state pushes of a connection are
    // decoded in full until one holds the bot's player, and then no more.
    assert_eq!(c.bad_pushes, 0);
    assert!(c.pushes_decoded <= 3 * c.connections, "{} decoded in full", c.pushes_decoded);
    assert!(report.persist.is_none(), "no --persist-per-sec");
    let table = report.table();
    assert!(table.contains("guests made / auths ok") && table.contains("30 / 30"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("valid JSON");
    assert_eq!(json["accounts"]["guests_created"], 30);
    // The server saved what they earned under their accounts (a `login` by name earns
    // nothing): once a second, and when each bot's connection closed at the end.
    let deadline = Instant::now() + Duration::from_secs(10);
    let board = loop {
        let board = leaderboard(addr);
        if board.len() == 30 || Instant::now() > deadline {
            break board;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(board.len(), 30, "{board:?}");
    assert!(board.iter().all(|e| e.name.starts_with("guest-") && e.value > 0), "{board:?}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn guest_bots_persist_their_stats_and_each_write_is_timed() {
    let db = fresh_db("persist");
    let server = start_arena(&db, any_port(), Config::default());
    let opts = Options { persist_per_sec: 4.0, ..guests(server.local_addr(), 20, 2.0) };
    let report = client_sim::run(&opts).expect("runs");
    println!("{}", report.table());
    assert_eq!(report.errors, 0, "{:?} {:?}", report.error_codes, report.persist);
    let p = report.persist.as_ref().expect("persist figures");
    // 20 bots x 4 writes a second for about 2 s.
    assert!(p.calls >= 120 && p.calls <= 200, "{p:?}");
    assert_eq!((p.failed, p.failures.len()), (0, 0), "{p:?}");
    assert!(p.calls - p.replied <= 20, "at most one in flight per bot at the end: {p:?}");
    assert_eq!(p.latency_us.count, p.replied, "every committed answer timed");
    assert!(p.latency_us.p50 > 0 && p.latency_us.max < 5_000_000, "{p:?}");
    assert!(p.replied_per_sec_steady > 40.0 && p.replied_per_sec_steady < 120.0, "{p:?}");
    // Like every call, they count in the run's totals too.
    assert!(report.counters.replied >= p.replied + 20 * 3, "guest, auth, join and moves beside");
    let table = report.table();
    assert!(table.contains("flush_stats (µs) p50/p90/p99/max"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("valid JSON");
    assert_eq!(json["persist"]["latency_us"]["count"], p.replied);
    assert_eq!(json["persist"]["failed"], 0);
    server.shutdown().expect("clean shutdown");
}

/// 20 guest bots for 5 s against an arena on `first_db`, which is shut down once every bot
/// is in and started again on the same address with `second_db`: the bots reconnect
/// (version 1: a new server session) and send `auth` with the token they kept.
fn restarted_mid_run(test: &str, same_db: bool) -> Report {
    let first_db = fresh_db(test);
    let second_db = if same_db { first_db.clone() } else { fresh_db(&format!("{test}-other")) };
    let server = start_arena(&first_db, any_port(), Config::default());
    let addr = server.local_addr();
    let opts = Options { max_attempts: 20, ..guests(addr, 20, 5.0) };
    let run = std::thread::spawn(move || client_sim::run(&opts));
    // Every bot connected (and the request that asks, one more).
    let deadline = Instant::now() + Duration::from_secs(10);
    while client_sim::probe::scrape(addr, "ticksock_connections_open").unwrap_or(0) < 21 {
        assert!(Instant::now() < deadline, "the bots did not all connect");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.shutdown().expect("clean shutdown");
    let server = start_arena(&second_db, addr, Config::default());
    let report = run.join().expect("the run did not panic").expect("runs");
    println!("{}", report.table());
    server.shutdown().expect("clean shutdown");
    report
}

#[test]
fn after_a_reconnect_each_bot_logs_in_again_with_its_token_and_no_new_guest() {
    let report = restarted_mid_run("reconnect", true);
    let c = &report.counters;
    let a = report.accounts.as_ref().expect("account figures");
    assert_eq!(c.reconnects, 20, "{c:?}");
    // The same database, so the same signing key: the kept tokens are good there.
    assert_eq!((a.guests_created, a.auths_ok), (20, 40), "{a:?}");
    assert_eq!((a.guest_failures, a.auth_failures), (0, 0), "{a:?}");
    assert_eq!(report.connected_at_end, 20);
    // What the restart cost (calls lost with the link, attempts refused) is counted, and no
    // error reply: every bot was logged in and in its arena again.
    assert_eq!(c.errored, 0, "{:?}", report.error_codes);
    assert!(c.pushes_state > 0 && c.bad_pushes == 0, "{c:?}");
}

#[test]
fn auth_refused_by_another_server_counts_as_errors_with_their_code() {
    let report = restarted_mid_run("refused", false);
    let c = &report.counters;
    let a = report.accounts.as_ref().expect("account figures");
    // Another database signs with another key: every kept token is refused, and tried again
    // each second; no bot asks for a new guest.
    assert_eq!(a.guests_created, 20, "{a:?}");
    assert_eq!(a.auths_ok, 20, "the first server's only");
    assert!(a.auth_failures >= 20, "{a:?}");
    assert_eq!(a.failures.get("auth: error 10 unauthenticated"), Some(&a.auth_failures), "{a:?}");
    assert_eq!(report.error_codes.get(&10), Some(&a.auth_failures), "{:?}", report.error_codes);
    assert!(report.errors >= a.auth_failures, "{c:?}");
    let table = report.table();
    assert!(table.contains("x auth: error 10 unauthenticated"), "{table}");
}

#[test]
fn a_version_2_session_after_a_refused_resume_logs_in_again_with_the_kept_token() {
    // Resumes come 2 s after each kill, the server keeps a session 0.5 s: every resume is
    // refused, and the bot's next session is new.
    let db = fresh_db("session-ended");
    let config = Config {
        ping_interval: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(1),
        session_grace: Duration::from_millis(500),
        ..Config::default()
    };
    let server = start_arena(&db, any_port(), config);
    let opts = Options {
        bots: 20,
        rate: 5.0,
        duration: 1.5,
        call_timeout: 3.0,
        faults: true,
        fault_rate: 60.0,
        fault_rst_share: 1.0,
        fault_fresh_share: 0.0,
        outage_min: 2.0,
        outage_max: 2.5,
        server_grace: 0.5,
        server_idle_timeout: 1.0,
        ..guests(server.local_addr(), 20, 1.5)
    };
    let report = client_sim::run(&opts).expect("runs");
    println!("{}", report.table());
    let c = &report.counters;
    assert!(report.failed_checks().is_empty(), "{:?}", report.failed_checks());
    assert!(c.resumes_failed >= 10, "{c:?}");
    // One session per bot, plus one after each refused resume: each logged in by `auth`.
    assert_eq!(c.connections, 20 + c.resumes_failed, "{c:?}");
    let a = report.accounts.as_ref().expect("account figures");
    assert_eq!((a.guests_created, a.auths_ok, a.auth_failures), (20, c.connections, 0), "{a:?}");
    server.shutdown().expect("clean shutdown");
}
