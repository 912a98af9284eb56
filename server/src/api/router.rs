//! [`Router`]: route names mapped to typed handlers, and the [`Caller`] each handler answers.

use std::collections::HashMap;

use serde::{Serialize, de::DeserializeOwned};
use ticksock_protocol::{Encoding, error_code};

use super::{AppError, Ctx, frames};
use crate::ConnId;
use crate::bridge::{Payload, RouteId, RouteTable};

/// The request that a reply answers: the connection and the callback id.
///
/// A deferred handler keeps it and answers later with [`Ctx::reply`] or [`Ctx::reply_error`].
/// A `Caller` that is never answered leaves the client to its own timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "a call must be answered, or the client waits for its timeout"]
pub struct Caller {
    /// Who called.
    pub conn: ConnId,
    /// The callback id of the call.
    pub id: u32,
    /// The form of frames the caller speaks; the answer is encoded in it.
    pub encoding: Encoding,
}

/// What a handler produced: the reply frame (already in the batch), or nothing yet (deferred).
type Handled = Result<Option<Payload>, AppError>;
type Handler<G> = Box<dyn Fn(&mut G, &mut Ctx<'_>, Caller, &[u8]) -> Handled + Send>;

/// Maps route names to handlers, as an MVC router maps paths to controllers.
///
/// # Panics
/// Registering a name twice, or a name longer than
/// [`MAX_ROUTE_LEN`](ticksock_protocol::MAX_ROUTE_LEN) bytes (which no client could call: the
/// server refuses such a request as malformed), panics: both are bugs in the game, found when
/// the server starts.
pub struct Router<G> {
    names: HashMap<Box<str>, RouteId>,
    handlers: Vec<Route<G>>,
    /// Push topics declared latest-wins, in the order declared.
    latest_wins: Vec<Box<str>>,
}

struct Route<G> {
    name: Box<str>,
    deferred: bool,
    handler: Handler<G>,
    guard: super::Guard,
}

impl<G: 'static> Default for Router<G> {
    fn default() -> Self {
        Self { names: HashMap::new(), handlers: Vec::new(), latest_wins: Vec::new() }
    }
}

impl<G: 'static> Router<G> {
    /// A typed route answered at once: the body decodes as `Req`, the handler's `Ok` is the
    /// reply and its `Err` the error reply. A body that does not decode gets `BAD_BODY`.
    pub fn route<Req, Resp, F>(&mut self, name: &str, handler: F) -> &mut Self
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: Fn(&mut G, &mut Ctx<'_>, Caller, Req) -> Result<Resp, AppError> + Send + 'static,
    {
        self.add(
            name,
            false,
            Box::new(move |game, ctx, caller, body| {
                let request = frames::request(caller.encoding, body)?;
                let response = handler(game, ctx, caller, request)?;
                let tick = ctx.stamp(caller);
                frames::reply(ctx.out, caller, tick, &response).map(Some)
            }),
        )
    }

    /// A typed route answered later: the handler keeps the [`Caller`] and replies through
    /// [`Ctx::reply`] on a later call or tick. An `Err` is answered at once.
    pub fn deferred<Req, F>(&mut self, name: &str, handler: F) -> &mut Self
    where
        Req: DeserializeOwned,
        F: Fn(&mut G, &mut Ctx<'_>, Caller, Req) -> Result<(), AppError> + Send + 'static,
    {
        self.add(
            name,
            true,
            Box::new(move |game, ctx, caller, body| {
                let request = frames::request(caller.encoding, body)?;
                handler(game, ctx, caller, request).map(|()| None)
            }),
        )
    }

    /// A route on raw bytes: the handler gets the body as it arrived and appends the reply
    /// body to the `Vec` it is given (empty, and reused from call to call, so an echo or a
    /// forward allocates nothing). For routes that forward or echo payloads without a schema.
    /// On a JSON connection the body is the request's `body` JSON text, and the reply must be
    /// JSON text too.
    pub fn raw<F>(&mut self, name: &str, handler: F) -> &mut Self
    where
        F: Fn(&mut G, &mut Ctx<'_>, Caller, &[u8], &mut Vec<u8>) -> Result<(), AppError> + Send + 'static,
    {
        self.add(
            name,
            false,
            Box::new(move |game, ctx, caller, body| {
                // Lent out of the context for the call, so the handler can have both.
                let mut reply = std::mem::take(ctx.scratch);
                reply.clear();
                let answered = handler(game, ctx, caller, body, &mut reply).and_then(|()| {
                    let tick = ctx.stamp(caller);
                    frames::raw_reply(ctx.out, caller, tick, &reply)
                });
                *ctx.scratch = reply;
                answered.map(Some)
            }),
        )
    }

    fn add(&mut self, name: &str, deferred: bool, handler: Handler<G>) -> &mut Self {
        assert!(!self.names.contains_key(name), "route `{name}` registered twice");
        assert!(
            name.len() <= ticksock_protocol::MAX_ROUTE_LEN,
            "route `{name}` is {} bytes long, over MAX_ROUTE_LEN ({}): no request could call it",
            name.len(),
            ticksock_protocol::MAX_ROUTE_LEN
        );
        let id = u16::try_from(self.handlers.len()).expect("at most 65536 routes");
        self.names.insert(name.into(), RouteId(id));
        self.handlers.push(Route { name: name.into(), deferred, handler, guard: super::Guard::default() });
        self
    }

    /// Adds `guard` to what the route registered last requires (PROTOCOL.md 13.3): the server
    /// checks it before the handler runs, and answers `unauthenticated`, `forbidden` or
    /// `rate_limited` instead. Only a game with an
    /// [`authenticator`](super::Game::authenticator) has authenticated connections.
    ///
    /// ```ignore
    /// router.route("kick", kick).require(Guard::role("admin")).require(Guard::rate(1, 5));
    /// ```
    ///
    /// # Panics
    /// If no route is registered yet.
    pub fn require(&mut self, guard: super::Guard) -> &mut Self {
        let route = self.handlers.last_mut().expect("`require` follows the route it guards");
        route.guard = std::mem::take(&mut route.guard).and(guard);
        self
    }

    /// Declares pushes on `topic` latest-wins: each one is the whole state of something (a
    /// room's positions, a score), so a client that does not keep up is sent the latest one
    /// and never a stale one behind it: a newer push on `topic` replaces one still held back
    /// for that client (PROTOCOL.md 7.3). Pushes on other topics are events: held in order,
    /// and past `Config::max_held_events` dropped oldest-first, with a count the client sees.
    /// Replication's `replica` is latest-wins without being declared.
    ///
    /// # Panics
    /// If `topic` is declared twice, or more than 65 535 topics are: bugs in the game, found
    /// when the server starts.
    pub fn latest_wins(&mut self, topic: &str) -> &mut Self {
        assert!(
            !self.latest_wins.iter().any(|t| &**t == topic),
            "topic `{topic}` declared latest-wins twice"
        );
        assert!(self.latest_wins.len() < usize::from(u16::MAX), "more than 65 535 latest-wins topics");
        self.latest_wins.push(topic.into());
        self
    }

    /// The topics declared latest-wins, for the hub.
    pub(crate) fn latest_wins_topics(&self) -> &[Box<str>] {
        &self.latest_wins
    }

    /// What a route requires.
    pub(crate) fn guard(&self, route: RouteId) -> Option<&super::Guard> {
        self.handlers.get(usize::from(route.0)).map(|r| &r.guard)
    }

    /// Registers the server's own `auth` route (PROTOCOL.md 13.2), which the logic core
    /// handles itself; its handler here is never called.
    ///
    /// # Panics
    /// If the game registered a route named `auth` itself.
    pub(crate) fn add_auth_route(&mut self) -> RouteId {
        assert!(
            !self.names.contains_key(ticksock_protocol::ROUTE_AUTH),
            "a game with an authenticator may not register a route `auth`: the server's own is that"
        );
        self.add(
            ticksock_protocol::ROUTE_AUTH,
            true,
            Box::new(|_, _, _, _| Err(AppError::new(error_code::INTERNAL, "not reached"))),
        );
        RouteId(u16::try_from(self.handlers.len() - 1).unwrap_or(u16::MAX))
    }

    /// Whether the route answers later (registered with [`Router::deferred`]).
    pub fn is_deferred(&self, route: RouteId) -> bool {
        self.handlers.get(usize::from(route.0)).is_some_and(|r| r.deferred)
    }

    /// The names of the routes, for the reactor.
    pub fn table(&self) -> RouteTable {
        RouteTable::new(self.names.iter().map(|(name, &id)| (name.clone(), id)))
    }

    /// The name of a route.
    pub fn name(&self, route: RouteId) -> &str {
        self.handlers.get(usize::from(route.0)).map_or("?", |r| &r.name)
    }

    /// Runs the handler of `route`. Returns the reply frame, `None` when deferred, or the error.
    pub(crate) fn dispatch(
        &self,
        game: &mut G,
        ctx: &mut Ctx<'_>,
        caller: Caller,
        route: RouteId,
        body: &[u8],
    ) -> Handled {
        match self.handlers.get(usize::from(route.0)) {
            Some(r) => (r.handler)(game, ctx, caller, body),
            None => Err(AppError::new(error_code::UNKNOWN_ROUTE, "unknown route")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(_: &mut (), _: &mut Ctx<'_>, _: Caller, (): ()) -> Result<(), AppError> {
        Ok(())
    }

    #[test]
    fn a_route_name_of_max_route_len_bytes_registers() {
        let mut router = Router::<()>::default();
        router.route(&"r".repeat(ticksock_protocol::MAX_ROUTE_LEN), unit);
        assert!(router.table().get(&"r".repeat(64)).is_some());
    }

    #[test]
    fn latest_wins_topics_are_kept_in_the_order_declared() {
        let mut router = Router::<()>::default();
        router.latest_wins("state").latest_wins("score");
        assert_eq!(router.latest_wins_topics(), [Box::from("state"), Box::from("score")]);
    }

    #[test]
    #[should_panic(expected = "topic `state` declared latest-wins twice")]
    fn a_topic_declared_twice_is_a_bug() {
        Router::<()>::default().latest_wins("state").latest_wins("state");
    }

    #[test]
    #[should_panic(expected = "is 65 bytes long, over MAX_ROUTE_LEN (64)")]
    fn a_longer_route_name_is_refused_at_registration() {
        Router::<()>::default().route(&"r".repeat(ticksock_protocol::MAX_ROUTE_LEN + 1), unit);
    }
}
