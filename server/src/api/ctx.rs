//! [`Ctx`]: what a handler or hook can do (reply, push, close, read the clock), and
//! [`HubMut`], the groups and sessions it may change.

use std::collections::HashSet;
use std::time::Instant;

use serde::Serialize;
use ticksock_protocol::Encoding;

use super::hub::{BindError, Hub};
use super::{AppError, Caller, frames};
use crate::ConnId;
use crate::bridge::{Batch, Command, DataOpcode};
use crate::cluster::link::ClusterLink;
use crate::cluster::wire::{Delivery, PushFrames as RemotePush};
use crate::jobs::{JobFor, Jobs};
use frames::PushFrames;

/// Queues one push for each connection, encoded at most once per encoding, as one command per
/// encoding.
pub(super) fn push_all<T: Serialize + ?Sized>(
    out: &mut Batch,
    hub: &Hub,
    encodes: &mut u64,
    conns: impl IntoIterator<Item = ConnId>,
    topic: &str,
    value: &T,
) -> usize {
    let mut frames = PushFrames::new(topic, value);
    let state = hub.state_topic(topic);
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
                Ok([conn]) => Command::Send { conn, payload, answers: None, state },
                Err(conns) => Command::SendMany { conns, payload, state },
            });
        }
    }
    queued
}

/// Queues a push that another node encoded (complete frames in both encodings) for each of
/// `conns`, one command per encoding. Its topic is inside the frames, unread: it is an event
/// (PROTOCOL.md 7.3).
pub(crate) fn push_encoded(
    out: &mut Batch,
    hub: &Hub,
    conns: impl IntoIterator<Item = ConnId>,
    push: &RemotePush,
) -> usize {
    let (mut binary, mut json) = (Vec::new(), Vec::new());
    for conn in conns {
        match hub.encoding(conn) {
            Encoding::Binary => binary.push(conn),
            Encoding::Json => json.push(conn),
        }
    }
    let mut queued = 0;
    for (encoding, conns, frame) in
        [(Encoding::Binary, binary, &push.binary), (Encoding::Json, json, &push.json)]
    {
        if conns.is_empty() {
            continue;
        }
        let payload = out.push_payload(DataOpcode::of(encoding), |buf| buf.extend_from_slice(frame));
        queued += conns.len();
        out.push(match <[ConnId; 1]>::try_from(conns) {
            Ok([conn]) => Command::Send { conn, payload, answers: None, state: None },
            Err(conns) => Command::SendMany { conns, payload, state: None },
        });
    }
    queued
}

/// Whom a push to other nodes is for.
#[derive(Clone, Copy)]
enum Recipients<'a> {
    User(&'a str),
    Group(&'a str),
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

    /// Gives every connection of `user` on this node these roles, at once: the next request of
    /// each is checked against them (PROTOCOL.md 13.3). Returns how many connections.
    pub fn set_roles(&mut self, user: &str, roles: &[String]) -> usize {
        self.0.set_roles(user, roles)
    }

    /// The connection's session value of type `T`, created with `Default` on first use.
    pub fn session_mut<T: std::any::Any + Send + Default>(&mut self, conn: ConnId) -> Option<&mut T> {
        self.0.session_mut(conn)
    }
}

/// Where the logic thread is in its ticks, for a [`Ctx`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ticks {
    /// The index of the tick running (in `on_tick`) or of the last one run; 0 before any.
    pub(crate) current: u64,
    /// The lowest index the next tick to start may have: the current one's plus 1, or 0
    /// before any has run. (The next tick's index is this or more: slots may be skipped.)
    pub(crate) next: u64,
}

/// What a handler or hook can do: reply, push, close, and read the clock.
///
/// It only queues commands; the logic thread sends them to the reactor as one batch when the
/// current batch of work is done.
pub struct Ctx<'a> {
    pub(super) out: &'a mut Batch,
    pub(super) scratch: &'a mut Vec<u8>,
    now: Instant,
    ticks: Ticks,
    encodes: &'a mut u64,
    deferred: &'a mut HashSet<Caller>,
    hub: &'a mut Hub,
    cluster: Option<&'a mut ClusterLink>,
    jobs: &'a mut Jobs,
    /// Whether the caller of the request being handled asked for tick stamps, read with the
    /// rest of its connection's state before the handler ([`Ctx::know_stamps`]), so its reply
    /// needs no lookup of its own.
    known_stamps: Option<(Caller, bool)>,
}

/// A job's continuation as the logic thread keeps it: the game, a context, and the job's value
/// (a `T` boxed as `Any`, downcast inside).
pub(crate) type Then<G> = Box<dyn FnOnce(&mut G, &mut Ctx<'_>, Box<dyn std::any::Any + Send>) + Send>;

impl<'a> Ctx<'a> {
    #[allow(clippy::too_many_arguments)] // each is a separate borrow of the logic's state
    pub(crate) fn new(
        out: &'a mut Batch,
        scratch: &'a mut Vec<u8>,
        now: Instant,
        ticks: Ticks,
        encodes: &'a mut u64,
        deferred: &'a mut HashSet<Caller>,
        hub: &'a mut Hub,
        cluster: Option<&'a mut ClusterLink>,
        jobs: &'a mut Jobs,
    ) -> Self {
        Self { out, scratch, now, ticks, encodes, deferred, hub, cluster, jobs, known_stamps: None }
    }

    /// Tells the context whether `caller` (the request about to be handled) asked for tick
    /// stamps, as the logic thread read it from the hub before the handler.
    pub(crate) fn know_stamps(&mut self, caller: Caller, stamps: bool) {
        self.known_stamps = Some((caller, stamps));
    }

    /// Runs `work` on the server's worker pool, off the logic thread (a database write, a call
    /// to another service), then `then` on the logic thread with its value, between ticks, as
    /// any other event: `then` gets the game and a context, and may reply, push, or spawn
    /// another job. `G` is the game's own type.
    ///
    /// `job_for` says whom the result is for: a result for a connection that has gone since
    /// is dropped (`then` does not run), so it can never act for a newcomer. A job for a
    /// [`JobFor::Call`] that panics answers the call `INTERNAL`; the server goes on.
    ///
    /// Refused at once with an Error `BUSY` (PROTOCOL.md section 6) when the pool's queue is
    /// full ([`Config::job_queue`](crate::Config::job_queue)): return it to the caller.
    ///
    /// ```ignore
    /// router.deferred("save", |game: &mut MyGame, ctx: &mut Ctx<'_>, caller: Caller, score: u32| {
    ///     let store = game.store.clone();
    ///     ctx.spawn_job(JobFor::Call(caller), move || store.save(score), move |_: &mut MyGame, ctx, saved| {
    ///         ctx.reply(caller, &saved.is_ok());
    ///     })
    /// });
    /// ```
    pub fn spawn_job<G: super::Game, T: Send + 'static>(
        &mut self,
        job_for: JobFor,
        work: impl FnOnce() -> T + Send + 'static,
        then: impl FnOnce(&mut G, &mut Ctx<'_>, T) + Send + 'static,
    ) -> Result<(), AppError> {
        let work: crate::jobs::Work = Box::new(move || Box::new(work()) as Box<dyn std::any::Any + Send>);
        let then: Then<G> = Box::new(move |game, ctx, value| {
            // The value is the `T` this very closure's job returned.
            if let Ok(value) = value.downcast::<T>() {
                then(game, ctx, *value);
            }
        });
        if self.jobs.submit(job_for, work, crate::jobs::Then::Game(Box::new(then))) {
            Ok(())
        } else {
            Err(AppError::new(
                ticksock_protocol::error_code::BUSY,
                "the server is busy: its queue for slow work is full",
            ))
        }
    }

    /// Who is connected, as whom, in which groups (read-only).
    pub fn hub(&self) -> &Hub {
        self.hub
    }

    /// Groups and session data. Binding users goes through [`Ctx::bind_user`], which applies
    /// the game's [`UserPolicy`](crate::UserPolicy).
    pub fn hub_mut(&mut self) -> HubMut<'_> {
        HubMut(self.hub)
    }

    /// Binds `user` to `conn` under the game's user policy; connections it replaces are
    /// closed with [`CLOSE_REPLACED`](super::hub::CLOSE_REPLACED), on every node of a cluster.
    pub fn bind_user(&mut self, conn: ConnId, user: &str) -> Result<(), BindError> {
        for old in self.hub.bind_user(conn, user)? {
            self.close(old, super::hub::CLOSE_REPLACED, super::hub::CLOSE_REPLACED_REASON);
        }
        if self.hub.policy() == super::UserPolicy::ReplaceOld
            && let Some(cluster) = self.cluster.as_deref_mut()
        {
            cluster.close_user_elsewhere(
                self.hub.cluster(),
                user,
                super::hub::CLOSE_REPLACED,
                super::hub::CLOSE_REPLACED_REASON,
            );
        }
        Ok(())
    }

    /// In a cluster, whether this node may use `room` for `caller`'s request (a room lives on
    /// one node): `Ok` when this node holds it, or has just claimed it; an Error `redirect`
    /// (PROTOCOL.md section 12) to the node that holds it, carrying a ticket for the caller's
    /// user, which the handler returns as it is. The first use of a room no node holds waits
    /// for Redis to answer the claim: the request is then handled again from the start (so
    /// call this before changing anything), and whatever the handler returned meanwhile is
    /// dropped. On a single node, always `Ok`.
    pub fn claim_room(&mut self, caller: Caller, room: &str) -> Result<(), AppError> {
        let Some(cluster) = self.cluster.as_deref_mut() else { return Ok(()) };
        // The ticket carries the caller's identity too, so a redirected player keeps its roles
        // and expiry (wall-clock, as tickets cross machines).
        let who = self.hub.user_of(caller.conn).map(|user| crate::cluster::ticket::Carried {
            user: user.to_owned(),
            auth: self.hub.is_authenticated(caller.conn).then(|| {
                let expires_ms = self.hub.auth_expiry(caller.conn).map(|at| {
                    let left = at.saturating_duration_since(self.now);
                    (std::time::SystemTime::now() + left)
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64)
                });
                (self.hub.roles(caller.conn).to_vec(), expires_ms)
            }),
        });
        cluster.claim_room(self.hub.cluster(), who.as_ref(), room)
    }

    /// In a cluster, gives up a room this node held (it was disposed of), so another node
    /// may create it. [`Rooms`](super::Rooms) does it for the rooms it disposes of.
    pub fn release_room(&mut self, room: &str) {
        if let Some(cluster) = self.cluster.as_deref_mut() {
            cluster.release_room(room);
        }
    }

    /// Closes every connection of `user` with `code` and `reason`, on every node of a
    /// cluster (a ban or a kick reaches the player wherever it plays). Returns how many were
    /// closed here; the other nodes holding the user, as this node's registry knows them,
    /// close theirs when the request reaches them (within milliseconds while Redis is up; a
    /// node cut off from Redis closes them when it reads its inbox again, or they go with it).
    pub fn close_user(&mut self, user: &str, code: u16, reason: &'static str) -> usize {
        if let Some(cluster) = self.cluster.as_deref_mut() {
            cluster.close_user_elsewhere(self.hub.cluster(), user, code, reason);
        }
        self.close_user_here(user, code, reason)
    }

    /// Gives every connection of `user` these roles, on every node of a cluster, at once: the
    /// next request is checked against them (PROTOCOL.md 13.3). Returns how many connections
    /// here; the other nodes holding the user apply it when the request reaches them, as
    /// [`Ctx::close_user`] does. ([`HubMut::set_roles`] changes this node's only.)
    pub fn set_roles(&mut self, user: &str, roles: &[String]) -> usize {
        if let Some(cluster) = self.cluster.as_deref_mut() {
            cluster.set_roles_elsewhere(self.hub.cluster(), user, roles);
        }
        self.hub.set_roles(user, roles)
    }

    /// Closes the connections of `user` on this node only. Returns how many.
    pub fn close_user_here(&mut self, user: &str, code: u16, reason: &'static str) -> usize {
        let conns: Vec<ConnId> = self.hub.user_connections(user).collect();
        for &conn in &conns {
            self.close(conn, code, reason);
        }
        conns.len()
    }

    /// Pushes to every connection of `user`, on every node of a cluster (one encode per
    /// encoding here, and one for all the other nodes). Returns how many connections it was
    /// queued for: here, plus those the registry counts on the other nodes it was sent to.
    pub fn send_to_user<T: Serialize + ?Sized>(&mut self, user: &str, topic: &str, value: &T) -> usize {
        let here = push_all(self.out, self.hub, self.encodes, self.hub.user_connections(user), topic, value);
        here + self.forward(Recipients::User(user), topic, value)
    }

    /// Pushes to every member of `group`, on every node of a cluster, except those in
    /// `except` (typically the sender: connection ids are this node's), with one encode per
    /// encoding whatever the group's size. Returns how many connections it was queued for,
    /// counting the other nodes' members from the registry.
    pub fn send_to_group<T: Serialize + ?Sized>(
        &mut self,
        group: &str,
        topic: &str,
        value: &T,
        except: &[ConnId],
    ) -> usize {
        let here = self.send_to_group_here(group, topic, value, except);
        here + self.forward(Recipients::Group(group), topic, value)
    }

    /// In a cluster, sends a push to the other nodes holding `to`; how many connections the
    /// registry counts there (0 when it went to no node).
    fn forward<T: Serialize + ?Sized>(&mut self, to: Recipients<'_>, topic: &str, value: &T) -> usize {
        let Some(cluster) = self.cluster.as_deref_mut() else { return 0 };
        let registry = self.hub.cluster();
        let (nodes, there) = match to {
            Recipients::User(user) => (registry.user_nodes(user), registry.user_connections(user)),
            Recipients::Group(group) => (registry.group_nodes(group), registry.member_count(group)),
        };
        let delivery = |push| match to {
            Recipients::User(user) => Delivery::User { user: user.to_owned(), push },
            Recipients::Group(group) => Delivery::Group { group: group.to_owned(), push },
        };
        if cluster.forward(registry, nodes, topic, value, delivery) == 0 { 0 } else { there as usize }
    }

    /// Pushes to the members of `group` on this node only, except those in `except`: for what
    /// only this node's members can use, such as the state of a simulation each node runs for
    /// itself. On a single node, the same as [`Ctx::send_to_group`].
    pub fn send_to_group_here<T: Serialize + ?Sized>(
        &mut self,
        group: &str,
        topic: &str,
        value: &T,
        except: &[ConnId],
    ) -> usize {
        let members = self.hub.members(group).filter(|c| !except.contains(c));
        push_all(self.out, self.hub, self.encodes, members, topic, value)
    }

    /// Pushes to every open connection, on every node of a cluster, with one encode per
    /// encoding. Returns how many connections of this node got it.
    pub fn send_to_all<T: Serialize + ?Sized>(&mut self, topic: &str, value: &T) -> usize {
        let here = push_all(self.out, self.hub, self.encodes, self.hub.connections(), topic, value);
        if let Some(cluster) = self.cluster.as_deref_mut() {
            let registry = self.hub.cluster();
            let nodes: Vec<_> = registry.nodes().map(|(name, ..)| name.clone()).collect();
            cluster.forward(registry, &nodes, topic, value, |push| Delivery::All { push });
        }
        here
    }

    /// The time this batch of work started.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The index of the current tick (in `on_tick`) or of the last one run.
    pub fn tick(&self) -> u64 {
        self.ticks.current
    }

    /// The first tick whose state includes what this handler or hook changes now: the index
    /// after the current or last tick run ([`Ctx::tick`] + 1), or 0 before the first tick.
    /// The tick that runs next has this index, or a later one when slots are skipped
    /// (PROTOCOL.md 8.6), so the state of every tick from this one on includes the change and
    /// no earlier one does. A reply to a connection that asked for stamps carries it
    /// (PROTOCOL.md 4.3); a game that answers with a tick of its own (the arena's `Moved`)
    /// uses the same.
    pub fn next_tick(&self) -> u64 {
        self.ticks.next
    }

    /// The tick a reply to `caller` made now is stamped with: [`Ctx::next_tick`], if its
    /// connection asked for stamps.
    pub(crate) fn stamp(&self, caller: Caller) -> Option<u64> {
        let stamps = match self.known_stamps {
            Some((known, stamps)) if known.conn == caller.conn => stamps,
            _ => self.hub.tick_stamps(caller.conn),
        };
        stamps.then_some(self.ticks.next)
    }

    /// Answers a deferred call. A connection that asked for stamps gets it stamped with
    /// [`Ctx::next_tick`]: the tick of the first state that includes what was done to answer it.
    pub fn reply<T: Serialize + ?Sized>(&mut self, caller: Caller, value: &T) {
        self.deferred.remove(&caller);
        *self.encodes += 1;
        let tick = self.stamp(caller);
        let payload = frames::reply(self.out, caller, tick, value)
            .unwrap_or_else(|e| frames::error(self.out, caller.id, caller.encoding, &e));
        self.out.push(Command::Send { conn: caller.conn, payload, answers: Some(caller.id), state: None });
    }

    /// Answers a deferred call with an error.
    pub fn reply_error(&mut self, caller: Caller, error: AppError) {
        self.deferred.remove(&caller);
        let payload = frames::error(self.out, caller.id, caller.encoding, &error);
        self.out.push(Command::Send { conn: caller.conn, payload, answers: Some(caller.id), state: None });
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

    /// Pushes a body that is already encoded in `conn`'s encoding (bincode, or JSON text on a
    /// JSON connection) on `topic`: for bodies assembled from shared pieces, such as
    /// replication's updates.
    pub(crate) fn push_encoded_body(&mut self, conn: ConnId, topic: &str, body: &[u8]) {
        let encoding = self.hub.encoding(conn);
        let payload = self.out.push_payload(DataOpcode::of(encoding), |buf| match encoding {
            Encoding::Binary => {
                ticksock_protocol::frame::write_push_header(buf, topic);
                buf.extend_from_slice(body);
            }
            Encoding::Json => {
                ticksock_protocol::json::write_push_open(buf, topic);
                buf.extend_from_slice(body);
                buf.push(ticksock_protocol::json::FRAME_CLOSE);
            }
        });
        let state = self.hub.state_topic(topic);
        self.out.push(Command::Send { conn, payload, answers: None, state });
    }

    /// Closes a connection with a WebSocket close frame (`code` 1000 for a normal close).
    ///
    /// From now on the connection's requests are not handled and it cannot bind a user; its
    /// `on_disconnect` still runs once it has gone.
    pub fn close(&mut self, conn: ConnId, code: u16, reason: &'static str) {
        self.hub.handle_closing(conn);
        self.out.push(Command::Close { conn, code, reason });
    }
}
