//! [`Ctx`]: what a handler or hook can do (reply, push, close, read the clock), and
//! [`HubMut`], the groups and sessions it may change.

use std::collections::HashSet;
use std::time::Instant;

use serde::Serialize;
use ticksock_protocol::Encoding;

use super::hub::{BindError, Hub};
use super::{AppError, Caller, frames};
use crate::ConnId;
use crate::bridge::{Batch, Command};
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
                Ok([conn]) => Command::Send { conn, payload, answers: None },
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
    pub(super) out: &'a mut Batch,
    pub(super) scratch: &'a mut Vec<u8>,
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
    /// the game's [`UserPolicy`](crate::UserPolicy).
    pub fn hub_mut(&mut self) -> HubMut<'_> {
        HubMut(self.hub)
    }

    /// Binds `user` to `conn` under the game's user policy; connections it replaces are
    /// closed with [`CLOSE_REPLACED`](super::hub::CLOSE_REPLACED).
    pub fn bind_user(&mut self, conn: ConnId, user: &str) -> Result<(), BindError> {
        for old in self.hub.bind_user(conn, user)? {
            self.close(old, super::hub::CLOSE_REPLACED, super::hub::CLOSE_REPLACED_REASON);
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
        let payload = frames::reply(self.out, caller, value)
            .unwrap_or_else(|e| frames::error(self.out, caller.id, caller.encoding, &e));
        self.out.push(Command::Send { conn: caller.conn, payload, answers: Some(caller.id) });
    }

    /// Answers a deferred call with an error.
    pub fn reply_error(&mut self, caller: Caller, error: AppError) {
        self.deferred.remove(&caller);
        let payload = frames::error(self.out, caller.id, caller.encoding, &error);
        self.out.push(Command::Send { conn: caller.conn, payload, answers: Some(caller.id) });
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
    ///
    /// From now on the connection's requests are not handled and it cannot bind a user; its
    /// `on_disconnect` still runs once it has gone.
    pub fn close(&mut self, conn: ConnId, code: u16, reason: &'static str) {
        self.hub.handle_closing(conn);
        self.out.push(Command::Close { conn, code, reason });
    }
}
