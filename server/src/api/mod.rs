//! The game-facing API, and the only part of the crate a game needs: a [`Game`] names its
//! routes in a [`Router`] and reacts to connections and ticks; every handler and hook gets a
//! [`Ctx`] through which it replies, pushes and closes.
//!
//! Everything here runs on the logic thread, one call at a time, so a game is a plain `&mut`
//! state machine with no locks. This module imports the crate's `bridge` (the batch
//! its answers are encoded into) and never the reactor.
//!
//! - [`router`]: [`Router`] and [`Caller`]; [`ctx`]: [`Ctx`] and [`HubMut`]; [`error`]:
//!   [`AppError`]; [`hub`]: users, groups and session data; [`rooms`]: rooms that tick and
//!   expire.

pub mod auth;
pub mod ctx;
pub mod error;
pub(crate) mod frames;
pub mod hub;
pub mod replica;
pub mod rooms;
pub mod router;

pub use auth::{Authenticator, Guard, Identity};
pub use ctx::{Ctx, HubMut};
pub use error::AppError;
pub use hub::{
    BindError, CLOSE_AUTH_EXPIRED_REASON, CLOSE_AUTH_FAILED_REASON, CLOSE_BAD_TICKET_REASON, CLOSE_REPLACED,
    CLOSE_REPLACED_REASON, Hub, UserPolicy,
};
pub use rooms::Rooms;
pub use router::{Caller, Router};

use crate::ConnId;

/// A game: its routes, and what it does when connections come and go and the clock ticks.
///
/// The server calls these on its logic thread, in this order: [`Game::routes`] once at start;
/// then, as things happen, [`Game::on_connect`], route handlers, [`Game::on_disconnect`] and
/// [`Game::on_tick`]; [`Game::on_shutdown`] last. A connection's handlers run only between its
/// `on_connect` and its `on_disconnect`, and not after the game has closed it
/// ([`Ctx::close`]): what it sent before it read its close frame is dropped unanswered.
pub trait Game: Send + 'static {
    /// What happens when a user already online binds another connection.
    const USER_POLICY: UserPolicy = UserPolicy::AllowMany;

    /// Registers the game's routes.
    fn routes(router: &mut Router<Self>)
    where
        Self: Sized;

    /// A connection completed its handshake. Its welcome frame has been sent.
    fn on_connect(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}

    /// A connection closed (for a version 2 session: the session ended, because its grace
    /// passed without a resume, it or the server closed it, or it could not keep what it was
    /// sent). Replies and pushes addressed to it from now on are dropped.
    fn on_disconnect(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}

    /// A version 2 session lost its link (PROTOCOL.md section 11): its client may resume it
    /// within the session grace. It keeps its user, groups, rooms and session data, and what
    /// is sent to it meanwhile (replies, pushes) is kept for the client. A game that must not
    /// wait (a seat in a match) may act here, e.g. mark the player away, or close it.
    fn on_drop(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}

    /// A dropped version 2 session resumed on a new link; its requests come after this. What
    /// was sent to it while it had no link has been delivered first.
    fn on_resume(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}

    /// A dropped version 2 session ends without having resumed: its grace passed, it could
    /// not keep what it was sent (its replay bound), or too many sessions were waiting.
    /// [`on_disconnect`](Game::on_disconnect) follows at once; a game that treats an expired
    /// player differently from one who left (a forfeit, say) does it here.
    fn on_expire(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}

    /// The game's token verifier, if it identifies players by tokens (PROTOCOL.md section 13):
    /// called once at start. With one, connections may offer a token at the upgrade, the
    /// route `auth` exists, and routes may require an identity ([`Router::require`]).
    fn authenticator(&self) -> Option<std::sync::Arc<dyn Authenticator>> {
        None
    }

    /// A connection's identity was set or changed: its token was verified (at the upgrade, or
    /// by an `auth` request). Its user is bound ([`Hub::user_of`]) and its roles are set; a
    /// game that keeps per-player state from its store loads it here.
    fn on_auth(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}

    /// A tick is due: advance the simulation and push its state. [`Ctx::tick`] tells which.
    fn on_tick(&mut self, _ctx: &mut Ctx<'_>) {}

    /// The server is shutting down: a last chance to reply to deferred calls and push a goodbye.
    fn on_shutdown(&mut self, _ctx: &mut Ctx<'_>) {}
}
