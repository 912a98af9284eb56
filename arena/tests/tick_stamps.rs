//! Tick-stamped replies (PROTOCOL.md 4.3) against the arena's own tick numbering, in simulated
//! time: a `move` answered with stamp T is first seen in the `state` of tick T (and in the
//! replication update of tick T), never in an earlier one; the stamp is `Moved.tick`; a client
//! that did not ask gets plain replies.

use std::time::Instant;

use ticksock_arena::proto::*;
use ticksock_arena::replication::ReplicationSettings;
use ticksock_arena::{Arena, ArenaConfig};
use ticksock_client::replica::{Mirror, MirrorConfig};
use ticksock_protocol::replica::{ReplicaUpdate, TOPIC_REPLICA};
use ticksock_server::testing::{Encoding, TestClient, TestServer};

const BOTH: [Encoding; 2] = [Encoding::Binary, Encoding::Json];

/// Logs `name` in on `client` and joins the lobby; its player id and start position.
fn enter(server: &mut TestServer<Arena>, client: TestClient, name: &str) -> (u32, (i32, i32)) {
    let LoggedIn { player_id } =
        server.call(client, ROUTE_LOGIN, &Login { name: name.into() }).expect("logs in");
    let joined: Joined = server.call(client, ROUTE_JOIN, &Join { room: "lobby".into() }).expect("joins");
    let me = joined.players.iter().find(|p| p.id == player_id).expect("in the roster");
    (player_id, (me.x, me.y))
}

/// A `move` on a client that asked for stamps: its stamp, checked against `Moved.tick`.
fn stamped_move(server: &mut TestServer<Arena>, client: TestClient, dx: i8) -> u64 {
    let (stamp, moved) =
        server.call_stamped::<_, Moved>(client, ROUTE_MOVE, &Move { dx, dy: 0 }).expect("moves");
    let stamp = stamp.expect("the client asked for stamps");
    assert_eq!(stamp, moved.tick, "the stamp and the game's own tick agree");
    stamp
}

/// The x of player `id` in each `state` the client received, by tick.
fn xs_by_tick(server: &mut TestServer<Arena>, client: TestClient, id: u32) -> Vec<(u64, i32)> {
    server
        .pushes::<State>(client, TOPIC_STATE)
        .into_iter()
        .map(|s| (s.tick, s.players.iter().find(|p| p.id == id).expect("in the state").x))
        .collect()
}

#[test]
fn a_move_stamped_t_shows_first_in_the_state_of_tick_t_in_either_encoding() {
    for encoding in BOTH {
        let mut server = TestServer::new(Arena::new(ArenaConfig::default()));
        let client = server.connect_with_tick_stamps(encoding);
        let (me, (x0, _)) = enter(&mut server, client, "ann");
        // Away from the nearer wall, so no step is clamped.
        let dx: i8 = if x0 > ARENA_SIZE / 2 { -1 } else { 1 };
        let step = SPEED * i32::from(dx);

        // Before the first tick the stamp is 0: tick 0 is the next to run.
        assert_eq!(stamped_move(&mut server, client, dx), 0, "{encoding:?}");
        server.advance_ticks(3);
        assert_eq!(
            xs_by_tick(&mut server, client, me),
            [(0, x0 + step), (1, x0 + 2 * step), (2, x0 + 3 * step)]
        );

        // Stopping after tick 2 is stamped 3: tick 2's state still moved, tick 3's is the first still.
        let stop = stamped_move(&mut server, client, 0);
        assert_eq!(stop, 3);
        server.advance_ticks(2);
        let at_rest = x0 + 3 * step;
        assert_eq!(xs_by_tick(&mut server, client, me), [(stop, at_rest), (stop + 1, at_rest)]);
    }
}

#[test]
fn errors_carry_no_stamp_and_a_client_that_did_not_ask_gets_plain_replies() {
    let mut server = TestServer::new(Arena::new(ArenaConfig::default()));
    let stamped = server.connect_with_tick_stamps(Encoding::Binary);
    let plain = server.connect(Encoding::Binary);
    let refused = server
        .call_stamped::<_, Moved>(stamped, ROUTE_MOVE, &Move { dx: 1, dy: 0 })
        .expect_err("not logged in");
    assert_eq!(refused.code, ERR_NOT_LOGGED_IN);
    enter(&mut server, plain, "bob");
    server.advance_ticks(5);
    let (stamp, moved) =
        server.call_stamped::<_, Moved>(plain, ROUTE_MOVE, &Move { dx: 1, dy: 0 }).expect("moves");
    assert_eq!((stamp, moved.tick), (None, 5));
    // The raw `echo` route is stamped too: every reply of a connection that asked is.
    let (stamp, echoed) =
        server.call_stamped::<_, Vec<u8>>(stamped, ROUTE_ECHO, &vec![1u8, 2]).expect("echoes");
    assert_eq!((stamp, echoed), (Some(5), vec![1, 2]));
}

#[test]
fn with_replication_a_move_stamped_t_shows_first_in_the_update_of_tick_t() {
    let settings = ReplicationSettings { cell: 100, radius: 1, digests: false };
    let config = ArenaConfig { replication: Some(settings), ..ArenaConfig::default() };
    let mut server = TestServer::new(Arena::new(config));
    let client = server.connect_with_tick_stamps(Encoding::Binary);
    let (me, (x0, _)) = enter(&mut server, client, "ann");
    let dx: i8 = if x0 > ARENA_SIZE / 2 { -1 } else { 1 };
    let mut mirror = Mirror::new(MirrorConfig::default());
    server.advance_ticks(2);
    let stamp = stamped_move(&mut server, client, dx);
    assert_eq!(stamp, 2);
    server.advance_ticks(2);
    let mut seen = Vec::new();
    for update in server.pushes::<ReplicaUpdate>(client, TOPIC_REPLICA) {
        mirror.apply(&ticksock_protocol::encode_body(&update).expect("encodes")).expect("applies");
        let view = mirror.view().expect("a view");
        let mine = view
            .values()
            .find(|e| e.field::<u32>(PLAYER_FIELD_ID).and_then(Result::ok) == Some(me))
            .expect("a player sees itself");
        let (x, _) = mine.field::<(i32, i32)>(PLAYER_FIELD_POS).expect("set").expect("decodes");
        seen.push((mirror.tick(), x));
        // Acknowledged, as a client does, so the next update is a delta against this one.
        if let Some(tick) = mirror.poll_ack(Instant::now()) {
            let _: ticksock_protocol::replica::AckOutcome =
                server.call(client, ROUTE_REPLICA_ACK, &tick).expect("answers");
        }
    }
    let step = SPEED * i32::from(dx);
    assert_eq!(seen, [(0, x0), (1, x0), (stamp, x0 + step), (stamp + 1, x0 + 2 * step)]);
}
