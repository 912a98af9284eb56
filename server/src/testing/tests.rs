//! The harness itself, on a tiny game that uses every hook and a deferred route.

use super::*;
use crate::{AppError, Caller, Ctx, Router};

/// A game with a route of each kind and a push from each hook.
#[derive(Debug, Default)]
struct Desk {
    total: u64,
    /// Deferred `wait` calls and the ticks each still waits for.
    waiting: Vec<(Caller, u64)>,
    /// When each tick ran, as its `Ctx` said.
    tick_times: Vec<Instant>,
    gone: Vec<ConnId>,
}

impl Game for Desk {
    fn routes(router: &mut Router<Self>) {
        router
            .route("echo", |_, _, _, text: String| Ok::<_, AppError>(text))
            .route("add", |desk: &mut Desk, _, _, n: u64| {
                desk.total += n;
                Ok::<_, AppError>(desk.total)
            })
            .route("shout", |_, ctx: &mut Ctx<'_>, _, text: String| {
                Ok::<_, AppError>(ctx.send_to_all("shout", &text) as u32)
            })
            .route("kick", |_, ctx: &mut Ctx<'_>, _, conn: u64| {
                ctx.close(ConnId::from_u64(conn), 4000, "kicked");
                Ok::<_, AppError>(())
            })
            .deferred("wait", |desk: &mut Desk, _, caller, ticks: u64| {
                if ticks == 0 {
                    return Err(AppError::new(1000, "wait at least one tick"));
                }
                desk.waiting.push((caller, ticks));
                Ok(())
            });
    }

    fn on_connect(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        ctx.push(conn, "hello", &conn.to_u64());
    }

    fn on_disconnect(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.gone.push(conn);
        let others: Vec<ConnId> = ctx.hub().connections().filter(|&c| c != conn).collect();
        ctx.push_many(others, "left", &conn.to_u64());
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        self.tick_times.push(ctx.now());
        let tick = ctx.tick();
        for (caller, left) in &mut self.waiting {
            *left -= 1;
            if *left == 0 {
                ctx.reply(*caller, &tick);
            }
        }
        self.waiting.retain(|&(_, left)| left > 0);
        ctx.send_to_all("tick", &tick);
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_>) {
        ctx.send_to_all("bye", &self.total);
    }
}

const BOTH: [Encoding; 2] = [Encoding::Binary, Encoding::Json];

#[test]
fn calls_are_answered_in_both_encodings_and_leave_pushes_queued() {
    let mut server = TestServer::new(Desk::default());
    let clients = BOTH.map(|encoding| server.connect(encoding));
    for (client, encoding) in clients.into_iter().zip(BOTH) {
        assert_eq!(client.encoding(), encoding);
        assert_eq!(server.call::<_, String>(client, "echo", "hi"), Ok("hi".to_owned()), "{encoding:?}");
    }
    assert_eq!(server.call::<_, u32>(clients[0], "shout", "all"), Ok(2));
    assert_eq!(server.call::<_, u64>(clients[1], "add", &4), Ok(4));
    for client in clients {
        // The welcome push, then the shout: both still queued behind the calls.
        assert_eq!(server.frames(client).count(), 2);
        assert_eq!(server.pushes::<u64>(client, "hello"), [client.conn().to_u64()]);
        assert_eq!(server.pushes::<String>(client, "shout"), ["all"]);
        assert_eq!(server.frames(client).count(), 0, "taken");
    }
    assert_eq!(server.stats().requests, 4);
    assert_eq!(server.hub().connections().count(), 2);
}

#[test]
fn a_json_client_gets_json_text_frames() {
    let mut server = TestServer::new(Desk::default());
    let json = server.connect(Encoding::Json);
    let frame = server.frames(json).next().expect("the hello push");
    assert_eq!(
        frame,
        format!(r#"{{"type":"push","topic":"hello","body":{}}}"#, json.conn().to_u64()).as_bytes()
    );
}

#[test]
fn an_unknown_route_or_a_bad_body_is_answered_with_the_servers_codes() {
    let mut server = TestServer::new(Desk::default());
    for encoding in BOTH {
        let client = server.connect(encoding);
        let unknown = server.call::<_, ()>(client, "nope", &()).expect_err("no such route");
        assert_eq!((unknown.code, unknown.message.as_str()), (error_code::UNKNOWN_ROUTE, "no route `nope`"));
        let bad = server.call::<_, u64>(client, "add", "not a number").expect_err("a string for a u64");
        assert_eq!(bad.code, error_code::BAD_BODY, "{encoding:?}: {bad}");
    }
}

#[test]
fn a_deferred_call_is_answered_on_the_tick_it_waits_for() {
    for encoding in BOTH {
        let mut server = TestServer::new(Desk::default());
        let client = server.connect(encoding);
        let id = server.send(client, "wait", &2u64);
        assert_eq!(server.answer::<u64>(client, id), None, "not yet");
        server.advance_ticks(1);
        assert_eq!(server.answer::<u64>(client, id), None, "one tick is not enough");
        server.advance_ticks(1);
        assert_eq!(server.answer::<u64>(client, id), Some(Ok(1)), "answered in tick 1: {encoding:?}");
        assert_eq!(server.answer::<u64>(client, id), None, "an answer is taken once");
        // A deferred route's refusal is answered at once, so `call` takes it.
        assert_eq!(server.call::<_, u64>(client, "wait", &0u64).map_err(|e| e.code), Err(1000));
        assert_eq!(server.pushes::<u64>(client, "tick"), [0, 1]);
    }
}

#[test]
fn ticks_run_at_their_deadlines_and_calls_see_the_simulated_clock() {
    let mut server = TestServer::with_tick_hz(Desk::default(), 20);
    let start = server.now();
    let period = Duration::from_millis(50);
    server.advance(period * 2 + period / 2);
    assert_eq!(server.game().tick_times, [start + period, start + period * 2]);
    assert_eq!(server.now(), start + period * 2 + period / 2, "the clock stops where it was sent");
    assert_eq!((server.ticks_run(), server.tick()), (2, 1));
    server.advance_ticks(1);
    assert_eq!(server.now(), start + period * 3, "the next tick runs at its own deadline");
    server.advance(period / 2);
    assert_eq!(server.ticks_run(), 3, "half a period: no tick due");
    assert_eq!(server.stats().skipped_ticks, 0);
}

#[test]
fn a_client_the_game_closes_gets_nothing_more_and_is_disconnected() {
    let mut server = TestServer::new(Desk::default());
    let (ann, bob) = (server.connect(Encoding::Binary), server.connect(Encoding::Json));
    assert_eq!(server.call::<_, ()>(ann, "kick", &bob.conn().to_u64()), Ok(()));
    assert_eq!(server.closed(bob), Some(4000));
    assert_eq!(server.closed(ann), None);
    assert_eq!(server.game().gone, [bob.conn()], "its on_disconnect ran");
    assert_eq!(server.pushes::<u64>(ann, "left"), [bob.conn().to_u64()]);
    server.advance_ticks(1);
    assert_eq!(server.pushes::<u64>(ann, "tick"), [0]);
    // What it got before the close stays readable; nothing after it arrives.
    assert_eq!(server.pushes::<u64>(bob, "hello"), [bob.conn().to_u64()]);
    assert_eq!(server.frames(bob).count(), 0);
}

#[test]
fn a_disconnect_runs_on_disconnect_and_the_others_hear_of_it() {
    let mut server = TestServer::new(Desk::default());
    let (ann, bob) = (server.connect(Encoding::Binary), server.connect(Encoding::Binary));
    server.disconnect(ann);
    assert_eq!(server.game().gone, [ann.conn()]);
    assert_eq!(server.pushes::<u64>(bob, "left"), [ann.conn().to_u64()]);
    assert_eq!(server.closed(ann), None, "it left; nobody closed it");
    assert_eq!(server.hub().connections().collect::<Vec<_>>(), [bob.conn()]);
}

#[test]
fn shutdown_fails_deferred_calls_says_goodbye_and_closes_everyone() {
    let mut server = TestServer::new(Desk::default());
    let (ann, bob) = (server.connect(Encoding::Binary), server.connect(Encoding::Json));
    assert_eq!(server.call::<_, u64>(bob, "add", &7), Ok(7));
    let id = server.send(ann, "wait", &100u64);
    server.shutdown();
    let failed = server.answer::<u64>(ann, id).expect("answered").expect_err("failed");
    assert_eq!(failed.code, error_code::SHUTTING_DOWN);
    for client in [ann, bob] {
        assert_eq!(server.pushes::<u64>(client, "bye"), [7]);
        assert_eq!(server.closed(client), Some(1001));
    }
    assert!(server.game().gone.is_empty(), "no hook runs after on_shutdown");
}

#[test]
fn a_push_to_many_is_encoded_once_per_encoding_and_shares_its_bytes() {
    let mut server = TestServer::new(Desk::default());
    let binary: Vec<TestClient> = (0..3).map(|_| server.connect(Encoding::Binary)).collect();
    let json: Vec<TestClient> = (0..2).map(|_| server.connect(Encoding::Json)).collect();
    for &client in binary.iter().chain(&json) {
        server.pushes::<u64>(client, "hello");
    }
    let before = server.stats().encodes;
    server.advance_ticks(1);
    assert_eq!(server.stats().encodes - before, 2, "one encode per encoding");
    let buffer =
        |server: &TestServer<Desk>, c: TestClient| server.frames(c).next().expect("the tick push").as_ptr();
    assert!(binary.iter().all(|&c| buffer(&server, c) == buffer(&server, binary[0])));
    assert!(json.iter().all(|&c| buffer(&server, c) == buffer(&server, json[0])));
    assert_ne!(buffer(&server, binary[0]), buffer(&server, json[0]));
}

#[test]
#[should_panic(expected = "did not answer at once")]
fn calling_a_deferred_route_without_its_answer_is_a_clear_panic() {
    let mut server = TestServer::new(Desk::default());
    let client = server.connect(Encoding::Binary);
    let _ = server.call::<_, u64>(client, "wait", &1u64);
}

#[test]
#[should_panic(expected = "does not decode as alloc::string::String")]
fn a_reply_of_another_type_is_a_clear_panic() {
    let mut server = TestServer::new(Desk::default());
    let client = server.connect(Encoding::Json);
    let _ = server.call::<_, String>(client, "add", &1u64);
}

#[test]
#[should_panic(expected = "no longer connected (close code Some(4000))")]
fn calling_from_a_closed_client_is_a_clear_panic() {
    let mut server = TestServer::new(Desk::default());
    let client = server.connect(Encoding::Binary);
    // The close goes out ahead of the reply, which is dropped with everything after it.
    server.send(client, "kick", &client.conn().to_u64());
    let _ = server.call::<_, String>(client, "echo", "still there?");
}

#[test]
fn a_client_that_asked_for_stamps_gets_each_reply_stamped_with_the_next_tick_and_others_do_not() {
    for encoding in BOTH {
        let mut server = TestServer::new(Desk::default());
        let stamped = server.connect_with_tick_stamps(encoding);
        let plain = server.connect(encoding);
        assert!(server.hub().tick_stamps(stamped.conn()) && !server.hub().tick_stamps(plain.conn()));
        // Before the first tick, what a request changes is first seen by tick 0.
        assert_eq!(server.call_stamped::<_, u64>(stamped, "add", &1u64), Ok((Some(0), 1)), "{encoding:?}");
        server.advance_ticks(3);
        assert_eq!(server.tick(), 2);
        assert_eq!(server.call_stamped::<_, u64>(stamped, "add", &1u64), Ok((Some(3), 2)));
        assert_eq!(server.call_stamped::<_, u64>(plain, "add", &1u64), Ok((None, 3)));
        // An error carries no tick, stamped client or not.
        let refused = server.call_stamped::<_, u64>(stamped, "wait", &0u64).expect_err("zero ticks");
        assert_eq!(refused.code, 1000);
        // A deferred reply made in tick T's `on_tick` is stamped T + 1: tick T has begun.
        let id = server.send(stamped, "wait", &1u64);
        server.advance_ticks(1);
        assert_eq!(server.answer_stamped::<u64>(stamped, id), Some(Ok((Some(4), 3))));
    }
}
