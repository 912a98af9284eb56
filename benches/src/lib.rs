//! Shared set-up for the criterion benches of the ticksock hot path (`benches/benches/*.rs`).
//!
//! The benches drive the server's sans-I/O logic core ([`ticksock_server::__internals::Logic`]) directly, with
//! the clock passed in, so they measure the work of the logic thread without threads, sockets
//! or timers. What lives here is only what several benches need: one criterion configuration
//! (small, so `cargo bench -p benches` stays within a few minutes on a 2-core machine), a tick
//! clock, and a way to fill an arena with logged-in players through the public message API.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use ticksock_arena::Arena;
use ticksock_arena::proto::{Join, Login, PlayerState, ROUTE_JOIN, ROUTE_LOGIN, State};
use ticksock_protocol::{Encoding, ServerFrame};
use ticksock_server::__internals::DataOpcode;
use ticksock_server::__internals::Logic;
use ticksock_server::__internals::{Batch, ToLogic};
use ticksock_server::__internals::{Tick, TickSchedule};
use ticksock_server::ConnId;

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

/// The tick period of the benches: 30 Hz, the server's default.
pub const TICK_PERIOD: Duration = Duration::from_nanos(1_000_000_000 / 30);

/// A simulated clock that yields one due [`Tick`] per call, exactly on schedule.
///
/// `Tick` values come from [`TickSchedule::poll`], as on the logic thread; the instant moves
/// forward by one period per tick, so nothing is ever late or skipped.
#[derive(Debug)]
pub struct TickClock {
    schedule: TickSchedule,
    now: Instant,
}

impl TickClock {
    /// A clock whose first tick is due one period from now.
    pub fn new() -> Self {
        let now = Instant::now();
        Self { schedule: TickSchedule::new(now + TICK_PERIOD, TICK_PERIOD), now }
    }

    /// The next tick and the instant it runs at.
    pub fn next_tick(&mut self) -> (Tick, Instant) {
        self.now += TICK_PERIOD;
        let tick = self.schedule.poll(self.now).expect("a tick is due every period");
        (tick, self.now)
    }

    /// The current instant of the clock (for messages handled between ticks).
    pub fn now(&self) -> Instant {
        self.now
    }
}

impl Default for TickClock {
    fn default() -> Self {
        Self::new()
    }
}

/// A binary request on `route` from `conn`, as the reactor hands it to the logic thread.
///
/// Panics if the game has no such route.
pub fn request<G: ticksock_server::Game>(
    logic: &Logic<G>,
    conn: ConnId,
    id: u32,
    route: &str,
    body: Bytes,
) -> ToLogic {
    let route = logic.route_table().get(route).unwrap_or_else(|| panic!("the game has no route `{route}`"));
    ToLogic::Request { conn, id, route, body, encoding: Encoding::Binary }
}

/// How many error frames a batch holds (binary frames only).
pub fn error_frames(batch: &Batch) -> usize {
    batch
        .sends()
        .filter(|(_, frame)| {
            frame.opcode == DataOpcode::Binary
                && matches!(ServerFrame::decode(frame.payload), Ok(ServerFrame::Error { .. }))
        })
        .count()
}

/// An arena game with `players` connections, each connected, logged in (as `player{i}`) and
/// joined to `room{i / per_room}`, all through [`Logic::handle_message`].
///
/// Every set-up reply is checked: an error reply panics, so a bench never measures a game
/// whose players were silently refused (a full room, say). The set-up batch is drained.
pub fn arena_with_players(players: u32, per_room: u32, clock: &TickClock) -> (Logic<Arena>, Vec<ConnId>) {
    let mut logic = Logic::new(Arena::default());
    let mut conns = Vec::with_capacity(players as usize);
    let now = clock.now();
    for i in 0..players {
        let conn = ConnId::new(i, 1);
        conns.push(conn);
        logic.handle_message(ToLogic::Connected { conn, encoding: Encoding::Binary }, now);
        let login = ticksock_protocol::encode_body(&Login { name: format!("player{i}") }).expect("encodes");
        logic.handle_message(request(&logic, conn, 1, ROUTE_LOGIN, login.into()), now);
        let join =
            ticksock_protocol::encode_body(&Join { room: format!("room{}", i / per_room) }).expect("encodes");
        logic.handle_message(request(&logic, conn, 2, ROUTE_JOIN, join.into()), now);
        if let Some(batch) = logic.poll_batch() {
            assert_eq!(error_frames(&batch), 0, "setting up player {i} got an error reply");
        }
    }
    (logic, conns)
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
pub fn bench_tick<G: ticksock_server::Game>(
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
