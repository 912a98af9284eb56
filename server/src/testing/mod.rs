//! A test harness for games: a [`Game`] driven in memory, with a simulated clock. (Over 400
//! lines because its module doc is the harness's manual, with a runnable example.)
//!
//! [`TestServer`] runs a game's logic core exactly as the server's logic thread does (the same
//! router, hub, hooks and encoders), but without threads, sockets or real time: a test
//! connects clients in either encoding, calls routes with typed requests and gets typed
//! answers, moves the clock tick by tick, takes the pushes each client received, and
//! disconnects. Nothing sleeps, and every run is the same.
//!
//! ```
//! use ticksock_server::testing::{Encoding, TestServer, error_code};
//! use ticksock_server::{AppError, Ctx, Game, Router};
//!
//! /// Adds what it is sent; pushes the total to everyone each tick.
//! #[derive(Default)]
//! struct Counter {
//!     total: u64,
//! }
//!
//! impl Game for Counter {
//!     fn routes(router: &mut Router<Self>) {
//!         router.route("add", |game: &mut Counter, _: &mut Ctx<'_>, _, n: u64| {
//!             game.total += n;
//!             Ok::<_, AppError>(game.total)
//!         });
//!     }
//!
//!     fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
//!         ctx.send_to_all("total", &self.total);
//!     }
//! }
//!
//! let mut server = TestServer::new(Counter::default());
//! let ann = server.connect(Encoding::Binary);
//! let bob = server.connect(Encoding::Json);
//! // A request is encoded from its Rust type: `2u64`, not `2` (an `i32`, which bincode
//! // writes differently).
//! assert_eq!(server.call::<_, u64>(ann, "add", &2u64), Ok(2));
//! assert_eq!(server.call::<_, u64>(bob, "add", &3u64), Ok(5));
//! server.advance_ticks(2);
//! assert_eq!(server.pushes::<u64>(bob, "total"), [5, 5]);
//! assert_eq!(server.pushes::<u64>(ann, "total"), [5, 5]);
//!
//! let refused = server.call::<_, u64>(ann, "subtract", &1u64).unwrap_err();
//! assert_eq!(refused.code, error_code::UNKNOWN_ROUTE);
//! ```
//!
//! # How it maps to the server
//! - Each client has a queue of the frames the game sent it, in the order the logic core made
//!   them. A call takes its own answer from it and leaves pushes (and the answers to other
//!   calls) queued; [`TestServer::pushes`] takes the pushes of one topic.
//! - The clock starts at the instant the harness is made and moves only when the test moves
//!   it. Ticks run exactly at their deadlines (tick 0 one period after the start), so none is
//!   ever late or skipped; calls and hooks see the simulated instant in [`Ctx::now`](crate::Ctx::now).
//! - What the reactor does on its own is imitated where a game can see it: a call to a route
//!   that does not exist is answered `UNKNOWN_ROUTE`; a client the game closes is
//!   disconnected (its `on_disconnect` runs) as soon as the step that closed it ends; after
//!   [`TestServer::shutdown`] every client still open is closed with 1001. The welcome frame,
//!   heartbeats, rate and size limits are the reactor's alone and are not simulated.
//! - Anything the server sends that its client could not decode is a bug in the server, and
//!   panics with a message that says which client and which frame.

mod inbox;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use inbox::CallError;
pub use ticksock_protocol::{Encoding, error_code};

use crate::bridge::{Command, DataOpcode, RouteTable, ToLogic};
use crate::logic::Logic;
use crate::logic::tick::TickSchedule;
use crate::{Config, ConnId, Game, Hub, LogicStats};
use inbox::Inbox;

/// The close code every client still connected gets when the server shuts down, as the
/// reactor sends it.
const CLOSE_GOING_AWAY: u16 = crate::net::inbound::close::GOING_AWAY;

/// One connected test client: its connection id and the encoding it speaks. `Copy`, so a test
/// passes it around freely; the harness keeps everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TestClient {
    conn: ConnId,
    encoding: Encoding,
}

impl TestClient {
    /// Its connection id, as the game sees it in [`Caller::conn`](crate::Caller::conn) and hooks.
    pub fn conn(self) -> ConnId {
        self.conn
    }

    /// The encoding it speaks.
    pub fn encoding(self) -> Encoding {
        self.encoding
    }
}

/// What the harness keeps of one client.
#[derive(Debug)]
struct ClientState {
    inbox: Inbox,
    next_id: u32,
    /// False once it disconnected or was closed: frames for it are dropped from then on.
    connected: bool,
    /// The close code it got, from the game or from the shutdown.
    close_code: Option<u16>,
    /// Its link dropped (a version 2 session waiting for a resume): it sends nothing, and
    /// what the game sends it waits in its inbox, as the server keeps it for the resume.
    dropped: bool,
}

/// A game driven in memory, with a simulated clock. See the [module docs](self).
pub struct TestServer<G: Game> {
    logic: Logic<G>,
    routes: RouteTable,
    schedule: TickSchedule,
    now: Instant,
    tick_hz: u16,
    ticks_run: u64,
    clients: HashMap<ConnId, ClientState>,
    next_index: u32,
    shut_down: bool,
}

impl<G: Game> TestServer<G> {
    /// The game at 30 ticks a second, the server's default.
    pub fn new(game: G) -> Self {
        Self::with_tick_hz(game, Config::default().tick_hz)
    }

    /// Runs the jobs the game has spawned ([`Ctx::spawn_job`](crate::Ctx::spawn_job)), in
    /// the order spawned, here in the test's thread, and handles their results as the logic
    /// thread does (a result for a connection that has gone is dropped; a panic fails its
    /// call). Jobs wait until this is called, so a test chooses what happens in between.
    /// Returns how many ran.
    pub fn run_jobs(&mut self) -> usize {
        let ran = self.logic.run_inline_jobs(self.now);
        self.deliver();
        ran
    }

    /// Makes the job queue hold `capacity` jobs at most (default `Config::job_queue`); jobs
    /// queued before are dropped.
    pub fn set_job_queue(&mut self, capacity: usize) {
        self.logic.use_inline_jobs(capacity);
    }

    /// The job pool's counters.
    pub fn job_counters(&self) -> crate::jobs::JobCounters {
        self.logic.job_counters()
    }

    /// The game at `tick_hz` ticks a second.
    ///
    /// # Panics
    /// If `tick_hz` is 0.
    pub fn with_tick_hz(game: G, tick_hz: u16) -> Self {
        assert!(tick_hz > 0, "tick_hz must be at least 1");
        // The server's own arithmetic, so a test sees the same period as a running server.
        let period = Config { tick_hz, ..Config::default() }.tick_period();
        let logic = Logic::new(game);
        let now = Instant::now();
        Self {
            routes: logic.route_table(),
            logic,
            schedule: TickSchedule::new(now + period, period),
            now,
            tick_hz,
            ticks_run: 0,
            clients: HashMap::new(),
            next_index: 0,
            shut_down: false,
        }
    }

    /// Connects a client that speaks `encoding` and runs the game's `on_connect` for it.
    pub fn connect(&mut self, encoding: Encoding) -> TestClient {
        self.connect_as(encoding, None)
    }

    /// Connects a client that offers `token` at its upgrade (PROTOCOL.md 13.1): the game's
    /// verifier checks it on the job pool, so its requests wait until
    /// [`TestServer::run_jobs`].
    pub fn connect_with_token(&mut self, encoding: Encoding, token: &str) -> TestClient {
        let credentials = crate::bridge::Credentials { token: Some(token.into()), ..Default::default() };
        self.connect_as(encoding, Some(Box::new(credentials)))
    }

    /// Connects a client that asks for tick-stamped replies at its upgrade (`?ticks=1`,
    /// PROTOCOL.md 4.3): take its answers with [`TestServer::call_stamped`] or
    /// [`TestServer::answer_stamped`] to see their tick.
    pub fn connect_with_tick_stamps(&mut self, encoding: Encoding) -> TestClient {
        let credentials = crate::bridge::Credentials { tick_stamps: true, ..Default::default() };
        self.connect_as(encoding, Some(Box::new(credentials)))
    }

    fn connect_as(
        &mut self,
        encoding: Encoding,
        credentials: Option<Box<crate::bridge::Credentials>>,
    ) -> TestClient {
        self.check_running("connect");
        let conn = ConnId::new(self.next_index, 1);
        self.next_index += 1;
        let state = ClientState {
            inbox: Inbox::new(conn, encoding),
            next_id: 1,
            connected: true,
            close_code: None,
            dropped: false,
        };
        self.clients.insert(conn, state);
        self.step(ToLogic::Connected { conn, encoding, credentials });
        TestClient { conn, encoding }
    }

    /// Calls `route` with `request` and returns its answer, decoded as `Resp`, or the error
    /// reply. Pushes that came meanwhile stay queued.
    ///
    /// # Panics
    /// If the call was not answered at once (a deferred route: use [`TestServer::send`] and
    /// [`TestServer::answer`]), if the reply does not decode as `Resp`, or as
    /// [`TestServer::send`] does.
    pub fn call<Req, Resp>(
        &mut self,
        client: TestClient,
        route: &str,
        request: &Req,
    ) -> Result<Resp, CallError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let id = self.send(client, route, request);
        self.answer(client, id).unwrap_or_else(|| {
            panic!(
                "{}: `{route}` did not answer at once; for a deferred route, use `send` and `answer`",
                client.conn
            )
        })
    }

    /// [`TestServer::call`], with the tick the reply is stamped with: `Some` for a client that
    /// asked for stamps ([`TestServer::connect_with_tick_stamps`]), `None` for the others.
    ///
    /// # Panics
    /// As [`TestServer::call`].
    pub fn call_stamped<Req, Resp>(
        &mut self,
        client: TestClient,
        route: &str,
        request: &Req,
    ) -> Result<(Option<u64>, Resp), CallError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let id = self.send(client, route, request);
        self.answer_stamped(client, id).unwrap_or_else(|| {
            panic!(
                "{}: `{route}` did not answer at once; for a deferred route, use `send` and `answer_stamped`",
                client.conn
            )
        })
    }

    /// Sends a call to `route` without waiting for its answer, and returns its callback id for
    /// [`TestServer::answer`]. For deferred routes, answered on a later call or tick.
    ///
    /// # Panics
    /// If the client has disconnected or been closed, if the server has shut down, or if
    /// `request` does not encode in the client's encoding (a type bincode cannot write).
    pub fn send<Req: Serialize + ?Sized>(&mut self, client: TestClient, route: &str, request: &Req) -> u32 {
        self.check_running("call");
        let state = self.connected(client, route);
        assert!(!state.dropped, "{}: `{route}` from a dropped client: resume it first", client.conn);
        let id = state.next_id;
        state.next_id = state.next_id.wrapping_add(1);
        let mut message = Vec::new();
        ticksock_protocol::write_request(client.encoding, &mut message, id, route, request)
            .unwrap_or_else(|e| panic!("{}: the request to `{route}` does not encode: {e}", client.conn));
        let decoded = ticksock_protocol::decode_request(client.encoding, &message)
            .unwrap_or_else(|e| panic!("{}: the request to `{route}` does not decode: {e}", client.conn));
        let body = Bytes::copy_from_slice(decoded.body);
        match self.routes.get(route) {
            Some(route) => {
                self.step(ToLogic::Request { conn: client.conn, id, route, body, encoding: client.encoding })
            }
            // The reactor answers these itself: the logic thread never sees them.
            None => {
                let mut error = Vec::new();
                let message = format!("no route `{route}`");
                ticksock_protocol::write_error(
                    client.encoding,
                    &mut error,
                    id,
                    error_code::UNKNOWN_ROUTE,
                    &message,
                );
                state_of(&mut self.clients, client).inbox.queue(error.into());
            }
        }
        id
    }

    /// Takes the answer to call `id` of `client`, decoded as `Resp`, if it has come.
    ///
    /// # Panics
    /// If the reply does not decode as `Resp`.
    pub fn answer<Resp: DeserializeOwned>(
        &mut self,
        client: TestClient,
        id: u32,
    ) -> Option<Result<Resp, CallError>> {
        state_of(&mut self.clients, client).inbox.take_answer(id)
    }

    /// [`TestServer::answer`], with the tick the reply is stamped with (`None` for a plain
    /// reply), as [`TestServer::call_stamped`].
    ///
    /// # Panics
    /// If the reply does not decode as `Resp`.
    pub fn answer_stamped<Resp: DeserializeOwned>(
        &mut self,
        client: TestClient,
        id: u32,
    ) -> Option<Result<(Option<u64>, Resp), CallError>> {
        state_of(&mut self.clients, client).inbox.take_stamped_answer(id)
    }

    /// Takes every push on `topic` that `client` received, oldest first, decoded as `T`. Other
    /// frames stay queued.
    ///
    /// # Panics
    /// If one does not decode as `T`.
    pub fn pushes<T: DeserializeOwned>(&mut self, client: TestClient, topic: &str) -> Vec<T> {
        state_of(&mut self.clients, client).inbox.take_pushes(topic)
    }

    /// The frames `client` received and no call or [`TestServer::pushes`] has taken yet, oldest
    /// first, as the server would send them: bincode, or JSON text. For tests of the frames
    /// themselves; a frame sent to several clients is one buffer, shared, as in the server.
    pub fn frames(&self, client: TestClient) -> impl Iterator<Item = &[u8]> {
        let state = self
            .clients
            .get(&client.conn)
            .unwrap_or_else(|| panic!("{}: not a client of this server", client.conn));
        state.inbox.frames().map(|bytes| &bytes[..])
    }

    /// Runs the next `n` ticks, each at its deadline: the clock moves one period per tick.
    ///
    /// # Panics
    /// If the server has shut down.
    pub fn advance_ticks(&mut self, n: u64) {
        self.check_running("tick");
        for _ in 0..n {
            self.run_tick(self.schedule.next_deadline());
        }
    }

    /// Moves the clock forward by `by`, running every tick that falls due on the way, each at
    /// its deadline.
    ///
    /// # Panics
    /// If the server has shut down.
    pub fn advance(&mut self, by: Duration) {
        self.check_running("advance the clock");
        let until = self.now + by;
        while self.schedule.next_deadline() <= until {
            self.run_tick(self.schedule.next_deadline());
        }
        self.now = until;
    }

    /// Disconnects `client`, as if its socket closed, and runs the game's `on_disconnect`.
    /// Frames it received before stay readable.
    ///
    /// # Panics
    /// If it is already disconnected (by the test, or because the game closed it), or if the
    /// server has shut down.
    pub fn disconnect(&mut self, client: TestClient) {
        self.check_running("disconnect");
        self.connected(client, "disconnect").connected = false;
        self.step(ToLogic::Disconnected(client.conn));
    }

    /// Drops `client`'s link as a version 2 session's would be lost (PROTOCOL.md section 11),
    /// and runs the game's `on_drop`. The session lives on: what the game sends it is kept (in
    /// its inbox, as the server keeps it for the resume), and it sends nothing until
    /// [`resume`](Self::resume).
    ///
    /// # Panics
    /// If it is not connected, already dropped, or the server has shut down.
    pub fn drop_link(&mut self, client: TestClient) {
        self.check_running("drop_link");
        let state = self.connected(client, "drop_link");
        assert!(!state.dropped, "{}: `drop_link` on a client already dropped", client.conn);
        state.dropped = true;
        self.step(ToLogic::Dropped(client.conn));
    }

    /// Resumes a dropped `client` on a new link, and runs the game's `on_resume`; what the
    /// game sent it meanwhile is in its inbox, in order.
    ///
    /// # Panics
    /// If it is not dropped, or the server has shut down.
    pub fn resume(&mut self, client: TestClient) {
        self.check_running("resume");
        let state = self.connected(client, "resume");
        assert!(state.dropped, "{}: `resume` on a client that was not dropped", client.conn);
        state.dropped = false;
        self.step(ToLogic::Resumed(client.conn));
    }

    /// Ends a dropped `client`'s session without a resume, as its grace passing would: runs
    /// the game's `on_expire`, then `on_disconnect`.
    ///
    /// # Panics
    /// If it is not dropped, or the server has shut down.
    pub fn expire(&mut self, client: TestClient) {
        self.check_running("expire");
        let state = self.connected(client, "expire");
        assert!(state.dropped, "{}: `expire` on a client that was not dropped", client.conn);
        state.connected = false;
        self.step(ToLogic::Expired(client.conn));
    }

    /// The close code `client` got, if it was closed: by the game ([`Ctx::close`](crate::Ctx::close),
    /// or a newer connection of its user), or 1001 by the shutdown.
    pub fn closed(&self, client: TestClient) -> Option<u16> {
        self.clients.get(&client.conn).and_then(|s| s.close_code)
    }

    /// Shuts the server down as the logic thread does: runs the game's `on_shutdown`, fails every
    /// deferred call still unanswered with `SHUTTING_DOWN`, then closes every client still
    /// connected with 1001. Answers and pushes stay readable; nothing else may be done after.
    ///
    /// # Panics
    /// If it has already shut down.
    pub fn shutdown(&mut self) {
        self.check_running("shut down");
        self.shut_down = true;
        self.logic.handle_shutdown(self.now);
        self.deliver();
        for state in self.clients.values_mut().filter(|s| s.connected) {
            state.connected = false;
            state.close_code = Some(CLOSE_GOING_AWAY);
        }
    }

    /// The simulated clock: what [`Ctx::now`](crate::Ctx::now) says.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The index of the last tick run (0 before any), as [`Ctx::tick`](crate::Ctx::tick) says it.
    pub fn tick(&self) -> u64 {
        self.ticks_run.saturating_sub(1)
    }

    /// How many ticks have run.
    pub fn ticks_run(&self) -> u64 {
        self.ticks_run
    }

    /// The ticks per second.
    pub fn tick_hz(&self) -> u16 {
        self.tick_hz
    }

    /// The game, for inspection.
    pub fn game(&self) -> &G {
        self.logic.game()
    }

    /// Connections, users, groups and sessions, as the game's [`Ctx::hub`](crate::Ctx::hub) shows them.
    pub fn hub(&self) -> &Hub {
        self.logic.hub()
    }

    /// The logic core's counters: requests, errors by code, encodes (one per push encoding,
    /// however many recipients), ticks, panics caught.
    pub fn stats(&self) -> LogicStats {
        self.logic.stats()
    }

    /// The logic core, its tick schedule and the clock, for benches that measure
    /// [`Logic`] itself after a set-up through the harness. Frames still queued are dropped.
    #[doc(hidden)]
    pub fn into_logic(self) -> (Logic<G>, TickSchedule, Instant) {
        (self.logic, self.schedule, self.now)
    }

    fn run_tick(&mut self, at: Instant) {
        self.now = at;
        // Polled at its own deadline, a tick is always due, never late, never skipped.
        let tick = self.schedule.poll(at).expect("a tick is due at its deadline");
        self.logic.handle_tick(tick, at);
        self.ticks_run += 1;
        self.deliver();
    }

    /// Hands one message to the logic core and delivers what it produced.
    fn step(&mut self, message: ToLogic) {
        self.logic.handle_message(message, self.now);
        self.deliver();
    }

    /// Queues the logic core's frames on their clients; disconnects the clients it closed,
    /// which may produce more frames, until none is left.
    fn deliver(&mut self) {
        while let Some(mut batch) = self.logic.poll_batch() {
            // The batch's buffer, shared by every frame cut from it, as the reactor shares it.
            let payloads = Bytes::from(std::mem::take(&mut batch.payloads));
            let mut closed = Vec::new();
            for command in batch.commands.drain(..) {
                match command {
                    Command::Send { conn, payload, .. } => {
                        self.queue(conn, payload.opcode(), payloads.slice_ref(payload.bytes(&payloads)))
                    }
                    Command::SendMany { conns, payload, .. } => {
                        let frame = payloads.slice_ref(payload.bytes(&payloads));
                        for conn in conns {
                            self.queue(conn, payload.opcode(), frame.clone());
                        }
                    }
                    Command::Close { conn, code, .. } => {
                        if let Some(state) = self.clients.get_mut(&conn).filter(|s| s.connected) {
                            state.connected = false;
                            state.close_code = Some(code);
                            closed.push(conn);
                        }
                    }
                }
            }
            // After the shutdown the logic thread has stopped: no hook runs any more.
            if !self.shut_down {
                for conn in closed {
                    self.logic.handle_message(ToLogic::Disconnected(conn), self.now);
                }
            }
        }
    }

    /// Queues a frame for `conn`, or drops it if `conn` is gone, as the reactor does.
    fn queue(&mut self, conn: ConnId, opcode: DataOpcode, frame: Bytes) {
        let Some(state) = self.clients.get_mut(&conn).filter(|s| s.connected) else { return };
        let expected = DataOpcode::of(state.inbox.encoding());
        assert_eq!(opcode, expected, "{conn}: a {opcode:?} frame for a client that speaks {expected:?}");
        state.inbox.queue(frame);
    }

    fn connected(&mut self, client: TestClient, doing: &str) -> &mut ClientState {
        let state = state_of(&mut self.clients, client);
        assert!(
            state.connected,
            "{}: `{doing}` on a client that is no longer connected (close code {:?})",
            client.conn, state.close_code
        );
        state
    }

    fn check_running(&self, doing: &str) {
        assert!(!self.shut_down, "cannot {doing}: the server has shut down");
    }
}

impl<G: Game + std::fmt::Debug> std::fmt::Debug for TestServer<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("game", self.logic.game())
            .field("tick_hz", &self.tick_hz)
            .field("ticks_run", &self.ticks_run)
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}

fn state_of(clients: &mut HashMap<ConnId, ClientState>, client: TestClient) -> &mut ClientState {
    clients.get_mut(&client.conn).unwrap_or_else(|| panic!("{}: not a client of this server", client.conn))
}
