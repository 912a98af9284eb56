//! The client side of state replication (`docs/PROTOCOL.md` section 14): a [`Mirror`]
//! applies the server's `replica` pushes and holds the reconstructed view; it says when to
//! acknowledge. Sans-I/O like the [`Session`](crate::Session): bodies and `now` go in, the
//! view, the changes and the tick to acknowledge come out.
//!
//! An update is a delta from a baseline tick the client acknowledged, so the mirror keeps
//! what each view a baseline may still be needs: from the latest update's baseline on, at most
//! [`MirrorConfig::max_views`]. Applying an update:
//! 1. no baseline (a full snapshot): start from no entity; else from the entities of the
//!    baseline's view (an update whose baseline the mirror does not hold is refused,
//!    [`MirrorError::UnknownBaseline`]: nothing changes, and the server sends a full snapshot
//!    once it stops holding that baseline);
//! 2. remove `left`, add `entered` with their fields, set the `changed` fields;
//! 3. keep the result as the view of the update's tick, and forget views older than the
//!    baseline (the server never goes back to them; a full snapshot keeps the older views,
//!    since an acknowledgement of one may still reach the server after it).
//!
//! What a held view needs is only *which* entities it has: a field that an update does not
//! carry did not change since the update's baseline, so its value in the baseline's view is
//! the latest one the mirror learnt (from a view at or after the baseline). The mirror
//! therefore keeps one set of fields per entity, for every held view, and per view the sorted
//! list of its entities; an update costs what it carries, not a copy of a view.
//!
//! A new server session (the Rust client's [`Event::Connected`](crate::Event::Connected), or a
//! version 2 [`Event::SessionEnded`](crate::Event::SessionEnded)) starts afresh: call
//! [`Mirror::reset`].
//!
//! Then [`Mirror::poll_ack`] says which tick to acknowledge (with the route `replica_ack`):
//! at once after a full snapshot, else at most once per [`MirrorConfig::ack_interval`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use ticksock_protocol::BodyError;
use ticksock_protocol::replica::{EntityRef, UpdateView, ViewDigest};

/// The mirror's settings.
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    /// Views kept for the server to use as baselines. Default 64: more than the server
    /// holds (32 by default), so the mirror never refuses a baseline the server may pick.
    pub max_views: usize,
    /// The least time between two acknowledgements. Default 100 ms: at 20 updates a second,
    /// one acknowledgement for every 2 updates, and a baseline at most about 100 ms plus a
    /// round trip old.
    pub ack_interval: Duration,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        Self { max_views: 64, ack_interval: Duration::from_millis(100) }
    }
}

/// One entity as the client sees it: its kind and its fields' encoded values by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorEntity {
    /// The game's kind of entity.
    pub kind: u16,
    /// Field values (body-encoded) by index; `None` for an index not set.
    pub fields: Vec<Option<Vec<u8>>>,
}

impl MirrorEntity {
    /// Field `index` decoded as `T`; `None` if it is not set.
    pub fn field<T: DeserializeOwned>(&self, index: u8) -> Option<Result<T, BodyError>> {
        let bytes = self.fields.get(usize::from(index))?.as_ref()?;
        Some(ticksock_protocol::decode_body(bytes))
    }
}

/// A view: the entities in sight, by id (borrowed from the [`Mirror`]).
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The view's entity ids, increasing.
    ids: &'a [u32],
    entities: &'a FxHashMap<u32, MirrorEntity>,
}

impl<'a> View<'a> {
    /// How many entities are in sight.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids in sight, increasing.
    pub fn ids(&self) -> &'a [u32] {
        self.ids
    }

    /// Entity `id`, if it is in sight.
    pub fn get(&self, id: u32) -> Option<&'a MirrorEntity> {
        self.ids.binary_search(&id).ok()?;
        self.entities.get(&id)
    }

    /// The entities in sight, by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &'a MirrorEntity)> + 'a {
        let entities = self.entities;
        // Every id of a held view has its entity (`Mirror::apply` keeps them together).
        self.ids.iter().filter_map(move |id| Some((*id, entities.get(id)?)))
    }

    /// The entities in sight, by increasing id, without their ids.
    pub fn values(&self) -> impl Iterator<Item = &'a MirrorEntity> + 'a {
        self.iter().map(|(_, e)| e)
    }
}

/// What an applied update changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The update's tick.
    pub tick: u64,
    /// Whether it was a full snapshot.
    pub full: bool,
    /// Entities that entered the view (relative to the view before this update).
    pub entered: Vec<u32>,
    /// Entities whose fields changed.
    pub changed: Vec<u32>,
    /// Entities that left.
    pub left: Vec<u32>,
}

/// Why an update was not applied. Nothing changed in the mirror.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The body is not an update: a server bug or another protocol version. Report it.
    #[error("not a replica update: {0}")]
    Decode(#[from] BodyError),
    /// The update is a delta from a tick whose view the mirror does not hold. Wait: the server
    /// sends a full snapshot once its own baseline for this client goes.
    #[error("no view of the baseline tick {baseline}")]
    UnknownBaseline {
        /// The update's baseline.
        baseline: u64,
    },
    /// The update is not newer than the latest one applied (a server bug): dropped.
    #[error("update of tick {tick} after tick {latest}")]
    OutOfOrder {
        /// The update's tick.
        tick: u64,
        /// The latest applied.
        latest: u64,
    },
}

/// When to acknowledge (section 14.4): the latest update's tick, at once after a full
/// snapshot (the server has no baseline for the client until then), else at most once per
/// interval. A [`Mirror`] keeps one; a client that only counts what it is sent (a load
/// generator's bot that does not rebuild the view) can use one by itself.
#[derive(Debug, Clone, Default)]
pub struct AckSchedule {
    interval: Duration,
    /// The tick to acknowledge next, once due.
    pending: Option<u64>,
    /// Whether that tick was a full snapshot (acknowledged at once).
    now: bool,
    last: Option<Instant>,
}

impl AckSchedule {
    /// At most one acknowledgement per `interval`, but at once after a full snapshot.
    pub fn new(interval: Duration) -> Self {
        Self { interval, ..Self::default() }
    }

    /// An update of `tick` was applied (`full`: a full snapshot).
    pub fn updated(&mut self, tick: u64, full: bool) {
        self.pending = Some(tick);
        self.now |= full;
    }

    /// A new connection: nothing to acknowledge.
    pub fn reset(&mut self) {
        self.pending = None;
        self.now = false;
    }

    /// The tick to acknowledge now, if one is due.
    pub fn poll(&mut self, now: Instant) -> Option<u64> {
        let tick = self.pending?;
        let due =
            self.now || self.last.is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if !due {
            return None;
        }
        self.pending = None;
        self.now = false;
        self.last = Some(now);
        Some(tick)
    }
}

/// The reconstructed view of one client.
#[derive(Debug)]
pub struct Mirror {
    config: MirrorConfig,
    /// Every entity of a held view, with the latest fields learnt (see the module doc).
    entities: FxHashMap<u32, MirrorEntity>,
    /// Each held view's entity ids (increasing), by tick, oldest first; the last is the
    /// current view.
    views: VecDeque<(u64, Vec<u32>)>,
    /// A forgotten view's list, kept for the next view (one allocation less per update).
    spare: Vec<u32>,
    acks: AckSchedule,
}

impl Default for Mirror {
    fn default() -> Self {
        Self::new(MirrorConfig::default())
    }
}

impl Mirror {
    /// An empty mirror.
    pub fn new(config: MirrorConfig) -> Self {
        Self {
            acks: AckSchedule::new(config.ack_interval),
            config,
            entities: FxHashMap::default(),
            views: VecDeque::new(),
            spare: Vec::new(),
        }
    }

    /// The current view (`None` before the first update).
    pub fn view(&self) -> Option<View<'_>> {
        self.views.back().map(|(_, ids)| View { ids, entities: &self.entities })
    }

    /// The tick of the current view (0 before the first update).
    pub fn tick(&self) -> u64 {
        self.views.back().map_or(0, |(t, _)| *t)
    }

    /// How many views are kept.
    pub fn views_held(&self) -> usize {
        self.views.len()
    }

    /// Forgets everything (a new connection starts with a full snapshot).
    pub fn reset(&mut self) {
        self.views.clear();
        self.entities.clear();
        self.acks.reset();
    }

    /// Applies the body of a `replica` push (binary encoding). Read in place: what it costs
    /// is what it carries, and a field value overwrites the one before it in its buffer.
    pub fn apply(&mut self, body: &[u8]) -> Result<Applied, MirrorError> {
        let update = UpdateView::parse(body)?;
        let latest = self.tick();
        if !self.views.is_empty() && update.tick <= latest {
            return Err(MirrorError::OutOfOrder { tick: update.tick, latest });
        }
        let full = update.baseline.is_none();
        let base: &[u32] = match update.baseline {
            None => &[],
            Some(baseline) => match self.views.iter().find(|(t, _)| *t == baseline) {
                Some((_, ids)) => ids,
                None => return Err(MirrorError::UnknownBaseline { baseline }),
            },
        };
        // The new view's ids: the baseline's, less `left`, plus `entered` (and any `changed`
        // the baseline lacked: the server never sends one, and the mirror takes it as in sight).
        let mut gone: Vec<u32> = update.left().collect();
        gone.sort_unstable();
        let mut ids = std::mem::take(&mut self.spare);
        ids.clear();
        ids.extend(base.iter().filter(|id| gone.binary_search(id).is_err()));
        let unsorted_from = ids.len();
        ids.extend(update.entered().chain(update.changed()).map(|e| e.id));
        if ids.len() > unsorted_from {
            ids.sort_unstable();
            ids.dedup();
        }
        for entity in update.entered() {
            let slot = self
                .entities
                .entry(entity.id)
                .or_insert(MirrorEntity { kind: entity.kind, fields: Vec::new() });
            // An entity enters with all its fields: nothing learnt before it left still holds.
            slot.kind = entity.kind;
            slot.fields.clear();
            set_fields(&mut slot.fields, entity);
        }
        let mut changed = Vec::with_capacity(update.changed().len());
        for entity in update.changed() {
            changed.push(entity.id);
            let slot = self
                .entities
                .entry(entity.id)
                .or_insert(MirrorEntity { kind: entity.kind, fields: Vec::new() });
            set_fields(&mut slot.fields, entity);
        }
        // Entered and left relative to the view the game saw last, not to the baseline.
        let before = self.views.back().map_or(&[][..], |(_, ids)| ids.as_slice());
        let entered: Vec<u32> = ids.iter().filter(|id| before.binary_search(id).is_err()).copied().collect();
        let left: Vec<u32> = before.iter().filter(|id| ids.binary_search(id).is_err()).copied().collect();
        // A full snapshot keeps the older views: an acknowledgement of one of them may reach
        // the server after it sent this snapshot, and make it the baseline of the next update.
        if let Some(baseline) = update.baseline {
            while self.views.front().is_some_and(|(t, _)| *t < baseline) {
                self.forget_oldest();
            }
        }
        self.views.push_back((update.tick, ids));
        while self.views.len() > self.config.max_views.max(1) {
            self.forget_oldest();
        }
        self.forget_unseen_entities();
        self.acks.updated(update.tick, full);
        Ok(Applied { tick: update.tick, full, entered, changed, left })
    }

    fn forget_oldest(&mut self) {
        if let Some((_, ids)) = self.views.pop_front() {
            self.spare = ids;
        }
    }

    /// Drops the entities no held view has, once they are as many as those of the current
    /// view (so the sweep's cost, a pass over the held views, is spread over the updates that
    /// made them).
    fn forget_unseen_entities(&mut self) {
        let current = self.views.back().map_or(0, |(_, ids)| ids.len());
        if self.entities.len() <= 2 * current + 16 {
            return;
        }
        let mut held: Vec<u32> = self.views.iter().flat_map(|(_, ids)| ids.iter().copied()).collect();
        held.sort_unstable();
        held.dedup();
        self.entities.retain(|id, _| held.binary_search(id).is_ok());
    }

    /// The tick to acknowledge now, if one is due: call `replica_ack` with it.
    pub fn poll_ack(&mut self, now: Instant) -> Option<u64> {
        self.acks.poll(now)
    }

    /// The digest of the current view (section 14.5), to compare with the server's.
    pub fn digest(&self) -> u64 {
        let mut digest = ViewDigest::default();
        for (id, entity) in self.view().iter().flat_map(View::iter) {
            digest.entity(id, entity.kind);
            for (index, value) in entity.fields.iter().enumerate() {
                // Indexes are u8: `set_fields` never grows the vector past 256.
                if let Some(value) = value {
                    digest.field(index as u8, value);
                }
            }
        }
        digest.finish()
    }
}

fn set_fields(fields: &mut Vec<Option<Vec<u8>>>, entity: EntityRef<'_>) {
    for (index, value) in entity.fields() {
        let slot = usize::from(index);
        if fields.len() <= slot {
            fields.resize(slot + 1, None);
        }
        match &mut fields[slot] {
            // The value before it is done with: its buffer takes the new one.
            Some(held) => {
                held.clear();
                held.extend_from_slice(value);
            }
            empty => *empty = Some(value.to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use ticksock_protocol::replica::{EntityUpdate, FieldUpdate, ReplicaUpdate};

    use super::*;

    fn body(
        tick: u64,
        baseline: Option<u64>,
        entered: &[(u32, u8)],
        changed: &[(u32, u8)],
        left: &[u32],
    ) -> Vec<u8> {
        let entity = |&(id, value): &(u32, u8)| EntityUpdate {
            id,
            kind: 1,
            fields: vec![FieldUpdate { index: 0, value: vec![value] }],
        };
        let update = ReplicaUpdate {
            tick,
            baseline,
            entered: entered.iter().map(entity).collect(),
            changed: changed.iter().map(entity).collect(),
            left: left.to_vec(),
        };
        ticksock_protocol::encode_body(&update).expect("encodes")
    }

    fn seen(m: &Mirror) -> Vec<(u32, u8)> {
        m.view().expect("a view").iter().map(|(id, e)| (id, e.fields[0].as_ref().expect("set")[0])).collect()
    }

    /// The case the shared fields must get right: an entity in the baseline's view that left
    /// in a later view is, for an update from that baseline, in sight with the fields it had.
    #[test]
    fn an_entity_gone_from_the_latest_view_comes_back_from_an_older_baseline() {
        let mut m = Mirror::new(MirrorConfig::default());
        m.apply(&body(1, None, &[(1, 10), (2, 20)], &[], &[])).expect("snapshot");
        m.apply(&body(2, Some(1), &[], &[(1, 11)], &[2])).expect("2 leaves");
        assert_eq!(seen(&m), [(1, 11)]);
        // The server never got the ack of 2: from 1, entity 2 is still in sight and unchanged.
        let applied = m.apply(&body(3, Some(1), &[], &[(1, 12)], &[])).expect("from 1");
        assert_eq!(seen(&m), [(1, 12), (2, 20)]);
        assert_eq!((applied.entered, applied.left), (vec![2], vec![]));
        // An update from a baseline the mirror forgot (older than 1's successors) is refused.
        m.apply(&body(4, Some(3), &[], &[], &[1])).expect("from 3");
        let err = m.apply(&body(5, Some(1), &[], &[], &[])).expect_err("1 is forgotten");
        assert!(matches!(err, MirrorError::UnknownBaseline { baseline: 1 }), "{err}");
        assert_eq!(seen(&m), [(2, 20)], "nothing changed");
    }

    #[test]
    fn entities_no_view_holds_are_forgotten_and_views_are_bounded() {
        let mut m = Mirror::new(MirrorConfig { max_views: 4, ..MirrorConfig::default() });
        m.apply(&body(1, None, &[(0, 0)], &[], &[])).expect("snapshot");
        // Each tick one entity enters and the previous one leaves; the server's baseline
        // moves on each time.
        for tick in 2..500u32 {
            let (id, gone) = (tick, tick - 1);
            let left = if gone == 1 { vec![0] } else { vec![gone] };
            m.apply(&body(u64::from(tick), Some(u64::from(tick - 1)), &[(id, 1)], &[], &left))
                .expect("applies");
            assert_eq!(m.view().expect("a view").ids(), [id]);
        }
        assert!(m.views_held() <= 4);
        assert!(m.entities.len() <= 2 + 16, "{} entities kept", m.entities.len());
        // Without acknowledgements the server sends snapshots: the views stay bounded too.
        for tick in 500..600u64 {
            m.apply(&body(tick, None, &[(7, 1)], &[], &[])).expect("snapshot");
        }
        assert_eq!(m.views_held(), 4);
    }
}
