//! Rooms: named pieces of game state that tick, whose members are the members of the
//! [`hub`](crate::api::hub) group of the same name, and that are disposed of once they have been
//! empty for a grace time (so a player who drops can come back to the same room).
//!
//! In a cluster a room lives on one node: a handler that is about to create or enter one calls
//! [`Ctx::claim_room`] first, which answers a redirect when another node holds it, and a
//! disposed room is given up for other nodes to create. Permanent rooms (a lobby) are not
//! claimed: every node has its own, whose group spans the cluster.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::Ctx;

/// A set of rooms of type `R`.
#[derive(Debug)]
pub struct Rooms<R> {
    rooms: BTreeMap<String, Slot<R>>,
    grace: Duration,
}

#[derive(Debug)]
struct Slot<R> {
    room: R,
    permanent: bool,
    empty_since: Option<Instant>,
}

impl<R> Rooms<R> {
    /// No rooms yet; an empty room is disposed of after `grace`.
    pub fn new(grace: Duration) -> Self {
        Self { rooms: BTreeMap::new(), grace }
    }

    /// Adds a room that is never disposed of (a lobby).
    pub fn insert_permanent(&mut self, name: &str, room: R) {
        self.rooms.insert(name.to_owned(), Slot { room, permanent: true, empty_since: None });
    }

    /// The room of that name, created with `create` if it does not exist.
    pub fn get_or_insert_with(&mut self, name: &str, create: impl FnOnce() -> R) -> &mut R {
        &mut self
            .rooms
            .entry(name.to_owned())
            .or_insert_with(|| Slot { room: create(), permanent: false, empty_since: None })
            .room
    }

    /// The room of that name.
    pub fn get(&self, name: &str) -> Option<&R> {
        self.rooms.get(name).map(|s| &s.room)
    }

    /// The room of that name, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut R> {
        self.rooms.get_mut(name).map(|s| &mut s.room)
    }

    /// Whether a room of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.rooms.contains_key(name)
    }

    /// How many rooms exist.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether there are no rooms.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// The rooms, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &R)> {
        self.rooms.iter().map(|(name, slot)| (name.as_str(), &slot.room))
    }

    /// Ticks every room that has members with `tick(name, room, ctx)`, then disposes of the
    /// rooms that have been empty for the grace time. Returns the names disposed of.
    pub fn tick(
        &mut self,
        ctx: &mut Ctx<'_>,
        mut tick: impl FnMut(&str, &mut R, &mut Ctx<'_>),
    ) -> Vec<String> {
        let now = ctx.now();
        let mut disposed = Vec::new();
        for (name, slot) in &mut self.rooms {
            if ctx.hub().local_member_count(name) > 0 {
                slot.empty_since = None;
                tick(name, &mut slot.room, ctx);
                continue;
            }
            let since = *slot.empty_since.get_or_insert(now);
            if !slot.permanent && now.duration_since(since) >= self.grace {
                disposed.push(name.clone());
            }
        }
        for name in &disposed {
            self.rooms.remove(name);
            ctx.release_room(name);
        }
        disposed
    }
}
