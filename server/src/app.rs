//! The application API: a [`Game`] names its routes in a [`Router`] and reacts to connections
//! and ticks; every handler and hook gets a [`Ctx`] through which it replies, pushes and closes.
//!
//! Everything here runs on the logic thread, one call at a time, so a game is a plain `&mut`
//! state machine with no locks.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crate::ConnId;
use crate::bridge::{Batch, Command, Payload};
use crate::encode::{self, PushFrames};
use crate::hub::{BindError, Hub, UserPolicy};
use protocol::{Encoding, error_code};
use rustc_hash::FxHashMap;
use serde::{Serialize, de::DeserializeOwned};

/// A game: its routes, and what it does when connections come and go and the clock ticks.
///
/// The server calls these on its logic thread, in this order: [`Game::routes`] once at start;
/// then, as things happen, [`Game::on_connect`], route handlers, [`Game::on_disconnect`] and
/// [`Game::on_tick`]; [`Game::on_shutdown`] last. A connection's handlers run only between its
/// `on_connect` and its `on_disconnect`.
pub trait Game: Send + 'static {
    /// What happens when a user already online binds another connection.
    const USER_POLICY: UserPolicy = UserPolicy::AllowMany;

    /// Registers the game's routes.
    fn routes(router: &mut Router<Self>)
    where
        Self: Sized;

    /// A connection completed its handshake. Its welcome frame has been sent.
    fn on_connect(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}

    /// A connection closed. Replies and pushes addressed to it from now on are dropped.
    fn on_disconnect(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}

    /// A tick is due: advance the simulation and push its state. [`Ctx::tick`] tells which.
    fn on_tick(&mut self, _ctx: &mut Ctx<'_>) {}

    /// The server is shutting down: a last chance to reply to deferred calls and push a goodbye.
    fn on_shutdown(&mut self, _ctx: &mut Ctx<'_>) {}
}

/// An error a handler returns; the caller gets it as an error reply with the same callback id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    /// The code the client branches on. Codes below [`error_code::APP_MIN`] are the server's
    /// own (see [`protocol::error_code`]); a game's own codes start at `APP_MIN`.
    pub code: u16,
    /// A human-readable explanation.
    pub message: Cow<'static, str>,
}

impl AppError {
    /// An error with a code and a message.
    pub fn new(code: u16, message: impl Into<Cow<'static, str>>) -> Self {
        Self { code, message: message.into() }
    }
}

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
    /// The route of that name.
    pub fn get(&self, name: &str) -> Option<RouteId> {
        self.0.get(name).copied()
    }
}

/// What a handler produced: the reply frame (already in the batch), or nothing yet (deferred).
type Handled = Result<Option<Payload>, AppError>;
type Handler<G> = Box<dyn Fn(&mut G, &mut Ctx<'_>, Caller, &[u8]) -> Handled + Send>;

/// Maps route names to handlers, as an MVC router maps paths to controllers.
pub struct Router<G> {
    names: HashMap<Box<str>, RouteId>,
    handlers: Vec<Route<G>>,
}

struct Route<G> {
    name: Box<str>,
    deferred: bool,
    handler: Handler<G>,
}

impl<G: 'static> Default for Router<G> {
    fn default() -> Self {
        Self { names: HashMap::new(), handlers: Vec::new() }
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
                let request = encode::request(caller.encoding, body)?;
                let response = handler(game, ctx, caller, request)?;
                encode::reply(ctx.out, caller, &response).map(Some)
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
                let request = encode::request(caller.encoding, body)?;
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
                let answered = handler(game, ctx, caller, body, &mut reply)
                    .and_then(|()| encode::raw_reply(ctx.out, caller, &reply));
                *ctx.scratch = reply;
                answered.map(Some)
            }),
        )
    }

    fn add(&mut self, name: &str, deferred: bool, handler: Handler<G>) -> &mut Self {
        assert!(!self.names.contains_key(name), "route `{name}` registered twice");
        let id = u16::try_from(self.handlers.len()).expect("at most 65536 routes");
        self.names.insert(name.into(), RouteId(id));
        self.handlers.push(Route { name: name.into(), deferred, handler });
        self
    }

    /// Whether the route answers later (registered with [`Router::deferred`]).
    pub fn is_deferred(&self, route: RouteId) -> bool {
        self.handlers.get(usize::from(route.0)).is_some_and(|r| r.deferred)
    }

    /// The names of the routes, for the reactor.
    pub fn table(&self) -> RouteTable {
        RouteTable(Arc::new(self.names.iter().map(|(name, &id)| (name.clone(), id)).collect()))
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

/// Queues one push for each connection, encoded at most once per encoding, as one command per
/// encoding.
fn push_all<T: Serialize + ?Sized>(
    out: &mut Batch,
    hub: &Hub,
    encodes: &mut u64,
    conns: impl IntoIterator<Item = ConnId>,
    topic: &str,
    value: &T,
) -> usize {
    let mut frames = PushFrames::new(topic, value);
    let (mut binary, mut json) = (Vec::new(), Vec::new());
    for conn in conns {
        match hub.encoding(conn) {
            Encoding::Binary => binary.push(conn),
            Encoding::Json => json.push(conn),
        }
    }
    let mut queued = 0;
    for (encoding, conns) in [(Encoding::Binary, binary), (Encoding::Json, json)] {
        if conns.is_empty() {
            continue;
        }
        if let Some(payload) = frames.payload(out, encoding, encodes) {
            queued += conns.len();
            out.push(match <[ConnId; 1]>::try_from(conns) {
                Ok([conn]) => Command::Send { conn, payload },
                Err(conns) => Command::SendMany { conns, payload },
            });
        }
    }
    queued
}

/// Mutable access to groups and sessions, without user binding (see [`Ctx::bind_user`]).
pub struct HubMut<'a>(&'a mut Hub);

impl HubMut<'_> {
    /// Puts a connection in a group. Returns false if it is not open or already a member.
    pub fn join(&mut self, conn: ConnId, group: &str) -> bool {
        self.0.join(conn, group)
    }

    /// Takes a connection out of a group. Returns false if it was not a member.
    pub fn leave(&mut self, conn: ConnId, group: &str) -> bool {
        self.0.leave(conn, group)
    }

    /// Removes the connection's user binding.
    pub fn unbind_user(&mut self, conn: ConnId) {
        self.0.unbind_user(conn)
    }

    /// The connection's session value of type `T`, created with `Default` on first use.
    pub fn session_mut<T: std::any::Any + Send + Default>(&mut self, conn: ConnId) -> Option<&mut T> {
        self.0.session_mut(conn)
    }
}

/// What a handler or hook can do: reply, push, close, and read the clock.
///
/// It only queues commands; the logic thread sends them to the reactor as one batch when the
/// current batch of work is done.
pub struct Ctx<'a> {
    out: &'a mut Batch,
    scratch: &'a mut Vec<u8>,
    now: Instant,
    tick: u64,
    encodes: &'a mut u64,
    deferred: &'a mut HashSet<Caller>,
    hub: &'a mut Hub,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        out: &'a mut Batch,
        scratch: &'a mut Vec<u8>,
        now: Instant,
        tick: u64,
        encodes: &'a mut u64,
        deferred: &'a mut HashSet<Caller>,
        hub: &'a mut Hub,
    ) -> Self {
        Self { out, scratch, now, tick, encodes, deferred, hub }
    }

    /// Who is connected, as whom, in which groups (read-only).
    pub fn hub(&self) -> &Hub {
        self.hub
    }

    /// Groups and session data. Binding users goes through [`Ctx::bind_user`], which applies
    /// the game's [`UserPolicy`].
    pub fn hub_mut(&mut self) -> HubMut<'_> {
        HubMut(self.hub)
    }

    /// Binds `user` to `conn` under the game's user policy; connections it replaces are
    /// closed with [`CLOSE_REPLACED`](crate::hub::CLOSE_REPLACED).
    pub fn bind_user(&mut self, conn: ConnId, user: &str) -> Result<(), BindError> {
        for old in self.hub.bind_user(conn, user)? {
            self.close(old, crate::hub::CLOSE_REPLACED, "replaced by a newer connection");
        }
        Ok(())
    }

    /// Closes every connection of `user`. Returns how many.
    pub fn close_user(&mut self, user: &str, code: u16, reason: &'static str) -> usize {
        let conns: Vec<ConnId> = self.hub.user_connections(user).collect();
        for &conn in &conns {
            self.close(conn, code, reason);
        }
        conns.len()
    }

    /// Pushes to every connection of `user` (one encode per encoding). Returns how many got it.
    pub fn send_to_user<T: Serialize + ?Sized>(&mut self, user: &str, topic: &str, value: &T) -> usize {
        push_all(self.out, self.hub, self.encodes, self.hub.user_connections(user), topic, value)
    }

    /// Pushes to every member of `group` except those in `except` (typically the sender),
    /// with one encode per encoding whatever the group's size. Returns how many got it.
    pub fn send_to_group<T: Serialize + ?Sized>(
        &mut self,
        group: &str,
        topic: &str,
        value: &T,
        except: &[ConnId],
    ) -> usize {
        let members = self.hub.members(group).filter(|c| !except.contains(c));
        push_all(self.out, self.hub, self.encodes, members, topic, value)
    }

    /// Pushes to every open connection, with one encode per encoding. Returns how many got it.
    pub fn send_to_all<T: Serialize + ?Sized>(&mut self, topic: &str, value: &T) -> usize {
        push_all(self.out, self.hub, self.encodes, self.hub.connections(), topic, value)
    }

    /// The time this batch of work started.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The index of the current tick (in `on_tick`) or of the last one run.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// Answers a deferred call.
    pub fn reply<T: Serialize + ?Sized>(&mut self, caller: Caller, value: &T) {
        self.deferred.remove(&caller);
        *self.encodes += 1;
        let payload = encode::reply(self.out, caller, value)
            .unwrap_or_else(|e| encode::error_payload(self.out, caller.id, caller.encoding, &e));
        self.out.push(Command::Send { conn: caller.conn, payload });
    }

    /// Answers a deferred call with an error.
    pub fn reply_error(&mut self, caller: Caller, error: AppError) {
        self.deferred.remove(&caller);
        let payload = encode::error_payload(self.out, caller.id, caller.encoding, &error);
        self.out.push(Command::Send { conn: caller.conn, payload });
    }

    /// Pushes `value` on `topic` to one connection.
    pub fn push<T: Serialize + ?Sized>(&mut self, conn: ConnId, topic: &str, value: &T) {
        self.push_many(std::iter::once(conn), topic, value);
    }

    /// Pushes `value` on `topic` to every connection in `conns`. The frame is encoded once per
    /// encoding and its bytes shared by every recipient. Returns how many it was queued for.
    pub fn push_many<T: Serialize + ?Sized>(
        &mut self,
        conns: impl IntoIterator<Item = ConnId>,
        topic: &str,
        value: &T,
    ) -> usize {
        push_all(self.out, self.hub, self.encodes, conns, topic, value)
    }

    /// Closes a connection with a WebSocket close frame (`code` 1000 for a normal close).
    pub fn close(&mut self, conn: ConnId, code: u16, reason: &'static str) {
        self.out.push(Command::Close { conn, code, reason });
    }
}
