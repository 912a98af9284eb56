//! One push queued to 5000 connections through the game API: a `Game` whose `on_tick` calls
//! `ctx.push_many(<5000 conns>, "state", &state)` with an arena `State` of 50 players, driven
//! by `Logic::handle_tick` and taken with `poll_batch`.
//!
//! Why: a broadcast must cost one encode plus a cheap per-recipient step (a shared `Bytes`
//! in a queued command), not one encode per recipient. The set-up asserts that
//! `LogicStats::encodes` grows by exactly 1 per tick, that the batch is one `Command::SendMany`
//! (the reactor clones the shared buffer per recipient, on its own thread) holding 5000
//! recipients, and that they all share one buffer, so this bench fails loudly if the push API
//! regresses to encoding, or to a command, per recipient.

use benches::{TickClock, state_with};
use criterion::Criterion;
use ticksock_arena::proto::State;
use ticksock_protocol::Encoding;
use ticksock_server::__internals::DataOpcode;
use ticksock_server::__internals::Logic;
use ticksock_server::__internals::{Command, ToLogic};
use ticksock_server::{ConnId, Ctx, Game, Router};

const RECIPIENTS: u32 = 5000;

/// A game that pushes one state to every connection it knows, each tick.
struct Broadcaster {
    conns: Vec<ConnId>,
    state: State,
    queued: usize,
}

impl Game for Broadcaster {
    fn routes(_: &mut Router<Self>) {}

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        self.queued = ctx.push_many(self.conns.iter().copied(), "state", &self.state);
    }
}

fn broadcast(c: &mut Criterion) {
    let mut clock = TickClock::new();
    let conns: Vec<ConnId> = (0..RECIPIENTS).map(|i| ConnId::new(i, 1)).collect();
    let mut logic = Logic::new(Broadcaster { conns: conns.clone(), state: state_with(50), queued: 0 });
    for &conn in &conns {
        logic.handle_message(ToLogic::Connected { conn, encoding: Encoding::Binary }, clock.now());
    }
    assert!(logic.poll_batch().is_none(), "connecting queues nothing");

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
