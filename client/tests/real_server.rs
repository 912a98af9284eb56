//! The client against a real server in this process, over loopback sockets.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Later, fast_config, pump_for, pump_until, start, start_at, url};
use ticksock_arena::proto::{
    ERR_NOT_LOGGED_IN, Join, Joined, LoggedIn, Login, Move, Moved, ROUTE_JOIN, ROUTE_LOGIN, ROUTE_MOVE, State,
};
use ticksock_client::{
    BlockingClient, CallId, CallOptions, Client, Config, Error, Event, LinkState, Outcome,
};

fn connected_client(addr: std::net::SocketAddr, config: Config) -> Client {
    let mut client = Client::new(&url(addr), config).expect("client");
    pump_until(&mut client, Duration::from_secs(5), |e| matches!(e, Event::Connected { .. }));
    client
}

fn outcome_of(events: &[Event], wanted: CallId) -> Option<&Outcome> {
    events.iter().find_map(|e| match e {
        Event::Outcome { id, outcome, .. } if *id == wanted => Some(outcome),
        _ => None,
    })
}

#[test]
fn replies_that_come_back_out_of_order_reach_their_calls() {
    let (server, _) = start();
    let mut client = connected_client(server.local_addr(), fast_config());
    // Odd calls are answered at once; even ones after 1..=5 ticks, the later-sent sooner.
    let mut want: HashMap<CallId, (u32, u32)> = HashMap::new();
    for n in 1..=40u32 {
        let (id, value) = if n % 2 == 1 {
            (client.call("double", &n), n * 2)
        } else {
            (client.call("later", &Later { ticks: u64::from(6 - n % 5), value: n + 1000 }), n + 1000)
        };
        want.insert(id.expect("call"), (n, value));
    }
    let mut order = Vec::new();
    pump_until(&mut client, Duration::from_secs(5), |e| {
        if let Event::Outcome { id, outcome, .. } = e {
            let (n, value) = want.remove(id).expect("one outcome per call, for a known id");
            assert_eq!(
                outcome.clone().decode::<u32>().expect("a reply"),
                value,
                "call {n} got another's answer"
            );
            order.push(n);
        }
        want.is_empty()
    });
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=40).collect::<Vec<_>>(), "one outcome per call");
    assert_ne!(order, sorted, "the deferred replies should have come back out of order");
    assert_eq!(client.session().pending_calls(), 0);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_call_nobody_answers_times_out_and_its_entry_is_freed() {
    let (server, _) = start();
    let mut client = connected_client(server.local_addr(), fast_config());
    let started = Instant::now();
    let id = client
        .call_with("never", &(), CallOptions::default().timeout(Duration::from_millis(150)))
        .expect("call");
    let answered = client.call("double", &21u32).expect("call");
    let events = pump_until(
        &mut client,
        Duration::from_secs(3),
        |e| matches!(e, Event::Outcome { id: done, .. } if *done == id),
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(outcome_of(&events, id), Some(&Outcome::Timeout));
    assert_eq!(outcome_of(&events, answered), Some(&Outcome::Reply(vec![42])));
    assert!(!client.session().is_pending(id));
    assert_eq!(client.session().pending_calls(), 0, "the entry is freed");
    assert_eq!(client.session().stats().timeouts, 1);
    // The connection is unaffected.
    let again = client.call("double", &2u32).expect("call");
    let events = pump_until(&mut client, Duration::from_secs(3), |e| matches!(e, Event::Outcome { .. }));
    assert_eq!(outcome_of(&events, again), Some(&Outcome::Reply(vec![4])));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn ids_wrap_around_with_one_id_held_in_flight() {
    let (server, _) = start();
    let mut client = connected_client(server.local_addr(), fast_config());
    client.session_mut().set_next_call_id(u32::MAX - 1);
    let held = client.call("never", &()).expect("call");
    assert_eq!(held, CallId(u32::MAX - 1));
    let mut calls = Vec::new();
    for n in 0..4u32 {
        calls.push((client.call("double", &n).expect("call"), n));
    }
    assert_eq!(calls.iter().map(|c| c.0).collect::<Vec<_>>(), [u32::MAX, 0, 1, 2].map(CallId));
    // While they are all in flight, going round again lands past every one of them.
    client.session_mut().set_next_call_id(u32::MAX - 1);
    let past = client.call("double", &7u32).expect("call");
    assert_eq!(past, CallId(3), "ids in flight (u32::MAX - 1 ..= 2) are skipped");
    calls.push((past, 7));
    let check = |calls: &mut Vec<(CallId, u32)>, e: &Event| {
        if let Event::Outcome { id, outcome, .. } = e {
            assert_ne!(*id, held, "the held call has no answer");
            let at = calls.iter().position(|c| c.0 == *id).expect("a known id");
            let (_, n) = calls.remove(at);
            assert_eq!(outcome.clone().decode::<u32>().expect("reply"), n * 2);
        }
        calls.is_empty()
    };
    pump_until(&mut client, Duration::from_secs(3), |e| check(&mut calls, e));
    // Round again onto the held id once the others are answered: only it is skipped.
    client.session_mut().set_next_call_id(u32::MAX - 1);
    let skipped = client.call("double", &100u32).expect("call");
    assert_eq!(skipped, CallId(u32::MAX), "the id in flight is not reused");
    calls.push((skipped, 100));
    pump_until(&mut client, Duration::from_secs(3), |e| check(&mut calls, e));
    assert!(client.session().is_pending(held));
    assert_eq!(client.session().pending_calls(), 1);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn after_a_server_restart_the_client_reconnects_and_flushes_its_queue_in_order_with_one_heartbeat() {
    let (server, log) = start();
    let addr = server.local_addr();
    let config = Config { heartbeat_interval: Duration::from_millis(50), ..fast_config() };
    let mut client = connected_client(addr, config);
    assert_eq!(client.session().heartbeat_timers(), 1);
    // A deferred call in flight when the server shuts down is answered SHUTTING_DOWN. It goes
    // first: the server handles a connection's requests in order, so once `first` is answered
    // the server holds it (sent second, it could still be unread when the shutdown starts).
    let in_flight = client.call("never", &()).expect("call");
    let first = client.call("record", &1u32).expect("call");
    pump_until(
        &mut client,
        Duration::from_secs(3),
        |e| matches!(e, Event::Outcome { id, .. } if *id == first),
    );
    assert_eq!(*log.lock().expect("log"), vec![1]);

    let stopping = std::thread::spawn(move || server.shutdown());
    let events = pump_until(&mut client, Duration::from_secs(5), |e| matches!(e, Event::Reconnecting { .. }));
    stopping.join().expect("thread").expect("clean shutdown");
    assert!(
        matches!(
            outcome_of(&events, in_flight),
            Some(Outcome::Error { code: ticksock_protocol::error_code::SHUTTING_DOWN, .. })
        ),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(e, Event::Disconnected)));
    assert_eq!(client.session().heartbeat_timers(), 0, "no timer while down");

    // Offline: calls queue up (the server is gone; reconnects fail meanwhile).
    let queued: Vec<CallId> = (2..=6u32).map(|n| client.call("record", &n).expect("queued")).collect();
    assert_eq!(client.session().queued_calls(), 5);
    pump_for(&mut client, Duration::from_millis(150));
    assert!(client.session().stats().connect_attempts >= 2, "it kept trying");
    assert_eq!(client.session().queued_calls(), 5);

    // The server comes back on the same address with a fresh game.
    let (server, log) = start_at(addr);
    let mut replies = 0;
    let events = pump_until(&mut client, Duration::from_secs(5), |e| {
        if let Event::Outcome { outcome, .. } = e {
            assert!(outcome.is_reply(), "{outcome:?}");
            replies += 1;
        }
        replies == 5
    });
    assert!(events.iter().any(|e| matches!(e, Event::Connected { .. })));
    assert_eq!(*log.lock().expect("log"), vec![2, 3, 4, 5, 6], "the queue was sent in call order");
    let answered: Vec<CallId> = events
        .iter()
        .filter_map(|e| match e {
            Event::Outcome { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(answered, queued);
    assert_eq!(client.session().stats().connections, 2);
    assert_eq!(client.session().heartbeat_timers(), 1, "exactly one heartbeat timer after the reconnect");

    // Quiet for a while: one ping per interval, as with the first connection (if timers piled
    // up on reconnect, there would be twice as many).
    let pings = client.session().stats().pings;
    pump_for(&mut client, Duration::from_millis(500));
    let sent = client.session().stats().pings - pings;
    assert!((3..=11).contains(&sent), "{sent} pings in 500 ms at a 50 ms interval");
    assert!(client.is_connected(), "the server's pongs keep the link alive");
    assert_eq!(client.session().reconnect_failures(), 0, "reset after a stable connection");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn the_offline_queue_bound_is_enforced_then_the_queue_drains_on_connect() {
    // An address with nobody listening (yet).
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port");
    let config = Config { max_queued_calls: 3, max_queued_bytes: 64, ..fast_config() };
    let mut client = Client::new(&url(addr), config).expect("client");
    client.update(Instant::now());
    for n in 0..3u32 {
        client.call("record", &n).expect("fits the queue");
    }
    let started = Instant::now();
    match client.call("record", &3u32) {
        Err(Error::QueueFull { calls: 3, max_calls: 3, .. }) => {}
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(50), "fails at once");
    pump_for(&mut client, Duration::from_millis(100));
    assert!(client.last_error().is_some(), "connects were refused");

    let (server, log) = start_at(addr);
    let mut replies = 0;
    pump_until(&mut client, Duration::from_secs(5), |e| {
        replies += usize::from(matches!(e, Event::Outcome { outcome: Outcome::Reply(_), .. }));
        replies == 3
    });
    assert_eq!(*log.lock().expect("log"), vec![0, 1, 2]);
    // Connected, the queue bound does not get in the way of a burst.
    for n in 10..20u32 {
        client.call("record", &n).expect("online");
    }
    // A body over the byte bound is refused while offline even when the count is fine.
    server.shutdown().expect("clean shutdown");
    pump_until(&mut client, Duration::from_secs(5), |e| matches!(e, Event::Reconnecting { .. }));
    let big = vec![0u8; 80];
    assert!(matches!(
        client.call_raw("record", &big, CallOptions::default()),
        Err(Error::QueueFull { max_bytes: 64, .. })
    ));
}

#[test]
fn the_blocking_client_plays_the_arena() {
    let config = ticksock_server::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..ticksock_server::Config::default()
    };
    let server = ticksock_server::Server::start(config, ticksock_arena::Arena::new(Default::default()))
        .expect("server starts");
    let mut c = BlockingClient::connect(&url(server.local_addr()), fast_config(), Duration::from_secs(5))
        .expect("connects");
    let states = Arc::new(AtomicUsize::new(0));
    let me: LoggedIn = c.call(ROUTE_LOGIN, &Login { name: "ann".into() }).expect("login");
    let seen = states.clone();
    let my_id = me.player_id;
    c.client_mut().on_push_typed(ticksock_arena::proto::TOPIC_STATE, move |state: State| {
        if state.players.iter().any(|p| p.id == my_id) {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    let joined: Joined = c.call(ROUTE_JOIN, &Join { room: "arena-test".into() }).expect("join");
    assert!(joined.players.iter().any(|p| p.id == me.player_id));
    // Moved.tick may be 0 here: the server's first tick can still be to come (PROTOCOL.md 8.6).
    let _: Moved = c.call(ROUTE_MOVE, &Move { dx: 1, dy: 0 }).expect("move");
    // Errors come back as Error::Server with the route's code.
    match c.call::<_, ()>(ROUTE_JOIN, &Join { room: String::new() }) {
        Err(Error::Server { code: ticksock_arena::proto::ERR_INVALID, .. }) => {}
        other => panic!("expected ERR_INVALID, got {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while states.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "state pushes at the tick rate");
        c.wait_event(Duration::from_millis(50));
    }
    assert_eq!(c.client().session().link_state(), LinkState::Up);
    c.close();
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_client_that_asks_for_tick_stamps_gets_moves_stamped_with_the_tick_that_shows_them() {
    let config = ticksock_server::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..ticksock_server::Config::default()
    };
    let server = ticksock_server::Server::start(config, ticksock_arena::Arena::new(Default::default()))
        .expect("server starts");
    let config = Config { tick_stamps: true, ..fast_config() };
    let mut c =
        BlockingClient::connect(&url(server.local_addr()), config, Duration::from_secs(5)).expect("connects");
    let me: LoggedIn = c.call(ROUTE_LOGIN, &Login { name: "ann".into() }).expect("login");
    let joined: Joined = c.call(ROUTE_JOIN, &Join { room: "stamps".into() }).expect("join");
    let x0 = joined.players.iter().find(|p| p.id == me.player_id).expect("in the roster").x;
    let dx: i8 = if x0 > ticksock_arena::proto::ARENA_SIZE / 2 { -1 } else { 1 };
    let states = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = states.clone();
    let my_id = me.player_id;
    c.client_mut().on_push_typed(ticksock_arena::proto::TOPIC_STATE, move |state: State| {
        if let Some(p) = state.players.iter().find(|p| p.id == my_id) {
            seen.lock().expect("not poisoned").push((state.tick, p.x));
        }
    });
    let id = c.client_mut().call(ROUTE_MOVE, &Move { dx, dy: 0 }).expect("move");
    let outcome = c.wait_outcome(id);
    let stamp = outcome.tick().expect("a stamped reply");
    assert_eq!(outcome.decode::<Moved>().expect("a reply").tick, stamp, "the stamp is Moved.tick");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !states.lock().expect("not poisoned").iter().any(|&(tick, _)| tick >= stamp) {
        assert!(Instant::now() < deadline, "a state of the stamp's tick or later");
        c.wait_event(Duration::from_millis(50));
    }
    let states = states.lock().expect("not poisoned").clone();
    let step = ticksock_arena::proto::SPEED * i32::from(dx);
    assert!(states.iter().filter(|&&(tick, _)| tick < stamp).all(|&(_, x)| x == x0), "{states:?}");
    assert_eq!(
        states.iter().find(|&&(tick, _)| tick >= stamp).map(|&(_, x)| x),
        Some(x0 + step),
        "{states:?}"
    );
    c.close();
    server.shutdown().expect("clean shutdown");
}

#[test]
fn connecting_to_nothing_fails_clearly() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port");
    let config = Config { max_attempts: Some(2), ..fast_config() };
    match BlockingClient::connect(&url(addr), config, Duration::from_secs(5)) {
        Err(Error::GaveUp { attempts: 2 }) => {}
        other => panic!("expected GaveUp, got {other:?}"),
    }
    assert!(matches!(Client::new("http://127.0.0.1:1/", Config::default()), Err(Error::Url(_))));
}

/// A one-connection WebSocket server that welcomes the client, waits for its close frame, and
/// answers it after `answer_after` (never, if `None`, while holding the socket open for 3 s).
/// Returns its address and a handle that yields the close code it received.
// The upgrade callback's `Result<Response, ErrorResponse>` is tungstenite's signature.
#[allow(clippy::result_large_err)]
fn closing_peer(
    answer_after: Option<Duration>,
) -> (std::net::SocketAddr, std::thread::JoinHandle<Option<u16>>) {
    use tungstenite::Message;
    use tungstenite::handshake::server::{Request, Response};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let peer = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        let choose_subprotocol = |_: &Request, mut response: Response| {
            let value = ticksock_protocol::SUBPROTOCOL.parse().expect("header value");
            response.headers_mut().insert("Sec-WebSocket-Protocol", value);
            Ok(response)
        };
        let mut ws = tungstenite::accept_hdr(tcp, choose_subprotocol).expect("upgrade");
        let welcome = ticksock_protocol::ServerFrame::Welcome {
            version: ticksock_protocol::PROTOCOL_VERSION,
            tick_hz: 30,
            conn_id: 1,
        };
        ws.send(Message::Binary(welcome.to_vec().into())).expect("welcome");
        loop {
            match ws.read() {
                Ok(Message::Close(frame)) => {
                    let code = frame.map(|f| u16::from(f.code));
                    match answer_after {
                        // tungstenite queued the close reply while reading; a flush sends it.
                        Some(delay) => {
                            std::thread::sleep(delay);
                            let _ = ws.flush();
                        }
                        None => std::thread::sleep(Duration::from_secs(3)),
                    }
                    return code;
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    });
    (addr, peer)
}

#[test]
fn close_waits_for_the_servers_close_frame() {
    let (addr, peer) = closing_peer(Some(Duration::from_millis(300)));
    let config = Config { close_wait: Duration::from_secs(5), ..fast_config() };
    let mut client = connected_client(addr, config);
    let started = Instant::now();
    client.close();
    let took = started.elapsed();
    assert_eq!(peer.join().expect("peer"), Some(1000), "a normal close frame reached the server");
    assert!(took >= Duration::from_millis(300), "close returned after {took:?}, before the server's answer");
    assert!(took < Duration::from_secs(5), "close waited {took:?}, past the answer");
    assert_eq!(client.session().link_state(), LinkState::Closed);
}

#[test]
fn close_gives_up_after_close_wait_when_the_server_never_answers() {
    let (addr, peer) = closing_peer(None);
    let config = Config { close_wait: Duration::from_millis(200), ..fast_config() };
    let mut client = connected_client(addr, config);
    let started = Instant::now();
    client.close();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(200), "close returned after {took:?}, before close_wait");
    assert!(took < Duration::from_secs(2), "close waited {took:?} for a server that never answers");
    assert_eq!(peer.join().expect("peer"), Some(1000));
}

/// The arena on `listen` (port 0 for any).
fn start_arena(listen: std::net::SocketAddr) -> ticksock_server::RunningServer {
    let config = ticksock_server::Config { listen, ..ticksock_server::Config::default() };
    ticksock_server::Server::start(config, ticksock_arena::Arena::new(Default::default()))
        .expect("server starts")
}

#[test]
fn after_a_restart_a_login_made_on_connected_goes_ahead_of_the_arena_calls_queued_offline() {
    let server = start_arena("127.0.0.1:0".parse().expect("addr"));
    let addr = server.local_addr();
    let mut client = Client::new(&url(addr), fast_config()).expect("client");
    // The game logs in and joins on every Connected, as the demo page does.
    let relog = |client: &mut Client| {
        client.call(ROUTE_LOGIN, &Login { name: "ann".into() }).expect("login call");
        client.call(ROUTE_JOIN, &Join { room: "arena-test".into() }).expect("join call");
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut outcomes = Vec::new();
    let pump = |client: &mut Client, want: usize, outcomes: &mut Vec<Outcome>| {
        while outcomes.len() < want {
            assert!(Instant::now() < deadline, "{} outcomes of {want}: {outcomes:?}", outcomes.len());
            client.update(Instant::now());
            while let Some(event) = client.poll_event() {
                match event {
                    Event::Connected { .. } => relog(client),
                    Event::Outcome { outcome, .. } => outcomes.push(outcome),
                    _ => {}
                }
            }
            client.wait(Duration::from_millis(10)).expect("wait");
        }
    };
    pump(&mut client, 2, &mut outcomes);
    assert!(outcomes.iter().all(Outcome::is_reply), "{outcomes:?}");

    server.shutdown().expect("clean shutdown");
    pump_until(&mut client, Duration::from_secs(5), |e| matches!(e, Event::Reconnecting { .. }));
    // Offline, the game keeps moving: the moves wait in the queue.
    for _ in 0..3 {
        client.call(ROUTE_MOVE, &Move { dx: 1, dy: 0 }).expect("queued");
    }
    let server = start_arena(addr);
    outcomes.clear();
    pump(&mut client, 5, &mut outcomes);
    let not_logged_in =
        outcomes.iter().filter(|o| matches!(o, Outcome::Error { code: ERR_NOT_LOGGED_IN, .. })).count();
    assert_eq!(not_logged_in, 0, "the queued moves went out before the login: {outcomes:?}");
    assert!(outcomes.iter().all(Outcome::is_reply), "{outcomes:?}");
    let mut outcomes = outcomes.into_iter();
    outcomes.next().expect("login").decode::<LoggedIn>().expect("logged in first");
    outcomes.next().expect("join").decode::<Joined>().expect("then joined");
    for moved in outcomes {
        // Moved.tick may be 0: a move handled before the server's first tick is first seen
        // in tick 0 (PROTOCOL.md 8.6).
        moved.decode::<Moved>().expect("then moved");
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn duration_max_waits_forever_in_the_blocking_connect_and_in_close() {
    let (server, _) = start();
    let mut c =
        BlockingClient::connect(&url(server.local_addr()), fast_config(), Duration::MAX).expect("connects");
    assert_eq!(c.call::<_, u32>("double", &4u32).expect("reply"), 8);
    c.close();
    server.shutdown().expect("clean shutdown");
    // A close that waits as long as it takes for the server's close frame.
    let (addr, peer) = closing_peer(Some(Duration::from_millis(100)));
    let mut client = connected_client(addr, Config { close_wait: Duration::MAX, ..fast_config() });
    client.close();
    assert_eq!(peer.join().expect("peer"), Some(1000));
    assert_eq!(client.session().link_state(), LinkState::Closed);
}
