//! The logic core: a game, its router, and the rules for turning what the reactor delivers
//! into replies and pushes. No threads, channels or clocks: `now` is passed in.
//!
//! Call order, as [`thread`] drives it: any number of [`Logic::handle_message`] and
//! [`Logic::handle_tick`] calls, each followed at some point by [`Logic::poll_batch`] to take
//! the commands they produced; [`Logic::handle_shutdown`] last, then a final `poll_batch`.

pub mod auth;
pub(crate) mod priority;
pub(crate) mod thread;
pub mod tick;

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use ticksock_protocol::error_code;

use crate::api::ctx::Ticks;
use crate::api::{AppError, Caller, Ctx, Game, Hub, Router};
use crate::bridge::{Batch, Command, RouteTable, ToLogic};
use crate::cluster::Registry;
use crate::cluster::link::{ClusterLink, FromBridge};
use crate::cluster::wire::Delivery;
use crate::metrics::LogicCounters;
use tick::Tick;

/// Counters the logic core keeps; cheap enough for the hot path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogicStats {
    /// Requests handled.
    pub requests: u64,
    /// Error replies sent, by code (index = code for the reserved codes, the last slot for
    /// application codes).
    pub errors: [u64; crate::metrics::ERROR_SLOTS],
    /// Push and reply bodies encoded (one per broadcast, however many recipients).
    pub encodes: u64,
    /// Ticks run.
    pub ticks: u64,
    /// Tick slots skipped because a tick overran.
    pub skipped_ticks: u64,
    /// Handler or hook panics caught.
    pub panics: u64,
    /// Requests not handled because the game had already closed their connection.
    pub dropped_requests: u64,
}

/// What handlers and hooks act on through their [`Ctx`], kept apart from the game and the
/// router so both can be borrowed at once.
struct Effects {
    out: Batch,
    /// Lent to raw routes for their reply body.
    scratch: Vec<u8>,
    deferred: HashSet<Caller>,
    hub: Hub,
    encodes: u64,
    /// The link to the other nodes, in a cluster.
    cluster: Option<ClusterLink>,
    /// Slow work on the worker pool, and what waits for its results.
    jobs: crate::jobs::Jobs,
}

impl Effects {
    fn ctx(&mut self, now: Instant, ticks: Ticks) -> Ctx<'_> {
        Ctx::new(
            &mut self.out,
            &mut self.scratch,
            now,
            ticks,
            &mut self.encodes,
            &mut self.deferred,
            &mut self.hub,
            self.cluster.as_mut(),
            &mut self.jobs,
        )
    }
}

/// Most messages from the cluster's bridge handled in one go, so a flood of deliveries does
/// not hold the reactor's requests back.
const CLUSTER_DRAIN_BUDGET: usize = 1024;

/// A game and its router, driven by events and time.
pub struct Logic<G: Game> {
    game: G,
    router: Router<G>,
    /// The tick running or last run, and the first one still to come: what a reply's tick
    /// stamp and [`Ctx::next_tick`] say.
    tick: Ticks,
    fx: Effects,
    stats: LogicStats,
    /// Tokens, guards and expiry, for a game with an authenticator.
    auth: Option<auth::Auth>,
    /// Batches the reactor has applied, emptied, each to become the next batch (see
    /// [`Logic::recycle`]).
    spare_batches: Vec<Batch>,
}

/// A request's body kept past its handling (held until its connection's token is checked,
/// parked until a room's claim is answered), copied: the body the reactor sent is a slice of
/// its read buffer (see `net/read_in_place.rs`), and keeping the slice would keep the whole
/// buffer (16 KiB or more) alive for as long as the request waits.
fn kept(body: &bytes::Bytes) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(body)
}

impl<G: Game> Logic<G> {
    /// Builds the router of `game` and wraps both.
    pub fn new(game: G) -> Self {
        let mut router = Router::default();
        G::routes(&mut router);
        let mut hub = Hub::new(G::USER_POLICY);
        hub.set_latest_wins(router.latest_wins_topics());
        let auth = game.authenticator().map(|verifier| {
            auth::Auth::new(verifier, router.add_auth_route(), crate::Config::default().auth_grace)
        });
        Self {
            auth,
            game,
            router,
            tick: Ticks::default(),
            fx: Effects {
                out: Batch::default(),
                scratch: Vec::new(),
                deferred: HashSet::new(),
                hub,
                encodes: 0,
                cluster: None,
                jobs: crate::jobs::Jobs::inline(crate::Config::default().job_queue),
            },
            stats: LogicStats::default(),
            spare_batches: Vec::new(),
        }
    }

    /// How long an expired identity may still send requests (`Config::auth_grace`).
    pub(crate) fn set_auth_grace(&mut self, grace: std::time::Duration) {
        if let Some(auth) = self.auth.as_mut() {
            auth.grace = grace;
        }
    }

    /// Makes this a cluster node: `link` reaches the bridge, and `registry` (empty) will
    /// hold the other nodes.
    pub(crate) fn join_cluster(&mut self, link: ClusterLink, registry: Registry) {
        self.fx.hub.join_cluster(registry);
        self.fx.cluster = Some(link);
    }

    /// Queues jobs for [`Logic::run_inline_jobs`], `capacity` at most (the test harness).
    pub(crate) fn use_inline_jobs(&mut self, capacity: usize) {
        self.fx.jobs = crate::jobs::Jobs::inline(capacity);
    }

    /// Sends jobs to a worker pool from now on (without one, they wait for
    /// [`Logic::run_inline_jobs`]).
    pub(crate) fn use_job_pool(&mut self, jobs: crate::jobs::Jobs) {
        self.fx.jobs = jobs;
    }

    /// Whether the worker pool has sent back a result not handled yet.
    pub(crate) fn jobs_have_news(&self) -> bool {
        self.fx.jobs.has_news()
    }

    /// Handles the results the pool has sent back (or, without a pool, runs the queued jobs
    /// now, in this thread, and handles theirs). Returns how many.
    pub fn run_inline_jobs(&mut self, now: Instant) -> usize {
        let mut handled = 0;
        while let Some(done) = self.fx.jobs.poll_done() {
            self.handle_job_done(done, now);
            handled += 1;
        }
        handled
    }

    /// Shutting down: handles results until no job is in flight, or until `deadline`.
    pub(crate) fn finish_jobs(&mut self, deadline: Instant) {
        while self.fx.jobs.counters.in_flight > 0 && Instant::now() < deadline {
            if self.run_inline_jobs(Instant::now()) == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }

    /// The job pool's counters.
    pub fn job_counters(&self) -> crate::jobs::JobCounters {
        self.fx.jobs.counters
    }

    /// A job's outcome: its continuation runs, unless whom it was for has gone; a panic fails
    /// the call it was for.
    fn handle_job_done(&mut self, done: crate::jobs::Done, now: Instant) {
        use crate::jobs::JobFor;
        let Some(waiting) = self.fx.jobs.waiting.remove(&done.id) else { return };
        let hub = &self.fx.hub;
        let here = |conn| hub.is_connected(conn) && !hub.is_closing(conn);
        let alive = match waiting.job_for {
            JobFor::Call(caller) => here(caller.conn),
            JobFor::Connection(conn) => here(conn),
            JobFor::Game => true,
        };
        if !alive {
            self.fx.jobs.counters.dropped += 1;
            return;
        }
        let then = match waiting.then {
            crate::jobs::Then::Game(then) => then,
            crate::jobs::Then::Auth => {
                let verdict =
                    done.result.ok().and_then(|v| v.downcast::<Result<crate::Identity, String>>().ok());
                if verdict.is_none() {
                    self.fx.jobs.counters.panicked += 1;
                } else {
                    self.fx.jobs.counters.applied += 1;
                }
                return self.handle_auth_done(waiting.job_for, verdict.map(|v| *v), now);
            }
        };
        let failed = |this: &mut Self, what: &str| {
            this.fx.jobs.counters.panicked += 1;
            tracing::error!("a job {what}; the server keeps running");
            if let JobFor::Call(caller) = waiting.job_for {
                this.fx.deferred.remove(&caller);
                this.send_error(caller, &AppError::new(error_code::INTERNAL, "the job failed"));
            }
        };
        let value = match done.result {
            Ok(value) => value,
            Err(_) => return failed(self, "panicked"),
        };
        let Ok(then) = then.downcast::<crate::api::ctx::Then<G>>() else {
            return failed(self, "was spawned for another game type");
        };
        self.fx.jobs.counters.applied += 1;
        let mut ctx = self.fx.ctx(now, self.tick);
        let game = &mut self.game;
        if catch_unwind(AssertUnwindSafe(|| then(game, &mut ctx, value))).is_err() {
            self.stats.panics += 1;
            failed(self, "continuation panicked");
        }
    }

    /// Whether the cluster's bridge has sent something not handled yet.
    pub(crate) fn cluster_has_news(&self) -> bool {
        self.fx.cluster.as_ref().is_some_and(ClusterLink::has_news)
    }

    /// Handles what the cluster's bridge sent, up to a budget.
    pub(crate) fn handle_cluster_news(&mut self, now: Instant) {
        for _ in 0..CLUSTER_DRAIN_BUDGET {
            let Some(message) = self.fx.cluster.as_ref().and_then(ClusterLink::try_recv) else { return };
            self.handle_cluster(message, now);
        }
    }

    /// Handles one message from the cluster's bridge.
    pub(crate) fn handle_cluster(&mut self, message: FromBridge, now: Instant) {
        let fx = &mut self.fx;
        match message {
            FromBridge::Event(event) => fx.hub.cluster_mut().handle_event(&event, now),
            FromBridge::Snapshot(snapshot) => fx.hub.cluster_mut().handle_snapshot(&snapshot, now),
            FromBridge::Reading(false) => fx.hub.cluster_mut().handle_cut_off(),
            FromBridge::Reading(true) => fx.hub.cluster_mut().handle_reconnected(now),
            FromBridge::Delivery(Delivery::User { user, push }) => {
                crate::api::ctx::push_encoded(&mut fx.out, &fx.hub, fx.hub.user_connections(&user), &push);
            }
            FromBridge::Delivery(Delivery::Group { group, push }) => {
                crate::api::ctx::push_encoded(&mut fx.out, &fx.hub, fx.hub.members(&group), &push);
            }
            FromBridge::Delivery(Delivery::All { push }) => {
                crate::api::ctx::push_encoded(&mut fx.out, &fx.hub, fx.hub.connections(), &push);
            }
            FromBridge::Delivery(Delivery::CloseUser { user, code, reason }) => {
                let reason = crate::cluster::reasons::intern(&reason);
                // A code a close frame may not carry (RFC 6455 7.4) from a confused peer: a
                // policy close instead.
                let code = if matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) { code } else { 1008 };
                fx.ctx(now, self.tick).close_user_here(&user, code, reason);
            }
            FromBridge::Delivery(Delivery::SetRoles { user, roles }) => {
                fx.hub.set_roles(&user, &roles);
            }
            FromBridge::Claimed { room, outcome } => {
                let Some(cluster) = fx.cluster.as_mut() else { return };
                let waiting = cluster.handle_claimed(room, outcome);
                for request in waiting {
                    self.handle_message(request, now);
                }
                if let Some(cluster) = self.fx.cluster.as_mut() {
                    cluster.end_claimed();
                }
            }
        }
    }

    /// A new connection offered a ticket (PROTOCOL.md 12.3): bind it to the ticket's user, or
    /// close it with 4002.
    fn redeem_ticket(&mut self, conn: crate::ConnId, ticket: &str, now: Instant) {
        let redeemed = match self.fx.cluster.as_mut() {
            Some(cluster) => cluster.redeem(ticket).map_err(|e| e.to_string()),
            None => Err("this server is not in a cluster".to_owned()),
        };
        // The user's connection on the node that redirected is this same client moving: the
        // policy counts only this node's connections (no refusal, no close sent elsewhere).
        let bound = redeemed.and_then(|who| match who {
            Some(who) => {
                let replaced = self.fx.hub.bind_moved_user(conn, &who.user).map_err(|e| e.to_string())?;
                if let Some((roles, expires_ms)) = who.auth {
                    let expires_at = expires_ms.map(|ms| {
                        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
                        now + at.duration_since(std::time::SystemTime::now()).unwrap_or_default()
                    });
                    self.set_identity(conn, roles, expires_at, now);
                }
                Ok(replaced)
            }
            None => Ok(Vec::new()),
        });
        if let Ok(replaced) = &bound {
            let mut ctx = self.fx.ctx(now, self.tick);
            for &old in replaced {
                ctx.close(old, crate::CLOSE_REPLACED, crate::api::CLOSE_REPLACED_REASON);
            }
        }
        if let Err(why) = bound {
            tracing::debug!(%conn, "ticket refused: {why}");
            self.fx.hub.handle_closing(conn);
            self.fx.out.push(Command::Close {
                conn,
                code: ticksock_protocol::CLOSE_BAD_TICKET,
                reason: crate::api::CLOSE_BAD_TICKET_REASON,
            });
        }
    }

    /// The route names, for the reactor.
    pub fn route_table(&self) -> RouteTable {
        self.router.table()
    }

    /// The game, for inspection in tests.
    pub fn game(&self) -> &G {
        &self.game
    }

    /// Connections, users and groups.
    pub fn hub(&self) -> &Hub {
        &self.fx.hub
    }

    /// The counters so far.
    pub fn stats(&self) -> LogicStats {
        LogicStats { encodes: self.fx.encodes, ..self.stats.clone() }
    }

    /// The counters in the form the metrics publish.
    pub fn counters(&self, inbound_depth: usize) -> LogicCounters {
        LogicCounters {
            requests: self.stats.requests,
            errors: self.stats.errors,
            ticks: self.stats.ticks,
            skipped_ticks: self.stats.skipped_ticks,
            panics: self.stats.panics,
            inbound_depth: inbound_depth as u64,
            jobs: self.fx.jobs.counters,
        }
    }

    /// Calls whose handler deferred the reply and that have not been answered yet.
    pub fn deferred_calls(&self) -> usize {
        self.fx.deferred.len()
    }

    /// Handles one message from the reactor.
    pub fn handle_message(&mut self, message: ToLogic, now: Instant) {
        match message {
            ToLogic::Connected { conn, encoding, credentials } => {
                self.fx.hub.handle_connected(conn, encoding);
                if credentials.as_ref().is_some_and(|c| c.tick_stamps) {
                    self.fx.hub.set_tick_stamps(conn);
                }
                if let Some(ticket) = credentials.as_ref().and_then(|c| c.ticket.as_deref()) {
                    self.redeem_ticket(conn, ticket, now);
                }
                if let Some(token) = credentials.as_ref().and_then(|c| c.token.as_deref()) {
                    self.check_upgrade_token(conn, token);
                }
                self.run_hook(now, |game, ctx| game.on_connect(ctx, conn));
            }
            ToLogic::Disconnected(conn) => {
                self.fx.deferred.retain(|caller| caller.conn != conn);
                self.forget_auth(conn);
                if let Some(cluster) = self.fx.cluster.as_mut() {
                    cluster.drop_parked(conn);
                }
                // The game sees the connection's user, groups and session one last time.
                self.run_hook(now, |game, ctx| game.on_disconnect(ctx, conn));
                self.fx.hub.handle_disconnected(conn);
            }
            ToLogic::Dropped(conn) => self.run_hook(now, |game, ctx| game.on_drop(ctx, conn)),
            ToLogic::Expired(conn) => {
                self.run_hook(now, |game, ctx| game.on_expire(ctx, conn));
                self.handle_message(ToLogic::Disconnected(conn), now);
            }
            ToLogic::Resumed(conn) => self.run_hook(now, |game, ctx| game.on_resume(ctx, conn)),
            ToLogic::Echo { conn, opcode, payload } => self.fx.out.send(conn, opcode, &payload),
            // The game closed it: what it sent before it read the close must not act on the
            // game (a late `login` would take its user back from the connection that replaced
            // it). Unanswered: the connection is closing, and its client fails the call.
            ToLogic::Request { conn, id, route, body, encoding } => {
                let state = self.fx.hub.caller_state(conn);
                if state.closing {
                    self.stats.dropped_requests += 1;
                    return;
                }
                let caller = Caller { conn, id, encoding };
                // With an authenticator, a request passes its gate first (PROTOCOL.md 13).
                if self.auth.is_some() {
                    match self.gate(caller, route, &body, state.auth_expiry, now) {
                        auth::Gate::Pass => {}
                        auth::Gate::Hold => {
                            let body = kept(&body);
                            return self.hold(conn, ToLogic::Request { conn, id, route, body, encoding });
                        }
                        auth::Gate::Done => return,
                    }
                }
                self.stats.requests += 1;
                // A deferred route's caller is pending from now until the game answers it.
                let deferred_route = self.router.is_deferred(route);
                if deferred_route {
                    self.fx.deferred.insert(caller);
                }
                if let Some(cluster) = self.fx.cluster.as_mut() {
                    // A park asked outside a dispatch (from a hook) is no request's.
                    cluster.take_park();
                }
                let mut ctx = self.fx.ctx(now, self.tick);
                ctx.know_stamps(caller, state.tick_stamps);
                let (router, game) = (&self.router, &mut self.game);
                let outcome =
                    catch_unwind(AssertUnwindSafe(|| router.dispatch(game, &mut ctx, caller, route, &body)));
                // In a cluster, the handler may have asked to wait for a room's claim: the
                // request is handled again, from the start, once it is answered.
                if let Some(room) = self.fx.cluster.as_mut().and_then(ClusterLink::take_park) {
                    self.stats.requests -= 1;
                    if deferred_route {
                        self.fx.deferred.remove(&caller);
                    }
                    if let Some(cluster) = self.fx.cluster.as_mut() {
                        cluster.park(room, ToLogic::Request { conn, id, route, body: kept(&body), encoding });
                    }
                    return;
                }
                let error = match outcome {
                    Ok(Ok(Some(payload))) => {
                        self.fx.out.push(Command::Send { conn, payload, answers: Some(id), state: None });
                        None
                    }
                    Ok(Ok(None)) => None,
                    Ok(Err(error)) => Some(error),
                    Err(_) => {
                        self.stats.panics += 1;
                        tracing::error!(
                            "route `{}` panicked; answered {caller:?} with INTERNAL",
                            self.router.name(route)
                        );
                        Some(AppError::new(error_code::INTERNAL, "the handler failed"))
                    }
                };
                if let Some(error) = error {
                    if deferred_route {
                        self.fx.deferred.remove(&caller);
                    }
                    self.send_error(caller, &error);
                }
            }
            ToLogic::CloseAfterReplies { conn, code, reason } => {
                self.fx.out.push(Command::Close { conn, code, reason })
            }
            ToLogic::Shutdown => {}
        }
    }

    /// Runs one tick of the game.
    pub fn handle_tick(&mut self, tick: Tick, now: Instant) {
        // From here on, what handlers and hooks change is first in the state of a later tick.
        self.tick = Ticks { current: tick.index, next: tick.index.saturating_add(1) };
        self.stats.ticks += 1;
        self.stats.skipped_ticks += tick.skipped;
        // Not while the bridge has sent news not handled yet: a node's heartbeat may wait
        // there, and a node this one forgot for its own delay would come back empty-handed.
        if let Some(cluster) = self.fx.cluster.as_ref().filter(|c| !c.has_news()) {
            let dead = self.fx.hub.cluster_mut().expire(now);
            if !dead.is_empty() {
                cluster.count_expiries(dead.len());
                tracing::info!(nodes = ?dead, "cluster: nodes forgotten: their lease passed without a renewal");
            }
        }
        self.scan_expiries(now);
        self.run_hook(now, |game, ctx| game.on_tick(ctx));
    }

    /// Runs the game's shutdown hook, then fails every deferred call still unanswered, and
    /// every request parked on a room's claim, with `SHUTTING_DOWN`, so that no accepted
    /// request is left without an answer.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.run_hook(now, |game, ctx| game.on_shutdown(ctx));
        let error = AppError::new(error_code::SHUTTING_DOWN, "the server is shutting down");
        for caller in std::mem::take(&mut self.fx.deferred) {
            self.send_error(caller, &error);
        }
        let parked = self.fx.cluster.as_mut().map(ClusterLink::take_parked).unwrap_or_default();
        for request in parked {
            if let ToLogic::Request { conn, id, encoding, .. } = request {
                self.send_error(Caller { conn, id, encoding }, &error);
            }
        }
    }

    /// Takes the commands produced since the last call, if any.
    pub fn poll_batch(&mut self) -> Option<Batch> {
        if let Some(cluster) = self.fx.cluster.as_mut() {
            let (users, groups) = self.fx.hub.take_changes().unwrap_or_default();
            let (users, groups) = cluster.publish(users, groups);
            self.fx.hub.changes_unsent(users, groups);
            cluster.log_drops();
        }
        if self.fx.out.is_empty() {
            return None;
        }
        let next = self.spare_batches.pop().unwrap_or_default();
        Some(std::mem::replace(&mut self.fx.out, next))
    }

    /// Hands back an applied batch, so its capacity serves a later one instead of a batch
    /// that starts empty and grows (a reallocation of its commands and of its payload buffer
    /// every doubling: one for every 12 echo calls in issue 18's profile). Kept, emptied, until
    /// [`Logic::poll_batch`] needs a new batch; at most as many as the reactor may hand back at once
    /// (`bridge::SPARE_BATCHES`). Optional.
    pub fn recycle(&mut self, mut batch: Batch) {
        if self.spare_batches.len() < crate::bridge::SPARE_BATCHES {
            batch.clear();
            self.spare_batches.push(batch);
        }
    }

    fn run_hook(&mut self, now: Instant, hook: impl FnOnce(&mut G, &mut Ctx<'_>)) {
        let mut ctx = self.fx.ctx(now, self.tick);
        let game = &mut self.game;
        if catch_unwind(AssertUnwindSafe(|| hook(game, &mut ctx))).is_err() {
            self.stats.panics += 1;
            tracing::error!("a game hook panicked; the server keeps running");
        }
    }

    fn send_error(&mut self, caller: Caller, error: &AppError) {
        self.count_error(error.code);
        let payload = crate::api::frames::error(&mut self.fx.out, caller.id, caller.encoding, error);
        self.fx.out.push(Command::Send { conn: caller.conn, payload, answers: Some(caller.id), state: None });
    }

    fn count_error(&mut self, code: u16) {
        let slot = usize::from(code).min(self.stats.errors.len() - 1);
        self.stats.errors[slot] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::DataOpcode;
    use crate::{ConnId, Echo};

    fn echo(logic: &mut Logic<Echo>, conn: ConnId, now: Instant) {
        let payload = bytes::Bytes::from_static(&[1]);
        logic.handle_message(ToLogic::Echo { conn, opcode: DataOpcode::Binary, payload }, now);
    }

    #[test]
    fn a_kept_body_does_not_keep_the_read_buffer_it_came_from() {
        let buffer = bytes::Bytes::from(vec![7u8; 16 << 10]);
        let body = buffer.slice(100..132);
        let kept = kept(&body);
        drop(body);
        assert!(buffer.is_unique(), "the kept copy shares nothing with the buffer");
        assert_eq!(kept, buffer.slice(100..132));
    }

    #[test]
    fn a_recycled_batch_lends_its_capacity_and_never_loses_queued_commands() {
        let mut logic = Logic::new(Echo);
        let now = Instant::now();
        let conn = ConnId::new(1, 1);
        for _ in 0..4096 {
            echo(&mut logic, conn, now);
        }
        let big = logic.poll_batch().expect("4096 commands");
        assert!(logic.poll_batch().is_none());

        // Something is queued: it stays in the batch being filled, so nothing is lost.
        echo(&mut logic, conn, now);
        logic.recycle(big);
        let batch = logic.poll_batch().expect("the command queued before recycling");
        assert_eq!(batch.sends().count(), 1);
        assert_eq!(batch.sends().next().map(|(_, f)| f.payload), Some(&[1u8][..]));

        // The spent batch, emptied, is the one filled next.
        echo(&mut logic, conn, now);
        let batch = logic.poll_batch().expect("one command");
        assert_eq!(batch.sends().count(), 1, "the spent commands are dropped");
        assert!(batch.commands.capacity() >= 4096, "the spent batch's capacity is reused");

        // No more spares than the reactor can return.
        (0..2 * crate::bridge::SPARE_BATCHES).for_each(|_| logic.recycle(Batch::default()));
        assert_eq!(logic.spare_batches.len(), crate::bridge::SPARE_BATCHES);
    }

    /// A game whose only route binds the caller to a user, replacing the user's other
    /// connections.
    struct Accounts;

    impl Game for Accounts {
        const USER_POLICY: crate::UserPolicy = crate::UserPolicy::ReplaceOld;

        fn routes(router: &mut crate::Router<Self>) {
            router.route("login", |_: &mut Accounts, ctx: &mut Ctx<'_>, caller: Caller, name: String| {
                ctx.bind_user(caller.conn, &name).map_err(|e| AppError::new(1000, e.to_string()))
            });
        }
    }

    fn login(logic: &mut Logic<Accounts>, conn: ConnId, id: u32, now: Instant) {
        let route = logic.route_table().get("login").expect("the route");
        let body = bytes::Bytes::from(ticksock_protocol::encode_body("ann").expect("encodes"));
        let encoding = ticksock_protocol::Encoding::Binary;
        logic.handle_message(ToLogic::Request { conn, id, route, body, encoding }, now);
    }

    fn closes(batch: &Batch) -> Vec<(ConnId, u16)> {
        let close = |c: &Command| match *c {
            Command::Close { conn, code, .. } => Some((conn, code)),
            _ => None,
        };
        batch.commands().iter().filter_map(close).collect()
    }

    /// A game whose only route enters a room that lives on one node of a cluster, counting
    /// the runs that got past the claim.
    #[derive(Default)]
    struct Claimer {
        entered: u32,
    }

    impl Game for Claimer {
        fn routes(router: &mut crate::Router<Self>) {
            router.route("enter", |game: &mut Claimer, ctx: &mut Ctx<'_>, caller: Caller, room: String| {
                ctx.claim_room(caller, &room)?;
                game.entered += 1;
                Ok::<_, AppError>(room)
            });
            router.route("ping", |_: &mut Claimer, _: &mut Ctx<'_>, _: Caller, (): ()| Ok::<_, AppError>(()));
            router.route("group", |_: &mut Claimer, ctx: &mut Ctx<'_>, caller: Caller, group: String| {
                ctx.hub_mut().join(caller.conn, &group);
                Ok::<_, AppError>(())
            });
            router.route("dispose", |_: &mut Claimer, ctx: &mut Ctx<'_>, _: Caller, room: String| {
                ctx.release_room(&room);
                Ok::<_, AppError>(())
            });
        }

        fn on_connect(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
            // A hook has no request to park: this must not park the next one.
            let caller = Caller { conn, id: 0, encoding: ticksock_protocol::Encoding::Binary };
            let _ = ctx.claim_room(caller, "hooked");
        }
    }

    use crate::cluster::link::{ClaimOutcome, ToBridge};

    /// A cluster node's logic with the bridge's ends of its channels, and `conns` connected.
    fn clustered<G: Game>(
        game: G,
        conns: &[ConnId],
        now: Instant,
    ) -> (Logic<G>, crossbeam_channel::Receiver<ToBridge>, crossbeam_channel::Sender<FromBridge>) {
        clustered_with(game, conns, now, 64)
    }

    /// [`clustered`] with a channel toward the bridge of `capacity` messages.
    fn clustered_with<G: Game>(
        game: G,
        conns: &[ConnId],
        now: Instant,
        capacity: usize,
    ) -> (Logic<G>, crossbeam_channel::Receiver<ToBridge>, crossbeam_channel::Sender<FromBridge>) {
        let (to_bridge, from_logic) = crossbeam_channel::bounded(capacity);
        let (to_logic, from_bridge) = crossbeam_channel::bounded(64);
        let tickets = crate::cluster::ticket::Tickets::new(b"secret", "me", 1, 10_000);
        let metrics = std::sync::Arc::new(crate::cluster::ClusterMetrics::default());
        let link = ClusterLink::new("me", to_bridge, from_bridge, tickets, metrics);
        let mut logic = Logic::new(game);
        logic.join_cluster(link, Registry::new("me", std::time::Duration::from_secs(5)));
        let encoding = ticksock_protocol::Encoding::Binary;
        for &conn in conns {
            logic.handle_message(ToLogic::Connected { conn, encoding, credentials: None }, now);
        }
        (logic, from_logic, to_logic)
    }

    fn enter(logic: &mut Logic<Claimer>, conn: ConnId, id: u32, room: &str, now: Instant) {
        call(logic, "enter", conn, id, room, now);
    }

    fn call(logic: &mut Logic<Claimer>, route: &str, conn: ConnId, id: u32, arg: &str, now: Instant) {
        let route = logic.route_table().get(route).expect("the route");
        let body = bytes::Bytes::from(ticksock_protocol::encode_body(arg).expect("encodes"));
        let encoding = ticksock_protocol::Encoding::Binary;
        logic.handle_message(ToLogic::Request { conn, id, route, body, encoding }, now);
    }

    fn answered(batch: Option<Batch>) -> Vec<(ConnId, u32)> {
        let answer = |c: &Command| match *c {
            Command::Send { conn, answers: Some(id), .. } => Some((conn, id)),
            _ => None,
        };
        batch.map(|b| b.commands().iter().filter_map(answer).collect()).unwrap_or_default()
    }

    fn claims(from_logic: &crossbeam_channel::Receiver<ToBridge>) -> Vec<String> {
        from_logic
            .try_iter()
            .filter_map(|m| match m {
                ToBridge::Claim(room) => Some(room),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_parked_request_is_handled_once_its_claim_is_answered_unless_its_connection_left() {
        let (a, b, c, now) = (ConnId::new(1, 1), ConnId::new(2, 1), ConnId::new(3, 1), Instant::now());
        let (mut logic, from_logic, _) = clustered(Claimer::default(), &[a, b, c], now);
        assert_eq!(claims(&from_logic), ["hooked"], "each on_connect asks; one claim is sent");
        let ping = logic.route_table().get("ping").expect("the route");
        let (body, encoding) = (bytes::Bytes::new(), ticksock_protocol::Encoding::Binary);
        logic.handle_message(ToLogic::Request { conn: c, id: 9, route: ping, body, encoding }, now);
        assert_eq!(answered(logic.poll_batch()), [(c, 9)], "the hooks' claims park no request");
        enter(&mut logic, a, 1, "r", now);
        enter(&mut logic, b, 1, "r", now);
        assert_eq!(claims(&from_logic), ["r"], "one claim for both");
        assert!(answered(logic.poll_batch()).is_empty(), "both wait for the claim");
        assert_eq!(logic.game().entered, 0);

        // `a` leaves before the answer: its request must not run for a connection that is gone.
        logic.handle_message(ToLogic::Disconnected(a), now);
        let outcome = ClaimOutcome::Mine;
        logic.handle_cluster(FromBridge::Claimed { room: "r".into(), outcome }, now);
        assert_eq!(answered(logic.poll_batch()), [(b, 1)]);
        assert_eq!(logic.game().entered, 1);

        // The room is held here now: no more parking.
        enter(&mut logic, c, 7, "r", now);
        assert_eq!(answered(logic.poll_batch()), [(c, 7)]);
        assert!(claims(&from_logic).is_empty());
    }

    /// What the bridge gets, as `logic` offers it while the bridge takes one message at a
    /// time: each turn takes one, and the logic thread's next batch offers what waits.
    fn trickle<G: Game>(
        logic: &mut Logic<G>,
        from_logic: &crossbeam_channel::Receiver<ToBridge>,
    ) -> Vec<String> {
        let mut got = Vec::new();
        for _ in 0..16 {
            logic.poll_batch();
            got.extend(from_logic.try_recv().ok().map(|m| match m {
                ToBridge::Claim(room) => format!("claim {room}"),
                ToBridge::Release(room) => format!("release {room}"),
                ToBridge::Groups(entries) => format!("groups {entries:?}"),
                other => format!("{other:?}"),
            }));
        }
        got
    }

    #[test]
    fn counts_claims_and_releases_the_bridge_cannot_take_yet_are_offered_again_in_order() {
        let (a, now) = (ConnId::new(1, 1), Instant::now());
        // Room for one message: `a`'s on_connect claim fills it.
        let (mut logic, from_logic, _) = clustered_with(Claimer::default(), &[a], now, 1);
        call(&mut logic, "group", a, 1, "g", now);
        enter(&mut logic, a, 2, "r", now);
        assert_eq!(answered(logic.poll_batch()), [(a, 1)], "the enter waits for its claim");
        assert_eq!(trickle(&mut logic, &from_logic), ["claim hooked", "claim r", r#"groups [("g", 1)]"#]);

        let outcome = ClaimOutcome::Mine;
        logic.handle_cluster(FromBridge::Claimed { room: "r".into(), outcome }, now);
        assert_eq!(answered(logic.poll_batch()), [(a, 2)]);
        // While the channel is full (y's claim), `r` is given up and claimed again: the
        // release goes first; a room not held is not released.
        enter(&mut logic, a, 3, "y", now);
        call(&mut logic, "dispose", a, 4, "r", now);
        enter(&mut logic, a, 5, "r", now);
        call(&mut logic, "dispose", a, 6, "z", now);
        assert_eq!(answered(logic.poll_batch()), [(a, 4), (a, 6)]);
        assert_eq!(trickle(&mut logic, &from_logic), ["claim y", "release r", "claim r"]);
    }

    #[test]
    fn no_node_is_forgotten_while_its_heartbeat_waits_to_be_handled() {
        use crate::cluster::wire::RegistryEvent;
        let t0 = Instant::now();
        let lease = std::time::Duration::from_secs(5);
        let (mut logic, _from_logic, to_logic) = clustered(Claimer::default(), &[], t0);
        let heartbeat = || RegistryEvent::Heartbeat { node: "a".into(), epoch: 1, url: "ws://a/".into() };
        let tick = |index, at| Tick { index, scheduled: at, lateness: std::time::Duration::ZERO, skipped: 0 };
        logic.handle_cluster(FromBridge::Event(heartbeat()), t0);
        // Its next heartbeat came in time, but this node is behind on what the bridge sent.
        to_logic.send(FromBridge::Event(heartbeat())).expect("open");
        let late = t0 + lease;
        logic.handle_tick(tick(1, late), late);
        assert_eq!(logic.hub().cluster().epoch_of("a"), Some(1), "its heartbeat is still waiting");
        logic.handle_cluster_news(late);
        logic.handle_tick(tick(2, late), late);
        assert_eq!(logic.hub().cluster().epoch_of("a"), Some(1));
        logic.handle_tick(tick(3, late + lease), late + lease);
        assert_eq!(logic.hub().cluster().epoch_of("a"), None, "silent for a lease since");
    }

    #[test]
    fn a_room_held_by_a_node_whose_url_is_not_known_yet_is_claimed_not_redirected_to_nowhere() {
        use crate::cluster::wire::RegistryEvent;
        let (c, now) = (ConnId::new(1, 1), Instant::now());
        let (mut logic, from_logic, _) = clustered(Claimer::default(), &[c], now);
        let _ = claims(&from_logic);
        let rooms = RegistryEvent::Rooms { node: "a".into(), epoch: 1, entries: vec![("r".into(), true)] };
        logic.handle_cluster(FromBridge::Event(rooms), now);
        enter(&mut logic, c, 1, "r", now);
        assert!(answered(logic.poll_batch()).is_empty(), "no redirect without a URL");
        assert_eq!(claims(&from_logic), ["r"]);
        let outcome = ClaimOutcome::Theirs { node: "a".into(), epoch: 1, url: "ws://a/".into() };
        logic.handle_cluster(FromBridge::Claimed { room: "r".into(), outcome }, now);
        let batch = logic.poll_batch().expect("the redirect");
        let frame = batch.sends().next().expect("one answer").1.payload.to_vec();
        let redirect = String::from_utf8_lossy(&frame).into_owned();
        assert!(redirect.contains("ws://a/?ticket="), "{redirect:?}");
        assert_eq!(logic.stats().errors[usize::from(error_code::REDIRECT)], 1);
    }

    #[test]
    fn a_claim_answer_older_than_the_stream_redirects_its_requests_but_lists_no_room() {
        use crate::cluster::wire::RegistryEvent;
        let (c, now) = (ConnId::new(1, 1), Instant::now());
        let (mut logic, from_logic, _) = clustered(Claimer::default(), &[c], now);
        let _ = claims(&from_logic);
        let heartbeat = RegistryEvent::Heartbeat { node: "a".into(), epoch: 1, url: "ws://a/".into() };
        logic.handle_cluster(FromBridge::Event(heartbeat), now);
        enter(&mut logic, c, 1, "r", now);
        assert_eq!(claims(&from_logic), ["r"]);
        // Redis answered "a holds r"; before that answer came, the stream said a gave r up.
        let released =
            RegistryEvent::Rooms { node: "a".into(), epoch: 1, entries: vec![("r".into(), false)] };
        logic.handle_cluster(FromBridge::Event(released), now);
        let outcome = ClaimOutcome::Theirs { node: "a".into(), epoch: 1, url: "ws://a/".into() };
        logic.handle_cluster(FromBridge::Claimed { room: "r".into(), outcome }, now);
        assert_eq!(answered(logic.poll_batch()), [(c, 1)], "redirected, as Redis answered");
        assert_eq!(logic.stats().errors[usize::from(error_code::REDIRECT)], 1);
        assert!(logic.hub().cluster().room_owner("r").is_none(), "the stream's word stands");
        enter(&mut logic, c, 2, "r", now);
        assert_eq!(claims(&from_logic), ["r"], "the next enter asks Redis again");
    }

    #[test]
    fn a_request_parked_at_shutdown_is_answered_shutting_down() {
        let (a, now) = (ConnId::new(1, 1), Instant::now());
        let (mut logic, from_logic, _) = clustered(Claimer::default(), &[a], now);
        enter(&mut logic, a, 3, "r", now);
        assert_eq!(claims(&from_logic), ["hooked", "r"]);
        assert!(answered(logic.poll_batch()).is_empty());
        logic.handle_shutdown(now);
        assert_eq!(answered(logic.poll_batch()), [(a, 3)]);
        assert_eq!(logic.stats().errors[usize::from(error_code::SHUTTING_DOWN)], 1);
        assert_eq!(logic.game().entered, 0);
    }

    #[test]
    fn a_replaced_connection_cannot_take_its_user_back_with_a_request_sent_before_its_close() {
        let (old, new, now) = (ConnId::new(1, 1), ConnId::new(2, 1), Instant::now());
        let encoding = ticksock_protocol::Encoding::Binary;
        let mut logic = Logic::new(Accounts);
        logic.handle_message(ToLogic::Connected { conn: old, encoding, credentials: None }, now);
        logic.handle_message(ToLogic::Connected { conn: new, encoding, credentials: None }, now);
        login(&mut logic, old, 1, now);
        login(&mut logic, new, 1, now);
        let batch = logic.poll_batch().expect("replies and a close");
        assert_eq!(closes(&batch), [(old, crate::CLOSE_REPLACED)], "old is replaced");

        // `old` sent a second login before it read its close; it arrives now.
        login(&mut logic, old, 2, now);
        let late = logic.poll_batch();
        assert_eq!(late.as_ref().map(closes), None, "no command at all: new is not kicked");
        assert_eq!(logic.hub().user_connections("ann").collect::<Vec<_>>(), [new]);
        assert_eq!(logic.stats().dropped_requests, 1);

        // Once `old` has gone, ann still has her connection.
        logic.handle_message(ToLogic::Disconnected(old), now);
        assert_eq!(logic.hub().user_connections("ann").collect::<Vec<_>>(), [new]);
    }
}
