//! The example game over real sockets: login, join, move, chat, echo, and its errors.

mod common;

use std::time::Duration;

use common::{Client, Frame};
use ticksock_arena::proto::*;
use ticksock_arena::{Arena, ArenaConfig};
use ticksock_server::{Config, RunningServer, Server};

fn start(arena: ArenaConfig) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        tick_hz: 60,
        close_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    Server::start(config, Arena::new(arena)).expect("server starts")
}

fn login(c: &mut Client, name: &str) -> u32 {
    let reply: LoggedIn = c.call_ok(1, ROUTE_LOGIN, &Login { name: name.into() });
    reply.player_id
}

fn code(frame: Frame) -> u16 {
    match frame {
        Frame::Error { code, .. } => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn players_join_move_and_chat() {
    let server = start(ArenaConfig::default());
    let mut ann = Client::connect(server.local_addr());
    let mut bob = Client::connect(server.local_addr());
    let ann_id = login(&mut ann, "ann");
    let bob_id = login(&mut bob, "bob");
    assert_ne!(ann_id, bob_id);

    let rooms: Vec<RoomInfo> = ann.call_ok(2, ROUTE_ROOMS, &());
    assert!(rooms.iter().any(|r| r.name == "lobby"));

    let joined: Joined = ann.call_ok(3, ROUTE_JOIN, &Join { room: "lobby".into() });
    assert_eq!(joined.players.len(), 1);
    let joined: Joined = bob.call_ok(3, ROUTE_JOIN, &Join { room: "lobby".into() });
    assert_eq!(joined.players.len(), 2);
    let start_x = joined.players.iter().find(|p| p.id == ann_id).expect("ann is there").x;
    let presence: Presence = ann.wait_push(TOPIC_PRESENCE, Duration::from_secs(2), |_: &Presence| true);
    assert_eq!((presence.player_id, presence.joined), (bob_id, true));

    // Ann walks left or right (away from the wall); Bob sees it in the state pushes.
    let dx = if start_x > ARENA_SIZE / 2 { -1 } else { 1 };
    let moved: Moved = ann.call_ok(4, ROUTE_MOVE, &Move { dx, dy: 0 });
    assert!(moved.tick > 0);
    let state: State = bob.wait_push(TOPIC_STATE, Duration::from_secs(2), |s: &State| {
        s.players.iter().any(|p| p.id == ann_id && (p.x - start_x) * i32::from(dx) >= 3 * SPEED)
    });
    assert!(state.tick >= moved.tick);

    let () = ann.call_ok(5, ROUTE_CHAT, &Chat { text: "hi bob".into() });
    let line: ChatLine = bob.wait_push(TOPIC_CHAT, Duration::from_secs(2), |_: &ChatLine| true);
    assert_eq!(line, ChatLine { player_id: ann_id, name: "ann".into(), text: "hi bob".into() });

    // Bob leaves: Ann hears of it.
    let () = bob.call_ok(6, ROUTE_LEAVE, &());
    let gone: Presence = ann.wait_push(TOPIC_PRESENCE, Duration::from_secs(2), |p: &Presence| !p.joined);
    assert_eq!(gone.player_id, bob_id);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn echo_returns_the_body_unchanged() {
    let server = start(ArenaConfig::default());
    let mut c = Client::connect(server.local_addr());
    let body: Vec<u8> = (0..32).collect();
    c.request(9, ROUTE_ECHO, &body);
    assert_eq!(c.recv_answer(), Frame::Reply { id: 9, body });
    server.shutdown().expect("clean shutdown");
}

#[test]
fn the_games_errors_carry_its_codes() {
    let server = start(ArenaConfig { capacity: 1, max_rooms: 2, ..ArenaConfig::default() });
    let mut c = Client::connect(server.local_addr());
    assert_eq!(code(c.call(1, ROUTE_MOVE, &Move { dx: 1, dy: 0 })), ERR_NOT_LOGGED_IN);
    assert_eq!(code(c.call(2, ROUTE_LOGIN, &Login { name: String::new() })), ERR_INVALID);
    assert_eq!(code(c.call(3, ROUTE_LOGIN, &Login { name: "x".repeat(MAX_NAME_LEN + 1) })), ERR_INVALID);
    login(&mut c, "cat");
    assert_eq!(code(c.call(4, ROUTE_MOVE, &Move { dx: 1, dy: 0 })), ERR_NOT_IN_ROOM);
    assert_eq!(code(c.call(5, ROUTE_CHAT, &Chat { text: "hi".into() })), ERR_NOT_IN_ROOM);
    let _: Joined = c.call_ok(6, ROUTE_JOIN, &Join { room: "lobby".into() });

    let mut d = Client::connect(server.local_addr());
    login(&mut d, "dog");
    assert_eq!(code(d.call(7, ROUTE_JOIN, &Join { room: "lobby".into() })), ERR_ROOM_FULL);
    // A second arena may be created; a third may not (max_rooms = 2).
    let _: Joined = d.call_ok(8, ROUTE_JOIN, &Join { room: "den".into() });
    let mut e = Client::connect(server.local_addr());
    login(&mut e, "eel");
    assert_eq!(code(e.call(9, ROUTE_JOIN, &Join { room: "pond".into() })), ERR_NO_SUCH_ROOM);
    server.shutdown().expect("clean shutdown");
}

fn room_names(c: &mut Client, id: u32) -> Vec<String> {
    let rooms: Vec<RoomInfo> = c.call_ok(id, ROUTE_ROOMS, &());
    rooms.into_iter().map(|r| r.name).collect()
}

#[test]
fn an_empty_arena_is_disposed_of_after_its_grace_time_and_not_before() {
    let grace = Duration::from_millis(600);
    let server = start(ArenaConfig { room_grace: grace, ..ArenaConfig::default() });
    let mut c = Client::connect(server.local_addr());
    login(&mut c, "ann");
    let _: Joined = c.call_ok(2, ROUTE_JOIN, &Join { room: "den".into() });
    let () = c.call_ok(3, ROUTE_LEAVE, &());
    let emptied = std::time::Instant::now();
    // Well within the grace time it is still listed.
    std::thread::sleep(grace / 3);
    assert!(room_names(&mut c, 4).contains(&"den".to_string()));
    assert!(emptied.elapsed() < grace, "the check ran too late to mean anything");
    // After it (plus a few ticks), it is gone; the permanent lobby stays.
    std::thread::sleep(grace + Duration::from_millis(200));
    let names = room_names(&mut c, 5);
    assert!(!names.contains(&"den".to_string()), "{names:?}");
    assert!(names.contains(&"lobby".to_string()));
    server.shutdown().expect("clean shutdown");
}

/// `ann` joins `room`, where `watcher` already is, walks a few steps and stops. Returns her
/// player id and the x where she rests, as the watcher sees it.
fn walk_and_rest(watcher: &mut Client, ann: &mut Client, room: &str) -> (u32, i32) {
    let me = login(ann, "ann");
    let joined: Joined = ann.call_ok(2, ROUTE_JOIN, &Join { room: room.into() });
    let start_x = joined.players.iter().find(|p| p.id == me).expect("ann").x;
    let dx: i8 = if start_x > ARENA_SIZE / 2 { -1 } else { 1 };
    let _: Moved = ann.call_ok(3, ROUTE_MOVE, &Move { dx, dy: 0 });
    watcher.wait_push(TOPIC_STATE, Duration::from_secs(2), |s: &State| {
        s.players.iter().any(|p| p.id == me && p.x != start_x)
    });
    let stop: Moved = ann.call_ok(4, ROUTE_MOVE, &Move { dx: 0, dy: 0 });
    // The first state after the stop took effect: where ann rests.
    let state: State =
        watcher.wait_push(TOPIC_STATE, Duration::from_secs(2), |s: &State| s.tick >= stop.tick);
    let rest_x = state.players.iter().find(|p| p.id == me).expect("ann").x;
    assert_ne!(rest_x, start_x);
    (me, rest_x)
}

#[test]
fn a_player_who_drops_comes_back_to_their_arena_and_position() {
    let server = start(ArenaConfig::default());
    let mut watcher = Client::connect(server.local_addr());
    login(&mut watcher, "watcher");
    let _: Joined = watcher.call_ok(2, ROUTE_JOIN, &Join { room: "den".into() });

    let mut ann = Client::connect(server.local_addr());
    let (_, rest_x) = walk_and_rest(&mut watcher, &mut ann, "den");

    drop(ann); // the socket closes without a goodbye
    let gone: Presence = watcher.wait_push(TOPIC_PRESENCE, Duration::from_secs(2), |p: &Presence| !p.joined);
    assert_eq!(gone.name, "ann");

    let mut ann = Client::connect(server.local_addr());
    let new_id = login(&mut ann, "ann");
    let joined: Joined = ann.call_ok(2, ROUTE_JOIN, &Join { room: "den".into() });
    let back = joined.players.iter().find(|p| p.id == new_id).expect("ann is back");
    assert_eq!(back.x, rest_x, "ann comes back where she left");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn state_goes_to_each_arena_only_and_whispers_reach_every_device() {
    let server = start(ArenaConfig::default());
    let mut red = Client::connect(server.local_addr());
    let mut blue = Client::connect(server.local_addr());
    let red_id = login(&mut red, "red");
    let blue_id = login(&mut blue, "blue");
    let _: Joined = red.call_ok(2, ROUTE_JOIN, &Join { room: "red-room".into() });
    let _: Joined = blue.call_ok(2, ROUTE_JOIN, &Join { room: "blue-room".into() });
    for _ in 0..5 {
        let s: State = red.wait_push(TOPIC_STATE, Duration::from_secs(2), |_: &State| true);
        assert!(s.players.iter().all(|p| p.id == red_id), "{s:?}");
        let s: State = blue.wait_push(TOPIC_STATE, Duration::from_secs(2), |_: &State| true);
        assert!(s.players.iter().all(|p| p.id == blue_id), "{s:?}");
    }

    // Blue on a second device: a whisper reaches both.
    let mut blue2 = Client::connect(server.local_addr());
    login(&mut blue2, "blue");
    let () = red.call_ok(3, ROUTE_WHISPER, &Whisper { to: "blue".into(), text: "psst".into() });
    for c in [&mut blue, &mut blue2] {
        let line: ChatLine = c.wait_push(TOPIC_WHISPER, Duration::from_secs(2), |_: &ChatLine| true);
        assert_eq!((line.player_id, line.text.as_str()), (red_id, "psst"));
    }
    assert_eq!(
        code(red.call(4, ROUTE_WHISPER, &Whisper { to: "nobody".into(), text: "x".into() })),
        ERR_NOT_ONLINE
    );
    server.shutdown().expect("clean shutdown");
}

#[test]
fn one_name_on_two_devices_is_one_player_in_an_arena() {
    let server = start(ArenaConfig::default());
    let mut watcher = Client::connect(server.local_addr());
    login(&mut watcher, "watcher");
    let _: Joined = watcher.call_ok(2, ROUTE_JOIN, &Join { room: "den".into() });
    let mut phone = Client::connect(server.local_addr());
    let mut laptop = Client::connect(server.local_addr());
    let id = login(&mut phone, "ann");
    assert_eq!(login(&mut laptop, "ann"), id, "the same name is the same player");

    let _: Joined = phone.call_ok(2, ROUTE_JOIN, &Join { room: "den".into() });
    let came: Presence = watcher.wait_push(TOPIC_PRESENCE, Duration::from_secs(2), |_: &Presence| true);
    assert_eq!((came.player_id, came.joined), (id, true));
    let joined: Joined = laptop.call_ok(2, ROUTE_JOIN, &Join { room: "den".into() });
    assert_eq!(joined.players.iter().filter(|p| p.id == id).count(), 1, "{joined:?}");
    // The second device entering is not news: the watcher's next presence is the player
    // leaving, once both devices have left, and not before.
    let () = laptop.call_ok(3, ROUTE_LEAVE, &());
    let state: State = watcher.wait_push(TOPIC_STATE, Duration::from_secs(2), |_: &State| true);
    assert_eq!(state.players.iter().filter(|p| p.id == id).count(), 1, "still there: {state:?}");
    let () = phone.call_ok(3, ROUTE_LEAVE, &());
    let next: Presence = watcher.wait_push(TOPIC_PRESENCE, Duration::from_secs(2), |_: &Presence| true);
    assert_eq!((next.player_id, next.joined), (id, false));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_dropped_players_avatar_is_forgotten_after_the_grace_time() {
    let grace = Duration::from_millis(300);
    let server = start(ArenaConfig { room_grace: grace, ..ArenaConfig::default() });
    let mut watcher = Client::connect(server.local_addr());
    login(&mut watcher, "watcher");
    let _: Joined = watcher.call_ok(2, ROUTE_JOIN, &Join { room: "lobby".into() });

    let mut ann = Client::connect(server.local_addr());
    let (_, rest_x) = walk_and_rest(&mut watcher, &mut ann, "lobby");
    drop(ann);
    watcher.wait_push(TOPIC_PRESENCE, Duration::from_secs(2), |p: &Presence| !p.joined);

    // Past the grace time, in an arena that never emptied (the watcher stays): the avatar
    // that waited for ann is gone, and she starts afresh at a spawn point, not where she left.
    std::thread::sleep(grace * 3);
    let mut ann = Client::connect(server.local_addr());
    let again_id = login(&mut ann, "ann");
    let joined: Joined = ann.call_ok(2, ROUTE_JOIN, &Join { room: "lobby".into() });
    let again = joined.players.iter().find(|p| p.id == again_id).expect("ann is back");
    assert_ne!(again.x, rest_x, "the old avatar was kept past the grace time: {joined:?}");
    server.shutdown().expect("clean shutdown");
}
