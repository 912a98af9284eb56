//! One push queued to 5000 connections through the game API: a `Game` whose `on_tick` calls
//! `ctx.push_many(<5000 conns>, "state", &state)` with an arena `State` of 50 players, driven
//! by `Logic::handle_tick` and taken with `poll_batch`. The connections are made through the
//! test harness, which then hands over the logic core.
//!
//! Why: a broadcast must cost one encode plus a cheap per-recipient step (a shared `Bytes`
//! in a queued command), not one encode per recipient. The set-up asserts that
//! `LogicStats::encodes` grows by exactly 1 per tick, that the batch is one `Command::SendMany`
//! (the reactor clones the shared buffer per recipient, on its own thread) holding 5000
//! recipients, and that they all share one buffer, so this bench fails loudly if the push API
//! regresses to encoding, or to a command, per recipient.

use benches::{into_logic, state_with};
use criterion::Criterion;
use ticksock_arena::proto::State;
use ticksock_server::__internals::{Command, DataOpcode};
use ticksock_server::testing::{Encoding, TestClient, TestServer};
use ticksock_server::{ConnId, Ctx, Game, Router};

const RECIPIENTS: u32 = 5000;

/// A game that pushes one state to every connection it has seen connect, each tick.
struct Broadcaster {
    conns: Vec<ConnId>,
    state: State,
    queued: usize,
}

impl Game for Broadcaster {
    fn routes(_: &mut Router<Self>) {}

    fn on_connect(&mut self, _: &mut Ctx<'_>, conn: ConnId) {
        self.conns.push(conn);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        self.queued = ctx.push_many(self.conns.iter().copied(), "state", &self.state);
    }
}

fn broadcast(c: &mut Criterion) {
    let mut server = TestServer::new(Broadcaster { conns: Vec::new(), state: state_with(50), queued: 0 });
    let clients: Vec<TestClient> = (0..RECIPIENTS).map(|_| server.connect(Encoding::Binary)).collect();
    assert!(clients.iter().all(|&c| server.frames(c).next().is_none()), "connecting queues nothing");
    assert_eq!(server.game().conns.len(), RECIPIENTS as usize);
    let (mut logic, mut clock) = into_logic(server);

    // One encode per tick, one SendMany command, one shared buffer, 5000 recipients.
    for _ in 0..3 {
        let before = logic.stats().encodes;
        let (tick, now) = clock.next_tick();
        logic.handle_tick(tick, now);
        let batch = logic.poll_batch().expect("the tick pushes");
        assert_eq!(logic.stats().encodes - before, 1, "a broadcast must encode exactly once");
        assert_eq!(logic.game().queued, RECIPIENTS as usize);
        assert!(
            matches!(batch.commands(), [Command::SendMany { .. }]),
            "a broadcast is one SendMany command"
        );
        let payloads: Vec<*const u8> = batch
            .sends()
            .map(|(_, frame)| {
                assert_eq!(frame.opcode, DataOpcode::Binary, "a binary push");
                frame.payload.as_ptr()
            })
            .collect();
        assert_eq!(payloads.len(), RECIPIENTS as usize);
        assert!(payloads.windows(2).all(|w| w[0] == w[1]), "every recipient shares one buffer");
    }

    benches::bench_tick(
        c,
        "broadcast",
        "push_many_state50_to_5000",
        u64::from(RECIPIENTS),
        &mut logic,
        &mut clock,
    );
}

fn main() {
    benches::run(&[broadcast]);
}
