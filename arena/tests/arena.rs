//! The example game through the test harness, on a simulated clock: login, join, move, chat,
//! whisper, echo, its errors, and how arenas and avatars outlive their players. Nothing here
//! needs a socket (the wire path is tested in `json.rs`, `signals.rs` and the server's own
//! tests), so nothing waits for a real tick: every position is exact.

use std::time::Duration;

use serde_json::json;
use ticksock_arena::proto::*;
use ticksock_arena::{Arena, ArenaConfig};
use ticksock_server::testing::{CallError, Encoding, TestClient, TestServer};

/// 20 ticks a second: a period of exactly 50 ms, so grace times fall on ticks.
const TICK_HZ: u16 = 20;
const PERIOD: Duration = Duration::from_millis(50);

fn arena(config: ArenaConfig) -> TestServer<Arena> {
    TestServer::with_tick_hz(Arena::new(config), TICK_HZ)
}

fn login(server: &mut TestServer<Arena>, client: TestClient, name: &str) -> u32 {
    let reply: LoggedIn = server.call(client, ROUTE_LOGIN, &Login { name: name.into() }).expect("logged in");
    reply.player_id
}

fn join(server: &mut TestServer<Arena>, client: TestClient, room: &str) -> Joined {
    server.call(client, ROUTE_JOIN, &Join { room: room.into() }).expect("joined")
}

fn x_of(players: &[PlayerState], id: u32) -> i32 {
    players.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("player {id} is not in {players:?}")).x
}

/// The error code of a call that must fail.
fn code<T: std::fmt::Debug>(answer: Result<T, CallError>) -> u16 {
    answer.expect_err("the call must fail").code
}

/// `name` logs in on `client`, joins `room`, walks four ticks away from the nearer wall and
/// stops. Returns their player id and the x where they rest, checked against their own
/// `state` pushes.
fn walk_and_rest(server: &mut TestServer<Arena>, client: TestClient, name: &str, room: &str) -> (u32, i32) {
    let me = login(server, client, name);
    let start_x = x_of(&join(server, client, room).players, me);
    let dx: i8 = if start_x > ARENA_SIZE / 2 { -1 } else { 1 };
    let _: Moved = server.call(client, ROUTE_MOVE, &Move { dx, dy: 0 }).expect("moving");
    server.advance_ticks(4);
    let _: Moved = server.call(client, ROUTE_MOVE, &Move { dx: 0, dy: 0 }).expect("stopping");
    server.advance_ticks(1);
    let states: Vec<State> = server.pushes(client, TOPIC_STATE);
    let rest_x = x_of(&states.last().expect("states").players, me);
    assert_eq!(rest_x, start_x + 4 * SPEED * i32::from(dx), "four steps, then a stop");
    (me, rest_x)
}

#[test]
fn players_join_move_and_chat() {
    let mut server = arena(ArenaConfig::default());
    let ann = server.connect(Encoding::Binary);
    let bob = server.connect(Encoding::Json);
    let ann_id = login(&mut server, ann, "ann");
    let bob_id = login(&mut server, bob, "bob");
    assert_ne!(ann_id, bob_id);

    let rooms: Vec<RoomInfo> = server.call(ann, ROUTE_ROOMS, &()).expect("rooms");
    assert_eq!(rooms, [RoomInfo { name: "lobby".into(), players: 0, capacity: 64 }]);

    assert_eq!(join(&mut server, ann, "lobby").players.len(), 1);
    let joined = join(&mut server, bob, "lobby");
    assert_eq!(joined.players.len(), 2);
    let start_x = x_of(&joined.players, ann_id);
    let came: Vec<Presence> = server.pushes(ann, TOPIC_PRESENCE);
    assert_eq!(came, [Presence { player_id: bob_id, name: "bob".into(), joined: true }]);
    assert!(server.pushes::<Presence>(bob, TOPIC_PRESENCE).is_empty(), "nobody else was there");

    // Ann walks left or right (away from the wall); Bob sees every step in the state pushes.
    server.advance_ticks(1);
    let dx = if start_x > ARENA_SIZE / 2 { -1 } else { 1 };
    let moved: Moved = server.call(ann, ROUTE_MOVE, &Move { dx, dy: 0 }).expect("moved");
    assert_eq!(moved.tick, server.tick() + 1, "from the next tick on");
    server.advance_ticks(3);
    let states: Vec<State> = server.pushes(bob, TOPIC_STATE);
    let seen: Vec<(u64, i32)> = states.iter().map(|s| (s.tick, x_of(&s.players, ann_id))).collect();
    let step = SPEED * i32::from(dx);
    assert_eq!(
        seen,
        [
            (0, start_x),
            (moved.tick, start_x + step),
            (moved.tick + 1, start_x + 2 * step),
            (3, start_x + 3 * step)
        ]
    );
    assert_eq!(server.pushes::<State>(ann, TOPIC_STATE).len(), 4, "ann gets the same states");

    let () = server.call(ann, ROUTE_CHAT, &Chat { text: "hi bob".into() }).expect("said");
    let line = ChatLine { player_id: ann_id, name: "ann".into(), text: "hi bob".into() };
    assert_eq!(server.pushes::<ChatLine>(bob, TOPIC_CHAT), std::slice::from_ref(&line));
    assert_eq!(server.pushes::<ChatLine>(ann, TOPIC_CHAT), [line], "the speaker hears it too");

    // Bob leaves: Ann hears of it.
    let () = server.call(bob, ROUTE_LEAVE, &()).expect("left");
    let gone: Vec<Presence> = server.pushes(ann, TOPIC_PRESENCE);
    assert_eq!(gone, [Presence { player_id: bob_id, name: "bob".into(), joined: false }]);
}

#[test]
fn echo_returns_the_body_unchanged_in_either_encoding() {
    let mut server = arena(ArenaConfig::default());
    let binary = server.connect(Encoding::Binary);
    let json = server.connect(Encoding::Json);
    let bytes: Vec<u8> = (0..32).collect();
    assert_eq!(server.call::<_, Vec<u8>>(binary, ROUTE_ECHO, &bytes), Ok(bytes.clone()));
    assert_eq!(server.call::<_, Vec<u8>>(json, ROUTE_ECHO, &bytes), Ok(bytes));
    let any = json!({"any": ["json", 1, null]});
    assert_eq!(server.call::<_, serde_json::Value>(json, ROUTE_ECHO, &any), Ok(any));
}

#[test]
fn the_games_errors_carry_its_codes() {
    let mut server = arena(ArenaConfig { capacity: 1, max_rooms: 2, ..ArenaConfig::default() });
    let c = server.connect(Encoding::Binary);
    assert_eq!(code(server.call::<_, Moved>(c, ROUTE_MOVE, &Move { dx: 1, dy: 0 })), ERR_NOT_LOGGED_IN);
    assert_eq!(code(server.call::<_, LoggedIn>(c, ROUTE_LOGIN, &Login { name: String::new() })), ERR_INVALID);
    let long = Login { name: "x".repeat(MAX_NAME_LEN + 1) };
    assert_eq!(code(server.call::<_, LoggedIn>(c, ROUTE_LOGIN, &long)), ERR_INVALID);
    login(&mut server, c, "cat");
    assert_eq!(code(server.call::<_, Moved>(c, ROUTE_MOVE, &Move { dx: 1, dy: 0 })), ERR_NOT_IN_ROOM);
    assert_eq!(code(server.call::<_, ()>(c, ROUTE_CHAT, &Chat { text: "hi".into() })), ERR_NOT_IN_ROOM);
    assert_eq!(code(server.call::<_, ()>(c, ROUTE_LEAVE, &())), ERR_NOT_IN_ROOM);
    join(&mut server, c, "lobby");
    let too_long = Chat { text: "x".repeat(MAX_CHAT_LEN + 1) };
    assert_eq!(code(server.call::<_, ()>(c, ROUTE_CHAT, &too_long)), ERR_INVALID);

    let d = server.connect(Encoding::Json);
    login(&mut server, d, "dog");
    assert_eq!(code(server.call::<_, Joined>(d, ROUTE_JOIN, &Join { room: "lobby".into() })), ERR_ROOM_FULL);
    // A second arena may be created; a third may not (max_rooms = 2).
    join(&mut server, d, "den");
    let e = server.connect(Encoding::Binary);
    login(&mut server, e, "eel");
    assert_eq!(
        code(server.call::<_, Joined>(e, ROUTE_JOIN, &Join { room: "pond".into() })),
        ERR_NO_SUCH_ROOM
    );
    assert_eq!(server.game().room_count(), 2);
}

fn room_names(server: &mut TestServer<Arena>, client: TestClient) -> Vec<String> {
    let rooms: Vec<RoomInfo> = server.call(client, ROUTE_ROOMS, &()).expect("rooms");
    rooms.into_iter().map(|r| r.name).collect()
}

#[test]
fn an_empty_arena_is_disposed_of_after_its_grace_time_and_not_before() {
    let grace = Duration::from_millis(600);
    let mut server = arena(ArenaConfig { room_grace: grace, ..ArenaConfig::default() });
    let c = server.connect(Encoding::Binary);
    login(&mut server, c, "ann");
    join(&mut server, c, "den");
    let () = server.call(c, ROUTE_LEAVE, &()).expect("left");
    // A tick short of the grace time it is still listed...
    server.advance(grace - PERIOD);
    assert_eq!(room_names(&mut server, c), ["den", "lobby"]);
    // ...and a tick past it, it is gone (an arena finds itself empty on its next tick). The
    // permanent lobby stays, empty as it is.
    server.advance(PERIOD * 2);
    assert_eq!(room_names(&mut server, c), ["lobby"]);
}

#[test]
fn a_player_who_drops_comes_back_to_their_arena_and_position() {
    let mut server = arena(ArenaConfig::default());
    let watcher = server.connect(Encoding::Json);
    login(&mut server, watcher, "watcher");
    join(&mut server, watcher, "den");

    let ann = server.connect(Encoding::Binary);
    let (_, rest_x) = walk_and_rest(&mut server, ann, "ann", "den");
    server.pushes::<Presence>(watcher, TOPIC_PRESENCE);

    server.disconnect(ann); // the socket closes without a goodbye
    let gone: Vec<Presence> = server.pushes(watcher, TOPIC_PRESENCE);
    assert_eq!(gone.iter().map(|p| (p.name.as_str(), p.joined)).collect::<Vec<_>>(), [("ann", false)]);

    // Well within the grace time (30 s), she is back where she left.
    server.advance(Duration::from_secs(5));
    let ann = server.connect(Encoding::Binary);
    let new_id = login(&mut server, ann, "ann");
    assert_eq!(x_of(&join(&mut server, ann, "den").players, new_id), rest_x, "ann comes back where she left");
}

#[test]
fn state_goes_to_each_arena_only_and_whispers_reach_every_device() {
    let mut server = arena(ArenaConfig::default());
    let red = server.connect(Encoding::Binary);
    let blue = server.connect(Encoding::Binary);
    let red_id = login(&mut server, red, "red");
    let blue_id = login(&mut server, blue, "blue");
    join(&mut server, red, "red-room");
    join(&mut server, blue, "blue-room");
    server.advance_ticks(5);
    for (client, id) in [(red, red_id), (blue, blue_id)] {
        let states: Vec<State> = server.pushes(client, TOPIC_STATE);
        assert_eq!(states.len(), 5);
        assert!(states.iter().all(|s| s.players.iter().map(|p| p.id).eq([id])), "{states:?}");
    }

    // Blue on a second device: a whisper reaches both, and nobody else.
    let blue2 = server.connect(Encoding::Json);
    login(&mut server, blue2, "blue");
    let () =
        server.call(red, ROUTE_WHISPER, &Whisper { to: "blue".into(), text: "psst".into() }).expect("sent");
    let line = ChatLine { player_id: red_id, name: "red".into(), text: "psst".into() };
    for client in [blue, blue2] {
        assert_eq!(server.pushes::<ChatLine>(client, TOPIC_WHISPER), std::slice::from_ref(&line));
    }
    assert!(server.pushes::<ChatLine>(red, TOPIC_WHISPER).is_empty());
    let nobody = Whisper { to: "nobody".into(), text: "x".into() };
    assert_eq!(code(server.call::<_, ()>(red, ROUTE_WHISPER, &nobody)), ERR_NOT_ONLINE);
}

#[test]
fn one_name_on_two_devices_is_one_player_in_an_arena() {
    let mut server = arena(ArenaConfig::default());
    let watcher = server.connect(Encoding::Json);
    login(&mut server, watcher, "watcher");
    join(&mut server, watcher, "den");
    let phone = server.connect(Encoding::Binary);
    let laptop = server.connect(Encoding::Json);
    let id = login(&mut server, phone, "ann");
    assert_eq!(login(&mut server, laptop, "ann"), id, "the same name is the same player");

    join(&mut server, phone, "den");
    let came: Vec<Presence> = server.pushes(watcher, TOPIC_PRESENCE);
    assert_eq!(came, [Presence { player_id: id, name: "ann".into(), joined: true }]);
    let joined = join(&mut server, laptop, "den");
    assert_eq!(joined.players.iter().filter(|p| p.id == id).count(), 1, "{joined:?}");
    assert!(server.pushes::<Presence>(watcher, TOPIC_PRESENCE).is_empty(), "a second device is not news");

    // The player leaves once both devices have left, and not before.
    let () = server.call(laptop, ROUTE_LEAVE, &()).expect("left");
    server.advance_ticks(1);
    assert!(server.pushes::<Presence>(watcher, TOPIC_PRESENCE).is_empty());
    let states: Vec<State> = server.pushes(watcher, TOPIC_STATE);
    assert_eq!(
        states.last().expect("a state").players.iter().filter(|p| p.id == id).count(),
        1,
        "still there"
    );
    let () = server.call(phone, ROUTE_LEAVE, &()).expect("left");
    let gone: Vec<Presence> = server.pushes(watcher, TOPIC_PRESENCE);
    assert_eq!(gone, [Presence { player_id: id, name: "ann".into(), joined: false }]);
}

#[test]
fn a_dropped_players_avatar_is_forgotten_after_the_grace_time() {
    let grace = Duration::from_millis(300);
    let mut server = arena(ArenaConfig { room_grace: grace, ..ArenaConfig::default() });
    let watcher = server.connect(Encoding::Binary);
    login(&mut server, watcher, "watcher");
    join(&mut server, watcher, "lobby");

    let ann = server.connect(Encoding::Binary);
    let (_, rest_x) = walk_and_rest(&mut server, ann, "ann", "lobby");
    server.disconnect(ann);

    // Past the grace time, in an arena that never emptied (the watcher stays): the avatar
    // that waited for ann is gone, and she starts afresh at a spawn point, not where she left.
    server.advance(grace + PERIOD);
    let ann = server.connect(Encoding::Binary);
    let again_id = login(&mut server, ann, "ann");
    let joined = join(&mut server, ann, "lobby");
    assert_ne!(x_of(&joined.players, again_id), rest_x, "the old avatar was kept past the grace time");
}

#[test]
fn a_dropped_players_avatar_is_forgotten_after_the_grace_time_in_an_arena_left_empty() {
    // Issue 19, defect 3: an arena with no members is not ticked, so the permanent lobby's
    // expiry never ran while it was empty, and joining revived the avatar however old it was.
    let grace = Duration::from_millis(300);
    let mut server = arena(ArenaConfig { room_grace: grace, ..ArenaConfig::default() });
    let ann = server.connect(Encoding::Binary);
    let (_, rest_x) = walk_and_rest(&mut server, ann, "ann", "lobby");
    server.disconnect(ann);

    server.advance(Duration::from_millis(1500));
    let ann = server.connect(Encoding::Binary);
    let again_id = login(&mut server, ann, "ann");
    let joined = join(&mut server, ann, "lobby");
    assert_eq!(joined.players.len(), 1, "{joined:?}");
    assert_ne!(x_of(&joined.players, again_id), rest_x, "the old avatar was kept past the grace time");
}

/// A server with ann and bob logged in and in the lobby, and ann's player id.
fn ann_and_bob_in_the_lobby() -> (TestServer<Arena>, TestClient, TestClient, u32) {
    let mut server = arena(ArenaConfig::default());
    let ann = server.connect(Encoding::Binary);
    let bob = server.connect(Encoding::Binary);
    let ann_id = login(&mut server, ann, "ann");
    join(&mut server, ann, "lobby");
    login(&mut server, bob, "bob");
    join(&mut server, bob, "lobby");
    (server, ann, bob, ann_id)
}

/// A version 2 session whose link is lost without a close (PROTOCOL.md 8.7 and 11): the player
/// stays in its arena, listed and moving, with no `presence` for the others; the `state`
/// pushes of the gap wait for it, every tick, and after the resume it goes on without logging
/// in again.
#[test]
fn a_dropped_session_keeps_its_player_in_the_arena_until_it_resumes() {
    let (mut server, ann, bob, ann_id) = ann_and_bob_in_the_lobby();
    let _: Moved = server.call(ann, ROUTE_MOVE, &Move { dx: 1, dy: 0 }).expect("moving");
    server.advance_ticks(1);
    let before: Vec<State> = server.pushes(ann, TOPIC_STATE);
    let _: Vec<State> = server.pushes(bob, TOPIC_STATE);
    let _: Vec<Presence> = server.pushes(bob, TOPIC_PRESENCE);
    let x0 = x_of(&before.last().expect("a state").players, ann_id);
    let last_tick = before.last().expect("a state").tick;

    server.drop_link(ann);
    server.advance_ticks(5);
    let seen_by_bob: Vec<State> = server.pushes(bob, TOPIC_STATE);
    assert_eq!(x_of(&seen_by_bob.last().expect("states").players, ann_id), x0 + 5 * SPEED, "still moving");
    assert!(server.pushes::<Presence>(bob, TOPIC_PRESENCE).is_empty(), "no presence: ann has not left");

    server.resume(ann);
    let gap: Vec<u64> = server.pushes::<State>(ann, TOPIC_STATE).iter().map(|s| s.tick).collect();
    assert_eq!(gap, (last_tick + 1..=last_tick + 5).collect::<Vec<u64>>(), "every tick of the gap, once");
    let _: Moved = server.call(ann, ROUTE_MOVE, &Move { dx: 0, dy: 0 }).expect("no login needed");
}

/// A dropped session that never resumes expires: the arena then drops its player as for any
/// disconnect (its avatar away, a `presence` for the others).
#[test]
fn a_dropped_session_that_expires_leaves_the_arena_as_a_disconnect_does() {
    let (mut server, ann, bob, ann_id) = ann_and_bob_in_the_lobby();
    let _: Vec<Presence> = server.pushes(bob, TOPIC_PRESENCE);
    server.drop_link(ann);
    server.expire(ann);
    let presence: Vec<Presence> = server.pushes(bob, TOPIC_PRESENCE);
    assert_eq!(presence.len(), 1, "{presence:?}");
    assert!(!presence[0].joined && presence[0].player_id == ann_id);
}
