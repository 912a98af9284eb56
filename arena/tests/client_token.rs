//! The Rust client keeps an account's token and reconnects with it: the real binary, an
//! account registered, then clients that offer the token at the upgrade
//! (`docs/PROTOCOL.md` 13.1) and use a route that needs an authenticated connection
//! (`flush_stats`) without sending `auth`, across a dropped link; and a tampered token,
//! refused with close 4003, after which the client goes on anonymous.
#![cfg(unix)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::arena::{ArenaProcess, fresh_db};
use ticksock_arena::proto::{
    Guest, GuestSession, Join, Joined, Leaderboard, LeaderboardBy, LeaderboardEntry, PlayerStats,
    ROUTE_FLUSH_STATS, ROUTE_GUEST, ROUTE_JOIN, ROUTE_LEADERBOARD, ROUTE_REGISTER, Register, Session,
};
use ticksock_client::{BlockingClient, Config, Error, Event, Versions};
use ticksock_protocol::error_code;

const PATIENCE: Duration = Duration::from_secs(10);

/// Version 1, so a dropped link ends the server session and the next one must log in again:
/// only the token at the upgrade can do that.
fn config() -> Config {
    Config { versions: Versions::V1Only, backoff_initial: Duration::from_millis(20), ..Config::default() }
}

/// Drops the link and waits for the reconnect's `Connected`, keeping the other events.
fn drop_and_reconnect(client: &mut BlockingClient, seen: &mut Vec<String>) {
    // The events so far (the first connection's `Connected` among them) are not the reconnect's.
    while client.poll_event().is_some() {}
    client.client_mut().drop_link();
    wait_connected(client, seen);
}

/// Waits for the next `Connected`, keeping the other events.
fn wait_connected(client: &mut BlockingClient, seen: &mut Vec<String>) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        match client.wait_event(Duration::from_millis(100)) {
            Some(Event::Connected { .. }) => return,
            Some(other) => seen.push(format!("{other:?}")),
            None => {}
        }
    }
    panic!("no reconnect within {PATIENCE:?}; events: {seen:?}");
}

fn is_unauthenticated(result: Result<PlayerStats, Error>) -> bool {
    matches!(result, Err(Error::Server { code: error_code::UNAUTHENTICATED, .. }))
}

#[test]
fn a_kept_token_authenticates_every_new_connection_and_a_refused_one_is_dropped() {
    let server = ArenaProcess::start(&fresh_db("client_token"));
    let mut anonymous = BlockingClient::connect(server.url(), config(), PATIENCE).expect("connects");
    assert!(is_unauthenticated(anonymous.call(ROUTE_FLUSH_STATS, &())), "flush_stats needs a login");
    let session: Session = anonymous
        .call(ROUTE_REGISTER, &Register { name: "ann".into(), password: "pw".into() })
        .expect("registers");
    anonymous.close();

    // A client that kept the token: authenticated before its first call, no `auth` sent.
    let mut client =
        BlockingClient::connect_with_token(server.url(), config(), Some(session.token.clone()), PATIENCE)
            .expect("connects");
    let stats: PlayerStats = client.call(ROUTE_FLUSH_STATS, &()).expect("authenticated at the upgrade");
    assert_eq!(stats, PlayerStats::default());

    // The link drops (version 1: the server session with it); the reconnect offers the token.
    let mut seen = Vec::new();
    drop_and_reconnect(&mut client, &mut seen);
    let _: Joined = client.call(ROUTE_JOIN, &Join { room: "lobby".into() }).expect("logged in as ann: joins");
    let stats: PlayerStats = client.call(ROUTE_FLUSH_STATS, &()).expect("the reconnect is authenticated too");
    assert_eq!(stats.games, 1);
    assert!(!seen.iter().any(|e| e.contains("TokenRefused")), "{seen:?}");
    let board: Vec<LeaderboardEntry> =
        client.call(ROUTE_LEADERBOARD, &Leaderboard { by: LeaderboardBy::Games, limit: 10 }).expect("ranks");
    assert_eq!(board.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["ann"]);
    client.close();

    // A tampered token: close 4003 after the welcome, the token forgotten, and the client back
    // anonymous (a guest session it then takes in band is kept for the reconnects after).
    let mut tampered = session.token.clone();
    tampered.pop();
    tampered.push(if session.token.ends_with('A') { 'B' } else { 'A' });
    let mut client = BlockingClient::connect_with_token(server.url(), config(), Some(tampered), PATIENCE)
        .expect("connects");
    // The first welcome comes before the refusal (often in the same read); the `Connected`
    // after the refusal is the anonymous link's.
    let mut seen: Vec<String> = Vec::new();
    loop {
        wait_connected(&mut client, &mut seen);
        if seen.iter().any(|e| e.starts_with("TokenRefused")) {
            break;
        }
    }
    assert!(seen.iter().any(|e| e == "TokenRefused { expired: false }"), "{seen:?}");
    assert_eq!(client.client().session().token(), None);
    assert!(is_unauthenticated(client.call(ROUTE_FLUSH_STATS, &())), "anonymous after the refusal");

    let guest: GuestSession = client.call(ROUTE_GUEST, &Guest { device_token: None }).expect("a guest");
    let me = client.authenticate(&guest.token).expect("the guest's token is accepted");
    assert!(me.user.starts_with("guest-"), "{me:?}");
    assert_eq!(client.client().session().token(), Some(guest.token.as_str()));
    let mut seen = Vec::new();
    drop_and_reconnect(&mut client, &mut seen);
    let _: PlayerStats = client.call(ROUTE_FLUSH_STATS, &()).expect("the guest's token at the reconnect");
    client.close();
}

/// The `account` example as a user runs it (`cargo test` builds the package's examples next
/// to its tests): registers and keeps the token in a file, then signs in with the kept token
/// alone; a guest comes back as the same guest through its device token.
#[test]
fn the_account_example_keeps_its_token_between_runs() {
    let server = ArenaProcess::start(&fresh_db("account_example"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("account_example_files");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the target dir is writable");
    let token_file = dir.join("token");
    let run = |extra: &[&str]| {
        let output = Command::new(example("account"))
            .arg(server.url())
            .args(["--walk-ms", "200", "--token-file"])
            .arg(&token_file)
            .args(extra)
            .output()
            .expect("the example runs");
        let text =
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    };

    let (ok, text) = run(&["--register", "bea", "--password", "pw"]);
    assert!(ok && text.contains("signed in as bea"), "{text}");
    assert!(text.contains("top by Games: bea 1"), "{text}");
    let (ok, text) = run(&[]);
    assert!(ok && text.contains("signed in with the token kept"), "{text}");
    assert!(text.contains("top by Games: bea 2"), "the second run played as bea: {text}");
    let distance = |text: &str| -> u64 {
        let after =
            text.split("your totals: distance ").nth(1).unwrap_or_else(|| panic!("no totals: {text}"));
        after.split(',').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no distance: {text}"))
    };
    assert!(distance(&text) > 0, "it walked: {text}");

    std::fs::write(&token_file, "not-a-token").expect("writable");
    let (ok, text) = run(&[]);
    assert!(!ok && text.contains("the kept token was refused: sign in again"), "{text}");

    let (ok, first) = run(&["--guest"]);
    assert!(ok, "{first}");
    let (ok, again) = run(&["--guest"]);
    assert!(ok, "{again}");
    let name =
        |text: &str| text.split("signed in as ").nth(1).and_then(|r| r.split(' ').next()).map(str::to_owned);
    assert!(name(&first).is_some_and(|n| n.starts_with("guest-")), "{first}");
    assert_eq!(name(&first), name(&again), "the device token brought the same guest back");
}

/// An example program of this package, as `cargo test` built it beside the tests.
fn example(name: &str) -> PathBuf {
    // This test runs from <target>/<profile>/deps/; examples are in <target>/<profile>/examples/.
    let exe = std::env::current_exe().expect("the test's own path");
    let path = exe.parent().and_then(Path::parent).map(|profile| profile.join("examples").join(name));
    path.filter(|p| p.exists())
        .unwrap_or_else(|| panic!("no example `{name}` beside {}: run it with `cargo test`", exe.display()))
}
