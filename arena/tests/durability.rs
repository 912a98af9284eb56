//! Stats that a client saw acknowledged survive a SIGKILL: the real `ticksock-arena` binary,
//! a player streaming chat lines each followed by `flush_stats` (answered only once the
//! job's write has committed, with the totals it read back), killed with calls of the stream
//! still in flight, then started again on the same database file.
//!
//! What it checks: the database opens cleanly (the new server starts on it, and SQLite's
//! `integrity_check` says `ok`); the account and its session key survive (the old token is
//! still accepted); every acknowledged total is there (the stored count of messages is at
//! least the highest one any `flush_stats` answered) and nothing was invented (at most the
//! lines sent).
#![cfg(unix)]

mod support;

use std::time::Duration;

use support::arena::{ArenaProcess, fresh_db};
use ticksock_arena::proto::{
    Chat, Join, Joined, PlayerStats, ROUTE_CHAT, ROUTE_FLUSH_STATS, ROUTE_JOIN, ROUTE_REGISTER, Register,
    Session,
};
use ticksock_client::{BlockingClient, Config, Outcome, Versions};
use ticksock_protocol::{AuthReply, ROUTE_AUTH};

/// Lines acknowledged one by one before the burst that the kill interrupts.
const ACKED_FIRST: u64 = 30;
/// Chat-and-flush pairs sent without waiting, just before the kill: in flight when it lands.
const IN_FLIGHT: u64 = 20;
const PATIENCE: Duration = Duration::from_secs(10);

/// A version 1 client that does not reconnect: a killed server ends its calls at once.
fn connect(url: &str) -> BlockingClient {
    let config = Config { versions: Versions::V1Only, max_attempts: Some(1), ..Config::default() };
    BlockingClient::connect(url, config, PATIENCE).expect("connects")
}

#[test]
fn every_acknowledged_stat_survives_a_sigkill_and_the_database_opens_cleanly() {
    let db = fresh_db("durability");
    let mut server = ArenaProcess::start(&db);
    let mut client = connect(server.url());
    let session: Session = client
        .call(ROUTE_REGISTER, &Register { name: "ann".into(), password: "pw".into() })
        .expect("registers");
    let me: AuthReply = client.call(ROUTE_AUTH, &session.token).expect("the token is accepted");
    assert_eq!(me.user, "ann");
    let _: Joined = client.call(ROUTE_JOIN, &Join { room: "lobby".into() }).expect("joins");

    let mut acked = PlayerStats::default();
    for n in 0..ACKED_FIRST {
        let () = client.call(ROUTE_CHAT, &Chat { text: format!("line {n}") }).expect("says");
        acked = client.call(ROUTE_FLUSH_STATS, &()).expect("flushed");
        assert_eq!(acked.messages, n + 1, "each flush answers the totals with that line in");
    }
    // The burst: sent without waiting, then the kill lands among them.
    let mut flushes = Vec::new();
    for n in 0..IN_FLIGHT {
        let c = client.client_mut();
        c.call(ROUTE_CHAT, &Chat { text: format!("burst {n}") }).expect("queued");
        flushes.push(c.call(ROUTE_FLUSH_STATS, &()).expect("queued"));
    }
    server.kill();
    let mut cut = 0;
    for id in flushes {
        match client.wait_outcome(id) {
            Outcome::Reply(body) => {
                let totals: PlayerStats = ticksock_protocol::decode_body(&body).expect("PlayerStats");
                acked.messages = acked.messages.max(totals.messages);
            }
            Outcome::Disconnected | Outcome::Closed => cut += 1,
            other => panic!("a flush ended {other:?}"),
        }
    }
    drop(client);
    eprintln!("acknowledged {} messages; {cut} flushes cut by the kill", acked.messages);

    let check = rusqlite::Connection::open(&db).expect("the file opens");
    let integrity: String = check.query_row("PRAGMA integrity_check", [], |row| row.get(0)).expect("checks");
    assert_eq!(integrity, "ok");
    drop(check);

    let again = ArenaProcess::start(&db);
    let mut client = connect(again.url());
    let me: AuthReply = client.call(ROUTE_AUTH, &session.token).expect("the old token: the key survived");
    assert_eq!(me.user, "ann");
    let stored: PlayerStats = client.call(ROUTE_FLUSH_STATS, &()).expect("reads");
    assert!(stored.messages >= acked.messages, "stored {stored:?}, acknowledged {acked:?}");
    assert!(stored.messages <= ACKED_FIRST + IN_FLIGHT, "never more than was said: {stored:?}");
    assert_eq!(stored.games, 1);
    client.close();
    drop(again);
}
