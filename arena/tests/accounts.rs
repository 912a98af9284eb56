//! Accounts, session tokens, saved stats and the leaderboard (PROTOCOL.md 8.8), over the
//! in-memory server with a database file of each test's own: the store's work runs when the
//! test runs the jobs, in the test's thread.

use std::path::PathBuf;
use std::time::Duration;

use ticksock_arena::accounts::Accounts;
use ticksock_arena::proto::*;
use ticksock_arena::{Arena, ArenaConfig};
use ticksock_protocol::{AuthReply, ROUTE_AUTH, error_code};
use ticksock_server::testing::{CallError, Encoding, TestClient, TestServer};

/// A fresh database file for `test`, in the target dir's temp dir.
fn fresh_db(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("accounts-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the target dir is writable");
    dir.join("arena.db")
}

fn server(test: &str) -> TestServer<Arena> {
    let accounts = Accounts::open(&fresh_db(test)).expect("the database opens");
    TestServer::new(Arena::new(ArenaConfig { accounts: Some(accounts), ..ArenaConfig::default() }))
}

/// Sends a call whose answer needs the job pool, runs the jobs, and takes the answer.
fn call_store<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
    server: &mut TestServer<Arena>,
    client: TestClient,
    route: &str,
    request: &Req,
) -> Result<Resp, CallError> {
    let id = server.send(client, route, request);
    server.run_jobs();
    server.answer(client, id).expect("answered once the jobs ran")
}

fn code<T: std::fmt::Debug>(answer: Result<T, CallError>) -> u16 {
    answer.expect_err("an error").code
}

fn register(
    server: &mut TestServer<Arena>,
    client: TestClient,
    name: &str,
    password: &str,
) -> Result<Session, CallError> {
    let request = Register { name: name.into(), password: password.into() };
    call_store(server, client, ROUTE_REGISTER, &request)
}

fn sign_in(
    server: &mut TestServer<Arena>,
    client: TestClient,
    name: &str,
    password: &str,
) -> Result<Session, CallError> {
    call_store(server, client, ROUTE_SIGNIN, &SignIn { name: name.into(), password: password.into() })
}

fn auth(server: &mut TestServer<Arena>, client: TestClient, token: &str) -> Result<AuthReply, CallError> {
    call_store(server, client, ROUTE_AUTH, &token)
}

fn leaderboard(server: &mut TestServer<Arena>, client: TestClient, by: LeaderboardBy) -> Vec<(String, u64)> {
    let board: Vec<LeaderboardEntry> =
        call_store(server, client, ROUTE_LEADERBOARD, &Leaderboard { by, limit: 10 }).expect("a leaderboard");
    board.into_iter().map(|e| (e.name, e.value)).collect()
}

#[test]
fn register_then_sign_in_and_the_token_logs_in_as_the_account() {
    let mut server = server("register");
    for encoding in [Encoding::Binary, Encoding::Json] {
        let c = server.connect(encoding);
        let name = format!("ann-{encoding:?}");
        let session = register(&mut server, c, &name, "correct horse").expect("registered");
        assert_eq!(code(register(&mut server, c, &name, "other")), ERR_NAME_TAKEN);
        assert_eq!(code(register(&mut server, c, "guest-9", "pw")), ERR_INVALID, "kept for guests");
        assert_eq!(code(register(&mut server, c, "", "pw")), ERR_INVALID);
        assert_eq!(code(sign_in(&mut server, c, &name, "wrong horse")), ERR_BAD_CREDENTIALS);
        assert_eq!(code(sign_in(&mut server, c, "nobody", "correct horse")), ERR_BAD_CREDENTIALS);
        let signed_in = sign_in(&mut server, c, &name, "correct horse").expect("signed in");

        // Not authenticated yet: the guarded route refuses before it runs, and `join` needs a login.
        let id = server.send(c, ROUTE_FLUSH_STATS, &());
        assert_eq!(code(server.answer::<PlayerStats>(c, id).expect("at once")), error_code::UNAUTHENTICATED);
        for token in [&session.token, &signed_in.token] {
            let reply = auth(&mut server, c, token).expect("a good token");
            assert_eq!(reply.user, name);
            let expires = reply.expires_in_ms.expect("a session expires");
            assert!(expires > 23 * 3600 * 1000 && expires <= 24 * 3600 * 1000, "{expires} ms");
        }
        assert_eq!(code(auth(&mut server, c, "not.a-token")), error_code::UNAUTHENTICATED);
        // Logged in as the account, as `login` would: it may join at once.
        let joined: Joined = server.call(c, ROUTE_JOIN, &Join { room: name.clone() }).expect("joins");
        assert_eq!(joined.roster.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), [name.as_str()]);
        let totals: PlayerStats = call_store(&mut server, c, ROUTE_FLUSH_STATS, &()).expect("saved");
        assert_eq!(totals, PlayerStats { games: 1, ..PlayerStats::default() });
    }
}

#[test]
fn a_guest_comes_back_with_its_device_token_and_a_token_works_at_the_upgrade() {
    let mut server = server("guest");
    let c = server.connect(Encoding::Binary);
    let first: GuestSession =
        call_store(&mut server, c, ROUTE_GUEST, &Guest { device_token: None }).expect("a guest");
    let other: GuestSession =
        call_store(&mut server, c, ROUTE_GUEST, &Guest { device_token: None }).expect("a guest");
    assert_ne!(first.device_token, other.device_token);
    let again: GuestSession =
        call_store(&mut server, c, ROUTE_GUEST, &Guest { device_token: Some(first.device_token.clone()) })
            .expect("the same guest");
    assert_eq!(again.device_token, first.device_token);
    let name = auth(&mut server, c, &first.token).expect("good").user;
    assert!(name.starts_with("guest-"), "{name}");
    assert_eq!(auth(&mut server, c, &again.token).expect("good").user, name, "the same account");
    assert_ne!(auth(&mut server, c, &other.token).expect("good").user, name);
    for bad in ["x".to_owned(), first.device_token.replace(|ch: char| ch != 'A', "A")] {
        let refused =
            call_store::<_, GuestSession>(&mut server, c, ROUTE_GUEST, &Guest { device_token: Some(bad) });
        assert_eq!(code(refused), ERR_BAD_CREDENTIALS);
    }

    // The token offered at the upgrade: the connection is that player before any request.
    let d = server.connect_with_token(Encoding::Binary, &again.token);
    server.run_jobs();
    let joined: Joined = server.call(d, ROUTE_JOIN, &Join { room: "den".into() }).expect("joins");
    assert_eq!(joined.roster[0].name, name);
    let bad = server.connect_with_token(Encoding::Binary, "forged.token");
    server.run_jobs();
    assert_eq!(server.closed(bad), Some(ticksock_protocol::CLOSE_AUTH_FAILED));
}

#[test]
fn stats_of_authenticated_players_are_saved_in_batches_and_ranked() {
    let mut server = server("stats");
    let c = server.connect(Encoding::Binary);
    let ann = register(&mut server, c, "ann", "pw").expect("registered").token;
    let bob = register(&mut server, c, "bob", "pw").expect("registered").token;
    auth(&mut server, c, &ann).expect("ann");
    let b = server.connect_with_token(Encoding::Binary, &bob);
    server.run_jobs();
    // Carl uses `login` by name: he plays as before, and nothing of his is saved.
    let carl = server.connect(Encoding::Binary);
    server.call::<_, LoggedIn>(carl, ROUTE_LOGIN, &Login { name: "carl".into() }).expect("logs in");
    for client in [c, b, carl] {
        server.call::<_, Joined>(client, ROUTE_JOIN, &Join { room: "lobby".into() }).expect("joins");
    }
    server.call::<_, Joined>(c, ROUTE_JOIN, &Join { room: "den".into() }).expect("joins");
    server.call::<_, Joined>(c, ROUTE_JOIN, &Join { room: "lobby".into() }).expect("joins");
    for client in [c, carl] {
        server.call::<_, Moved>(client, ROUTE_MOVE, &Move { dx: 1, dy: 1 }).expect("moves");
    }
    server.call::<_, ()>(b, ROUTE_CHAT, &Chat { text: "hi".into() }).expect("says");
    server.call::<_, ()>(b, ROUTE_WHISPER, &Whisper { to: "ann".into(), text: "psst".into() }).expect("says");
    server.call::<_, ()>(carl, ROUTE_CHAT, &Chat { text: "hi".into() }).expect("says");
    // 10 ticks of moving diagonally: 10 * (5 + 5) units, if no wall is near.
    server.advance_ticks(10);
    assert_eq!(server.job_counters().submitted, 4, "two registers, two tokens: no save per move");
    server.advance(Duration::from_secs(1));
    assert_eq!(server.run_jobs(), 1, "one save for every player");
    let distance = leaderboard(&mut server, c, LeaderboardBy::Distance);
    assert_eq!(distance.len(), 2, "{distance:?}");
    assert_eq!(distance[0].0, "ann");
    assert!(distance[0].1 >= 100, "ann moved for 10 ticks and more: {distance:?}");
    assert_eq!(distance[1], ("bob".to_owned(), 0));
    assert_eq!(leaderboard(&mut server, c, LeaderboardBy::Messages), [("bob".into(), 2), ("ann".into(), 0)]);
    assert_eq!(leaderboard(&mut server, c, LeaderboardBy::Games), [("ann".into(), 3), ("bob".into(), 1)]);

    // Bob's last connection goes: what he earned since is saved at the next tick.
    server.call::<_, ()>(b, ROUTE_CHAT, &Chat { text: "bye".into() }).expect("says");
    server.disconnect(b);
    assert_eq!(server.run_jobs(), 0, "not before the tick");
    server.advance_ticks(1);
    assert_eq!(server.run_jobs(), 1);
    assert_eq!(leaderboard(&mut server, c, LeaderboardBy::Messages)[0], ("bob".into(), 3));

    let id = server.send(c, ROUTE_LEADERBOARD, &Leaderboard { by: LeaderboardBy::Games, limit: 0 });
    assert_eq!(code(server.answer::<Vec<LeaderboardEntry>>(c, id).expect("at once")), ERR_INVALID);
    let id = server.send(c, ROUTE_LEADERBOARD, &Leaderboard { by: LeaderboardBy::Games, limit: 101 });
    assert_eq!(code(server.answer::<Vec<LeaderboardEntry>>(c, id).expect("at once")), ERR_INVALID);
}

#[test]
fn players_leaving_together_are_saved_in_one_job_and_leave_the_queue_to_others() {
    let mut server = server("departures");
    // A job queue of 4: one save job per departing player would fill it at once.
    server.set_job_queue(4);
    let mut players = Vec::new();
    for n in 0..12 {
        let c = server.connect(Encoding::Binary);
        let token = register(&mut server, c, &format!("p{n}"), "pw").expect("registered").token;
        auth(&mut server, c, &token).expect("authenticated");
        server.call::<_, Joined>(c, ROUTE_JOIN, &Join { room: "lobby".into() }).expect("joins");
        server.call::<_, ()>(c, ROUTE_CHAT, &Chat { text: "hi".into() }).expect("says");
        players.push(c);
    }
    let refused_before = server.job_counters().refused;
    let stays = server.connect(Encoding::Binary);
    for c in players {
        server.disconnect(c);
    }
    // In the same tick, a call that needs the pool still gets in.
    let late = register(&mut server, stays, "late", "pw");
    assert!(late.is_ok(), "{late:?}");
    server.advance_ticks(1);
    assert_eq!(server.run_jobs(), 1, "the twelve departures: one job");
    assert_eq!(server.job_counters().refused, refused_before, "nothing refused");
    let request = Leaderboard { by: LeaderboardBy::Messages, limit: 100 };
    let board: Vec<LeaderboardEntry> =
        call_store(&mut server, stays, ROUTE_LEADERBOARD, &request).expect("ranks");
    assert_eq!(board.iter().filter(|e| e.value == 1).count(), 12, "every one saved: {board:?}");
}

#[test]
fn stats_survive_a_new_server_on_the_same_file() {
    let db = fresh_db("reopen");
    let token = {
        let accounts = Accounts::open(&db).expect("opens");
        let mut server =
            TestServer::new(Arena::new(ArenaConfig { accounts: Some(accounts), ..ArenaConfig::default() }));
        let c = server.connect(Encoding::Binary);
        let token = register(&mut server, c, "ann", "pw").expect("registered").token;
        auth(&mut server, c, &token).expect("ann");
        server.call::<_, Joined>(c, ROUTE_JOIN, &Join { room: "lobby".into() }).expect("joins");
        server.call::<_, ()>(c, ROUTE_CHAT, &Chat { text: "hi".into() }).expect("says");
        let totals: PlayerStats = call_store(&mut server, c, ROUTE_FLUSH_STATS, &()).expect("saved");
        assert_eq!((totals.messages, totals.games), (1, 1));
        token
    };
    let accounts = Accounts::open(&db).expect("opens again");
    let mut server =
        TestServer::new(Arena::new(ArenaConfig { accounts: Some(accounts), ..ArenaConfig::default() }));
    let c = server.connect(Encoding::Json);
    assert_eq!(auth(&mut server, c, &token).expect("the key survives too").user, "ann");
    let totals: PlayerStats = call_store(&mut server, c, ROUTE_FLUSH_STATS, &()).expect("read");
    assert_eq!((totals.messages, totals.games), (1, 1));
}

#[test]
fn without_a_database_the_account_routes_answer_err_store_and_login_still_works() {
    let mut server = TestServer::new(Arena::default());
    let c = server.connect(Encoding::Binary);
    let id = server.send(c, ROUTE_REGISTER, &Register { name: "ann".into(), password: "pw".into() });
    assert_eq!(code(server.answer::<Session>(c, id).expect("at once")), ERR_STORE);
    let id = server.send(c, ROUTE_GUEST, &Guest { device_token: None });
    assert_eq!(code(server.answer::<GuestSession>(c, id).expect("at once")), ERR_STORE);
    assert_eq!(
        server.call::<_, LoggedIn>(c, ROUTE_LOGIN, &Login { name: "ann".into() }),
        Ok(LoggedIn { player_id: 1 })
    );
}

fn login(server: &mut TestServer<Arena>, client: TestClient, name: &str) -> Result<LoggedIn, CallError> {
    server.call(client, ROUTE_LOGIN, &Login { name: name.into() })
}

#[test]
fn login_by_name_stays_off_accounts_names_and_guests_names() {
    let db = fresh_db("names");
    let mut server = TestServer::new(Arena::new(ArenaConfig {
        accounts: Some(Accounts::open(&db).expect("opens")),
        ..ArenaConfig::default()
    }));
    let owner = server.connect(Encoding::Binary);
    let squatter = server.connect(Encoding::Json);
    let token = register(&mut server, owner, "ann", "pw").expect("registered").token;
    assert_eq!(code(login(&mut server, squatter, "ann")), ERR_NAME_TAKEN, "an account's name");
    assert_eq!(code(login(&mut server, squatter, "guest-1")), ERR_NAME_TAKEN, "a guest's name");

    // Reserved while its registration runs: a `login` cannot slip in before the job ends.
    let pending = server.send(owner, ROUTE_REGISTER, &Register { name: "dan".into(), password: "pw".into() });
    assert_eq!(code(login(&mut server, squatter, "dan")), ERR_NAME_TAKEN, "being registered");
    server.run_jobs();
    server.answer::<Session>(owner, pending).expect("answered").expect("dan registered");
    // A registration that fails frees the name.
    assert_eq!(code(register(&mut server, owner, "eve", "")), ERR_INVALID, "an empty password");
    login(&mut server, squatter, "eve").expect("eve is free");

    // A name a `login` player uses now cannot be registered from under them.
    assert_eq!(code(register(&mut server, owner, "eve", "pw")), ERR_NAME_TAKEN);

    // The owner signs in and plays under the name; `login` with it is then a no-op.
    let reply = auth(&mut server, owner, &token).expect("the token");
    assert_eq!(reply.user, "ann");
    login(&mut server, owner, "ann").expect("its own name");

    // The next server on the file knows the names from the start.
    drop(server);
    let mut server = TestServer::new(Arena::new(ArenaConfig {
        accounts: Some(Accounts::open(&db).expect("opens")),
        ..ArenaConfig::default()
    }));
    let c = server.connect(Encoding::Binary);
    for name in ["ann", "dan"] {
        assert_eq!(code(login(&mut server, c, name)), ERR_NAME_TAKEN, "{name} after a restart");
    }
    login(&mut server, c, "fay").expect("any other name");
}
