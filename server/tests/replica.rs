//! State replication in simulated time (PROTOCOL.md section 14): a model world of moving
//! players, clients that reconstruct their views with the Rust client's `Mirror` from the
//! updates `Replica::flush_with` produces, and after every update a comparison of each view
//! with the model's truth filtered by the same interest rule. Acknowledgements are delayed,
//! lost and wrong at random; clients join late and lose their link.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ticksock_client::replica::{Mirror, MirrorConfig, MirrorError};
use ticksock_protocol::Encoding;
use ticksock_protocol::replica::AckOutcome;
use ticksock_server::ConnId;
use ticksock_server::api::replica::{Cell, EntityId, Replica, ReplicaConfig};

const KIND_PLAYER: u16 = 1;
const KIND_CHEST: u16 = 2;
const POS: u8 = 0;
const NAME: u8 = 1;
const HP: u8 = 2;
const CELL: i32 = 10;
const WORLD: i32 = 100;
const RADIUS: u32 = 1;

/// A small deterministic generator (xorshift), so a failing seed can be run again.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn cell_of(pos: (i32, i32)) -> Cell {
    Cell { x: pos.0 / CELL, y: pos.1 / CELL }
}

/// The model: what the game holds, and the truth each view is checked against.
struct Player {
    entity: EntityId,
    pos: (i32, i32),
    hp: u8,
}

struct Client {
    conn: ConnId,
    /// The player whose cell the client watches from.
    me: usize,
    mirror: Mirror,
    /// Acknowledgements on their way to the server: (arrives at tick, acknowledged tick).
    acks: Vec<(u64, u64)>,
    watching: bool,
}

struct World {
    replica: Replica,
    players: Vec<Player>,
    chest: EntityId,
    /// Who may see the chest (a secret).
    chest_owner: ConnId,
    rng: Rng,
}

impl World {
    fn new(players: usize, seed: u64, config: ReplicaConfig) -> Self {
        let mut replica = Replica::new(config);
        let mut rng = Rng(seed);
        let players = (0..players)
            .map(|n| {
                let pos = (rng.below(WORLD as u64) as i32, rng.below(WORLD as u64) as i32);
                let entity = replica.spawn(KIND_PLAYER, "room", Some(cell_of(pos))).expect("an id");
                replica.set(entity, POS, &pos).expect("encodes");
                replica.set(entity, NAME, &format!("p{n}")).expect("encodes");
                replica.set(entity, HP, &100u8).expect("encodes");
                Player { entity, pos, hp: 100 }
            })
            .collect();
        let chest = replica.spawn(KIND_CHEST, "room", None).expect("an id");
        replica.set(chest, 0, &"gold").expect("encodes");
        let chest_owner = ConnId::new(0, 1);
        replica.show_only_to(chest, Some(vec![chest_owner])).expect("exists");
        Self { replica, players, chest, chest_owner, rng }
    }

    /// One tick of the game: some players move (and set their position every tick, moved or
    /// not, as a game does), a few lose health.
    fn step(&mut self) {
        for p in &mut self.players {
            if self.rng.below(3) == 0 {
                let dx = self.rng.below(7) as i32 - 3;
                let dy = self.rng.below(7) as i32 - 3;
                p.pos = ((p.pos.0 + dx).clamp(0, WORLD - 1), (p.pos.1 + dy).clamp(0, WORLD - 1));
                self.replica.move_to(p.entity, Some(cell_of(p.pos))).expect("exists");
            }
            self.replica.set(p.entity, POS, &p.pos).expect("encodes");
            if self.rng.below(50) == 0 {
                p.hp = p.hp.saturating_sub(1);
                self.replica.set(p.entity, HP, &p.hp).expect("encodes");
            }
        }
    }

    /// What `client` should see now: (id, kind, fields) of every entity in its interest.
    fn truth(&self, conn: ConnId, me: usize) -> BTreeMap<u32, (u16, Vec<Vec<u8>>)> {
        let center = cell_of(self.players[me].pos);
        let mut out = BTreeMap::new();
        for (n, p) in self.players.iter().enumerate() {
            if center.near(cell_of(p.pos), RADIUS) {
                let fields = vec![enc(&p.pos), enc(&format!("p{n}")), enc(&p.hp)];
                out.insert(p.entity.get(), (KIND_PLAYER, fields));
            }
        }
        if conn == self.chest_owner {
            out.insert(self.chest.get(), (KIND_CHEST, vec![enc(&"gold")]));
        }
        out
    }
}

fn enc<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    ticksock_protocol::encode_body(value).expect("encodes")
}

fn mirror_as_truth(mirror: &Mirror) -> BTreeMap<u32, (u16, Vec<Vec<u8>>)> {
    mirror
        .view()
        .iter()
        .flat_map(|v| v.iter())
        .map(|(id, e)| (id, (e.kind, e.fields.iter().map(|f| f.clone().unwrap_or_default()).collect())))
        .collect()
}

fn mirror() -> Mirror {
    Mirror::new(MirrorConfig { ack_interval: Duration::ZERO, ..MirrorConfig::default() })
}

/// Runs `ticks` ticks with `clients` clients; every update checked against the truth.
/// Returns the replica's stats and the bytes each client received.
fn run(
    seed: u64,
    players: usize,
    clients: usize,
    ticks: u64,
) -> (ticksock_server::api::replica::ReplicaStats, u64) {
    let config = ReplicaConfig { max_held_views: 8, digests: true, ..ReplicaConfig::default() };
    let mut world = World::new(players, seed, config);
    let mut cs: Vec<Client> = (0..clients)
        .map(|n| Client {
            conn: ConnId::new(n as u32, 1),
            me: n % players,
            mirror: mirror(),
            acks: Vec::new(),
            watching: false,
        })
        .collect();
    let t0 = Instant::now();
    let mut received = 0u64;
    for tick in 1..=ticks {
        world.step();
        for c in &mut cs {
            // Late joiners: client n starts watching at tick 2n; some drop their link and
            // come back (a new connection: a new mirror and a new watch).
            let joins = tick == 2 * u64::from(c.conn.index()) + 1;
            let rejoins = c.watching && world.rng.below(200) == 0;
            if rejoins {
                world.replica.unwatch(c.conn);
                c.mirror = mirror();
                c.acks.clear();
            }
            if joins || rejoins {
                c.watching = true;
            }
            if c.watching {
                let center = cell_of(world.players[c.me].pos);
                world.replica.watch(c.conn, Encoding::Binary, "room", Some(center), RADIUS);
            }
            // Acknowledgements that arrive now; a bad one now and then.
            let (due, later): (Vec<_>, Vec<_>) = c.acks.drain(..).partition(|(at, _)| *at <= tick);
            c.acks = later;
            for (_, acked) in due {
                let outcome = world.replica.handle_ack(c.conn, acked);
                assert_ne!(outcome, AckOutcome::Unknown, "tick {tick}: an ack of a held view ({acked})");
            }
            if c.watching && world.rng.below(20) == 0 {
                assert_eq!(world.replica.handle_ack(c.conn, tick + 1000), AckOutcome::Unknown, "never sent");
                assert_ne!(world.replica.handle_ack(c.conn, 0), AckOutcome::Accepted, "far in the past");
            }
        }
        let mut bodies = Vec::new();
        world.replica.flush_with(tick, |conn, encoding, body| {
            assert_eq!(encoding, Encoding::Binary);
            bodies.push((conn, body.to_vec()));
        });
        for (conn, body) in bodies {
            let c = cs.iter_mut().find(|c| c.conn == conn).expect("a client");
            received += body.len() as u64;
            match c.mirror.apply(&body) {
                Ok(_) => {}
                Err(MirrorError::UnknownBaseline { baseline }) => {
                    panic!("tick {tick}: baseline {baseline} not held")
                }
                Err(e) => panic!("tick {tick}: {e}"),
            }
            assert_eq!(
                mirror_as_truth(&c.mirror),
                world.truth(c.conn, c.me),
                "seed {seed} tick {tick} {conn:?}"
            );
            assert_eq!(world.replica.digest(conn), Some((tick, c.mirror.digest())), "digest at tick {tick}");
            // The acknowledgement leaves now, arrives 0 to 4 ticks later, or is lost.
            if let Some(acked) = c.mirror.poll_ack(t0) {
                let delay = world.rng.below(6);
                if delay < 5 {
                    c.acks.push((tick + delay, acked));
                }
            }
        }
    }
    (world.replica.stats(), received)
}

#[test]
fn every_view_equals_the_truth_through_lost_late_and_wrong_acks_late_joins_and_rejoins() {
    for seed in 1..=8 {
        let (stats, _) = run(seed * 7919, 60, 12, 300);
        assert!(stats.updates > 0);
        assert!(stats.full_snapshots < stats.updates / 2, "mostly deltas: {stats:?}");
    }
}

#[test]
fn deltas_carry_only_what_changed_and_enter_and_leave_across_cells() {
    let mut replica = Replica::new(ReplicaConfig::default());
    let conn = ConnId::new(1, 1);
    let a = replica.spawn(KIND_PLAYER, "room", Some(Cell { x: 0, y: 0 })).expect("an id");
    let b = replica.spawn(KIND_PLAYER, "room", Some(Cell { x: 5, y: 0 })).expect("an id");
    replica.set(a, POS, &(1, 1)).expect("encodes");
    replica.set(b, POS, &(50, 1)).expect("encodes");
    replica.watch(conn, Encoding::Binary, "room", Some(Cell { x: 0, y: 0 }), 1);
    let mut m = mirror();
    let flush = |replica: &mut Replica, m: &mut Mirror, tick: u64| {
        let mut got = None;
        replica.flush_with(tick, |_, _, body| got = Some(body.to_vec()));
        let applied = got.map(|body| m.apply(&body).expect("applies"));
        if let Some(acked) = m.poll_ack(Instant::now()) {
            assert_eq!(replica.handle_ack(conn, acked), AckOutcome::Accepted);
        }
        applied
    };

    let first = flush(&mut replica, &mut m, 1).expect("a full snapshot");
    assert!(first.full);
    assert_eq!(first.entered, [a.get()], "b is 5 cells away");

    // Nothing changed: nothing is sent. Setting the same value again is no change.
    assert!(!replica.set(a, POS, &(1, 1)).expect("encodes"));
    assert!(flush(&mut replica, &mut m, 2).is_none());

    // a moves; b comes near: b enters with all its fields, a changes only its position.
    replica.set(a, POS, &(2, 1)).expect("encodes");
    replica.move_to(b, Some(Cell { x: 1, y: 0 })).expect("exists");
    let applied = flush(&mut replica, &mut m, 3).expect("a delta");
    assert!(!applied.full);
    assert_eq!(
        (applied.entered.as_slice(), applied.changed.as_slice()),
        ([b.get()].as_slice(), [a.get()].as_slice())
    );
    let seen_a = m.view().expect("a view").get(a.get()).expect("a in sight");
    assert_eq!(seen_a.field::<(i32, i32)>(POS).expect("set").expect("decodes"), (2, 1));

    // b is despawned: it leaves.
    assert!(replica.despawn(b));
    let applied = flush(&mut replica, &mut m, 4).expect("a delta");
    assert_eq!(applied.left, [b.get()]);
    assert_eq!(m.view().expect("a view").len(), 1);
}

#[test]
fn without_acknowledgements_the_memory_per_client_stays_bounded_and_updates_are_full() {
    let config = ReplicaConfig { max_held_views: 4, ..ReplicaConfig::default() };
    let mut replica = Replica::new(config);
    let e = replica.spawn(KIND_PLAYER, "room", None).expect("an id");
    let conn = ConnId::new(1, 1);
    replica.watch(conn, Encoding::Binary, "room", None, 0);
    let mut m = mirror();
    for tick in 1..=100u64 {
        replica.set(e, POS, &(tick as i32, 0)).expect("encodes");
        replica.flush_with(tick, |_, _, body| {
            assert!(m.apply(body).expect("applies").full, "no baseline: full snapshots");
        });
        assert!(replica.held_ids() <= 4, "held {} ids", replica.held_ids());
    }
    // An acknowledgement of a view long gone is Unknown and changes nothing; one held works.
    assert_eq!(replica.handle_ack(conn, 3), AckOutcome::Unknown);
    assert_eq!(replica.handle_ack(conn, 100), AckOutcome::Accepted);
    replica.set(e, POS, &(0, 0)).expect("encodes");
    replica.flush_with(101, |_, _, body| assert!(!m.apply(body).expect("applies").full, "a delta now"));
}

#[test]
fn a_change_is_encoded_once_per_flush_however_many_clients_need_it() {
    let mut replica = Replica::new(ReplicaConfig { json: false, ..ReplicaConfig::default() });
    let entities: Vec<EntityId> =
        (0..50).map(|_| replica.spawn(KIND_PLAYER, "room", None).expect("an id")).collect();
    let conns: Vec<ConnId> = (0..500).map(|n| ConnId::new(n, 1)).collect();
    for &c in &conns {
        replica.watch(c, Encoding::Binary, "room", None, 0);
    }
    let mut mirrors: Vec<Mirror> = conns.iter().map(|_| mirror()).collect();
    for tick in 1..=5u64 {
        for (n, e) in entities.iter().enumerate() {
            replica.set(*e, POS, &(n as i32, tick as i32)).expect("encodes");
        }
        let before = replica.stats().entity_encodes;
        replica.flush_with(tick, |conn, _, body| {
            mirrors[conn.index() as usize].apply(body).expect("applies");
        });
        // Every client acknowledges every update: all share one baseline, so each entity is
        // written once per flush (full on the first, changed after).
        assert_eq!(replica.stats().entity_encodes - before, 50, "tick {tick}");
        for (n, m) in mirrors.iter_mut().enumerate() {
            let acked = m.poll_ack(Instant::now()).expect("due");
            assert_eq!(replica.handle_ack(conns[n], acked), AckOutcome::Accepted);
        }
    }
}

#[test]
fn a_secret_is_seen_only_by_its_connections() {
    let mut replica = Replica::new(ReplicaConfig::default());
    let (owner, other) = (ConnId::new(1, 1), ConnId::new(2, 1));
    let secret = replica.spawn(KIND_CHEST, "room", None).expect("an id");
    replica.set(secret, 0, &"gold").expect("encodes");
    replica.show_only_to(secret, Some(vec![owner])).expect("exists");
    for c in [owner, other] {
        replica.watch(c, Encoding::Binary, "room", None, 0);
    }
    let mut seen = BTreeMap::new();
    replica.flush_with(1, |conn, _, body| {
        let mut m = mirror();
        m.apply(body).expect("applies");
        seen.insert(conn, m.view().expect("a view").len());
    });
    assert_eq!(seen[&owner], 1);
    assert_eq!(seen[&other], 0);
}

#[test]
fn json_updates_carry_the_same_view() {
    let mut replica = Replica::new(ReplicaConfig::default());
    let e = replica.spawn(KIND_PLAYER, "room", None).expect("an id");
    replica.set(e, POS, &(3, 4)).expect("encodes");
    replica.set(e, NAME, &"ann").expect("encodes");
    let conn = ConnId::new(1, 1);
    replica.watch(conn, Encoding::Json, "room", None, 0);
    let mut text = String::new();
    replica.flush_with(1, |_, encoding, body| {
        assert_eq!(encoding, Encoding::Json);
        text = String::from_utf8(body.to_vec()).expect("UTF-8");
    });
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let expected = serde_json::json!({
        "tick": 1, "baseline": null,
        "entered": [{"id": e.get(), "kind": KIND_PLAYER, "fields": [[0, [3, 4]], [1, "ann"]]}],
        "changed": [], "left": []
    });
    assert_eq!(value, expected);
}
