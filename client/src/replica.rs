//! The client side of state replication (`docs/PROTOCOL.md` section 14): a [`Mirror`]
//! applies the server's `replica` pushes and holds the reconstructed view; it says when to
//! acknowledge. Sans-I/O like the [`Session`](crate::Session): bodies and `now` go in, the
//! view, the changes and the tick to acknowledge come out.
//!
//! An update is a delta from a baseline tick the client acknowledged, so the mirror keeps the
//! views of the ticks the server may still use as a baseline: from the latest update's
//! baseline on, at most [`MirrorConfig::max_views`]. Applying an update:
//! 1. no baseline (a full snapshot): start from nothing; else start from the view of the
//!    baseline tick (an update whose baseline the mirror does not hold is refused,
//!    [`MirrorError::UnknownBaseline`]: nothing changes, and the server sends a full snapshot
//!    once it stops holding that baseline);
//! 2. remove `left`, add `entered` with their fields, set the `changed` fields;
//! 3. keep the result as the view of the update's tick, and forget views older than the
//!    baseline (the server never goes back to them; a full snapshot keeps the older views,
//!    since an acknowledgement of one may still reach the server after it).
//!
//! A new server session (the Rust client's [`Event::Connected`](crate::Event::Connected), or a
//! version 2 [`Event::SessionEnded`](crate::Event::SessionEnded)) starts afresh: call
//! [`Mirror::reset`].
//!
//! Then [`Mirror::poll_ack`] says which tick to acknowledge (with the route `replica_ack`):
//! at once after a full snapshot, else at most once per [`MirrorConfig::ack_interval`].

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use ticksock_protocol::BodyError;
use ticksock_protocol::replica::{ReplicaUpdate, ViewDigest};

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

/// A view: the entities in sight, by id.
pub type View = BTreeMap<u32, MirrorEntity>;

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

/// The reconstructed view of one client.
#[derive(Debug, Default)]
pub struct Mirror {
    config: MirrorConfig,
    /// Views by tick, oldest first; the last is the current one.
    views: VecDeque<(u64, View)>,
    /// The tick to acknowledge next, once due.
    ack_pending: Option<u64>,
    /// Whether that tick was a full snapshot (acknowledged at once).
    ack_now: bool,
    last_ack: Option<Instant>,
}

impl Mirror {
    /// An empty mirror.
    pub fn new(config: MirrorConfig) -> Self {
        Self { config, ..Self::default() }
    }

    /// The current view (empty before the first update).
    pub fn view(&self) -> Option<&View> {
        self.views.back().map(|(_, v)| v)
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
        self.ack_pending = None;
        self.ack_now = false;
    }

    /// Applies the body of a `replica` push (binary encoding).
    pub fn apply(&mut self, body: &[u8]) -> Result<Applied, MirrorError> {
        let update: ReplicaUpdate = ticksock_protocol::decode_body(body)?;
        let latest = self.tick();
        if !self.views.is_empty() && update.tick <= latest {
            return Err(MirrorError::OutOfOrder { tick: update.tick, latest });
        }
        let full = update.baseline.is_none();
        let mut view = match update.baseline {
            None => View::new(),
            Some(baseline) => match self.views.iter().find(|(t, _)| *t == baseline) {
                Some((_, v)) => v.clone(),
                None => return Err(MirrorError::UnknownBaseline { baseline }),
            },
        };
        let before: Vec<u32> = self.view().map(|v| v.keys().copied().collect()).unwrap_or_default();
        for id in &update.left {
            view.remove(id);
        }
        let mut changed = Vec::with_capacity(update.changed.len());
        for entity in update.entered {
            let mut fields = Vec::new();
            set_fields(&mut fields, entity.fields);
            view.insert(entity.id, MirrorEntity { kind: entity.kind, fields });
        }
        for entity in update.changed {
            changed.push(entity.id);
            let slot =
                view.entry(entity.id).or_insert(MirrorEntity { kind: entity.kind, fields: Vec::new() });
            set_fields(&mut slot.fields, entity.fields);
        }
        // Entered and left relative to the view the game saw last, not to the baseline.
        let entered: Vec<u32> = view.keys().filter(|id| before.binary_search(id).is_err()).copied().collect();
        let left: Vec<u32> = before.iter().filter(|id| !view.contains_key(id)).copied().collect();
        // A full snapshot keeps the older views: an acknowledgement of one of them may reach
        // the server after it sent this snapshot, and make it the baseline of the next update.
        if let Some(baseline) = update.baseline {
            self.views.retain(|(t, _)| *t >= baseline);
        }
        self.views.push_back((update.tick, view));
        while self.views.len() > self.config.max_views.max(1) {
            self.views.pop_front();
        }
        self.ack_pending = Some(update.tick);
        self.ack_now |= full;
        Ok(Applied { tick: update.tick, full, entered, changed, left })
    }

    /// The tick to acknowledge now, if one is due: call `replica_ack` with it.
    pub fn poll_ack(&mut self, now: Instant) -> Option<u64> {
        let tick = self.ack_pending?;
        let due = self.ack_now
            || self
                .last_ack
                .is_none_or(|last| now.saturating_duration_since(last) >= self.config.ack_interval);
        if !due {
            return None;
        }
        self.ack_pending = None;
        self.ack_now = false;
        self.last_ack = Some(now);
        Some(tick)
    }

    /// The digest of the current view (section 14.5), to compare with the server's.
    pub fn digest(&self) -> u64 {
        let mut digest = ViewDigest::default();
        for (id, entity) in self.view().into_iter().flatten() {
            digest.entity(*id, entity.kind);
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

fn set_fields(fields: &mut Vec<Option<Vec<u8>>>, updates: Vec<ticksock_protocol::replica::FieldUpdate>) {
    for field in updates {
        let slot = usize::from(field.index);
        if fields.len() <= slot {
            fields.resize(slot + 1, None);
        }
        fields[slot] = Some(field.value);
    }
}
