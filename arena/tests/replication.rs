//! The arena with `--replication` (PROTOCOL.md 8.9), in simulated time: forty players in one
//! arena, each client rebuilding its view with the Rust client's `Mirror`. Each view equals
//! the server's (the digest route), holds only the neighbourhood of its own player, follows
//! moves across cells, and comes as deltas once acknowledged; `--state-every` thins the
//! updates.

use std::time::Instant;

use ticksock_arena::proto::*;
use ticksock_arena::replication::ReplicationSettings;
use ticksock_arena::{Arena, ArenaConfig};
use ticksock_client::replica::{Mirror, MirrorConfig};
use ticksock_protocol::replica::{AckOutcome, ReplicaUpdate, TOPIC_REPLICA};
use ticksock_server::testing::{Encoding, TestClient, TestServer};

const PLAYERS: usize = 40;

fn server(state_every: u32) -> TestServer<Arena> {
    let settings = ReplicationSettings { cell: 100, radius: 1, digests: true };
    let config =
        ArenaConfig { capacity: 500, state_every, replication: Some(settings), ..ArenaConfig::default() };
    TestServer::new(Arena::new(config))
}

struct Player {
    client: TestClient,
    id: u32,
    mirror: Mirror,
}

fn players(server: &mut TestServer<Arena>) -> Vec<Player> {
    (0..PLAYERS)
        .map(|n| {
            let client = server.connect(if n % 4 == 0 { Encoding::Json } else { Encoding::Binary });
            let LoggedIn { player_id } =
                server.call(client, ROUTE_LOGIN, &Login { name: format!("p{n}") }).expect("logs in");
            let _: Joined = server.call(client, ROUTE_JOIN, &Join { room: "lobby".into() }).expect("joins");
            Player { client, id: player_id, mirror: Mirror::new(MirrorConfig::default()) }
        })
        .collect()
}

/// Applies every update each binary player received, acknowledges as its mirror says, and
/// checks its view against the server's digest. Returns how many updates were applied and
/// how many were full snapshots.
fn take_updates(server: &mut TestServer<Arena>, players: &mut [Player]) -> (usize, usize) {
    let (mut applied, mut full) = (0, 0);
    for p in players.iter_mut().filter(|p| p.client.encoding() == Encoding::Binary) {
        for update in server.pushes::<ReplicaUpdate>(p.client, TOPIC_REPLICA) {
            let body = ticksock_protocol::encode_body(&update).expect("encodes");
            full += usize::from(p.mirror.apply(&body).expect("applies").full);
            applied += 1;
        }
        if let Some(tick) = p.mirror.poll_ack(Instant::now()) {
            let outcome: AckOutcome = server.call(p.client, ROUTE_REPLICA_ACK, &tick).expect("answers");
            assert_eq!(outcome, AckOutcome::Accepted);
        }
        let digest: Option<(u64, u64)> = server.call(p.client, ROUTE_REPLICA_DIGEST, &()).expect("answers");
        if let Some((tick, digest)) = digest {
            assert_eq!((tick, digest), (p.mirror.tick(), p.mirror.digest()), "player {}", p.id);
        }
    }
    for p in players.iter_mut().filter(|p| p.client.encoding() == Encoding::Json) {
        // JSON updates carry the same view (the server tests check them byte for byte); here
        // they are only drained.
        let _ = server.frames(p.client).count();
    }
    (applied, full)
}

fn position(mirror: &Mirror, player_id: u32) -> Option<(i32, i32)> {
    mirror
        .view()?
        .values()
        .find(|e| e.field::<u32>(PLAYER_FIELD_ID).and_then(Result::ok) == Some(player_id))
        .and_then(|e| e.field::<(i32, i32)>(PLAYER_FIELD_POS).and_then(Result::ok))
}

#[test]
fn each_player_sees_its_neighbourhood_as_deltas_equal_to_the_servers_view() {
    let mut server = server(1);
    let mut ps = players(&mut server);
    server.advance_ticks(1);
    let (applied, full) = take_updates(&mut server, &mut ps);
    assert_eq!((applied, full), (30, 30), "the first update of each binary player is full");

    // Everyone walks east for a while: players cross cells, enter and leave views.
    for p in &ps {
        let _: Moved = server
            .call(p.client, ROUTE_MOVE, &Move { dx: 1, dy: if p.id % 2 == 0 { 1 } else { -1 } })
            .expect("moves");
    }
    let mut deltas = 0;
    for _ in 0..60 {
        server.advance_ticks(1);
        let (applied, full) = take_updates(&mut server, &mut ps);
        deltas += applied - full;
    }
    assert!(deltas > 30 * 50, "mostly deltas once acknowledged: {deltas}");

    for p in ps.iter().filter(|p| p.client.encoding() == Encoding::Binary) {
        let view = p.mirror.view().expect("a view");
        let me = position(&p.mirror, p.id).expect("a player sees itself");
        assert!(view.len() < PLAYERS, "player {} sees {} of {PLAYERS}: not everyone", p.id, view.len());
        for e in view.values() {
            assert_eq!(e.kind, REPLICA_KIND_PLAYER);
            let (x, y) = e.field::<(i32, i32)>(PLAYER_FIELD_POS).expect("set").expect("decodes");
            assert!(
                (x / 100).abs_diff(me.0 / 100) <= 1 && (y / 100).abs_diff(me.1 / 100) <= 1,
                "{x},{y} near {me:?}"
            );
            assert!(e.field::<String>(PLAYER_FIELD_NAME).expect("set").expect("decodes").starts_with('p'));
        }
    }
}

#[test]
fn state_every_sends_one_update_in_n_ticks_and_without_replication_acks_are_unknown() {
    let mut server = server(3);
    let mut ps = players(&mut server);
    server.advance_ticks(9);
    let (applied, _) = take_updates(&mut server, &mut ps);
    assert_eq!(applied, 30 * 3, "ticks 3, 6 and 9");

    let mut plain = TestServer::new(Arena::default());
    let c = plain.connect(Encoding::Binary);
    let outcome: AckOutcome = plain.call(c, ROUTE_REPLICA_ACK, &5u64).expect("answers");
    assert_eq!(outcome, AckOutcome::Unknown);
}
