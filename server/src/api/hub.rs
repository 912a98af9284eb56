//! Who is connected, as whom, and in which groups: the bookkeeping behind sending to a user,
//! to a group, or to everyone, and per-connection session data.
//!
//! A plain data structure owned by the logic thread; the game reaches it through
//! [`Ctx`](crate::Ctx). A connection's user binding, group memberships and session data are
//! dropped when it closes (after the game's `on_disconnect` has seen them).

use std::any::{Any, TypeId};
use std::collections::{BTreeSet, HashMap, HashSet};

use rustc_hash::FxHashMap;

use crate::ConnId;
use crate::bridge::StateTopic;
use crate::cluster::Registry;
use ticksock_protocol::Encoding;

/// What happens when a user who is already online binds another connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserPolicy {
    /// The user holds every connection (one per device). The default.
    #[default]
    AllowMany,
    /// The new binding is refused; the existing connections stay.
    RefuseNew,
    /// The new connection is bound and the user's other connections are closed with
    /// [`CLOSE_REPLACED`].
    ReplaceOld,
}

/// The WebSocket close code sent to connections replaced under [`UserPolicy::ReplaceOld`]
/// (in the range RFC 6455 leaves to applications).
pub const CLOSE_REPLACED: u16 = 4001;

/// The reason sent with [`CLOSE_REPLACED`]. It lives here rather than with the reactor's
/// reasons (`close` in the crate's `net::inbound`) because the game-facing API does not import
/// the reactor; `docs/PROTOCOL.md` section 7.5 lists it with them.
pub const CLOSE_REPLACED_REASON: &str = "replaced by a newer connection";

/// The reason sent with close 4002 ([`ticksock_protocol::CLOSE_BAD_TICKET`]): the connection
/// offered a ticket this node does not accept (PROTOCOL.md 12.3).
pub const CLOSE_BAD_TICKET_REASON: &str = "invalid or expired ticket";

/// The reason sent with close 4003 ([`ticksock_protocol::CLOSE_AUTH_FAILED`]): the token the
/// connection offered at its upgrade was refused (PROTOCOL.md 13.1).
pub const CLOSE_AUTH_FAILED_REASON: &str = "authentication failed";

/// The reason sent with close 4004 ([`ticksock_protocol::CLOSE_AUTH_EXPIRED`]): the identity
/// expired and was not renewed within the grace (PROTOCOL.md 13.4).
pub const CLOSE_AUTH_EXPIRED_REASON: &str = "authentication expired";

/// Binding a user to a connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// The connection is not open (it closed, the game has closed it, or it never finished its
    /// handshake). Nothing to do.
    #[error("connection {0} is not open")]
    NotConnected(ConnId),
    /// Under [`UserPolicy::RefuseNew`], the user is already online elsewhere. Tell the caller.
    #[error("user is already online")]
    AlreadyOnline,
}

/// Connections, users, groups and sessions.
#[derive(Default)]
pub struct Hub {
    policy: UserPolicy,
    /// Looked up once per recipient of every push. Keyed by ids the server makes up, so a
    /// fast, non-keyed hash is safe here; names that clients choose keep the default
    /// (DoS-resistant) hasher.
    conns: FxHashMap<ConnId, ConnEntry>,
    users: HashMap<String, BTreeSet<ConnId>>,
    groups: HashMap<String, BTreeSet<ConnId>>,
    /// The other nodes of a cluster (empty on a single node).
    remote: Registry,
    /// In a cluster: users and groups whose count on this node changed since the registry
    /// was last told (`None` on a single node, which has no one to tell).
    changed: Option<Changed>,
    /// The topics the game declared latest-wins ([`Router::latest_wins`](crate::Router)):
    /// the one at `i` is [`StateTopic`] `i + 1` (0 is replication's `replica`).
    latest_wins: Vec<Box<str>>,
}

/// (name, connections on this node) pairs, as the registry takes them.
type Counts = Vec<(String, u32)>;

/// Users and groups whose local count changed, for the cluster's registry.
#[derive(Default)]
struct Changed {
    users: HashSet<String>,
    groups: HashSet<String>,
}

#[derive(Default)]
struct ConnEntry {
    encoding: Encoding,
    /// It asked for tick-stamped replies at its upgrade (PROTOCOL.md 4.3).
    tick_stamps: bool,
    /// The game has closed it ([`Ctx::close`](crate::Ctx::close)): it waits for its
    /// `on_disconnect`, and nothing it still sends may act on the game.
    closing: bool,
    user: Option<String>,
    /// Its identity, once a token was verified (PROTOCOL.md section 13).
    auth: Option<super::auth::Authenticated>,
    groups: HashSet<String>,
    sessions: Vec<(TypeId, Box<dyn Any + Send>)>,
}

/// A request's connection as the logic thread checks it before the handler
/// ([`Hub::caller_state`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CallerState {
    /// [`Hub::is_closing`].
    pub(crate) closing: bool,
    /// [`Hub::tick_stamps`].
    pub(crate) tick_stamps: bool,
    /// [`Hub::auth_expiry`].
    pub(crate) auth_expiry: Option<std::time::Instant>,
}

impl Hub {
    /// An empty hub with this user policy.
    pub fn new(policy: UserPolicy) -> Self {
        Self { policy, ..Self::default() }
    }

    /// Takes the topics the game declared latest-wins.
    pub(crate) fn set_latest_wins(&mut self, topics: &[Box<str>]) {
        self.latest_wins = topics.to_vec();
    }

    /// The latest-wins topic `topic` is, if it is one: looked up once per push, never per
    /// recipient (a game declares a few, so a list beats a map).
    pub(crate) fn state_topic(&self, topic: &str) -> Option<StateTopic> {
        if topic == ticksock_protocol::replica::TOPIC_REPLICA {
            return Some(StateTopic::REPLICA);
        }
        let at = self.latest_wins.iter().position(|t| &**t == topic)?;
        // Cannot truncate: `Router::latest_wins` refuses a 65 536th topic.
        Some(StateTopic(u16::try_from(at + 1).unwrap_or(u16::MAX)))
    }

    /// Makes this hub a cluster node's: it answers for the other nodes too, from `remote`,
    /// and keeps track of what it must tell them.
    pub(crate) fn join_cluster(&mut self, remote: Registry) {
        self.remote = remote;
        self.changed = Some(Changed::default());
    }

    /// The other nodes of the cluster: who is online there, group members, rooms and nodes
    /// (empty on a single node).
    pub fn cluster(&self) -> &Registry {
        &self.remote
    }

    pub(crate) fn cluster_mut(&mut self) -> &mut Registry {
        &mut self.remote
    }

    /// The counts changed since the last call, for the registry: (user, connections here)
    /// and (group, members here).
    pub(crate) fn take_changes(&mut self) -> Option<(Counts, Counts)> {
        let changed = self.changed.as_mut()?;
        if changed.users.is_empty() && changed.groups.is_empty() {
            return None;
        }
        let (users, groups) = (std::mem::take(&mut changed.users), std::mem::take(&mut changed.groups));
        let count = |map: &HashMap<String, BTreeSet<ConnId>>, key: &String| {
            map.get(key).map_or(0, |c| u32::try_from(c.len()).unwrap_or(u32::MAX))
        };
        Some((
            users
                .into_iter()
                .map(|u| {
                    let c = count(&self.users, &u);
                    (u, c)
                })
                .collect(),
            groups
                .into_iter()
                .map(|g| {
                    let c = count(&self.groups, &g);
                    (g, c)
                })
                .collect(),
        ))
    }

    /// Counts [`Hub::take_changes`] gave that the registry could not take yet: offered again
    /// (with the counts of that time) at the next call.
    pub(crate) fn changes_unsent(&mut self, users: Counts, groups: Counts) {
        if let Some(changed) = &mut self.changed {
            changed.users.extend(users.into_iter().map(|(name, _)| name));
            changed.groups.extend(groups.into_iter().map(|(name, _)| name));
        }
    }

    fn user_changed(&mut self, user: &str) {
        if let Some(changed) = &mut self.changed {
            changed.users.insert(user.to_owned());
        }
    }

    fn group_changed(&mut self, group: &str) {
        if let Some(changed) = &mut self.changed {
            changed.groups.insert(group.to_owned());
        }
    }

    /// The policy this hub binds users under.
    pub fn policy(&self) -> UserPolicy {
        self.policy
    }

    /// A connection opened, speaking `encoding`.
    pub fn handle_connected(&mut self, conn: ConnId, encoding: Encoding) {
        self.conns.entry(conn).or_default().encoding = encoding;
    }

    /// Marks a connection as one whose replies carry the tick at which their effects apply
    /// (it asked so at its upgrade, PROTOCOL.md 4.3).
    pub(crate) fn set_tick_stamps(&mut self, conn: ConnId) {
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.tick_stamps = true;
        }
    }

    /// Whether a connection's replies carry the tick at which their effects apply (it asked so
    /// at its upgrade, `?ticks=1`, PROTOCOL.md 4.3); false for one that is not open.
    pub fn tick_stamps(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|e| e.tick_stamps)
    }

    /// The encoding a connection speaks (binary for one that is not open).
    pub fn encoding(&self, conn: ConnId) -> Encoding {
        self.conns.get(&conn).map_or(Encoding::Binary, |e| e.encoding)
    }

    /// A connection closed: unbind it, take it out of its groups, drop its session data.
    pub fn handle_disconnected(&mut self, conn: ConnId) {
        let Some(entry) = self.conns.remove(&conn) else { return };
        if let Some(user) = entry.user {
            remove_member(&mut self.users, &user, conn);
            self.user_changed(&user);
        }
        for group in entry.groups {
            remove_member(&mut self.groups, &group, conn);
            self.group_changed(&group);
        }
    }

    /// Whether the connection is open.
    pub fn is_connected(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// The game closed the connection: it keeps its user, groups and session until its
    /// `on_disconnect`, but may not bind a user again, and its requests are not handled.
    pub(crate) fn handle_closing(&mut self, conn: ConnId) {
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.closing = true;
        }
    }

    /// What the logic thread checks of a request's connection before its handler runs, in
    /// one lookup rather than one for each (three lookups were ~120 instructions a request on
    /// the echo route under callgrind). A connection that is not open reads as open, not
    /// closing, anonymous and unstamped, as each of [`Hub::is_closing`], [`Hub::auth_expiry`]
    /// and [`Hub::tick_stamps`] says alone.
    pub(crate) fn caller_state(&self, conn: ConnId) -> CallerState {
        self.conns.get(&conn).map_or_else(CallerState::default, |e| CallerState {
            closing: e.closing,
            tick_stamps: e.tick_stamps,
            auth_expiry: e.auth.as_ref().and_then(|a| a.expires_at),
        })
    }

    /// Whether the game has closed the connection (it has not disconnected yet).
    pub fn is_closing(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|e| e.closing)
    }

    /// Every open connection.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns.keys().copied()
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Binds `user` to `conn` (rebinding it if it had another user). Returns the connections
    /// the caller must close under [`UserPolicy::ReplaceOld`] (they are already unbound). In a
    /// cluster, [`UserPolicy::RefuseNew`] also refuses a user online on another node.
    pub fn bind_user(&mut self, conn: ConnId, user: &str) -> Result<Vec<ConnId>, BindError> {
        self.bind(conn, user, true)
    }

    /// Binds a user who arrives with a redirect's ticket (PROTOCOL.md 12.3): the policy
    /// applies among this node's connections only, since the connection the user is online
    /// with on another node is the same client moving here, which closes it itself.
    pub(crate) fn bind_moved_user(&mut self, conn: ConnId, user: &str) -> Result<Vec<ConnId>, BindError> {
        self.bind(conn, user, false)
    }

    fn bind(&mut self, conn: ConnId, user: &str, elsewhere_counts: bool) -> Result<Vec<ConnId>, BindError> {
        // A connection the game has closed may not take a user back (a request it sent before
        // it read its close could otherwise steal the user from the connection that replaced it).
        if self.conns.get(&conn).is_none_or(|e| e.closing) {
            return Err(BindError::NotConnected(conn));
        }
        let others: Vec<ConnId> = self
            .users
            .get(user)
            .map(|c| c.iter().copied().filter(|&c| c != conn).collect())
            .unwrap_or_default();
        let replaced = match self.policy {
            UserPolicy::RefuseNew
                if !others.is_empty() || (elsewhere_counts && self.remote.is_online(user)) =>
            {
                return Err(BindError::AlreadyOnline);
            }
            UserPolicy::ReplaceOld => others,
            _ => Vec::new(),
        };
        for &old in &replaced {
            self.unbind_user(old);
        }
        self.unbind_user(conn);
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.user = Some(user.to_owned());
        }
        self.users.entry(user.to_owned()).or_default().insert(conn);
        self.user_changed(user);
        Ok(replaced)
    }

    /// Removes the connection's user binding, if any.
    pub fn unbind_user(&mut self, conn: ConnId) {
        if let Some(user) = self.conns.get_mut(&conn).and_then(|e| e.user.take()) {
            remove_member(&mut self.users, &user, conn);
            self.user_changed(&user);
        }
    }

    /// Whether the connection is authenticated: a token was verified for it (an identity
    /// past its expiry and grace is closed at once, PROTOCOL.md 13.4).
    pub fn is_authenticated(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|e| e.auth.is_some())
    }

    /// The roles of the connection's identity (none for an anonymous one).
    pub fn roles(&self, conn: ConnId) -> &[String] {
        self.conns.get(&conn).and_then(|e| e.auth.as_ref()).map_or(&[], |a| a.roles.as_slice())
    }

    /// Whether the connection's identity has `role`.
    pub fn has_role(&self, conn: ConnId, role: &str) -> bool {
        self.roles(conn).iter().any(|r| r == role)
    }

    /// When the connection's identity expires, if it does.
    pub fn auth_expiry(&self, conn: ConnId) -> Option<std::time::Instant> {
        self.conns.get(&conn).and_then(|e| e.auth.as_ref()).and_then(|a| a.expires_at)
    }

    /// Sets the connection's identity (its user is bound separately).
    pub(crate) fn set_auth(&mut self, conn: ConnId, auth: super::auth::Authenticated) {
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.auth = Some(auth);
        }
    }

    /// Gives every connection of `user` on this node these roles, at once (a role change
    /// applies to the next request). Returns how many connections. In a cluster,
    /// `Ctx::set_roles` changes them on every node.
    pub fn set_roles(&mut self, user: &str, roles: &[String]) -> usize {
        let conns: Vec<ConnId> = self.user_connections(user).collect();
        for conn in &conns {
            if let Some(auth) = self.conns.get_mut(conn).and_then(|e| e.auth.as_mut()) {
                auth.roles = roles.to_vec();
            }
        }
        conns.len()
    }

    /// The connections whose identity expires, with when.
    pub(crate) fn expiring(&self) -> impl Iterator<Item = (ConnId, std::time::Instant)> + '_ {
        self.conns.iter().filter_map(|(&c, e)| Some((c, e.auth.as_ref()?.expires_at?)))
    }

    /// The user bound to a connection.
    pub fn user_of(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).and_then(|e| e.user.as_deref())
    }

    /// Whether the user has at least one open connection, on this node or (in a cluster) on
    /// another.
    pub fn is_online(&self, user: &str) -> bool {
        self.users.contains_key(user) || self.remote.is_online(user)
    }

    /// Whether the user has an open connection on this node.
    pub fn is_online_here(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// The user's open connections on this node, in id order (a connection id means nothing
    /// on another node: [`Hub::cluster`] counts those).
    pub fn user_connections(&self, user: &str) -> impl Iterator<Item = ConnId> + '_ {
        self.users.get(user).into_iter().flatten().copied()
    }

    /// Puts a connection in a group. Returns false if it is not open or already a member.
    pub fn join(&mut self, conn: ConnId, group: &str) -> bool {
        let Some(entry) = self.conns.get_mut(&conn) else { return false };
        if !entry.groups.insert(group.to_owned()) {
            return false;
        }
        self.groups.entry(group.to_owned()).or_default().insert(conn);
        self.group_changed(group);
        true
    }

    /// Takes a connection out of a group. Returns false if it was not a member.
    pub fn leave(&mut self, conn: ConnId, group: &str) -> bool {
        let Some(entry) = self.conns.get_mut(&conn) else { return false };
        if !entry.groups.remove(group) {
            return false;
        }
        remove_member(&mut self.groups, group, conn);
        self.group_changed(group);
        true
    }

    /// The group's members on this node, in id order (in a cluster, [`Hub::member_count`]
    /// counts those of every node, and [`Hub::cluster`] says which nodes hold the others).
    pub fn members(&self, group: &str) -> impl Iterator<Item = ConnId> + '_ {
        self.groups.get(group).into_iter().flatten().copied()
    }

    /// How many connections are in the group, on every node of a cluster.
    pub fn member_count(&self, group: &str) -> usize {
        self.local_member_count(group) + self.remote.member_count(group) as usize
    }

    /// How many connections of this node are in the group.
    pub fn local_member_count(&self, group: &str) -> usize {
        self.groups.get(group).map_or(0, BTreeSet::len)
    }

    /// Whether the connection is in the group.
    pub fn is_member(&self, conn: ConnId, group: &str) -> bool {
        self.conns.get(&conn).is_some_and(|e| e.groups.contains(group))
    }

    /// The connection's session value of type `T`, if it has one.
    pub fn session<T: Any + Send>(&self, conn: ConnId) -> Option<&T> {
        let entry = self.conns.get(&conn)?;
        entry.sessions.iter().find(|(t, _)| *t == TypeId::of::<T>()).and_then(|(_, v)| v.downcast_ref())
    }

    /// The connection's session value of type `T`, created with `Default` on first use.
    /// `None` if the connection is not open.
    pub fn session_mut<T: Any + Send + Default>(&mut self, conn: ConnId) -> Option<&mut T> {
        let entry = self.conns.get_mut(&conn)?;
        let at = match entry.sessions.iter().position(|(t, _)| *t == TypeId::of::<T>()) {
            Some(at) => at,
            None => {
                entry.sessions.push((TypeId::of::<T>(), Box::new(T::default())));
                entry.sessions.len() - 1
            }
        };
        entry.sessions[at].1.downcast_mut()
    }
}

fn remove_member(map: &mut HashMap<String, BTreeSet<ConnId>>, key: &str, conn: ConnId) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&conn);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(i: u32) -> ConnId {
        ConnId::new(i, 1)
    }

    fn hub(policy: UserPolicy, n: u32) -> Hub {
        let mut hub = Hub::new(policy);
        (0..n).for_each(|i| hub.handle_connected(conn(i), Encoding::Binary));
        hub
    }

    #[test]
    fn a_user_may_hold_several_connections_and_goes_offline_with_the_last() {
        let mut hub = hub(UserPolicy::AllowMany, 3);
        assert_eq!(hub.bind_user(conn(0), "ann"), Ok(vec![]));
        assert_eq!(hub.bind_user(conn(1), "ann"), Ok(vec![]));
        assert_eq!(hub.user_connections("ann").collect::<Vec<_>>(), [conn(0), conn(1)]);
        hub.handle_disconnected(conn(0));
        assert!(hub.is_online("ann"));
        hub.handle_disconnected(conn(1));
        assert!(!hub.is_online("ann"));
        assert_eq!(hub.bind_user(conn(9), "bob"), Err(BindError::NotConnected(conn(9))));
    }

    #[test]
    fn policies_refuse_or_replace_a_second_connection() {
        let mut refuse = hub(UserPolicy::RefuseNew, 2);
        refuse.bind_user(conn(0), "ann").expect("first");
        assert_eq!(refuse.bind_user(conn(1), "ann"), Err(BindError::AlreadyOnline));
        // Rebinding the same connection is not a second connection.
        assert_eq!(refuse.bind_user(conn(0), "ann"), Ok(vec![]));

        let mut replace = hub(UserPolicy::ReplaceOld, 2);
        replace.bind_user(conn(0), "ann").expect("first");
        assert_eq!(replace.bind_user(conn(1), "ann"), Ok(vec![conn(0)]));
        assert_eq!(replace.user_of(conn(0)), None);
        assert_eq!(replace.user_connections("ann").collect::<Vec<_>>(), [conn(1)]);
    }

    #[test]
    fn a_user_moving_here_with_a_ticket_is_not_refused_for_the_connection_it_leaves_elsewhere() {
        use crate::cluster::wire::RegistryEvent;
        let mut hub = hub(UserPolicy::RefuseNew, 2);
        let mut remote = Registry::new("me", std::time::Duration::from_secs(5));
        let ann_elsewhere =
            RegistryEvent::Users { node: "n2".into(), epoch: 1, entries: vec![("ann".into(), 1)] };
        remote.handle_event(&ann_elsewhere, std::time::Instant::now());
        hub.join_cluster(remote);
        assert_eq!(hub.bind_user(conn(0), "ann"), Err(BindError::AlreadyOnline), "online on n2");
        assert_eq!(hub.bind_moved_user(conn(0), "ann"), Ok(vec![]), "the same client, moving");
        assert_eq!(hub.bind_moved_user(conn(1), "ann"), Err(BindError::AlreadyOnline), "online here");
    }

    #[test]
    fn rebinding_a_connection_moves_it_to_the_new_user() {
        let mut hub = hub(UserPolicy::AllowMany, 1);
        hub.bind_user(conn(0), "ann").expect("bind");
        hub.bind_user(conn(0), "bob").expect("rebind");
        assert!(!hub.is_online("ann"));
        assert_eq!(hub.user_of(conn(0)), Some("bob"));
    }

    #[test]
    fn groups_track_membership_and_a_closed_connection_leaves_them_all() {
        let mut hub = hub(UserPolicy::AllowMany, 3);
        assert!(hub.join(conn(0), "red"));
        assert!(!hub.join(conn(0), "red"), "already a member");
        assert!(hub.join(conn(1), "red"));
        assert!(hub.join(conn(1), "blue"));
        assert_eq!(hub.member_count("red"), 2);
        hub.handle_disconnected(conn(1));
        assert_eq!(hub.members("red").collect::<Vec<_>>(), [conn(0)]);
        assert_eq!(hub.member_count("blue"), 0);
        assert!(hub.leave(conn(0), "red"));
        assert!(!hub.leave(conn(0), "red"));
        assert!(!hub.join(conn(7), "red"), "not connected");
    }

    #[test]
    fn session_data_is_typed_per_connection_and_dropped_on_close() {
        #[derive(Default, Debug, PartialEq)]
        struct Score(u32);
        let mut hub = hub(UserPolicy::AllowMany, 2);
        hub.session_mut::<Score>(conn(0)).expect("open").0 += 5;
        assert_eq!(hub.session::<Score>(conn(0)), Some(&Score(5)));
        assert_eq!(hub.session::<Score>(conn(1)), None);
        assert_eq!(hub.session::<String>(conn(0)), None);
        hub.handle_disconnected(conn(0));
        assert_eq!(hub.session::<Score>(conn(0)), None);
        assert!(hub.session_mut::<Score>(conn(0)).is_none());
    }
}
