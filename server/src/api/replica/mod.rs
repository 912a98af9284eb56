//! State replication (`docs/PROTOCOL.md` section 14): the game declares entities and their
//! fields, changes them in its tick, and says who may see what; after the tick the engine
//! sends each watching client what changed in its view since the tick it acknowledged.
//!
//! ```text
//!  game: spawn / set / move_to / despawn      clients: watch (group, cell, radius)
//!             │ encoded once, stamped              │
//!             ▼                                    ▼
//!        entities + grid index ──flush(tick)──▶ per client: entered / changed / left
//!                                               since its baseline, from shared bytes
//! ```
//!
//! - **Fields** are serde values at small indexes (0 to 255) of an entity of a game-defined
//!   `kind`. [`Replica::set`] encodes a value once in each form the server keeps (bincode,
//!   and JSON unless [`ReplicaConfig::json`] is off) and stamps it only when its bytes change,
//!   so a game may set every field every tick and only real changes travel.
//! - **Interest**: an entity lives in a group (a room) and, optionally, a grid [`Cell`]; a
//!   client watches a group from a cell with a radius (or the whole group), and an entity may be
//!   shown only to some connections ([`Replica::show_only_to`], for secrets).
//! - **Deltas against acknowledgements**: a client acknowledges the ticks it applied
//!   ([`Replica::handle_ack`], the route `replica_ack`); its next update is a delta from the
//!   latest acknowledged view, which it still holds, so an update lost or replaced (a slow
//!   reader) never breaks the chain. Without an acknowledged view (a new watcher, or one whose
//!   acknowledgements stopped for [`ReplicaConfig::max_held_views`] updates) it gets a full
//!   snapshot. Memory per client: at most that many views, each a list of entity ids.
//! - **Encode once**: within a flush, an entity's full form and its "changed since version
//!   v" form are written once per form and copied into every update that needs them.
//!
//! The order of calls: the game changes entities at any time on the logic thread; at the end
//! of a tick it calls [`Replica::flush`] (or [`Replica::flush_with`] to take the bytes, as
//! tests and benches do), which closes the version those changes belong to.

mod watcher;
mod world;

use std::ops::Range;

use rustc_hash::FxHashMap;
use serde::Serialize;
use ticksock_protocol::replica::{
    AckOutcome, FieldBytes, TOPIC_REPLICA, UpdateForm, UpdateWriter, ViewDigest, write_entity,
};
use ticksock_protocol::{BodyError, Encoding};

use self::watcher::{SentView, Spare, Watcher};
pub use self::world::{Cell, EntityId};
use self::world::{Entity, Field, GroupIndex};
use super::Ctx;
use crate::ConnId;

/// Replication's settings.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// Views held per client: the acknowledged one and those sent since. Past it, the client
    /// has no baseline and gets a full snapshot. Default 32: 1.6 s of updates at 20 Hz, far
    /// more than a client that acknowledges every 100 ms needs, and at most 32 id lists per
    /// client (a client seeing 100 entities: 12.8 KiB).
    pub max_held_views: usize,
    /// Whether fields are also encoded as JSON, for clients of the JSON subprotocols. Default
    /// on; a game whose clients all speak binary turns it off and halves the encoding work.
    pub json: bool,
    /// Whether each update's digest of the client's view is kept, for
    /// [`Replica::digest`] (a debug check of clients; costs a hash per update). Default off.
    pub digests: bool,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        Self { max_held_views: 32, json: true, digests: false }
    }
}

/// Why a replication call failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The entity was despawned (or never spawned). A bug in the game's bookkeeping.
    #[error("no entity {0:?}")]
    NoSuchEntity(EntityId),
    /// 4 294 967 295 entities were spawned since the start: ids are never reused, so no more
    /// can be. Restart the server.
    #[error("entity ids are exhausted")]
    IdsExhausted,
    /// A field's value does not encode (a bug in its type); the field keeps its old value.
    #[error("the field does not encode: {0}")]
    Encode(#[from] BodyError),
    /// A connection that is not watching.
    #[error("connection {0:?} does not watch")]
    NotWatching(ConnId),
}

/// What replication has done, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Updates sent.
    pub updates: u64,
    /// Of which full snapshots.
    pub full_snapshots: u64,
    /// Bytes of update bodies sent.
    pub bytes: u64,
    /// Entity forms written into the per-flush cache (each then copied to every update that
    /// carries it).
    pub entity_encodes: u64,
    /// Updates with nothing in them, not sent.
    pub skipped: u64,
}

/// The replicated world of one game: entities, watchers, and the bytes of the updates.
#[derive(Debug)]
pub struct Replica {
    config: ReplicaConfig,
    last_id: u32,
    /// The version that changes are stamped with now; [`Replica::flush`] closes it.
    version: u64,
    entities: FxHashMap<u32, Entity>,
    groups: FxHashMap<Box<str>, GroupIndex>,
    watchers: FxHashMap<ConnId, Watcher>,
    /// How many entities are secrets: while none is, the visibility check is skipped.
    secrets: usize,
    scratch: Scratch,
    stats: ReplicaStats,
}

/// Buffers reused by every flush.
#[derive(Debug, Default)]
struct Scratch {
    visible: Vec<u32>,
    body: Vec<u8>,
    /// Entity forms written this flush, per form: the bytes, and where each one is.
    cache: [Vec<u8>; 2],
    full: [FxHashMap<u32, Range<usize>>; 2],
    partial: [FxHashMap<(u32, u64), Range<usize>>; 2],
    entered: Vec<u32>,
    changed: Vec<u32>,
    left: Vec<u32>,
    /// A value being set, in each form (compared with the value it replaces before anything
    /// is kept).
    value: Vec<u8>,
    json: Vec<u8>,
    /// Id lists for the views sent.
    spare: Spare,
}

impl Replica {
    /// An empty world.
    pub fn new(config: ReplicaConfig) -> Self {
        Self {
            config,
            last_id: 0,
            version: 1,
            entities: FxHashMap::default(),
            groups: FxHashMap::default(),
            watchers: FxHashMap::default(),
            secrets: 0,
            scratch: Scratch::default(),
            stats: ReplicaStats::default(),
        }
    }

    /// Creates an entity of `kind` in `group`, at `cell` (`None`: seen from anywhere in the
    /// group), with no fields yet.
    pub fn spawn(&mut self, kind: u16, group: &str, cell: Option<Cell>) -> Result<EntityId, ReplicaError> {
        let id = self.last_id.checked_add(1).ok_or(ReplicaError::IdsExhausted)?;
        self.last_id = id;
        self.groups.entry(group.into()).or_default().insert(id, cell);
        self.entities.insert(
            id,
            Entity { kind, fields: Vec::new(), group: group.into(), cell, only: None, changed: self.version },
        );
        Ok(EntityId(id))
    }

    /// Sets field `index` of `entity` to `value`. Returns whether it changed (a value whose
    /// encoding is the same as before is not sent again).
    pub fn set<T: Serialize + ?Sized>(
        &mut self,
        entity: EntityId,
        index: u8,
        value: &T,
    ) -> Result<bool, ReplicaError> {
        let e = self.entities.get_mut(&entity.0).ok_or(ReplicaError::NoSuchEntity(entity))?;
        // Encoded into the scratch buffers first: most sets of a moving world change the
        // value, but many (an id, a name) do not, and neither costs an allocation.
        let binary = &mut self.scratch.value;
        binary.clear();
        ticksock_protocol::encode_body_into(value, binary)?;
        let slot = usize::from(index);
        if let Some(Some(old)) = e.fields.get(slot)
            && old.value() == binary.as_slice()
        {
            return Ok(false);
        }
        let json = if self.config.json {
            let json = &mut self.scratch.json;
            json.clear();
            serde_json::to_writer(&mut *json, value).map_err(BodyError::from)?;
            Some(json.as_slice())
        } else {
            None
        };
        if e.fields.len() <= slot {
            e.fields.resize_with(slot + 1, || None);
        }
        let version = self.version;
        match &mut e.fields[slot] {
            Some(field) => {
                field.bytes.rewrite(index, binary, json);
                field.value_at = field.bytes.binary.len() - binary.len();
                field.changed = version;
            }
            empty => {
                let bytes = FieldBytes::new(index, binary, json);
                let value_at = bytes.binary.len() - binary.len();
                *empty = Some(Field { bytes, value_at, changed: version });
            }
        }
        e.changed = version;
        Ok(true)
    }

    /// Moves `entity` to `cell` (`None`: seen from anywhere in its group).
    pub fn move_to(&mut self, entity: EntityId, cell: Option<Cell>) -> Result<(), ReplicaError> {
        let e = self.entities.get_mut(&entity.0).ok_or(ReplicaError::NoSuchEntity(entity))?;
        if e.cell != cell {
            if let Some(index) = self.groups.get_mut(&e.group) {
                index.remove(entity.0, e.cell);
                index.insert(entity.0, cell);
            }
            e.cell = cell;
        }
        Ok(())
    }

    /// Shows `entity` only to `conns` (interest still applies), or to every watcher for
    /// `None`.
    pub fn show_only_to(&mut self, entity: EntityId, conns: Option<Vec<ConnId>>) -> Result<(), ReplicaError> {
        let e = self.entities.get_mut(&entity.0).ok_or(ReplicaError::NoSuchEntity(entity))?;
        self.secrets = self.secrets + usize::from(conns.is_some()) - usize::from(e.only.is_some());
        e.only = conns;
        Ok(())
    }

    /// Removes `entity`: it leaves every view at the next flush. Returns whether it existed.
    pub fn despawn(&mut self, entity: EntityId) -> bool {
        let Some(e) = self.entities.remove(&entity.0) else { return false };
        self.secrets -= usize::from(e.only.is_some());
        if let Some(index) = self.groups.get_mut(&e.group) {
            index.remove(entity.0, e.cell);
            if index.is_empty() {
                self.groups.remove(&e.group);
            }
        }
        true
    }

    /// How many entities exist.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether no entity exists.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// `conn` (speaking `encoding`) watches `group` from `center` within `radius` cells
    /// (`None`: the whole group). A connection already watching switches, and its next update
    /// says what entered and left; a new watcher's first update is a full snapshot.
    pub fn watch(
        &mut self,
        conn: ConnId,
        encoding: Encoding,
        group: &str,
        center: Option<Cell>,
        radius: u32,
    ) {
        match self.watchers.get_mut(&conn) {
            Some(w) => {
                w.encoding = encoding;
                if *w.group != *group {
                    w.group = group.into();
                }
                w.center = center;
                w.radius = radius;
            }
            None => {
                self.watchers.insert(conn, Watcher::new(encoding, group, center, radius));
            }
        }
    }

    /// Moves `conn`'s point of view to `center`.
    pub fn set_center(&mut self, conn: ConnId, center: Option<Cell>) -> Result<(), ReplicaError> {
        let w = self.watchers.get_mut(&conn).ok_or(ReplicaError::NotWatching(conn))?;
        w.center = center;
        Ok(())
    }

    /// `conn` stops watching (call it when it leaves, or disconnects): what was held for it
    /// is freed.
    pub fn unwatch(&mut self, conn: ConnId) -> bool {
        self.watchers.remove(&conn).is_some()
    }

    /// How many connections watch.
    pub fn watchers(&self) -> usize {
        self.watchers.len()
    }

    /// `conn` acknowledges the update of `tick` (the route `replica_ack`). A tick never sent
    /// to it, or no longer held, is [`AckOutcome::Unknown`]; one at or before its baseline is
    /// [`AckOutcome::Stale`]; neither changes anything. A connection that does not watch gets
    /// `Unknown`.
    pub fn handle_ack(&mut self, conn: ConnId, tick: u64) -> AckOutcome {
        let spare = &mut self.scratch.spare;
        self.watchers.get_mut(&conn).map_or(AckOutcome::Unknown, |w| w.handle_ack(tick, spare))
    }

    /// What replication has done so far.
    pub fn stats(&self) -> ReplicaStats {
        self.stats
    }

    /// The views held for all watchers, in entity ids (the per-client memory that
    /// [`ReplicaConfig::max_held_views`] bounds).
    pub fn held_ids(&self) -> usize {
        self.watchers.values().map(Watcher::held_ids).sum()
    }

    /// The tick and digest of the view `conn` holds after the last update sent to it (with
    /// [`ReplicaConfig::digests`] on): the digest a client computes over its reconstructed
    /// view (section 14.5) must be equal.
    pub fn digest(&self, conn: ConnId) -> Option<(u64, u64)> {
        let latest = self.watchers.get(&conn)?.latest()?;
        Some((latest.tick, latest.digest?))
    }

    /// Sends every watcher its update for `tick` through `ctx`, and closes the current
    /// version. Call it once at the end of a tick that should send (a game may send less often
    /// than it ticks).
    pub fn flush(&mut self, ctx: &mut Ctx<'_>, tick: u64) {
        self.flush_with(tick, |conn, _, body| ctx.push_encoded_body(conn, TOPIC_REPLICA, body));
    }

    /// [`Replica::flush`], handing each update's body (in its connection's encoding) to `send`
    /// instead.
    pub fn flush_with(&mut self, tick: u64, mut send: impl FnMut(ConnId, Encoding, &[u8])) {
        let scratch = &mut self.scratch;
        for form in 0..2 {
            scratch.cache[form].clear();
            scratch.full[form].clear();
            scratch.partial[form].clear();
        }
        let version = self.version;
        // The entities changed since a watcher's baseline, reused from watcher to watcher.
        let mut changed: Vec<(u32, &Entity)> = Vec::new();
        for (&conn, watcher) in &mut self.watchers {
            let form = match watcher.encoding {
                Encoding::Binary => UpdateForm::Binary,
                Encoding::Json => UpdateForm::Json,
            };
            if form == UpdateForm::Json && !self.config.json {
                continue;
            }
            let f = usize::from(form == UpdateForm::Json);

            // What the client may see now, sorted.
            scratch.visible.clear();
            if let Some(index) = self.groups.get(&watcher.group) {
                index.query(watcher.center, watcher.radius, &mut scratch.visible);
            }
            if self.secrets > 0 {
                scratch.visible.retain(|id| {
                    self.entities
                        .get(id)
                        .is_some_and(|e| e.only.as_ref().is_none_or(|only| only.contains(&conn)))
                });
            }
            scratch.visible.sort_unstable();
            scratch.visible.dedup();

            // Against what it acknowledged.
            let (base_tick, base_version, base) = match watcher.baseline() {
                Some(b) => (Some(b.tick), b.version, b.entities.as_slice()),
                None => (None, 0, &[][..]),
            };
            diff(&scratch.visible, base, &mut scratch.entered, &mut scratch.left, &mut scratch.changed);
            // One lookup per entity: those changed since the baseline, with their entity.
            changed.clear();
            changed.extend(scratch.changed.iter().filter_map(|id| self.entities.get(id).map(|e| (*id, e))));
            changed.retain(|(_, e)| e.changed > base_version);
            if base_tick.is_some()
                && scratch.entered.is_empty()
                && changed.is_empty()
                && scratch.left.is_empty()
            {
                self.stats.skipped += 1;
                continue;
            }

            scratch.body.clear();
            let mut writer = UpdateWriter::begin(&mut scratch.body, form, tick, base_tick);
            writer.expect_count(scratch.entered.len() as u64);
            for id in &scratch.entered {
                let Some(e) = self.entities.get(id) else { continue };
                let range = scratch.full[f].entry(*id).or_insert_with(|| {
                    self.stats.entity_encodes += 1;
                    let start = scratch.cache[f].len();
                    write_entity(&mut scratch.cache[f], form, *id, e.kind, e.present());
                    start..scratch.cache[f].len()
                });
                writer.entity_bytes(&scratch.cache[f][range.clone()]);
            }
            writer.next_section();
            writer.expect_count(changed.len() as u64);
            for &(id, e) in &changed {
                let range = scratch.partial[f].entry((id, base_version)).or_insert_with(|| {
                    self.stats.entity_encodes += 1;
                    let start = scratch.cache[f].len();
                    let (n, fields) = e.changed_after(base_version);
                    write_entity(&mut scratch.cache[f], form, id, e.kind, Counted { n, fields });
                    start..scratch.cache[f].len()
                });
                writer.entity_bytes(&scratch.cache[f][range.clone()]);
            }
            writer.next_section();
            writer.expect_count(scratch.left.len() as u64);
            for id in &scratch.left {
                writer.left(*id);
            }
            writer.finish();

            let digest = self.config.digests.then(|| digest(&self.entities, &scratch.visible));
            self.stats.updates += 1;
            self.stats.full_snapshots += u64::from(base_tick.is_none());
            self.stats.bytes += scratch.body.len() as u64;
            send(conn, watcher.encoding, &scratch.body);
            let view = SentView { tick, version, entities: scratch.spare.copy_of(&scratch.visible), digest };
            watcher.record(view, self.config.max_held_views, &mut scratch.spare);
        }
        self.version += 1;
    }
}

/// Splits the sorted `now` against the sorted `base`: in `now` only (entered), in `base` only
/// (left), in both (changed candidates).
fn diff(now: &[u32], base: &[u32], entered: &mut Vec<u32>, left: &mut Vec<u32>, both: &mut Vec<u32>) {
    entered.clear();
    left.clear();
    both.clear();
    let (mut i, mut j) = (0, 0);
    while i < now.len() || j < base.len() {
        match (now.get(i), base.get(j)) {
            (Some(&a), Some(&b)) if a == b => {
                both.push(a);
                i += 1;
                j += 1;
            }
            (Some(&a), Some(&b)) if a < b => {
                entered.push(a);
                i += 1;
            }
            (Some(&a), None) => {
                entered.push(a);
                i += 1;
            }
            (_, Some(&b)) => {
                left.push(b);
                j += 1;
            }
            (None, None) => break,
        }
    }
}

/// An iterator that knows its length (the fields changed after a version).
#[derive(Clone)]
struct Counted<I> {
    n: usize,
    fields: I,
}

impl<'a, I: Iterator<Item = &'a FieldBytes>> Iterator for Counted<I> {
    type Item = &'a FieldBytes;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.fields.next();
        self.n = self.n.saturating_sub(usize::from(next.is_some()));
        next
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.n, Some(self.n))
    }
}

impl<'a, I: Iterator<Item = &'a FieldBytes>> ExactSizeIterator for Counted<I> {}

/// The digest of a view (section 14.5), over the visible entities' current fields.
fn digest(entities: &FxHashMap<u32, Entity>, visible: &[u32]) -> u64 {
    let mut digest = ViewDigest::default();
    for id in visible {
        let Some(e) = entities.get(id) else { continue };
        digest.entity(*id, e.kind);
        for (index, field) in e.fields.iter().enumerate() {
            let Some(field) = field else { continue };
            // Indexes are u8: the fields vector never grows past 256.
            digest.field(index as u8, field.value());
        }
    }
    digest.finish()
}
