//! Shared set-up for the criterion benches of the ticksock hot path (`benches/benches/*.rs`).
//!
//! The benches measure the server's sans-I/O logic core ([`ticksock_server::__internals::Logic`])
//! directly, with the clock passed in, so they measure the work of the logic thread without
//! threads, sockets or timers. They set it up through the test harness
//! ([`ticksock_server::testing`]), whose typed calls check every answer, then take the logic
//! core out of it ([`into_logic`]) so that the harness's decoding is never measured. What lives
//! here is only what several benches need: one criterion configuration (small, so
//! `cargo bench -p benches` stays within a few minutes on a 2-core machine), a tick clock, and
//! a way to fill an arena with logged-in players.
//!
//! It also holds the load tools' testable parts: [`RateSchedule`] and [`echo_wire`] (what
//! `ws_echo_load` sends and how it matches answers, plain or through the protocol).

use std::time::{Duration, Instant};

pub mod echo_wire;

use criterion::{Criterion, Throughput};
use ticksock_arena::Arena;
use ticksock_arena::proto::{Join, Joined, LoggedIn, Login, PlayerState, ROUTE_JOIN, ROUTE_LOGIN, State};
use ticksock_server::__internals::Logic;
use ticksock_server::__internals::{Tick, TickSchedule};
use ticksock_server::Game;
use ticksock_server::testing::{Encoding, TestClient, TestServer};

/// The criterion settings every bench uses: 30 samples, 1 s of warm-up, 2 s of measurement.
///
/// Small on purpose: the whole suite must finish in a few minutes on a 2-core machine that is
/// busy with other work. Command-line flags (`--sample-size`, `--measurement-time`) still win.
pub fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

/// The `main` of every bench: runs `targets` under [`config`] and criterion's command-line
/// arguments (so `cargo bench -p benches -- <filter>` works), then prints criterion's summary.
///
/// It stands in for `criterion_group!`/`criterion_main!`, whose generated public function has
/// no doc comment and so trips the workspace's `missing_docs` lint.
pub fn run(targets: &[fn(&mut Criterion)]) {
    let mut criterion = config().configure_from_args();
    for target in targets {
        target(&mut criterion);
    }
    criterion.final_summary();
}

/// A simulated clock that yields one due [`Tick`] per call, exactly on schedule.
///
/// `Tick` values come from [`TickSchedule::poll`], as on the logic thread, each at its own
/// deadline, so nothing is ever late or skipped. It carries on the schedule of the
/// [`TestServer`] a bench was set up with ([`into_logic`]).
#[derive(Debug)]
pub struct TickClock {
    schedule: TickSchedule,
    now: Instant,
}

impl TickClock {
    /// The next tick and the instant it runs at.
    pub fn next_tick(&mut self) -> (Tick, Instant) {
        self.now = self.schedule.next_deadline();
        let tick = self.schedule.poll(self.now).expect("a tick is due at its deadline");
        (tick, self.now)
    }

    /// The current instant of the clock (for messages handled between ticks).
    pub fn now(&self) -> Instant {
        self.now
    }
}

/// Ends a set-up made through the harness: the logic core it drove, for the bench to measure
/// directly (so the harness's decoding stays out of every measured loop), and a clock that
/// carries on its schedule. Frames the set-up left queued are dropped.
pub fn into_logic<G: Game>(server: TestServer<G>) -> (Logic<G>, TickClock) {
    let (logic, schedule, now) = server.into_logic();
    (logic, TickClock { schedule, now })
}

/// An arena game with `players` binary clients, each connected, logged in (as `player{i}`)
/// and joined to `room{i / per_room}` through the harness.
///
/// Every set-up call must succeed: an error reply panics, so a bench never measures a game
/// whose players were silently refused (a full room, say).
pub fn arena_with_players(players: u32, per_room: u32) -> (TestServer<Arena>, Vec<TestClient>) {
    let mut server = TestServer::new(Arena::default());
    let clients = (0..players)
        .map(|i| {
            let client = server.connect(Encoding::Binary);
            let login = Login { name: format!("player{i}") };
            let _: LoggedIn = server
                .call(client, ROUTE_LOGIN, &login)
                .unwrap_or_else(|e| panic!("logging in player {i}: {e}"));
            let join = Join { room: format!("room{}", i / per_room) };
            let _: Joined =
                server.call(client, ROUTE_JOIN, &join).unwrap_or_else(|e| panic!("player {i} joining: {e}"));
            client
        })
        .collect();
    (server, clients)
}

/// An arena `State` with `players` players, as one room pushes each tick.
pub fn state_with(players: u32) -> State {
    State {
        tick: 123_456,
        players: (0..players)
            .map(|id| PlayerState { id, x: (id * 37 % 1000) as i32, y: (id * 91 % 1000) as i32 })
            .collect(),
    }
}

/// Times one tick of `logic` (`handle_tick` plus `poll_batch`) as `group/name`, with
/// `elements` as the throughput. The batch is dropped outside the timing: in the server the
/// reactor drops it, not the logic thread.
pub fn bench_tick<G: Game>(
    c: &mut Criterion,
    group: &str,
    name: &str,
    elements: u64,
    logic: &mut Logic<G>,
    clock: &mut TickClock,
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(elements));
    g.bench_function(name, |b| {
        b.iter_with_large_drop(|| {
            let (tick, now) = clock.next_tick();
            logic.handle_tick(tick, now);
            logic.poll_batch().expect("the tick pushes")
        })
    });
    g.finish();
}

/// The send schedule of the load tools (`ws_echo_load`, `loopback_floor`) at a fixed rate:
/// message number `n` is due at `started + n / total_rate`, spread evenly over all
/// connections. Times past `end` (or too far to represent) are `end`.
#[derive(Debug, Clone, Copy)]
pub struct RateSchedule {
    started: Instant,
    end: Instant,
    total_rate: f64,
}

impl RateSchedule {
    /// `total_rate` messages a second from `started` until `end`; a rate that is not a
    /// positive finite number schedules every message at `end`.
    pub fn new(started: Instant, end: Instant, total_rate: f64) -> Self {
        Self { started, end, total_rate }
    }

    /// When message number `n` is due.
    pub fn due(&self, n: u64) -> Instant {
        if !(self.total_rate.is_finite() && self.total_rate > 0.0) {
            return self.end;
        }
        Duration::try_from_secs_f64(n as f64 / self.total_rate)
            .ok()
            .and_then(|d| self.started.checked_add(d))
            .map_or(self.end, |due| due.min(self.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spreads_messages_evenly_and_stops_at_the_end() {
        let started = Instant::now();
        let end = started + Duration::from_secs(10);
        let schedule = RateSchedule::new(started, end, 100_000.0);
        assert_eq!(schedule.due(0), started);
        assert_eq!(schedule.due(100_000), started + Duration::from_secs(1));
        assert_eq!(schedule.due(u64::MAX), end);
        assert_eq!(RateSchedule::new(started, end, 1e-300).due(1), end, "too far to represent");
        assert_eq!(RateSchedule::new(started, end, f64::NAN).due(0), end);
    }
}
