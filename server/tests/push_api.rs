//! Users, groups and broadcast over real sockets, and the one-encode rule of broadcasts
//! through the test harness.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Frame};
use ticksock_server::testing::{Encoding, TestClient, TestServer};
use ticksock_server::{AppError, Config, ConnId, Ctx, Game, Router, RunningServer, Server};

/// A game that exposes the push API as routes.
#[derive(Default)]
struct Hubbub;

#[derive(serde::Serialize, serde::Deserialize)]
struct ToGroup {
    group: String,
    text: String,
    exclude_me: bool,
}

impl Game for Hubbub {
    fn routes(router: &mut Router<Self>) {
        router
            .route("ping", |_, _, _, (): ()| Ok::<_, AppError>(()))
            .route("bind", |_, ctx: &mut Ctx<'_>, caller, user: String| {
                ctx.bind_user(caller.conn, &user).map_err(|e| AppError::new(1000, e.to_string()))
            })
            .route("join", |_, ctx: &mut Ctx<'_>, caller, group: String| {
                Ok::<_, AppError>(ctx.hub_mut().join(caller.conn, &group))
            })
            .route("leave", |_, ctx: &mut Ctx<'_>, caller, group: String| {
                Ok::<_, AppError>(ctx.hub_mut().leave(caller.conn, &group))
            })
            .route("to_group", |_, ctx: &mut Ctx<'_>, caller, r: ToGroup| {
                let except = if r.exclude_me { vec![caller.conn] } else { vec![] };
                Ok::<_, AppError>(ctx.send_to_group(&r.group, "msg", &r.text, &except) as u32)
            })
            .route("to_user", |_, ctx: &mut Ctx<'_>, _, (user, text): (String, String)| {
                Ok::<_, AppError>(ctx.send_to_user(&user, "msg", &text) as u32)
            })
            .route("to_all", |_, ctx: &mut Ctx<'_>, _, text: String| {
                Ok::<_, AppError>(ctx.send_to_all("msg", &text) as u32)
            })
            .route("online", |_, ctx: &mut Ctx<'_>, _, user: String| {
                Ok::<_, AppError>((
                    ctx.hub().is_online(&user),
                    ctx.hub().user_connections(&user).count() as u32,
                ))
            })
            .route("members", |_, ctx: &mut Ctx<'_>, _, group: String| {
                Ok::<_, AppError>(ctx.hub().members(&group).map(ConnId::to_u64).collect::<Vec<u64>>())
            })
            .route("kick_user", |_, ctx: &mut Ctx<'_>, _, user: String| {
                Ok::<_, AppError>(ctx.close_user(&user, 4000, "kicked") as u32)
            });
    }
}

fn start() -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        close_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    Server::start(config, Hubbub).expect("server starts")
}

/// The pushes a client received before the answer to a fresh `ping`: since a connection's
/// frames leave in the order the logic thread made them, any push sent to it earlier comes
/// before this answer.
fn pushes_before_sync(c: &mut Client) -> Vec<String> {
    c.request_typed(999, "ping", &());
    let mut pushes = Vec::new();
    loop {
        match c.recv() {
            Frame::Push { topic, body } => {
                assert_eq!(topic, "msg");
                pushes.push(ticksock_protocol::decode_body(&body).expect("text"));
            }
            Frame::Reply { id: 999, .. } => return pushes,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn to_group(group: &str, text: &str, exclude_me: bool) -> ToGroup {
    ToGroup { group: group.into(), text: text.into(), exclude_me }
}

#[test]
fn a_group_message_reaches_its_members_and_nobody_else() {
    let server = start();
    let mut a = Client::connect(server.local_addr());
    let mut b = Client::connect(server.local_addr());
    let mut outsider = Client::connect(server.local_addr());
    assert!(a.call_ok::<_, bool>(1, "join", &"red"));
    assert!(b.call_ok::<_, bool>(1, "join", &"red"));
    assert!(outsider.call_ok::<_, bool>(1, "join", &"blue"));

    // The sender is a member: its push comes before its reply.
    a.request_typed(2, "to_group", &to_group("red", "hello red", false));
    assert!(matches!(a.recv(), Frame::Push { .. }));
    assert_eq!(
        a.recv(),
        Frame::Reply { id: 2, body: ticksock_protocol::encode_body(&2u32).expect("encode") }
    );
    assert_eq!(pushes_before_sync(&mut b), ["hello red"]);
    assert!(pushes_before_sync(&mut outsider).is_empty());

    // Excluding the sender.
    let sent: u32 = a.call_ok(3, "to_group", &to_group("red", "not for a", true));
    assert_eq!(sent, 1);
    assert!(pushes_before_sync(&mut a).is_empty());
    assert_eq!(pushes_before_sync(&mut b), ["not for a"]);

    // Everyone.
    outsider.request_typed(4, "to_all", &"all hands");
    assert!(matches!(outsider.recv(), Frame::Push { .. }));
    assert_eq!(
        outsider.recv(),
        Frame::Reply { id: 4, body: ticksock_protocol::encode_body(&3u32).expect("encode") }
    );
    for c in [&mut a, &mut b] {
        assert_eq!(pushes_before_sync(c), ["all hands"]);
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_broadcast_to_more_connections_than_a_flush_slice_reaches_them_all_unprompted() {
    // Two connections flushed per reactor turn: the other members' copies wait in the flush
    // backlog, which must drain on its own, without the members sending anything.
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        broadcast_flush_slice: 2,
        ..Config::default()
    };
    let server = Server::start(config, Hubbub).expect("server starts");
    let mut members: Vec<Client> = (0..12).map(|_| Client::connect(server.local_addr())).collect();
    for c in &mut members {
        assert!(c.call_ok::<_, bool>(1, "join", &"crowd"));
    }
    let sent: u32 = members[0].call_ok(2, "to_group", &to_group("crowd", "to all twelve", true));
    assert_eq!(sent, 11);
    let sent_at = Instant::now();
    for c in &mut members[1..] {
        match c.recv() {
            Frame::Push { topic, body } => {
                assert_eq!(topic, "msg");
                assert_eq!(ticksock_protocol::decode_body::<String>(&body).expect("text"), "to all twelve");
            }
            other => panic!("expected the push, got {other:?}"),
        }
    }
    // Turn after turn, not one slice per heartbeat sweep (1 s apart), which would take ~5 s.
    let took = sent_at.elapsed();
    assert!(took < Duration::from_secs(2), "the backlog took {took:?} to drain");
    // A reply to a connection with a push still in the backlog carries the push ahead of it.
    members[1].request_typed(3, "to_group", &to_group("crowd", "again", false));
    assert!(matches!(members[1].recv(), Frame::Push { .. }), "its own copy comes before the reply");
    assert!(matches!(members[1].recv(), Frame::Reply { id: 3, .. }));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn the_flush_backlog_lists_each_connection_once_however_often_it_is_written_to() {
    // One connection flushed per slice, so a broadcast to 100 takes 100 reactor turns to
    // write. The sender is a member and gets a reply to each call, flushed at once; calling
    // again while the backlog still holds its entry must not list it a second time.
    const MEMBERS: usize = 100;
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        broadcast_flush_slice: 1,
        ..Config::default()
    };
    let server = Server::start(config, Hubbub).expect("server starts");
    let mut members: Vec<Client> = (0..MEMBERS).map(|_| Client::connect(server.local_addr())).collect();
    for c in &mut members {
        assert!(c.call_ok::<_, bool>(1, "join", &"crowd"));
    }
    for id in 0..30u32 {
        members[0].request_typed(100 + id, "to_group", &to_group("crowd", "burst", false));
        // Its own copy, then the reply: both went out with the reply's flush.
        assert!(matches!(members[0].recv(), Frame::Push { .. }));
        assert!(matches!(members[0].recv(), Frame::Reply { .. }));
    }
    for c in &mut members[1..] {
        assert!((0..30).all(|_| matches!(c.recv(), Frame::Push { .. })), "every push arrives");
    }
    let r = server.metrics().reactor();
    assert!(r.flush_backlog_max >= 2, "the test did not fill the backlog");
    let most = r.flush_backlog_max;
    assert!(most <= MEMBERS as u64, "the backlog held {most} entries for {MEMBERS} connections");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_user_with_two_connections_gets_a_message_once_on_each() {
    let server = start();
    let mut phone = Client::connect(server.local_addr());
    let mut laptop = Client::connect(server.local_addr());
    let mut other = Client::connect(server.local_addr());
    let () = phone.call_ok(1, "bind", &"ann");
    let () = laptop.call_ok(1, "bind", &"ann");
    let () = other.call_ok(1, "bind", &"bob");
    let sent: u32 = other.call_ok(2, "to_user", &("ann", "hi ann"));
    assert_eq!(sent, 2);
    assert_eq!(pushes_before_sync(&mut phone), ["hi ann"]);
    assert_eq!(pushes_before_sync(&mut laptop), ["hi ann"]);
    assert!(pushes_before_sync(&mut other).is_empty());
    server.shutdown().expect("clean shutdown");
}

#[test]
fn online_and_member_queries_follow_closes_and_reconnects() {
    let server = start();
    let mut watcher = Client::connect(server.local_addr());
    let online = |w: &mut Client, id| -> (bool, u32) { w.call_ok(id, "online", &"ann") };
    assert_eq!(online(&mut watcher, 1), (false, 0));

    let mut first = Client::connect(server.local_addr());
    let () = first.call_ok(1, "bind", &"ann");
    assert!(first.call_ok::<_, bool>(2, "join", &"red"));
    let mut second = Client::connect(server.local_addr());
    let () = second.call_ok(1, "bind", &"ann");
    assert_eq!(online(&mut watcher, 2), (true, 2));
    assert_eq!(watcher.call_ok::<_, Vec<u64>>(3, "members", &"red"), [first.conn_id]);

    first.ws.close(None).expect("close");
    first.expect_close();
    // The server handles the close asynchronously: poll briefly.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut id = 10;
    while online(&mut watcher, id) != (true, 1) {
        assert!(Instant::now() < deadline, "first connection still counted");
        id += 1;
    }
    assert!(watcher.call_ok::<_, Vec<u64>>(id + 1, "members", &"red").is_empty());

    // Reconnect: a new connection, a new id, the same user.
    let mut again = Client::connect(server.local_addr());
    let () = again.call_ok(1, "bind", &"ann");
    assert!(again.call_ok::<_, bool>(2, "join", &"red"));
    assert_eq!(online(&mut watcher, 50), (true, 2));
    assert_eq!(watcher.call_ok::<_, Vec<u64>>(51, "members", &"red"), [again.conn_id]);

    // Closing a user closes all its connections.
    assert_eq!(watcher.call_ok::<_, u32>(52, "kick_user", &"ann"), 2);
    assert_eq!(second.expect_close(), Some(4000));
    assert_eq!(again.expect_close(), Some(4000));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_broadcast_to_many_members_is_encoded_once_and_shares_its_bytes() {
    let mut server = TestServer::new(Hubbub);
    let members: Vec<TestClient> = (0..1000).map(|_| server.connect(Encoding::Binary)).collect();
    for &member in &members {
        assert_eq!(server.call(member, "join", "crowd"), Ok(true));
    }
    let before = server.stats().encodes;
    let sent: u32 =
        server.call(members[0], "to_group", &to_group("crowd", "hello all", false)).expect("sent");
    assert_eq!(sent, 1000);
    assert_eq!(server.stats().encodes - before, 1, "one encode for 1000 recipients");

    let frames: Vec<&[u8]> = members.iter().map(|&m| server.frames(m).last().expect("the push")).collect();
    assert!(frames.iter().all(|f| f.as_ptr() == frames[0].as_ptr()), "every recipient shares one buffer");
    for member in members {
        assert_eq!(server.pushes::<String>(member, "msg"), ["hello all"]);
    }
}
