//! The logic thread's copy of the cluster registry: which other nodes are alive, and which
//! users, groups and rooms they hold. Kept from the registry stream and node snapshots that the
//! bridge reads, so every "who is online" question is a map lookup on the logic thread, never a
//! question to Redis or to the other nodes.
//!
//! A node is alive while its heartbeats keep coming: each one (or any update from it) extends
//! it to `now + lease`, by this node's clock, so a node that dies vanishes from every answer
//! within one lease of its last heartbeat. No clock crosses machines.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::wire::{NodeSnapshot, RegistryEvent};

/// One other node as this node knows it.
#[derive(Debug)]
struct NodeView {
    epoch: u64,
    url: Arc<str>,
    alive_until: Instant,
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
    rooms: HashSet<String>,
}

/// The other nodes of the cluster, and indexes over them (empty on a single node).
#[derive(Debug, Default)]
pub struct Registry {
    me: String,
    lease: Duration,
    nodes: HashMap<Arc<str>, NodeView>,
    /// user -> the nodes holding at least one of its connections.
    users: HashMap<String, Vec<Arc<str>>>,
    /// group -> (members on other nodes, the nodes holding them).
    groups: HashMap<String, (u64, Vec<Arc<str>>)>,
    /// room -> the node holding it.
    rooms: HashMap<String, Arc<str>>,
    expired: u64,
    /// This node cannot read Redis: no heartbeat can reach it, so no lease runs out.
    cut_off: bool,
}

impl Registry {
    /// The registry of node `me`, whose leases last `lease`.
    pub fn new(me: &str, lease: Duration) -> Self {
        Self { me: me.to_owned(), lease, ..Self::default() }
    }

    /// Applies an event read from the registry stream at `now`. Events of this node are
    /// ignored: its own share is the local hub.
    pub fn handle_event(&mut self, event: &RegistryEvent, now: Instant) {
        match event {
            RegistryEvent::Heartbeat { node, epoch, url } => {
                if let Some(view) = self.view(node, *epoch, now)
                    && *view.url != **url
                {
                    view.url = url.as_str().into();
                }
            }
            RegistryEvent::Users { node, epoch, entries } => {
                for (user, count) in entries {
                    self.set_user(node, *epoch, user, *count, now);
                }
            }
            RegistryEvent::Groups { node, epoch, entries } => {
                for (group, count) in entries {
                    self.set_group(node, *epoch, group, *count, now);
                }
            }
            RegistryEvent::Rooms { node, epoch, entries } => {
                for (room, held) in entries {
                    self.set_room(node, *epoch, room, *held, now);
                }
            }
            RegistryEvent::Left { node, epoch } => {
                if self.nodes.get(node.as_str()).is_some_and(|v| v.epoch == *epoch) {
                    self.remove(node);
                }
            }
            RegistryEvent::Share(share) => self.handle_snapshot(share, now),
        }
    }

    /// Replaces everything known of a node with a snapshot of its keys.
    pub fn handle_snapshot(&mut self, snap: &NodeSnapshot, now: Instant) {
        if snap.node == self.me {
            return;
        }
        self.remove(&snap.node);
        for (user, count) in &snap.users {
            self.set_user(&snap.node, snap.epoch, user, *count, now);
        }
        for (group, count) in &snap.groups {
            self.set_group(&snap.node, snap.epoch, group, *count, now);
        }
        for room in &snap.rooms {
            self.set_room(&snap.node, snap.epoch, room, true, now);
        }
        if let Some(view) = self.view(&snap.node, snap.epoch, now) {
            view.url = snap.url.as_str().into();
        }
    }

    /// This node lost its connection to Redis: until [`Registry::handle_reconnected`], it
    /// cannot hear heartbeats, so it forgets no node (its answers stay as they were; sends to
    /// other nodes wait in the bridge).
    pub fn handle_cut_off(&mut self) {
        self.cut_off = true;
    }

    /// This node reads Redis again (and has read every node's snapshot): each node known
    /// gets a fresh lease from `now`, in which to be heard from again.
    pub fn handle_reconnected(&mut self, now: Instant) {
        self.cut_off = false;
        for view in self.nodes.values_mut() {
            view.alive_until = view.alive_until.max(now + self.lease);
        }
    }

    /// Forgets the nodes whose lease has passed at `now`; returns their names.
    ///
    /// A node's keys in Redis expire one lease after it last renewed them, and this node
    /// heard of that renewal after Redis took it: so by the time a node is forgotten here, its
    /// keys (its room claims) have gone from Redis too, and a room it held can be claimed.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        if self.cut_off {
            return Vec::new();
        }
        let dead: Vec<Arc<str>> =
            self.nodes.iter().filter(|(_, v)| v.alive_until <= now).map(|(n, _)| n.clone()).collect();
        for node in &dead {
            self.remove(node);
        }
        self.expired += dead.len() as u64;
        dead.iter().map(|n| n.to_string()).collect()
    }

    /// Nodes forgotten because their lease passed, so far.
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Whether another node holds a connection of `user`.
    pub fn is_online(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// The other nodes holding a connection of `user`.
    pub fn user_nodes(&self, user: &str) -> &[Arc<str>] {
        self.users.get(user).map_or(&[], Vec::as_slice)
    }

    /// How many of `user`'s connections other nodes hold.
    pub fn user_connections(&self, user: &str) -> u64 {
        self.user_nodes(user)
            .iter()
            .filter_map(|n| self.nodes.get(n)?.users.get(user))
            .map(|&c| u64::from(c))
            .sum()
    }

    /// Members of `group` on other nodes.
    pub fn member_count(&self, group: &str) -> u64 {
        self.groups.get(group).map_or(0, |(count, _)| *count)
    }

    /// The other nodes holding members of `group`.
    pub fn group_nodes(&self, group: &str) -> &[Arc<str>] {
        self.groups.get(group).map_or(&[], |(_, nodes)| nodes.as_slice())
    }

    /// The other node holding `room`, with its epoch and public URL.
    pub fn room_owner(&self, room: &str) -> Option<(&Arc<str>, u64, &str)> {
        let node = self.rooms.get(room)?;
        let view = self.nodes.get(node)?;
        Some((node, view.epoch, &view.url))
    }

    /// Rooms held by other nodes, with the node holding each.
    pub fn rooms(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rooms.iter().map(|(room, node)| (room.as_str(), &**node))
    }

    /// The other live nodes: name, epoch and public URL.
    pub fn nodes(&self) -> impl Iterator<Item = (&Arc<str>, u64, &str)> {
        self.nodes.iter().map(|(name, v)| (name, v.epoch, &*v.url))
    }

    /// A live node's epoch.
    pub fn epoch_of(&self, node: &str) -> Option<u64> {
        self.nodes.get(node).map(|v| v.epoch)
    }

    /// The view of `node` at `epoch`, extended to `now + lease`: created if unknown, and
    /// replaced if the epoch differs (the node restarted: what the old run held is gone).
    /// `None` for this node itself.
    fn view(&mut self, node: &str, epoch: u64, now: Instant) -> Option<&mut NodeView> {
        if node == self.me {
            return None;
        }
        if let Some(known) = self.nodes.get(node).map(|v| v.epoch)
            && known != epoch
        {
            // Epochs are random, not ordered: the newer incarnation is the one heard from
            // last, since the old one has stopped writing.
            self.remove(node);
        }
        let lease = self.lease;
        let view = self.nodes.entry(node.into()).or_insert_with(|| NodeView {
            epoch,
            url: "".into(),
            alive_until: now + lease,
            users: HashMap::new(),
            groups: HashMap::new(),
            rooms: HashSet::new(),
        });
        view.alive_until = view.alive_until.max(now + lease);
        Some(view)
    }

    fn name(&self, node: &str) -> Option<Arc<str>> {
        self.nodes.get_key_value(node).map(|(k, _)| k.clone())
    }

    fn set_user(&mut self, node: &str, epoch: u64, user: &str, count: u32, now: Instant) {
        let Some(view) = self.view(node, epoch, now) else { return };
        let before =
            if count == 0 { view.users.remove(user) } else { view.users.insert(user.to_owned(), count) };
        let Some(name) = self.name(node) else { return };
        match (before.is_some(), count > 0) {
            (false, true) => self.users.entry(user.to_owned()).or_default().push(name),
            (true, false) => remove_from(&mut self.users, user, &name),
            _ => {}
        }
    }

    fn set_group(&mut self, node: &str, epoch: u64, group: &str, count: u32, now: Instant) {
        let Some(view) = self.view(node, epoch, now) else { return };
        let before =
            if count == 0 { view.groups.remove(group) } else { view.groups.insert(group.to_owned(), count) };
        let Some(name) = self.name(node) else { return };
        let entry = self.groups.entry(group.to_owned()).or_default();
        entry.0 = entry.0 + u64::from(count) - u64::from(before.unwrap_or(0));
        match (before.is_some(), count > 0) {
            (false, true) => entry.1.push(name),
            (true, false) => entry.1.retain(|n| *n != name),
            _ => {}
        }
        if entry.1.is_empty() {
            self.groups.remove(group);
        }
    }

    fn set_room(&mut self, node: &str, epoch: u64, room: &str, held: bool, now: Instant) {
        let Some(view) = self.view(node, epoch, now) else { return };
        if held {
            view.rooms.insert(room.to_owned());
            if let Some(name) = self.name(node)
                && let Some(old) = self.rooms.insert(room.to_owned(), name.clone())
                && old != name
                && let Some(v) = self.nodes.get_mut(&old)
            {
                v.rooms.remove(room);
            }
        } else {
            view.rooms.remove(room);
            if self.rooms.get(room).is_some_and(|n| **n == *node) {
                self.rooms.remove(room);
            }
        }
    }

    fn remove(&mut self, node: &str) {
        let Some((name, view)) = self.nodes.remove_entry(node) else { return };
        for user in view.users.keys() {
            remove_from(&mut self.users, user, &name);
        }
        for (group, count) in &view.groups {
            if let Some(entry) = self.groups.get_mut(group) {
                entry.0 -= u64::from(*count);
                entry.1.retain(|n| *n != name);
                if entry.1.is_empty() {
                    self.groups.remove(group);
                }
            }
        }
        for room in &view.rooms {
            if self.rooms.get(room).is_some_and(|n| *n == name) {
                self.rooms.remove(room);
            }
        }
    }
}

fn remove_from(index: &mut HashMap<String, Vec<Arc<str>>>, key: &str, node: &Arc<str>) {
    if let Some(nodes) = index.get_mut(key) {
        nodes.retain(|n| n != node);
        if nodes.is_empty() {
            index.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(5);

    fn users(node: &str, epoch: u64, entries: &[(&str, u32)]) -> RegistryEvent {
        let entries = entries.iter().map(|(u, c)| (u.to_string(), *c)).collect();
        RegistryEvent::Users { node: node.into(), epoch, entries }
    }

    fn groups(node: &str, epoch: u64, entries: &[(&str, u32)]) -> RegistryEvent {
        let entries = entries.iter().map(|(g, c)| (g.to_string(), *c)).collect();
        RegistryEvent::Groups { node: node.into(), epoch, entries }
    }

    fn heartbeat(node: &str, epoch: u64) -> RegistryEvent {
        RegistryEvent::Heartbeat { node: node.into(), epoch, url: format!("ws://{node}/") }
    }

    #[test]
    fn users_and_groups_are_counted_across_nodes_and_absolute_counts_apply_twice_harmlessly() {
        let now = Instant::now();
        let mut r = Registry::new("me", LEASE);
        r.handle_event(&users("a", 1, &[("ann", 2)]), now);
        r.handle_event(&users("b", 1, &[("ann", 1), ("bob", 1)]), now);
        r.handle_event(&users("b", 1, &[("ann", 1), ("bob", 1)]), now);
        assert_eq!(r.user_connections("ann"), 3);
        assert_eq!(r.user_nodes("ann").len(), 2);
        r.handle_event(&groups("a", 1, &[("lobby", 2)]), now);
        r.handle_event(&groups("b", 1, &[("lobby", 3)]), now);
        r.handle_event(&groups("b", 1, &[("lobby", 1)]), now);
        assert_eq!(r.member_count("lobby"), 3);
        r.handle_event(&users("a", 1, &[("ann", 0)]), now);
        assert_eq!(r.user_nodes("ann").iter().map(|n| &**n).collect::<Vec<_>>(), ["b"]);
        r.handle_event(&groups("a", 1, &[("lobby", 0)]), now);
        r.handle_event(&groups("b", 1, &[("lobby", 0)]), now);
        assert_eq!(r.member_count("lobby"), 0);
        assert!(r.group_nodes("lobby").is_empty());
        // This node's own events are not the registry's business.
        r.handle_event(&users("me", 1, &[("carl", 1)]), now);
        assert!(!r.is_online("carl"));
    }

    #[test]
    fn a_node_without_heartbeats_vanishes_one_lease_after_the_last_and_a_restart_replaces_it() {
        let t0 = Instant::now();
        let mut r = Registry::new("me", LEASE);
        r.handle_event(&users("a", 1, &[("ann", 1)]), t0);
        let rooms = RegistryEvent::Rooms { node: "a".into(), epoch: 1, entries: vec![("r1".into(), true)] };
        r.handle_event(&rooms, t0);
        r.handle_event(&heartbeat("a", 1), t0 + Duration::from_secs(2));
        assert!(r.expire(t0 + Duration::from_secs(6)).is_empty(), "the heartbeat extended it");
        assert_eq!(
            r.room_owner("r1").map(|(n, e, u)| (n.to_string(), e, u.to_owned())),
            Some(("a".into(), 1, "ws://a/".into()))
        );
        assert_eq!(r.expire(t0 + Duration::from_secs(7)), ["a"]);
        assert!(!r.is_online("ann") && r.room_owner("r1").is_none() && r.nodes().count() == 0);
        assert_eq!(r.expired(), 1);

        // Node b restarts (epoch 2): what epoch 1 held is gone at its first word.
        r.handle_event(&users("b", 1, &[("bob", 1)]), t0);
        r.handle_event(&heartbeat("b", 2), t0);
        assert!(!r.is_online("bob"));
        assert_eq!(r.epoch_of("b"), Some(2));
        // A clean exit is forgotten at once; a Left of another epoch is not this node's.
        r.handle_event(&RegistryEvent::Left { node: "b".into(), epoch: 1 }, t0);
        assert_eq!(r.epoch_of("b"), Some(2));
        r.handle_event(&RegistryEvent::Left { node: "b".into(), epoch: 2 }, t0);
        assert_eq!(r.epoch_of("b"), None);
    }

    #[test]
    fn no_node_is_forgotten_while_this_one_cannot_read_redis_and_each_gets_a_fresh_lease_after() {
        let t0 = Instant::now();
        let mut r = Registry::new("me", LEASE);
        r.handle_event(&users("a", 1, &[("ann", 1)]), t0);
        r.handle_cut_off();
        assert!(r.expire(t0 + LEASE * 3).is_empty());
        assert!(r.is_online("ann"));
        r.handle_reconnected(t0 + LEASE * 3);
        assert!(r.expire(t0 + LEASE * 4 - Duration::from_millis(1)).is_empty());
        assert_eq!(r.expire(t0 + LEASE * 4), ["a"], "not heard from within the fresh lease");
    }

    #[test]
    fn a_share_replaces_what_was_known_of_its_node_so_what_changed_unannounced_is_gone() {
        let now = Instant::now();
        let mut r = Registry::new("me", LEASE);
        r.handle_event(&users("a", 1, &[("ann", 1), ("bob", 1)]), now);
        r.handle_event(&groups("a", 1, &[("lobby", 2)]), now);
        let rooms = RegistryEvent::Rooms { node: "a".into(), epoch: 1, entries: vec![("r1".into(), true)] };
        r.handle_event(&rooms, now);
        // Node a could not write Redis while ann left and r1 was disposed of; back, it says
        // all it holds at once.
        let share = NodeSnapshot {
            node: "a".into(),
            epoch: 1,
            url: "ws://a:1/".into(),
            users: vec![("bob".into(), 1)],
            groups: vec![("lobby".into(), 1)],
            rooms: vec!["r2".into()],
        };
        let event = RegistryEvent::Share(share);
        assert_eq!(crate::cluster::wire::decode(&crate::cluster::wire::encode(&event)), Some(event.clone()));
        r.handle_event(&event, now);
        assert!(!r.is_online("ann") && r.is_online("bob"));
        assert_eq!(r.member_count("lobby"), 1);
        assert!(r.room_owner("r1").is_none());
        assert_eq!(
            r.room_owner("r2").map(|(n, e, url)| (n.to_string(), e, url.to_owned())),
            Some(("a".into(), 1, "ws://a:1/".into()))
        );
        // A node forgotten (its lease lapsed) comes back whole with its share.
        assert_eq!(r.expire(now + LEASE), ["a"]);
        r.handle_event(&heartbeat("a", 1), now + LEASE);
        r.handle_event(&event, now + LEASE);
        assert!(r.is_online("bob") && r.room_owner("r2").is_some());
    }

    #[test]
    fn a_snapshot_replaces_what_was_known_of_a_node() {
        let now = Instant::now();
        let mut r = Registry::new("me", LEASE);
        r.handle_event(&users("a", 1, &[("ann", 1), ("old", 1)]), now);
        r.handle_event(&groups("a", 1, &[("lobby", 5)]), now);
        let snap = NodeSnapshot {
            node: "a".into(),
            epoch: 1,
            url: "ws://a:1/".into(),
            users: vec![("ann".into(), 1)],
            groups: vec![("lobby".into(), 1)],
            rooms: vec!["r".into()],
        };
        r.handle_snapshot(&snap, now);
        assert!(!r.is_online("old"));
        assert_eq!(r.member_count("lobby"), 1);
        assert_eq!(r.room_owner("r").map(|(_, _, url)| url.to_owned()), Some("ws://a:1/".into()));
        assert_eq!(r.rooms().collect::<Vec<_>>(), [("r", "a")]);
    }
}
