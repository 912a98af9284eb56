//! The route names a game registered, shared with the reactor so that a request crosses to the
//! logic thread as a [`RouteId`] instead of its name.

use std::sync::Arc;

use rustc_hash::FxHashMap;

/// A route's index in its router, resolved by the reactor so requests cross threads without
/// their route names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(pub(crate) u16);

/// The names of a router's routes, shared with the reactor.
///
/// Hashed with FxHash, not SipHash: every request looks its route up, and the table is built
/// once at start and never grows, so names chosen by a client to collide cannot slow it
/// beyond a scan of the few routes a game has.
#[derive(Debug, Clone, Default)]
pub struct RouteTable(Arc<FxHashMap<Box<str>, RouteId>>);

impl RouteTable {
    /// A table of these names and ids.
    pub(crate) fn new(routes: impl IntoIterator<Item = (Box<str>, RouteId)>) -> Self {
        Self(Arc::new(routes.into_iter().collect()))
    }

    /// The route of that name.
    pub fn get(&self, name: &str) -> Option<RouteId> {
        self.0.get(name).copied()
    }
}
