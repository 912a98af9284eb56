//! The arena's tick at scale, in memory and the same every run: PLAYERS players (default 5000)
//! in arenas of 500, each turning to a new random direction every other tick and, with
//! replication, acknowledging its latest update every third tick (as a client 100 ms apart at
//! 30 Hz), for TICKS ticks (default 30) after they all joined. It drives the game through
//! `ticksock_server::testing::TestServer`, the logic thread's own core without threads or
//! sockets, so the tick's work is the arena's and the engine's, and nothing else's.
//!
//! ```sh
//! cargo build --release -p benches --bin arena_ticks
//! target/release/arena_ticks [PLAYERS] [TICKS] [--full]      # wall time per tick
//! valgrind --tool=callgrind --toggle-collect='*Arena*on_tick*' target/release/arena_ticks
//! ```
//!
//! The wall time printed is that of `advance_ticks`, which also copies every push into its
//! client's inbox (the harness's work, about as much as the tick's at 5000 players). Under
//! callgrind, `--toggle-collect` counts the instructions of the game's tick alone (its
//! `on_tick` and all it calls: the arena, the replica's flush, the pushes handed over; not
//! the harness's inboxes, nor joining 5000 players): a figure that does not move with the
//! machine's load, to compare two builds. `--full` runs the full-state push instead.

use std::time::Instant;

use ticksock_arena::proto::{Join, Login, Move, ROUTE_JOIN, ROUTE_LOGIN, ROUTE_MOVE, ROUTE_REPLICA_ACK};
use ticksock_arena::replication::ReplicationSettings;
use ticksock_arena::{Arena, ArenaConfig};
use ticksock_protocol::replica::{ReplicaUpdate, TOPIC_REPLICA};
use ticksock_server::testing::{Encoding, TestClient, TestServer};

const ROOM: usize = 500;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--full");
    let mut numbers = args.iter().filter_map(|a| a.parse::<usize>().ok());
    let players = numbers.next().unwrap_or(5000);
    let ticks = numbers.next().unwrap_or(30);

    let replication = (!full).then(ReplicationSettings::default);
    let config = ArenaConfig { capacity: ROOM as u32, replication, ..ArenaConfig::default() };
    let mut server = TestServer::new(Arena::new(config));
    let clients: Vec<TestClient> = (0..players)
        .map(|n| {
            let c = server.connect(Encoding::Binary);
            let name = format!("p{n}");
            let _: ticksock_arena::proto::LoggedIn =
                server.call(c, ROUTE_LOGIN, &Login { name }).unwrap_or_else(|e| panic!("login {n}: {e:?}"));
            let join = Join { room: format!("arena-{}", n / ROOM) };
            let _: ticksock_arena::proto::Joined =
                server.call(c, ROUTE_JOIN, &join).unwrap_or_else(|e| panic!("join {n}: {e:?}"));
            c
        })
        .collect();
    server.advance_ticks(1);

    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut spent = std::time::Duration::ZERO;
    let mut updates = 0usize;
    for tick in 0..ticks {
        for (n, &c) in clients.iter().enumerate() {
            if (tick + n) % 2 == 0 {
                let (dx, dy) = (next(3) as i8 - 1, next(3) as i8 - 1);
                server.send(c, ROUTE_MOVE, &Move { dx, dy });
            }
            if !full {
                let got: Vec<ReplicaUpdate> = server.pushes(c, TOPIC_REPLICA);
                updates += got.len();
                if let Some(latest) = got.last().filter(|_| (tick + n) % 3 == 0) {
                    server.send(c, ROUTE_REPLICA_ACK, &latest.tick);
                }
            }
        }
        let started = Instant::now();
        server.advance_ticks(1);
        spent += started.elapsed();
    }
    let mode = if full { "full state" } else { "replication" };
    println!(
        "arena_ticks: {players} players in arenas of {ROOM}, {mode}: {ticks} ticks, {:.2} ms per tick (wall, the harness's inboxes included); {updates} replica updates",
        spent.as_secs_f64() * 1000.0 / ticks.max(1) as f64
    );
}
