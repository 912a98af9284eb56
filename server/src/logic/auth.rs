//! The logic core's side of authentication (PROTOCOL.md section 13): tokens checked on the
//! worker pool, the requests that wait for the check, the `auth` route, guards before a
//! handler, and expiry. `now` is passed in, as everywhere in the logic core.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ticksock_protocol::{AuthReply, CLOSE_AUTH_EXPIRED, CLOSE_AUTH_FAILED, MAX_TOKEN_LEN, error_code};

use super::Logic;
use crate::ConnId;
use crate::api::auth::{Authenticated, Bucket};
use crate::api::{AppError, Authenticator, Caller, Game, Identity};
use crate::bridge::{Command, RouteId, ToLogic};
use crate::jobs::{JobFor, Then};

/// Requests a connection may send while its upgrade's token is being checked; past it, each
/// is answered `busy`.
pub const MAX_WAITING_REQUESTS: usize = 256;

/// How often the logic core looks for identities past their expiry and grace (a request of one
/// is refused at once, whenever it comes).
const EXPIRY_SCAN: Duration = Duration::from_secs(1);

use crate::api::{CLOSE_AUTH_EXPIRED_REASON, CLOSE_AUTH_FAILED_REASON};

/// What the logic core keeps for authentication.
pub(crate) struct Auth {
    verifier: Arc<dyn Authenticator>,
    route: RouteId,
    pub(crate) grace: Duration,
    /// Connections whose upgrade's token is being checked, with their requests meanwhile.
    waiting: rustc_hash::FxHashMap<ConnId, Vec<ToLogic>>,
    /// Per connection, the buckets of the routes with their own rate.
    buckets: rustc_hash::FxHashMap<ConnId, Vec<(RouteId, Bucket)>>,
    next_scan: Option<Instant>,
}

impl Auth {
    pub(crate) fn new(verifier: Arc<dyn Authenticator>, route: RouteId, grace: Duration) -> Self {
        Self {
            verifier,
            route,
            grace,
            waiting: Default::default(),
            buckets: Default::default(),
            next_scan: None,
        }
    }
}

/// What happens to a request before its handler.
pub(crate) enum Gate {
    /// Dispatch it.
    Pass,
    /// Keep it until the connection's token is checked ([`Logic::hold`]).
    Hold,
    /// Answered or dropped: nothing more to do.
    Done,
}

impl<G: Game> Logic<G> {
    /// A new connection offered `token` at its upgrade: check it on the worker pool; its
    /// requests wait for the answer.
    pub(crate) fn check_upgrade_token(&mut self, conn: ConnId, token: &str) {
        let Some(auth) = self.auth.as_mut() else { return };
        if token.len() > MAX_TOKEN_LEN {
            return self.refuse_connection(conn, "a token over MAX_TOKEN_LEN");
        }
        let (verifier, token) = (auth.verifier.clone(), token.to_owned());
        let work: crate::jobs::Work = Box::new(move || Box::new(verifier.verify(&token)));
        if self.fx.jobs.submit(JobFor::Connection(conn), work, Then::Auth) {
            if let Some(auth) = self.auth.as_mut() {
                auth.waiting.insert(conn, Vec::new());
            }
        } else {
            self.refuse_connection(conn, "the job queue is full");
        }
    }

    fn refuse_connection(&mut self, conn: ConnId, why: &str) {
        tracing::debug!(%conn, "token refused: {why}");
        self.fx.hub.handle_closing(conn);
        self.fx.out.push(Command::Close { conn, code: CLOSE_AUTH_FAILED, reason: CLOSE_AUTH_FAILED_REASON });
    }

    /// A connection has gone: forget what authentication kept for it.
    pub(crate) fn forget_auth(&mut self, conn: ConnId) {
        if let Some(auth) = self.auth.as_mut() {
            auth.waiting.remove(&conn);
            auth.buckets.remove(&conn);
        }
    }

    /// Before a request's handler: waits for a token check, refuses an expired identity, runs
    /// the `auth` route, and checks the route's guard. Looks, never takes: the hot path of a
    /// request that passes is a few lookups.
    /// `expiry` is when the connection's identity expires
    /// ([`Hub::auth_expiry`](crate::Hub::auth_expiry), read with the rest of the connection's
    /// state before the gate).
    pub(crate) fn gate(
        &mut self,
        caller: Caller,
        route: RouteId,
        body: &Bytes,
        expiry: Option<Instant>,
        now: Instant,
    ) -> Gate {
        let Some(auth) = self.auth.as_mut() else { return Gate::Pass };
        let conn = caller.conn;
        if !auth.waiting.is_empty()
            && let Some(waiting) = auth.waiting.get(&conn)
        {
            if waiting.len() < MAX_WAITING_REQUESTS {
                return Gate::Hold;
            }
            let busy = AppError::new(error_code::BUSY, "too many requests before the token was checked");
            self.send_error(caller, &busy);
            return Gate::Done;
        }
        let (grace, auth_route) = (auth.grace, auth.route);
        if expiry.is_some_and(|at| now >= at + grace) {
            // Past its grace: not answered; the connection closes.
            self.expire_identity(conn);
            return Gate::Done;
        }
        if route == auth_route {
            self.auth_request(caller, body);
            return Gate::Done;
        }
        let Some(guard) = self.router.guard(route) else { return Gate::Pass };
        let refusal = if guard.authenticated && !self.fx.hub.is_authenticated(conn) {
            Some(AppError::new(error_code::UNAUTHENTICATED, "this route needs an authenticated connection"))
        } else if guard.role.as_deref().is_some_and(|role| !self.fx.hub.has_role(conn, role)) {
            Some(AppError::new(error_code::FORBIDDEN, "this route needs a role the connection does not have"))
        } else if let Some(rate) = guard.rate {
            let buckets = self.auth.as_mut().map(|a| a.buckets.entry(conn).or_default());
            let allowed = buckets.is_none_or(|buckets| {
                let at = match buckets.iter().position(|(r, _)| *r == route) {
                    Some(at) => at,
                    None => {
                        buckets.push((route, Bucket::full(rate, now)));
                        buckets.len() - 1
                    }
                };
                buckets[at].1.take(rate, now)
            });
            (!allowed).then(|| AppError::new(error_code::RATE_LIMITED, "this route's own rate is exceeded"))
        } else {
            None
        };
        match refusal {
            Some(error) => {
                self.stats.requests += 1;
                self.send_error(caller, &error);
                Gate::Done
            }
            None => Gate::Pass,
        }
    }

    /// Keeps a request of a connection whose upgrade's token is being checked.
    pub(crate) fn hold(&mut self, conn: ConnId, request: ToLogic) {
        if let Some(waiting) = self.auth.as_mut().and_then(|a| a.waiting.get_mut(&conn)) {
            waiting.push(request);
        }
    }

    /// The `auth` route: check the token on the worker pool; answered when it is back.
    fn auth_request(&mut self, caller: Caller, body: &Bytes) {
        self.stats.requests += 1;
        let token: String = match crate::api::frames::request(caller.encoding, body) {
            Ok(token) => token,
            Err(error) => return self.send_error(caller, &error),
        };
        let Some(auth) = self.auth.as_ref() else { return };
        if token.len() > MAX_TOKEN_LEN {
            let error = AppError::new(error_code::UNAUTHENTICATED, "the token is over MAX_TOKEN_LEN");
            return self.send_error(caller, &error);
        }
        let verifier = auth.verifier.clone();
        let work: crate::jobs::Work = Box::new(move || Box::new(verifier.verify(&token)));
        if self.fx.jobs.submit(JobFor::Call(caller), work, Then::Auth) {
            self.fx.deferred.insert(caller);
        } else {
            let busy = AppError::new(error_code::BUSY, "the server is busy: its queue for slow work is full");
            self.send_error(caller, &busy);
        }
    }

    /// A token check came back (`None`: the verifier panicked).
    pub(crate) fn handle_auth_done(
        &mut self,
        job_for: JobFor,
        verdict: Option<Result<Identity, String>>,
        now: Instant,
    ) {
        match job_for {
            JobFor::Connection(conn) => {
                let waiting = self.auth.as_mut().and_then(|a| a.waiting.remove(&conn)).unwrap_or_default();
                let bound = match verdict {
                    Some(Ok(identity)) => self.apply_identity(conn, identity, now),
                    Some(Err(why)) => Err(why),
                    None => Err("the verifier panicked".to_owned()),
                };
                match bound {
                    Ok(_) => {
                        for request in waiting {
                            self.handle_message(request, now);
                        }
                    }
                    Err(why) => self.refuse_connection(conn, &why),
                }
            }
            JobFor::Call(caller) => {
                self.fx.deferred.remove(&caller);
                let answer = match verdict {
                    Some(Ok(identity)) => self.apply_identity(caller.conn, identity, now),
                    Some(Err(why)) => Err(why),
                    None => Err("the verifier failed".to_owned()),
                };
                match answer {
                    Ok(reply) => {
                        let mut ctx = self.fx.ctx(now, self.tick);
                        ctx.reply(caller, &reply);
                    }
                    Err(why) => self.send_error(caller, &AppError::new(error_code::UNAUTHENTICATED, why)),
                }
            }
            JobFor::Game => {}
        }
    }

    /// Makes `identity` the connection's: binds its user (under the game's policy), sets its
    /// roles and expiry, and tells the game.
    fn apply_identity(
        &mut self,
        conn: ConnId,
        identity: Identity,
        now: Instant,
    ) -> Result<AuthReply, String> {
        let expires_at = identity.expires_at(now, SystemTime::now());
        if expires_at.is_some_and(|at| at <= now) {
            return Err("the token has expired".to_owned());
        }
        self.fx.ctx(now, self.tick).bind_user(conn, &identity.user).map_err(|e| e.to_string())?;
        self.set_identity(conn, identity.roles.clone(), expires_at, now);
        let expires_in_ms = expires_at.map(|at| at.saturating_duration_since(now).as_millis() as u64);
        Ok(AuthReply { user: identity.user, roles: identity.roles, expires_in_ms })
    }

    /// Sets the connection's roles and expiry (its user is bound already) and tells the game:
    /// after a verified token, or a redirect's ticket that carried them.
    pub(crate) fn set_identity(
        &mut self,
        conn: ConnId,
        roles: Vec<String>,
        expires_at: Option<Instant>,
        now: Instant,
    ) {
        self.fx.hub.set_auth(conn, Authenticated { roles, expires_at });
        self.run_hook(now, |game, ctx| game.on_auth(ctx, conn));
    }

    /// At a tick: closes the connections whose identity expired more than the grace ago.
    pub(crate) fn scan_expiries(&mut self, now: Instant) {
        let Some(auth) = self.auth.as_mut() else { return };
        if auth.next_scan.is_some_and(|at| now < at) {
            return;
        }
        auth.next_scan = Some(now + EXPIRY_SCAN);
        let grace = auth.grace;
        let expired: Vec<ConnId> = self
            .fx
            .hub
            .expiring()
            .filter(|&(conn, at)| now >= at + grace && !self.fx.hub.is_closing(conn))
            .map(|(conn, _)| conn)
            .collect();
        for conn in expired {
            self.expire_identity(conn);
        }
    }

    /// Pushes `auth_expired`, then closes with 4004.
    fn expire_identity(&mut self, conn: ConnId) {
        if self.fx.hub.is_closing(conn) {
            return;
        }
        let payload =
            self.fx.out.push_payload(crate::bridge::DataOpcode::of(self.fx.hub.encoding(conn)), |buf| {
                // `()` always encodes.
                let _ = ticksock_protocol::write_push(
                    self.fx.hub.encoding(conn),
                    buf,
                    ticksock_protocol::TOPIC_AUTH_EXPIRED,
                    &(),
                );
            });
        self.fx.out.push(Command::Send { conn, payload, answers: None, state: None });
        self.fx.hub.handle_closing(conn);
        self.fx.out.push(Command::Close {
            conn,
            code: CLOSE_AUTH_EXPIRED,
            reason: CLOSE_AUTH_EXPIRED_REASON,
        });
    }
}
