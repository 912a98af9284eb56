//! Replication's flush at 5000 clients (issue 17): 10 groups (arenas) of 500 entities in a
//! 1000-unit square, cells of 100, radius 1, so each client sees about 45 entities; every
//! entity moves every tick; each client acknowledges every update at once, as a client 30 ms
//! away does at 20 Hz give or take one update. Measured: one `Replica::flush_with` (the
//! encoding of every change once, and the assembly of 5000 updates from those bytes), with the
//! changes of one tick made before it (`set` of every position and `move_to`, also measured on
//! their own).
//!
//! The set-up prints the bytes per client per tick, and asserts the shape (deltas, ~45
//! entities per view) so a change in the algorithm shows up as a failure, not as a faster
//! bench.
//!
//! Two more measure what a real run looks like: `flush_5000_clients_ack_every_3` has each
//! client acknowledge every third update (the clients of this repository acknowledge at most
//! every 100 ms: about every third update at 30 Hz), at phases spread over the clients, so
//! that updates are deltas from baselines of different ages and fewer clients share an
//! entity's encoded change; `mirror_apply_64_updates` is the client's side, the Rust
//! client's `Mirror` applying one client's 64 consecutive updates of that run (the first a
//! full snapshot).

use criterion::{Criterion, Throughput};
use ticksock_client::replica::Mirror;
use ticksock_protocol::Encoding;
use ticksock_protocol::replica::{AckOutcome, ReplicaUpdate};
use ticksock_server::ConnId;
use ticksock_server::api::replica::{Cell, EntityId, Replica, ReplicaConfig};

const GROUPS: usize = 10;
const PER_GROUP: usize = 500;
const CLIENTS: usize = GROUPS * PER_GROUP;
const SIZE: i32 = 1000;
const CELL: i32 = 100;

struct World {
    replica: Replica,
    entities: Vec<(EntityId, i32, i32, i32, i32)>,
    tick: u64,
}

impl World {
    fn new() -> Self {
        // Binary clients only: JSON encoding off, as a game whose clients all speak binary.
        let mut replica = Replica::new(ReplicaConfig { json: false, ..ReplicaConfig::default() });
        let mut entities = Vec::with_capacity(CLIENTS);
        let mut seed = 0x2545_f491_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n) as i32
        };
        for n in 0..CLIENTS {
            let group = format!("arena{}", n / PER_GROUP);
            let (x, y) = (next(SIZE as u64), next(SIZE as u64));
            let e = replica.spawn(1, &group, Some(Cell { x: x / CELL, y: y / CELL })).expect("an id");
            replica.set(e, 1, &(n as u32)).expect("encodes");
            replica.set(e, 2, &format!("bot{n}")).expect("encodes");
            let (dx, dy) = (next(3) - 1, next(3) - 1);
            entities.push((e, x, y, if dx == 0 && dy == 0 { 1 } else { dx }, dy));
            replica.watch(
                ConnId::new(n as u32, 1),
                Encoding::Binary,
                &group,
                Some(Cell { x: x / CELL, y: y / CELL }),
                1,
            );
        }
        Self { replica, entities, tick: 0 }
    }

    /// One tick of movement: every entity steps 5 units, bouncing off the walls.
    fn step(&mut self) {
        for (n, (e, x, y, dx, dy)) in self.entities.iter_mut().enumerate() {
            if !(0..SIZE).contains(&(*x + *dx * 5)) {
                *dx = -*dx;
            }
            if !(0..SIZE).contains(&(*y + *dy * 5)) {
                *dy = -*dy;
            }
            *x += *dx * 5;
            *y += *dy * 5;
            let cell = Cell { x: *x / CELL, y: *y / CELL };
            self.replica.set(*e, 0, &(*x, *y)).expect("encodes");
            self.replica.move_to(*e, Some(cell)).expect("exists");
            self.replica.set_center(ConnId::new(n as u32, 1), Some(cell)).expect("watching");
        }
    }

    /// Flushes, and every client acknowledges what it got. Returns (bytes, updates, entities
    /// in updates).
    fn flush_and_ack(&mut self) -> (usize, usize, usize) {
        self.flush_and_ack_every(1, |_| {})
    }

    /// Flushes; client `n` acknowledges when `(tick + n) % every == 0` (every update when
    /// `every` is 1). `client_0` gets client 0's update. Returns (bytes, updates, entities in
    /// client 0's update).
    fn flush_and_ack_every(&mut self, every: u64, mut client_0: impl FnMut(&[u8])) -> (usize, usize, usize) {
        self.tick += 1;
        let (mut bytes, mut updates, mut seen) = (0, 0, 0);
        let mut acks = Vec::with_capacity(CLIENTS);
        let tick = self.tick;
        self.replica.flush_with(tick, |conn, _, body| {
            bytes += body.len();
            updates += 1;
            if conn.index() == 0 {
                let u: ReplicaUpdate = ticksock_protocol::decode_body(body).expect("an update");
                seen = u.entered.len() + u.changed.len();
                client_0(body);
            }
            if (tick + u64::from(conn.index())).is_multiple_of(every) {
                acks.push(conn);
            }
        });
        for conn in acks {
            assert_eq!(self.replica.handle_ack(conn, tick), AckOutcome::Accepted);
        }
        (bytes, updates, seen)
    }
}

/// `iters` ticks of `world`, each client acknowledging every `every`th update: the time
/// of the flushes alone (the step of each tick is not timed).
fn time_flushes(world: &mut World, every: u64, iters: u64) -> std::time::Duration {
    let mut spent = std::time::Duration::ZERO;
    for _ in 0..iters {
        world.step();
        let started = std::time::Instant::now();
        std::hint::black_box(world.flush_and_ack_every(every, |_| {}));
        spent += started.elapsed();
    }
    spent
}

fn replica(c: &mut Criterion) {
    let mut world = World::new();
    let (full_bytes, updates, _) = world.flush_and_ack();
    assert_eq!(updates, CLIENTS, "a first, full update each");
    let mut delta_bytes = 0;
    for _ in 0..5 {
        world.step();
        let (bytes, updates, seen) = world.flush_and_ack();
        assert_eq!(updates, CLIENTS, "everyone moves: an update each");
        assert!((20..120).contains(&seen), "a neighbourhood, not the arena: {seen}");
        delta_bytes = bytes;
    }
    let stats = world.replica.stats();
    println!(
        "replica: {CLIENTS} clients; full snapshot {} B per client, delta {} B per client per tick; {} entity forms written in {} flushes",
        full_bytes / CLIENTS,
        delta_bytes / CLIENTS,
        stats.entity_encodes,
        6
    );

    let mut g = c.benchmark_group("replica");
    g.throughput(Throughput::Elements(CLIENTS as u64));
    g.sample_size(20);
    g.bench_function("step_5000_entities", |b| b.iter(|| world.step()));
    g.bench_function("flush_5000_clients_10x500", |b| {
        b.iter_custom(|iters| time_flushes(&mut world, 1, iters))
    });

    // Acknowledgements every third update, at spread phases.
    let mut world = World::new();
    let mut bodies = Vec::new();
    world.flush_and_ack_every(3, |body| bodies.push(body.to_vec()));
    for _ in 0..63 {
        world.step();
        let (bytes, updates, seen) = world.flush_and_ack_every(3, |body| bodies.push(body.to_vec()));
        assert_eq!(updates, CLIENTS);
        assert!((20..120).contains(&seen), "a neighbourhood, not the arena: {seen}");
        delta_bytes = bytes;
    }
    println!(
        "replica, acknowledging every third update: {} B per client per tick; client 0: {} B per update on average",
        delta_bytes / CLIENTS,
        bodies.iter().map(Vec::len).sum::<usize>() / bodies.len()
    );
    g.bench_function("flush_5000_clients_ack_every_3", |b| {
        b.iter_custom(|iters| time_flushes(&mut world, 3, iters))
    });
    g.throughput(Throughput::Elements(bodies.len() as u64));
    g.bench_function("mirror_apply_64_updates", |b| {
        b.iter(|| {
            let mut mirror = Mirror::default();
            for body in &bodies {
                // The updates of one client, in order, acknowledged as the server recorded.
                mirror.apply(body).expect("applies");
            }
            std::hint::black_box(mirror.digest())
        })
    });
    g.finish();
}

fn main() {
    benches::run(&[replica]);
}
