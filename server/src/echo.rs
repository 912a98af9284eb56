//! [`Echo`], the game of echo mode, for WebSocket conformance suites and load generators.

use crate::{Game, Router};

/// The game of echo mode: no routes. In echo mode the reactor hands every data message to the
/// logic thread as it is, and the logic thread sends it back unchanged.
#[derive(Debug, Default)]
pub struct Echo;

impl Game for Echo {
    fn routes(_router: &mut Router<Self>) {}
}
