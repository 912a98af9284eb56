//! The arena's state by replication (PROTOCOL.md 8.9 and 14), in place of the full `state`
//! push: each player is an entity, its fields its position, player id and name; a client
//! watches its arena from its own avatar's cell, so it is sent only its neighbourhood, and
//! only what changed since the tick it acknowledged.
//!
//! The game's own model stays as it is (`ArenaRoom`'s avatars): after each tick the arena's
//! avatars are copied into the [`Replica`], which keeps only real changes (a position set
//! to the same value is no change).

use rustc_hash::FxHashMap;
use ticksock_protocol::replica::AckOutcome;
use ticksock_server::api::replica::{Cell, EntityId, Replica, ReplicaConfig};
use ticksock_server::{ConnId, Ctx};

use crate::proto::{PLAYER_FIELD_ID, PLAYER_FIELD_NAME, PLAYER_FIELD_POS, REPLICA_KIND_PLAYER};

/// How the arena replicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationSettings {
    /// The interest grid's cell, in arena units. Default 100: the 1000-unit arena is 10 by 10
    /// cells.
    pub cell: i32,
    /// How many cells around its own a player sees. Default 1: 3 by 3 cells, 300 units
    /// square, about a tenth of the arena.
    pub radius: u32,
    /// Whether each update's digest is kept for the route `replica_digest` (a debug check).
    pub digests: bool,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        Self { cell: 100, radius: 1, digests: false }
    }
}

/// One arena's avatars' entities by player name, each with the sync that last saw it.
type RoomEntities = FxHashMap<Box<str>, (EntityId, u64)>;

/// The arena's replicated world.
#[derive(Debug)]
pub(crate) struct ArenaReplica {
    settings: ReplicationSettings,
    replica: Replica,
    /// Each present avatar's entity, by arena and player name, with the sync that last saw
    /// it. Two levels, so that a tick's lookups borrow the names instead of allocating keys.
    entities: FxHashMap<Box<str>, RoomEntities>,
    sync: u64,
}

/// One avatar as the replica sees it.
pub(crate) struct AvatarView<'a> {
    pub(crate) name: &'a str,
    pub(crate) player_id: u32,
    pub(crate) x: i32,
    pub(crate) y: i32,
}

impl ArenaReplica {
    pub(crate) fn new(settings: ReplicationSettings) -> Self {
        let config = ReplicaConfig { digests: settings.digests, ..ReplicaConfig::default() };
        Self { settings, replica: Replica::new(config), entities: FxHashMap::default(), sync: 1 }
    }

    fn cell(&self, x: i32, y: i32) -> Cell {
        let size = self.settings.cell.max(1);
        Cell { x: x / size, y: y / size }
    }

    /// Copies arena `room`'s present avatars into the replica, and has its members watch it
    /// from their own avatar (`own(conn)`: its position, if it has one there).
    pub(crate) fn sync_room<'a>(
        &mut self,
        ctx: &Ctx<'_>,
        room: &str,
        avatars: impl Iterator<Item = AvatarView<'a>>,
        own: impl Fn(ConnId) -> Option<(i32, i32)>,
    ) {
        let sync = self.sync;
        let size = self.settings.cell.max(1);
        if !self.entities.contains_key(room) {
            self.entities.insert(room.into(), FxHashMap::default());
        }
        // Inserted just above when it was missing.
        let Some(in_room) = self.entities.get_mut(room) else { return };
        for a in avatars {
            let cell = Cell { x: a.x / size, y: a.y / size };
            let entity = match in_room.get_mut(a.name) {
                Some((entity, seen)) => {
                    *seen = sync;
                    *entity
                }
                None => {
                    let Ok(entity) = self.replica.spawn(REPLICA_KIND_PLAYER, room, Some(cell)) else {
                        tracing::error!("replication: entity ids exhausted; {} is not replicated", a.name);
                        continue;
                    };
                    in_room.insert(a.name.into(), (entity, sync));
                    let _ = self.replica.set(entity, PLAYER_FIELD_NAME, a.name);
                    entity
                }
            };
            // Cannot fail: the entity exists, and integers always encode.
            let _ = self.replica.set(entity, PLAYER_FIELD_ID, &a.player_id);
            let _ = self.replica.set(entity, PLAYER_FIELD_POS, &(a.x, a.y));
            let _ = self.replica.move_to(entity, Some(cell));
        }
        for conn in ctx.hub().members(room) {
            let center = own(conn).map(|(x, y)| self.cell(x, y));
            let encoding = ctx.hub().encoding(conn);
            self.replica.watch(conn, encoding, room, center, self.settings.radius);
        }
    }

    /// Ends a tick's syncing: avatars not seen in it (gone, away, or in an arena no longer
    /// ticked) are despawned, and leave every view.
    pub(crate) fn end_sync(&mut self) {
        let (sync, replica) = (self.sync, &mut self.replica);
        for in_room in self.entities.values_mut() {
            in_room.retain(|_, (entity, seen)| {
                let keep = *seen == sync;
                if !keep {
                    replica.despawn(*entity);
                }
                keep
            });
        }
        self.entities.retain(|_, in_room| !in_room.is_empty());
        self.sync += 1;
    }

    /// Sends every watcher its update for `tick`.
    pub(crate) fn flush(&mut self, ctx: &mut Ctx<'_>, tick: u64) {
        self.replica.flush(ctx, tick);
    }

    /// `conn` no longer watches (it left its arena, or went).
    pub(crate) fn forget(&mut self, conn: ConnId) {
        self.replica.unwatch(conn);
    }

    pub(crate) fn ack(&mut self, conn: ConnId, tick: u64) -> AckOutcome {
        self.replica.handle_ack(conn, tick)
    }

    pub(crate) fn digest(&self, conn: ConnId) -> Option<(u64, u64)> {
        self.replica.digest(conn)
    }
}
