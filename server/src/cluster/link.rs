//! The logic thread's end of the cluster: what it sends the bridge (deliveries, its share of
//! the registry, room claims), what it gets back, and the rooms and tickets it keeps. No I/O:
//! two channels, and the wall clock for tickets (they cross machines, so they carry Unix
//! time; [`Tickets`] itself takes it passed in).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde::Serialize;
use ticksock_protocol::{Encoding, error_code};

use super::ClusterMetrics;
use super::registry::Registry;
use super::ticket::Tickets;
use super::wire::{Delivery, NodeSnapshot, PushFrames, RegistryEvent};
use crate::AppError;

/// (name, count on this node) pairs, as the registry takes them.
type Counts = Vec<(String, u32)>;

/// From the logic thread to the bridge's writer.
#[derive(Debug)]
pub(crate) enum ToBridge {
    /// Write a delivery to a node's inbox.
    Deliver { node: Arc<str>, epoch: u64, delivery: Delivery },
    /// This node's connections per user changed (absolute counts).
    Users(Vec<(String, u32)>),
    /// This node's members per group changed (absolute counts).
    Groups(Vec<(String, u32)>),
    /// Claim a room for this node; answered with [`FromBridge::Claimed`].
    Claim(String),
    /// Give a room up.
    Release(String),
}

/// Who holds a room, as the writer found out when it claimed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClaimOutcome {
    /// This node holds it now.
    Mine,
    /// Another live node does.
    Theirs { node: String, epoch: u64, url: String },
    /// Redis cannot be reached: this node holds it without a claim, and claims it when Redis
    /// is back.
    Unreachable,
}

/// From the bridge's threads to the logic thread.
#[derive(Debug)]
pub(crate) enum FromBridge {
    /// An event of the registry stream.
    Event(RegistryEvent),
    /// A node's whole share, read from its keys.
    Snapshot(NodeSnapshot),
    /// A delivery for this node's connections, in order and once.
    Delivery(Delivery),
    /// The answer to a [`ToBridge::Claim`].
    Claimed { room: String, outcome: ClaimOutcome },
    /// The reader lost Redis (`false`), or has it again and has sent every node's snapshot
    /// (`true`).
    Reading(bool),
}

/// A room as this node sees it when a handler asks to use it.
#[derive(Debug)]
enum Home {
    Here,
    Elsewhere { node: Arc<str>, epoch: u64, url: String },
    Unclaimed,
}

/// The cluster as the logic thread reaches it.
pub(crate) struct ClusterLink {
    me: Arc<str>,
    to_bridge: Sender<ToBridge>,
    from_bridge: Receiver<FromBridge>,
    tickets: Tickets,
    metrics: Arc<ClusterMetrics>,
    /// Rooms this node holds (claimed, or held without a claim while Redis is unreachable).
    held: HashSet<String>,
    /// Rooms claimed and not answered yet, with the requests waiting for the answer.
    claiming: HashMap<String, Vec<crate::bridge::ToLogic>>,
    /// Set by [`ClusterLink::claim_room`] during a dispatch: park that request.
    park: Option<String>,
    /// While the requests parked on a claim are handled again: the room, and the node Redis
    /// said holds it. Not recorded in the registry, which learns rooms from the stream alone:
    /// this answer may be older than what the stream has said since (the holder released the
    /// room), and would then list the room as the holder's for good.
    claimed_elsewhere: Option<(String, Arc<str>, u64, String)>,
    /// Claims and releases the bridge could not take yet (its channel was full), oldest
    /// first; sent again before any newer one, so a room's claim never overtakes its release.
    unsent: VecDeque<ToBridge>,
    next_nonce: u64,
    /// Dropped sends not logged yet (logged at most once per batch).
    unlogged_drops: u64,
}

impl std::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLink").field("me", &self.me).field("held", &self.held.len()).finish()
    }
}

/// Unix time in milliseconds (tickets cross machines, so they carry wall-clock time).
fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl ClusterLink {
    pub(crate) fn new(
        me: &str,
        to_bridge: Sender<ToBridge>,
        from_bridge: Receiver<FromBridge>,
        tickets: Tickets,
        metrics: Arc<ClusterMetrics>,
    ) -> Self {
        Self {
            me: me.into(),
            to_bridge,
            from_bridge,
            tickets,
            metrics,
            held: HashSet::new(),
            claiming: HashMap::new(),
            park: None,
            claimed_elsewhere: None,
            unsent: VecDeque::new(),
            next_nonce: getrandom::u64().unwrap_or(1),
            unlogged_drops: 0,
        }
    }

    /// What the bridge sent, if anything.
    pub(crate) fn try_recv(&self) -> Option<FromBridge> {
        self.from_bridge.try_recv().ok()
    }

    /// Whether the bridge has sent something not taken yet.
    pub(crate) fn has_news(&self) -> bool {
        !self.from_bridge.is_empty()
    }

    /// Sends a claim or a release behind those not sent yet; `Err` with it if the bridge has
    /// stopped.
    fn send_in_order(&mut self, message: ToBridge) -> Result<(), ToBridge> {
        if !self.unsent.is_empty() {
            self.unsent.push_back(message);
            return Ok(());
        }
        match self.to_bridge.try_send(message) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(message)) => {
                self.unsent.push_back(message);
                Ok(())
            }
            Err(TrySendError::Disconnected(message)) => Err(message),
        }
    }

    /// Sends the claims and releases the bridge could not take before, as far as it can now.
    fn send_unsent(&mut self) {
        while let Some(message) = self.unsent.pop_front() {
            match self.to_bridge.try_send(message) {
                Ok(()) => {}
                Err(TrySendError::Full(message)) => {
                    self.unsent.push_front(message);
                    return;
                }
                // The bridge has stopped (the server is shutting down).
                Err(TrySendError::Disconnected(_)) => self.unsent.clear(),
            }
        }
    }

    /// Sends a delivery, or counts it dropped.
    fn send(&mut self, message: ToBridge) -> bool {
        match self.to_bridge.try_send(message) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.metrics.dropped.fetch_add(1, Relaxed);
                self.unlogged_drops += 1;
                false
            }
            // The bridge has stopped (the server is shutting down).
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Logs the sends dropped since the last call, once.
    pub(crate) fn log_drops(&mut self) {
        if self.unlogged_drops > 0 {
            tracing::warn!(
                dropped = self.unlogged_drops,
                "cluster: the queue toward Redis is full (--cluster-queue); sends to other nodes were dropped"
            );
            self.unlogged_drops = 0;
        }
    }

    /// Sends this node's changed counts to the registry, and the claims and releases not
    /// sent yet. Returns the counts the bridge could not take now (its channel is full): the
    /// caller offers them again later, since a count lost here would stay wrong on every other
    /// node until it changed again.
    pub(crate) fn publish(&mut self, users: Counts, groups: Counts) -> (Counts, Counts) {
        self.send_unsent();
        let offer = |message: ToBridge| match self.to_bridge.try_send(message) {
            Err(TrySendError::Full(ToBridge::Users(entries) | ToBridge::Groups(entries))) => entries,
            _ => Vec::new(),
        };
        let users = if users.is_empty() { users } else { offer(ToBridge::Users(users)) };
        let groups = if groups.is_empty() { groups } else { offer(ToBridge::Groups(groups)) };
        (users, groups)
    }

    /// Forwards a push to `nodes`, encoded once in each encoding. Returns how many nodes it
    /// was queued for.
    pub(crate) fn forward<T: Serialize + ?Sized>(
        &mut self,
        registry: &Registry,
        nodes: &[Arc<str>],
        topic: &str,
        value: &T,
        delivery: impl Fn(PushFrames) -> Delivery,
    ) -> usize {
        if nodes.is_empty() {
            return 0;
        }
        let mut push = PushFrames { binary: Vec::new(), json: Vec::new() };
        let encoded = ticksock_protocol::write_push(Encoding::Binary, &mut push.binary, topic, value)
            .and_then(|()| ticksock_protocol::write_push(Encoding::Json, &mut push.json, topic, value));
        if let Err(e) = encoded {
            tracing::error!("push on `{topic}` does not encode for other nodes: {e}");
            return 0;
        }
        self.deliver(registry, nodes, delivery(push))
    }

    /// Queues `delivery` for each of `nodes` that the registry knows (at its current epoch).
    /// Returns how many it was queued for.
    fn deliver(&mut self, registry: &Registry, nodes: &[Arc<str>], delivery: Delivery) -> usize {
        let mut queued = 0;
        for node in nodes {
            let Some(epoch) = registry.epoch_of(node) else { continue };
            let message = ToBridge::Deliver { node: node.clone(), epoch, delivery: delivery.clone() };
            queued += usize::from(self.send(message));
        }
        queued
    }

    /// Asks the nodes holding `user` to close its connections with `code` and `reason`.
    /// Returns how many nodes were asked.
    pub(crate) fn close_user_elsewhere(
        &mut self,
        registry: &Registry,
        user: &str,
        code: u16,
        reason: &str,
    ) -> usize {
        let delivery = Delivery::CloseUser { user: user.to_owned(), code, reason: reason.to_owned() };
        self.deliver(registry, registry.user_nodes(user), delivery)
    }

    /// Asks the nodes holding `user` to give its connections `roles`. Returns how many nodes
    /// were asked.
    pub(crate) fn set_roles_elsewhere(&mut self, registry: &Registry, user: &str, roles: &[String]) -> usize {
        let delivery = Delivery::SetRoles { user: user.to_owned(), roles: roles.to_vec() };
        self.deliver(registry, registry.user_nodes(user), delivery)
    }

    fn home(&self, registry: &Registry, room: &str) -> Home {
        if self.held.contains(room) {
            return Home::Here;
        }
        if let Some((claimed, node, epoch, url)) = &self.claimed_elsewhere
            && claimed == room
        {
            return Home::Elsewhere { node: node.clone(), epoch: *epoch, url: url.clone() };
        }
        match registry.room_owner(room) {
            // A node heard of only through its changes has no URL yet, and a redirect needs
            // one: the claim asks Redis, which answers with the holder's.
            Some((node, epoch, url)) if !url.is_empty() => {
                Home::Elsewhere { node: node.clone(), epoch, url: url.to_owned() }
            }
            _ => Home::Unclaimed,
        }
    }

    /// Whether the handler may use `room` here (see [`Ctx::claim_room`](crate::Ctx::claim_room)):
    /// `Ok` if this node holds it; a `REDIRECT` error if another does; otherwise the room is
    /// claimed and the request parked until the claim is answered (the error returned then
    /// is never sent).
    pub(crate) fn claim_room(
        &mut self,
        registry: &Registry,
        who: Option<&super::ticket::Carried>,
        room: &str,
    ) -> Result<(), AppError> {
        match self.home(registry, room) {
            Home::Here => Ok(()),
            Home::Elsewhere { node, epoch, url } => {
                self.next_nonce = self.next_nonce.wrapping_add(1);
                let ticket =
                    self.tickets.issue(who, &node, epoch, unix_ms(), self.next_nonce).ok_or_else(|| {
                        AppError::new(
                            error_code::INTERNAL,
                            "the user's name is too long for a redirect ticket",
                        )
                    })?;
                self.metrics.redirects.fetch_add(1, Relaxed);
                let glue = if url.contains('?') { '&' } else { '?' };
                Err(AppError::new(error_code::REDIRECT, format!("{url}{glue}ticket={ticket}")))
            }
            Home::Unclaimed => {
                if !self.claiming.contains_key(room) {
                    if self.send_in_order(ToBridge::Claim(room.to_owned())).is_err() {
                        // The bridge has stopped: hold the room here, as when Redis is down.
                        self.held.insert(room.to_owned());
                        return Ok(());
                    }
                    self.claiming.insert(room.to_owned(), Vec::new());
                }
                self.park = Some(room.to_owned());
                Err(AppError::new(error_code::INTERNAL, "waiting for the cluster (never sent)"))
            }
        }
    }

    /// The room a dispatch asked to park its request for, if any.
    pub(crate) fn take_park(&mut self) -> Option<String> {
        self.park.take()
    }

    /// Parks a request until the claim of `room` is answered.
    pub(crate) fn park(&mut self, room: String, request: crate::bridge::ToLogic) {
        self.claiming.entry(room).or_default().push(request);
    }

    /// Forgets the requests of `conn` parked on claims: it has gone, so they are not handled
    /// when their claim is answered (the game would act for a connection it has said goodbye
    /// to).
    pub(crate) fn drop_parked(&mut self, conn: crate::ConnId) {
        for waiting in self.claiming.values_mut() {
            waiting.retain(|r| !matches!(r, crate::bridge::ToLogic::Request { conn: c, .. } if *c == conn));
        }
    }

    /// Takes every parked request: the server is shutting down, and no claim's answer will be
    /// handled, so the caller answers them.
    pub(crate) fn take_parked(&mut self) -> Vec<crate::bridge::ToLogic> {
        self.claiming.values_mut().flat_map(std::mem::take).collect()
    }

    /// A claim was answered: records who holds the room, and returns the requests that waited
    /// for it, to be handled again before [`ClusterLink::end_claimed`] (those another node's
    /// room waited for are redirected to it).
    pub(crate) fn handle_claimed(
        &mut self,
        room: String,
        outcome: ClaimOutcome,
    ) -> Vec<crate::bridge::ToLogic> {
        let waiting = self.claiming.remove(&room).unwrap_or_default();
        match outcome {
            ClaimOutcome::Mine | ClaimOutcome::Unreachable => {
                self.held.insert(room);
            }
            ClaimOutcome::Theirs { node, epoch, url } => {
                self.claimed_elsewhere = Some((room, node.into(), epoch, url));
            }
        }
        waiting
    }

    /// The requests a claim's answer released have been handled.
    pub(crate) fn end_claimed(&mut self) {
        self.claimed_elsewhere = None;
    }

    /// Gives a room up (it was disposed of).
    pub(crate) fn release_room(&mut self, room: &str) {
        if self.held.remove(room) {
            // Err: the bridge has stopped, and its node's claims end with its lease.
            let _ = self.send_in_order(ToBridge::Release(room.to_owned()));
        }
    }

    /// Redeems the ticket a new connection offered: the user it carries, or why not.
    pub(crate) fn redeem(
        &mut self,
        ticket: &str,
    ) -> Result<Option<super::ticket::Carried>, super::ticket::TicketError> {
        let redeemed = self.tickets.redeem(ticket, unix_ms());
        let counter =
            if redeemed.is_ok() { &self.metrics.tickets_redeemed } else { &self.metrics.tickets_refused };
        counter.fetch_add(1, Relaxed);
        redeemed
    }

    /// Records nodes forgotten because their lease passed.
    pub(crate) fn count_expiries(&self, n: usize) {
        self.metrics.lease_expiries.fetch_add(n as u64, Relaxed);
    }
}
