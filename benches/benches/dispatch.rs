//! Route dispatch on the logic thread: one `ToLogic::Request` through
//! `ticksock_server::__internals::Logic<Arena>::handle_message` (route lookup by id, body decode, handler,
//! reply encode, command queued), then `poll_batch()` to take the reply, as the logic thread
//! does after each drain.
//!
//! Why: this is the logic thread's share of every call. The throughput target is 2 us
//! of server CPU per call for the whole path; dispatch has to be a small fraction of that.
//! Routes measured: `echo` (raw bytes, 32-byte body) and `move` (typed, from a logged-in player
//! in an arena, the hottest route of the game). `echo_x256` hands 256 requests before one
//! `poll_batch`, as a full drain (`DRAIN_BUDGET`) does, so the per-batch cost is amortised.

use std::hint::black_box;

use benches::into_logic;
use bytes::Bytes;
use criterion::{Criterion, Throughput};
use ticksock_arena::Arena;
use ticksock_arena::proto::{
    Join, Joined, LoggedIn, Login, Move, ROUTE_ECHO, ROUTE_JOIN, ROUTE_LOGIN, ROUTE_MOVE,
};
use ticksock_server::__internals::ToLogic;
use ticksock_server::testing::{Encoding, TestServer};

fn dispatch(c: &mut Criterion) {
    // One player, logged in and in the lobby, set up through the harness.
    let mut server = TestServer::new(Arena::default());
    let player = server.connect(Encoding::Binary);
    let _: LoggedIn = server.call(player, ROUTE_LOGIN, &Login { name: "bench".into() }).expect("logged in");
    let _: Joined = server.call(player, ROUTE_JOIN, &Join { room: "lobby".into() }).expect("joined");
    let conn = player.conn();
    let (mut logic, clock) = into_logic(server);
    let now = clock.now();

    let echo = logic.route_table().get(ROUTE_ECHO).expect("arena has echo");
    let mv = logic.route_table().get(ROUTE_MOVE).expect("arena has move");
    let echo_body = Bytes::from_static(&[0xA5; 32]);
    let move_body = Bytes::from(ticksock_protocol::encode_body(&Move { dx: 1, dy: -1 }).expect("encodes"));

    // Both routes must answer with a reply, not an error, or the bench measures the wrong path.
    for (route, body) in [(echo, &echo_body), (mv, &move_body)] {
        let errors = logic.stats().errors;
        let message = ToLogic::Request { conn, id: 9, route, body: body.clone(), encoding: Encoding::Binary };
        logic.handle_message(message, now);
        let batch = logic.poll_batch().expect("answered");
        assert_eq!((batch.len(), logic.stats().errors), (1, errors), "one reply, no error");
    }

    let mut g = c.benchmark_group("dispatch");
    g.throughput(Throughput::Elements(1));
    let mut id = 0u32;
    for (name, route, body) in [("echo_32B", echo, &echo_body), ("move", mv, &move_body)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                id = id.wrapping_add(1);
                let message =
                    ToLogic::Request { conn, id, route, body: body.clone(), encoding: Encoding::Binary };
                logic.handle_message(black_box(message), now);
                logic.poll_batch().expect("one reply")
            })
        });
    }

    const BATCH: u32 = 256;
    g.throughput(Throughput::Elements(u64::from(BATCH)));
    g.bench_function("echo_32B_x256_one_poll_batch", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                id = id.wrapping_add(1);
                let message = ToLogic::Request {
                    conn,
                    id,
                    route: echo,
                    body: echo_body.clone(),
                    encoding: Encoding::Binary,
                };
                logic.handle_message(black_box(message), now);
            }
            logic.poll_batch().expect("256 replies")
        })
    });
    g.finish();
}

fn main() {
    benches::run(&[dispatch]);
}
