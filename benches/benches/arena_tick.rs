//! One tick of the example game, the arena, with 5000 players in 100 rooms of 50: every room
//! steps its avatars and pushes its `State` (50 players) to its 50 members, so one tick makes
//! 100 encodes and queues 5000 sends, as one `Command::SendMany` per room (100 commands).
//! Measured: `Logic::handle_tick` + `poll_batch`.
//!
//! Every player is connected, logged in and joined through the test harness, and given a
//! direction with `move` so the avatars really move; the harness then hands over the logic
//! core, which the bench measures directly. The set-up asserts the per-tick encodes and sends,
//! so a change in the game's push pattern shows up as a failure rather than as a faster bench.
//!
//! Why: the game-load target is 5000 bots at a 30 Hz tick with the server under one
//! core; a tick has 33 ms, and this is the logic thread's share of each one.

use benches::{arena_with_players, into_logic};
use criterion::Criterion;
use ticksock_arena::proto::{Move, Moved, ROUTE_MOVE};
use ticksock_server::__internals::Command;

const PLAYERS: u32 = 5000;
const PER_ROOM: u32 = 50;
const ROOMS: u64 = (PLAYERS / PER_ROOM) as u64;

fn arena_tick(c: &mut Criterion) {
    let (mut server, players) = arena_with_players(PLAYERS, PER_ROOM);
    for (i, &player) in players.iter().enumerate() {
        let (dx, dy) = ((i % 3) as i8 - 1, ((i / 3) % 3) as i8 - 1);
        let _: Moved =
            server.call(player, ROUTE_MOVE, &Move { dx, dy }).unwrap_or_else(|e| panic!("move {i}: {e}"));
    }
    let (mut logic, mut clock) = into_logic(server);

    for _ in 0..3 {
        let before = logic.stats().encodes;
        let (tick, now) = clock.next_tick();
        logic.handle_tick(tick, now);
        let batch = logic.poll_batch().expect("the tick pushes");
        assert_eq!(logic.stats().encodes - before, ROOMS, "one state encode per room");
        assert_eq!(batch.len(), ROOMS as usize, "one command per room");
        assert!(
            batch.commands().iter().all(|command| matches!(command, Command::SendMany { .. })),
            "a room's push is one SendMany"
        );
        let sends = batch.sends().count();
        assert_eq!(sends, PLAYERS as usize, "one state push per player");
    }

    benches::bench_tick(
        c,
        "arena_tick",
        "tick_5000_players_100_rooms",
        u64::from(PLAYERS),
        &mut logic,
        &mut clock,
    );
}

fn main() {
    benches::run(&[arena_tick]);
}
