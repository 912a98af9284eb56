//! The cluster's two threads, the only code that talks to Redis: the **writer** takes what the
//! logic thread sends (deliveries, registry changes, claims) and writes it in pipelines, and
//! renews the node's lease; the **reader** blocks on the node's inbox and the registry stream
//! and hands what arrives to the logic thread. Two threads because the synchronous client blocks
//! on a read: a writer waiting in `XREAD BLOCK` could not write.
//!
//! Every Redis call has a timeout (connect, read, write: [`IO_TIMEOUT`]), so a Redis that hangs
//! costs a thread a second, never the tick. When Redis fails, both threads reconnect every
//! [`RECONNECT_EVERY`]; meanwhile the writer holds deliveries (up to the queue bound) and
//! answers claims at once ("unreachable": the room stays here), and on reconnecting it writes
//! its whole share of the registry again, then what Redis may have lost ([`Outbox`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use redis::{Connection, Value};

use super::link::{ClaimOutcome, ClusterLink, FromBridge, ToBridge};
use super::sequence::{Dedupe, Outbox, Sealed, Verdict};
use super::ticket::Tickets;
use super::wire::{self, Delivery, Envelope, NodeInfo, NodeSnapshot, RegistryEvent};
use super::{ClusterConfig, ClusterMetrics, keys};
use crate::bridge::Doorbell;

/// The timeout of every connect, read and write to Redis.
pub const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a thread whose connection failed tries again.
pub const RECONNECT_EVERY: Duration = Duration::from_millis(250);
/// How long the reader's `XREAD` blocks before it looks at its stop flag.
const READ_BLOCK_MS: u64 = 250;
/// Entries the reader takes per stream per read, and the writer per pipeline.
const BATCH: usize = 1024;

/// Claims a room for `ARGV[1]` unless a live node (one whose info key exists) holds it;
/// answers the holder and its info.
const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then
  local info = redis.call('GET', ARGV[3] .. owner)
  if info then return {owner, info} end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {ARGV[1], false}
";
/// Extends a claim if `ARGV[1]` still holds it; 1 if so. `pcall`: a key that holds something
/// else than a claim is no claim of this node's (0), not an error that fails the whole
/// heartbeat.
const RENEW: &str = r"
if redis.pcall('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";
/// Drops a claim if `ARGV[1]` holds it (`pcall` as in [`RENEW`]).
const RELEASE: &str = r"
if redis.pcall('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// The running cluster threads. Dropped without [`ClusterThreads::join`] (a server that
/// failed to start after joining), the reader is told to stop all the same; the writer stops
/// once the link is dropped.
pub(crate) struct ClusterThreads {
    writer: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl ClusterThreads {
    /// Waits for both threads. The writer ends once the logic thread has dropped its link
    /// (after it wrote the node's goodbye); the reader is told to stop here.
    pub(crate) fn join(mut self) {
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        self.stop.store(true, Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for ClusterThreads {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

fn connect(client: &redis::Client) -> redis::RedisResult<Connection> {
    let con = client.get_connection_with_timeout(IO_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}

/// Joins the cluster: connects to Redis (an error here stops the server from starting, with
/// the reason), agrees on the cluster's secret, reads where the other nodes stand, and starts
/// the two threads.
pub(crate) fn start(
    config: &ClusterConfig,
    listen: std::net::SocketAddr,
    metrics: Arc<ClusterMetrics>,
    doorbell: Arc<Doorbell>,
) -> Result<(ClusterLink, ClusterThreads), String> {
    let url = config.redis_url.clone();
    let me = config.node_name_at(listen);
    let public_url = config.public_url_at(listen);
    let fail = |what: &str, e: redis::RedisError| format!("{what} ({url}): {e}");
    let client = redis::Client::open(config.redis_url.as_str()).map_err(|e| fail("bad Redis URL", e))?;
    let mut con = connect(&client).map_err(|e| fail("cannot reach Redis", e))?;
    let mut reader_con = connect(&client).map_err(|e| fail("cannot reach Redis", e))?;
    let offer = random_bytes().map_err(|e| format!("no randomness for the cluster's secret: {e}"))?;
    let secret: Vec<u8> = redis::cmd("SET")
        .arg(keys::SECRET)
        .arg(&offer[..])
        .arg("NX")
        .arg("GET")
        .query::<Option<Vec<u8>>>(&mut con)
        .map(|old| old.unwrap_or_else(|| offer.to_vec()))
        .map_err(|e| fail("cannot read the cluster's secret", e))?;
    if secret.len() < MIN_SECRET_BYTES {
        // Tickets signed with a short (or empty) key can be made by anyone.
        return Err(format!(
            "the cluster's secret in Redis ({}) is {} bytes, under {MIN_SECRET_BYTES}: delete it and start again",
            keys::SECRET,
            secret.len()
        ));
    }
    let epoch = getrandom::u64().map_err(|e| format!("no randomness for the node's epoch: {e}"))?;
    let queue = config.queue;
    let (to_bridge, from_logic) = crossbeam_channel::bounded(queue);
    let (to_logic, from_bridge) = crossbeam_channel::bounded(queue);
    let stop = Arc::new(AtomicBool::new(false));

    let mut reader = Reader {
        client: client.clone(),
        con: None,
        me: me.clone(),
        epoch,
        inbox: keys::inbox(&me),
        inbox_id: String::new(),
        registry_id: String::new(),
        dedupe: Dedupe::default(),
        to_logic: to_logic.clone(),
        doorbell: doorbell.clone(),
        metrics: metrics.clone(),
        stop: stop.clone(),
    };
    // Before this node announces itself, so that no delivery to its epoch can come before
    // the place it starts reading its inbox from.
    reader.inbox_id =
        last_id(&mut reader_con, &reader.inbox).map_err(|e| fail("cannot read the inbox", e))?;
    reader.resync(&mut reader_con).map_err(|e| fail("cannot read the registry", e))?;
    reader.con = Some(reader_con);

    let tickets = Tickets::new(&secret, &me, epoch, config.ticket_lifetime.as_millis() as u64);
    let link = ClusterLink::new(&me, to_bridge, from_bridge, tickets, metrics.clone());
    let mut writer = Writer {
        info: wire::encode(&NodeInfo { epoch, url: public_url.clone() }),
        outbox: Outbox::new(config.retain),
        config: config.clone(),
        me,
        public_url,
        client,
        con: None,
        secret,
        epoch,
        pending: VecDeque::new(),
        users: HashMap::new(),
        groups: HashMap::new(),
        rooms: HashSet::new(),
        events: Vec::new(),
        claims: Vec::new(),
        releases: Vec::new(),
        next_heartbeat: Instant::now(),
        next_connect: Instant::now(),
        to_logic,
        doorbell,
        metrics: metrics.clone(),
        failing_since: None,
    };
    writer.up(con).map_err(|e| fail("cannot announce this node", e))?;
    metrics.enabled.store(true, Relaxed);
    let writer = std::thread::Builder::new()
        .name("cluster-writer".into())
        .spawn(move || writer.run(from_logic))
        .map_err(|e| format!("cannot start the cluster writer: {e}"))?;
    let reader = std::thread::Builder::new()
        .name("cluster-reader".into())
        .spawn(move || reader.run())
        .map_err(|e| format!("cannot start the cluster reader: {e}"))?;
    Ok((link, ClusterThreads { writer: Some(writer), reader: Some(reader), stop }))
}

/// The shortest cluster secret a node accepts from Redis (it makes 32).
const MIN_SECRET_BYTES: usize = 16;

/// 32 random bytes, for the cluster's secret; an error rather than a guessable secret.
fn random_bytes() -> Result<[u8; 32], getrandom::Error> {
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&getrandom::u64()?.to_le_bytes());
    }
    Ok(bytes)
}

/// The id of a stream's last entry, or `0-0` for an empty or missing stream.
fn last_id(con: &mut Connection, stream: &str) -> redis::RedisResult<String> {
    let value: Value =
        redis::cmd("XREVRANGE").arg(stream).arg("+").arg("-").arg("COUNT").arg(1).query(con)?;
    Ok(entries(value).into_iter().next().map_or_else(|| "0-0".to_owned(), |(id, _)| id))
}

/// A stream entry: its id, and its field `m` if it has one.
type Entry = (String, Option<Vec<u8>>);

/// The (id, field `m`) pairs of an `XRANGE`-shaped reply. An entry without a field `m` (not
/// written by a node) keeps its id, so a reader moves past it rather than reading it forever.
fn entries(value: Value) -> Vec<Entry> {
    let Value::Array(items) = value else { return Vec::new() };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut pair) = item else { return None };
            let fields = pair.pop()?;
            let id = text(pair.pop()?)?;
            let m = match fields {
                Value::Array(fields) => fields.chunks(2).find_map(|kv| match kv {
                    [Value::BulkString(k), Value::BulkString(v)] if k == b"m" => Some(v.clone()),
                    _ => None,
                }),
                Value::Map(fields) => fields.into_iter().find_map(|kv| match kv {
                    (Value::BulkString(k), Value::BulkString(v)) if k == b"m" => Some(v),
                    _ => None,
                }),
                _ => None,
            };
            Some((id, m))
        })
        .collect()
}

/// The (stream, entries) pairs of an `XREAD` reply (an array of pairs, or a map under RESP3).
fn streams(value: Value) -> Vec<(String, Value)> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|stream| {
                let Value::Array(mut pair) = stream else { return None };
                let items = pair.pop()?;
                Some((pair.pop()?, items))
            })
            .collect(),
        Value::Map(pairs) => pairs,
        _ => Vec::new(),
    };
    pairs.into_iter().filter_map(|(key, items)| Some((text(key)?, items))).collect()
}

/// A stream entry id (`MS-SEQ`) as numbers, to compare.
fn stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Whether an `XINFO STREAM` reply says entries after `from` may be gone: its first entry is
/// past `from` (trimming, which `max-deleted-entry-id` does not count), or an entry past it
/// was deleted. A reader that had read up to `from` may have missed them; at worst (the
/// entries trimmed were all at or before `from`) it reads every share again for nothing.
fn trimmed_past(info: Value, from: &str) -> bool {
    let pairs: Vec<(Value, Value)> = match info {
        Value::Array(items) => {
            let mut items = items.into_iter();
            std::iter::from_fn(|| Some((items.next()?, items.next()?))).collect()
        }
        Value::Map(pairs) => pairs,
        _ => Vec::new(),
    };
    let Some(from) = stream_id(from) else { return false };
    pairs.into_iter().any(|(key, value)| {
        let id = match (text(key).as_deref(), value) {
            (Some("max-deleted-entry-id" | "recorded-first-entry-id"), value) => text(value),
            (Some("first-entry"), Value::Array(mut entry)) if !entry.is_empty() => text(entry.swap_remove(0)),
            _ => None,
        };
        id.as_deref().and_then(stream_id).is_some_and(|id| id > from)
    })
}

/// The (name, count) pairs of an `HGETALL` reply. A pair that is not a name and a count (data
/// no node of this version wrote) is skipped: one bad field must not keep a node from
/// reading every other node's share.
fn counts(value: Value) -> Vec<(String, u32)> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Array(items) => {
            let mut items = items.into_iter();
            std::iter::from_fn(|| Some((items.next()?, items.next()?))).collect()
        }
        Value::Map(pairs) => pairs,
        _ => Vec::new(),
    };
    let mut skipped = 0;
    let counts = pairs
        .into_iter()
        .filter_map(|(name, count)| {
            let parsed = text(name).zip(text(count).and_then(|c| c.parse().ok()));
            skipped += usize::from(parsed.is_none());
            parsed
        })
        .collect();
    if skipped > 0 {
        tracing::warn!(skipped, "cluster: fields of a node's share that are not counts were skipped");
    }
    counts
}

/// The members of an `SMEMBERS` reply that are text.
fn names(value: Value) -> Vec<String> {
    match value {
        Value::Array(items) | Value::Set(items) => items.into_iter().filter_map(text).collect(),
        _ => Vec::new(),
    }
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

struct Writer {
    config: ClusterConfig,
    me: String,
    public_url: String,
    client: redis::Client,
    con: Option<Connection>,
    secret: Vec<u8>,
    epoch: u64,
    info: Vec<u8>,
    outbox: Outbox,
    /// Deliveries not written yet, oldest first.
    pending: VecDeque<Sealed>,
    /// This node's share of the registry, as the logic thread last said.
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
    rooms: HashSet<String>,
    /// Registry changes to write (dropped while Redis is down: reconnecting writes it all).
    events: Vec<RegistryEvent>,
    claims: Vec<String>,
    releases: Vec<String>,
    next_heartbeat: Instant,
    next_connect: Instant,
    to_logic: Sender<FromBridge>,
    doorbell: Arc<Doorbell>,
    metrics: Arc<ClusterMetrics>,
    failing_since: Option<Instant>,
}

impl Writer {
    fn run(mut self, from_logic: Receiver<ToBridge>) {
        loop {
            let now = Instant::now();
            let backlog = !self.pending.is_empty();
            let wake_at = wake_at(now, self.con.is_some(), backlog, self.next_heartbeat, self.next_connect);
            match from_logic.recv_timeout(wake_at.saturating_duration_since(now)) {
                Ok(first) => {
                    self.take(first);
                    for message in from_logic.try_iter().take(BATCH * 4) {
                        self.take(message);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if self.con.is_none() && now >= self.next_connect {
                match connect(&self.client) {
                    Ok(con) => {
                        if let Err(e) = self.up(con) {
                            self.fail(&e);
                        }
                    }
                    Err(e) => self.fail(&e),
                }
            }
            if self.con.is_some()
                && let Err(e) = self.flush()
            {
                self.fail(&e);
            }
            if Instant::now() >= self.next_heartbeat {
                match self.heartbeat() {
                    Ok(false) => {}
                    Ok(true) => {
                        tracing::warn!(
                            "cluster: this node's lease had lapsed (it stalled, or Redis lost its keys); its share is written again"
                        );
                        if let Err(e) = self.reshare() {
                            self.fail(&e);
                        }
                    }
                    Err(e) => self.fail(&e),
                }
            }
            self.metrics.queue_depth.store(self.pending.len() as u64 + from_logic.len() as u64, Relaxed);
        }
        self.leave();
    }

    fn take(&mut self, message: ToBridge) {
        match message {
            ToBridge::Deliver { node, epoch, delivery } => self.queue(&node, epoch, delivery),
            ToBridge::Users(entries) => {
                apply(&mut self.users, &entries);
                if self.con.is_some() {
                    let node = self.me.clone();
                    self.events.push(RegistryEvent::Users { node, epoch: self.epoch, entries });
                }
            }
            ToBridge::Groups(entries) => {
                apply(&mut self.groups, &entries);
                if self.con.is_some() {
                    let node = self.me.clone();
                    self.events.push(RegistryEvent::Groups { node, epoch: self.epoch, entries });
                }
            }
            ToBridge::Claim(room) => {
                if self.con.is_some() {
                    self.claims.push(room);
                } else {
                    self.rooms.insert(room.clone());
                    self.answer(FromBridge::Claimed { room, outcome: ClaimOutcome::Unreachable });
                }
            }
            ToBridge::Release(room) => {
                self.rooms.remove(&room);
                if self.con.is_some() {
                    self.releases.push(room);
                }
            }
        }
    }

    fn queue(&mut self, node: &str, epoch: u64, delivery: Delivery) {
        if self.pending.len() >= self.config.queue {
            self.metrics.dropped.fetch_add(1, Relaxed);
            tracing::warn!(
                to = node,
                "cluster: a delivery was dropped: --cluster-queue is full while Redis is unreachable"
            );
            return;
        }
        let seq = self.outbox.number(node, epoch);
        let envelope =
            Envelope { from: self.me.clone(), from_epoch: self.epoch, to_epoch: epoch, seq, delivery };
        self.pending.push_back(Sealed { inbox: keys::inbox(node), entry: wire::encode(&envelope) });
    }

    fn answer(&self, message: FromBridge) {
        if self.to_logic.send(message).is_ok() {
            self.doorbell.ring();
        }
    }

    fn xadd(&self, pipe: &mut redis::Pipeline, stream: &str, cap: usize, entry: &[u8]) {
        pipe.cmd("XADD").arg(stream).arg("MAXLEN").arg("~").arg(cap).arg("*").arg("m").arg(entry).ignore();
    }

    fn event_ops(&self, pipe: &mut redis::Pipeline, event: &RegistryEvent) {
        let me = &self.me;
        let lease = self.config.lease.as_millis() as u64;
        let hash_ops = |pipe: &mut redis::Pipeline, key: String, entries: &[(String, u32)]| {
            for (name, count) in entries {
                if *count == 0 {
                    pipe.cmd("HDEL").arg(&key).arg(name).ignore();
                } else {
                    pipe.cmd("HSET").arg(&key).arg(name).arg(*count).ignore();
                }
            }
            // An HSET into a hash its last HDEL removed makes a new key, without a lease: a
            // node that died before its next heartbeat would leave it in Redis for good.
            pipe.cmd("PEXPIRE").arg(&key).arg(lease).ignore();
        };
        match event {
            RegistryEvent::Users { entries, .. } => hash_ops(pipe, keys::users(me), entries),
            RegistryEvent::Groups { entries, .. } => hash_ops(pipe, keys::groups(me), entries),
            RegistryEvent::Rooms { entries, .. } => {
                for (room, held) in entries {
                    let op = if *held { "SADD" } else { "SREM" };
                    pipe.cmd(op).arg(keys::rooms(me)).arg(room).ignore();
                }
                pipe.cmd("PEXPIRE").arg(keys::rooms(me)).arg(lease).ignore();
            }
            RegistryEvent::Heartbeat { .. } | RegistryEvent::Left { .. } | RegistryEvent::Share(_) => {}
        }
        self.xadd(pipe, keys::REGISTRY, keys::REGISTRY_LEN, &wire::encode(event));
    }

    /// Writes what is pending, then claims rooms one by one (each needs its answer).
    fn flush(&mut self) -> redis::RedisResult<()> {
        let releases = std::mem::take(&mut self.releases);
        let events = std::mem::take(&mut self.events);
        let deliveries = self.pending.len().min(BATCH * 4);
        if deliveries > 0 || !events.is_empty() || !releases.is_empty() {
            let mut pipe = redis::pipe();
            for sealed in self.pending.iter().take(deliveries) {
                self.xadd(&mut pipe, &sealed.inbox, self.config.inbox_len, &sealed.entry);
            }
            for event in &events {
                self.event_ops(&mut pipe, event);
            }
            for room in &releases {
                pipe.cmd("EVAL").arg(RELEASE).arg(1).arg(keys::room(room)).arg(&self.me).ignore();
            }
            if !releases.is_empty() {
                let node = self.me.clone();
                let entries = releases.iter().map(|r| (r.clone(), false)).collect();
                self.event_ops(&mut pipe, &RegistryEvent::Rooms { node, epoch: self.epoch, entries });
            }
            self.query(&pipe)?;
            let now = Instant::now();
            for sealed in self.pending.drain(..deliveries) {
                self.outbox.handle_written(sealed, now);
            }
            self.metrics.messages_out.fetch_add(deliveries as u64, Relaxed);
        }
        let (answers, failed) = claim_each(std::mem::take(&mut self.claims), |room| self.claim(room));
        for (room, outcome) in answers {
            self.answer(FromBridge::Claimed { room, outcome });
        }
        if let Some((e, unanswered)) = failed {
            // `fail` answers them: no request parked on a claim waits past a failure.
            self.claims = unanswered;
            return Err(e);
        }
        Ok(())
    }

    fn query(&mut self, pipe: &redis::Pipeline) -> redis::RedisResult<()> {
        let Some(con) = self.con.as_mut() else { return Ok(()) };
        let started = Instant::now();
        pipe.query::<()>(con)?;
        self.metrics.redis_round_trip.record(started.elapsed());
        Ok(())
    }

    /// Claims `room` and, if it is this node's now, announces it.
    fn claim(&mut self, room: &str) -> redis::RedisResult<ClaimOutcome> {
        let outcome = self.claim_key(room)?;
        if outcome == ClaimOutcome::Mine {
            self.rooms.insert(room.to_owned());
            let mut pipe = redis::pipe();
            let entries = vec![(room.to_owned(), true)];
            let (node, epoch) = (self.me.clone(), self.epoch);
            self.event_ops(&mut pipe, &RegistryEvent::Rooms { node, epoch, entries });
            self.query(&pipe)?;
        }
        Ok(outcome)
    }

    /// Who holds `room` once this node has asked for it (the claim script alone).
    fn claim_key(&mut self, room: &str) -> redis::RedisResult<ClaimOutcome> {
        let Some(con) = self.con.as_mut() else { return Ok(ClaimOutcome::Unreachable) };
        let lease = self.config.lease.as_millis() as u64;
        let (owner, info): (String, Option<Vec<u8>>) = redis::cmd("EVAL")
            .arg(CLAIM)
            .arg(1)
            .arg(keys::room(room))
            .arg(&self.me)
            .arg(lease)
            .arg(keys::NODE_PREFIX)
            .query(con)?;
        if owner == self.me {
            return Ok(ClaimOutcome::Mine);
        }
        match info.as_deref().and_then(wire::decode::<NodeInfo>) {
            Some(info) => Ok(ClaimOutcome::Theirs { node: owner, epoch: info.epoch, url: info.url }),
            // The holder's info does not decode: a node of another version. Hold it here.
            None => Ok(ClaimOutcome::Unreachable),
        }
    }

    /// Renews the lease of the node, its share and its rooms. `true` if the lease had lapsed
    /// (its info key was gone: Redis restarted, or this node stalled past its lease and its
    /// keys expired): the caller writes the node's share again ([`Writer::reshare`]).
    fn heartbeat(&mut self) -> redis::RedisResult<bool> {
        self.next_heartbeat = Instant::now() + self.config.lease / 3;
        if self.con.is_none() {
            return Ok(false);
        }
        let me = self.me.clone();
        let lease = self.config.lease.as_millis() as u64;
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(keys::node(&me)).arg(&self.info).arg("PX").arg(lease).arg("GET");
        for key in [keys::users(&me), keys::groups(&me), keys::rooms(&me)] {
            pipe.cmd("PEXPIRE").arg(key).arg(lease).ignore();
        }
        // The inbox outlives the node by a few leases, for deliveries written just before it died.
        pipe.cmd("PEXPIRE").arg(keys::inbox(&me)).arg(lease * 12).ignore();
        pipe.cmd("SADD").arg(keys::NODES).arg(&me).ignore();
        let url = self.public_url.clone();
        self.xadd(
            &mut pipe,
            keys::REGISTRY,
            keys::REGISTRY_LEN,
            &wire::encode(&RegistryEvent::Heartbeat { node: me.clone(), epoch: self.epoch, url }),
        );
        let rooms: Vec<String> = self.rooms.iter().cloned().collect();
        for room in &rooms {
            pipe.cmd("EVAL").arg(RENEW).arg(1).arg(keys::room(room)).arg(&me).arg(lease);
        }
        let Some(con) = self.con.as_mut() else { return Ok(false) };
        let started = Instant::now();
        let replies: Vec<Value> = pipe.query(con)?;
        self.metrics.redis_round_trip.record(started.elapsed());
        self.metrics.lease_renewals.fetch_add(1, Relaxed);
        let mut replies = replies.into_iter();
        let lapsed = matches!(replies.next(), Some(Value::Nil) | None);
        if lapsed {
            // Its claims expired with it, most likely unclaimed since: `reshare` claims them
            // again and finds out which another node took.
            return Ok(true);
        }
        for (room, kept) in rooms.iter().zip(replies) {
            if kept != Value::Int(1) {
                self.lost_room(room);
            }
        }
        Ok(false)
    }

    /// Another node holds a room this node held: this node stops renewing (and claiming) it,
    /// so it is counted and logged once.
    fn lost_room(&mut self, room: &str) {
        self.rooms.remove(room);
        self.metrics.room_conflicts.fetch_add(1, Relaxed);
        tracing::warn!(
            room,
            "cluster: another node holds a room this node held (it could not renew the claim); both keep it until it empties"
        );
    }

    /// A connection to Redis is (back) up: renew the lease, write this node's whole share
    /// again, and write again what Redis may have lost.
    fn up(&mut self, con: Connection) -> redis::RedisResult<()> {
        self.con = Some(con);
        let mut pipe = redis::pipe();
        // A Redis that restarted empty learns the secret again from the first node back.
        pipe.cmd("SET").arg(keys::SECRET).arg(&self.secret).arg("NX").ignore();
        self.query(&pipe)?;
        self.heartbeat()?;
        self.reshare()?;
        let resend = self.outbox.poll_resend(Instant::now());
        if !resend.is_empty() {
            let mut pipe = redis::pipe();
            for sealed in &resend {
                self.xadd(&mut pipe, &sealed.inbox, self.config.inbox_len, &sealed.entry);
            }
            self.query(&pipe)?;
        }
        self.metrics.redis_up.store(1, Relaxed);
        if let Some(since) = self.failing_since.take() {
            tracing::info!(
                after = ?since.elapsed(),
                resent = resend.len(),
                held = self.pending.len(),
                "cluster: Redis is reachable again; this node's share is written again"
            );
        }
        Ok(())
    }

    /// Writes this node's whole share again, in its keys and as one [`RegistryEvent::Share`]
    /// that replaces what every other node knew of it: the changes made while Redis could not
    /// be written (a user who left meanwhile included) and whatever expired with a lapsed
    /// lease. Its rooms are claimed again first; those another node took meanwhile are lost.
    fn reshare(&mut self) -> redis::RedisResult<()> {
        let rooms: Vec<String> = self.rooms.iter().cloned().collect();
        let (answers, failed) = claim_each(rooms, |room| self.claim_key(room));
        if let Some((e, _)) = failed {
            return Err(e);
        }
        let mut held = Vec::new();
        for (room, outcome) in answers {
            match outcome {
                ClaimOutcome::Mine => held.push(room),
                ClaimOutcome::Theirs { .. } => self.lost_room(&room),
                // Held here without a claim (the logic thread holds it): not renewed.
                ClaimOutcome::Unreachable => {
                    self.rooms.remove(&room);
                }
            }
        }
        let me = self.me.clone();
        let lease = self.config.lease.as_millis() as u64;
        let (users_key, groups_key, rooms_key) = (keys::users(&me), keys::groups(&me), keys::rooms(&me));
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(&users_key).arg(&groups_key).arg(&rooms_key).ignore();
        for (key, share) in [(&users_key, &self.users), (&groups_key, &self.groups)] {
            if !share.is_empty() {
                let cmd = pipe.cmd("HSET").arg(key);
                for (name, count) in share {
                    cmd.arg(name).arg(*count);
                }
                cmd.ignore();
            }
        }
        if !held.is_empty() {
            pipe.cmd("SADD").arg(&rooms_key).arg(&held).ignore();
        }
        for key in [&users_key, &groups_key, &rooms_key] {
            pipe.cmd("PEXPIRE").arg(key).arg(lease).ignore();
        }
        let share = NodeSnapshot {
            node: me,
            epoch: self.epoch,
            url: self.public_url.clone(),
            users: self.users.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            groups: self.groups.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            rooms: held,
        };
        self.xadd(&mut pipe, keys::REGISTRY, keys::REGISTRY_LEN, &wire::encode(&RegistryEvent::Share(share)));
        self.query(&pipe)
    }

    fn fail(&mut self, e: &redis::RedisError) {
        self.con = None;
        self.next_connect = Instant::now() + RECONNECT_EVERY;
        self.metrics.redis_errors.fetch_add(1, Relaxed);
        self.metrics.redis_up.store(0, Relaxed);
        // Changes are written in full on reconnecting; claims are answered now.
        self.events.clear();
        self.releases.clear();
        for room in std::mem::take(&mut self.claims) {
            self.rooms.insert(room.clone());
            self.answer(FromBridge::Claimed { room, outcome: ClaimOutcome::Unreachable });
        }
        if self.failing_since.is_none() {
            self.failing_since = Some(Instant::now());
            tracing::warn!(
                "cluster: Redis is unreachable ({e}); local sends go on, sends to other nodes wait (up to --cluster-queue)"
            );
        }
    }

    /// The logic thread has stopped: write what is pending, then say goodbye so the other
    /// nodes forget this one at once rather than at the end of its lease.
    fn leave(&mut self) {
        if self.con.is_some()
            && let Err(e) = self.flush()
        {
            self.con = None;
            tracing::warn!("cluster: could not write what was pending at shutdown ({e})");
        }
        if self.con.is_none() {
            if !self.pending.is_empty() {
                self.metrics.dropped.fetch_add(self.pending.len() as u64, Relaxed);
                tracing::warn!(
                    dropped = self.pending.len(),
                    "cluster: deliveries to other nodes were dropped at shutdown: Redis is unreachable"
                );
            }
            return;
        }
        let me = self.me.clone();
        let mut pipe = redis::pipe();
        for room in &self.rooms {
            pipe.cmd("EVAL").arg(RELEASE).arg(1).arg(keys::room(room)).arg(&me).ignore();
        }
        pipe.cmd("DEL")
            .arg(keys::node(&me))
            .arg(keys::users(&me))
            .arg(keys::groups(&me))
            .arg(keys::rooms(&me))
            .ignore();
        pipe.cmd("SREM").arg(keys::NODES).arg(&me).ignore();
        self.xadd(
            &mut pipe,
            keys::REGISTRY,
            keys::REGISTRY_LEN,
            &wire::encode(&RegistryEvent::Left { node: me.clone(), epoch: self.epoch }),
        );
        if let Err(e) = self.query(&pipe) {
            tracing::warn!(
                "cluster: could not say goodbye ({e}); the other nodes forget this one when its lease ends"
            );
        }
    }
}

/// When the writer's loop wakes if the logic thread sends nothing: at once while deliveries
/// wait and Redis can take them (a flush writes at most `BATCH * 4`: a backlog built while
/// Redis was away goes out at Redis's pace, not one flush per heartbeat), else at the next
/// heartbeat, or the next connection attempt while Redis is away.
fn wake_at(now: Instant, connected: bool, backlog: bool, heartbeat: Instant, connect: Instant) -> Instant {
    match (connected, backlog) {
        (true, true) => now,
        (true, false) => heartbeat,
        (false, _) => heartbeat.min(connect),
    }
}

/// Whether `e` means the connection to Redis failed (it is dropped and made again), rather
/// than that Redis refused one command (bad data under a key: the connection is still good).
fn connection_failed(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped()
}

/// A failed connection's error, and the rooms whose claims it left unanswered.
type Unanswered = (redis::RedisError, Vec<String>);

/// Claims each room in turn with `claim`: the answers, and on a failed connection, its error
/// with the rooms not answered yet (the one that failed first), for the caller to answer once
/// it has given the connection up. A room whose claim Redis refuses (its key holds something
/// else than a claim) is held here without a claim, as while Redis is unreachable.
fn claim_each(
    rooms: Vec<String>,
    mut claim: impl FnMut(&str) -> redis::RedisResult<ClaimOutcome>,
) -> (Vec<(String, ClaimOutcome)>, Option<Unanswered>) {
    let mut answers = Vec::with_capacity(rooms.len());
    let mut rooms = rooms.into_iter();
    while let Some(room) = rooms.next() {
        match claim(&room) {
            Ok(outcome) => answers.push((room, outcome)),
            Err(e) if !connection_failed(&e) => {
                tracing::warn!(
                    room,
                    "cluster: Redis refused the claim of a room ({e}); it is held here without one"
                );
                answers.push((room, ClaimOutcome::Unreachable));
            }
            Err(e) => return (answers, Some((e, std::iter::once(room).chain(rooms).collect()))),
        }
    }
    (answers, None)
}

fn apply(share: &mut HashMap<String, u32>, entries: &[(String, u32)]) {
    for (name, count) in entries {
        if *count == 0 {
            share.remove(name);
        } else {
            share.insert(name.clone(), *count);
        }
    }
}

struct Reader {
    client: redis::Client,
    con: Option<Connection>,
    me: String,
    epoch: u64,
    inbox: String,
    inbox_id: String,
    registry_id: String,
    dedupe: Dedupe,
    to_logic: Sender<FromBridge>,
    doorbell: Arc<Doorbell>,
    metrics: Arc<ClusterMetrics>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn run(mut self) {
        while !self.stop.load(Relaxed) {
            let Some(mut con) = self.con.take() else {
                std::thread::sleep(RECONNECT_EVERY);
                match connect(&self.client).and_then(|mut con| self.resync(&mut con).map(|()| con)) {
                    Ok(con) => {
                        self.con = Some(con);
                        self.send(FromBridge::Reading(true));
                        tracing::info!("cluster: reading Redis again");
                    }
                    Err(_) => {
                        self.metrics.redis_errors.fetch_add(1, Relaxed);
                    }
                }
                continue;
            };
            match self.read(&mut con) {
                Ok(()) => self.con = Some(con),
                Err(e) => {
                    self.metrics.redis_errors.fetch_add(1, Relaxed);
                    self.send(FromBridge::Reading(false));
                    tracing::warn!(
                        "cluster: cannot read Redis ({e}); no other node is forgotten until it can"
                    );
                }
            }
        }
    }

    fn send(&self, message: FromBridge) {
        // Blocks while the logic thread is behind: the streams hold the rest meanwhile.
        if self.to_logic.send(message).is_ok() {
            self.doorbell.ring();
        }
    }

    /// Reads every other node's share from its keys, and takes up the registry stream from
    /// its current end (events after it are applied on top, harmlessly: counts are absolute).
    fn resync(&mut self, con: &mut Connection) -> redis::RedisResult<()> {
        self.registry_id = last_id(con, keys::REGISTRY)?;
        let nodes = names(redis::cmd("SMEMBERS").arg(keys::NODES).query(con)?);
        for node in nodes.into_iter().filter(|n| *n != self.me) {
            let info: Option<Vec<u8>> = redis::cmd("GET").arg(keys::node(&node)).query(con)?;
            let Some(info) = info.as_deref().and_then(wire::decode::<NodeInfo>) else {
                // Its lease has passed: it is dead.
                redis::cmd("SREM").arg(keys::NODES).arg(&node).query::<()>(con)?;
                continue;
            };
            let (users, groups, rooms): (Value, Value, Value) = redis::pipe()
                .cmd("HGETALL")
                .arg(keys::users(&node))
                .cmd("HGETALL")
                .arg(keys::groups(&node))
                .cmd("SMEMBERS")
                .arg(keys::rooms(&node))
                .query(con)?;
            self.send(FromBridge::Snapshot(NodeSnapshot {
                node,
                epoch: info.epoch,
                url: info.url,
                users: counts(users),
                groups: counts(groups),
                rooms: names(rooms),
            }));
        }
        Ok(())
    }

    fn read(&mut self, con: &mut Connection) -> redis::RedisResult<()> {
        let reply: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(READ_BLOCK_MS)
            .arg("STREAMS")
            .arg(&self.inbox)
            .arg(keys::REGISTRY)
            .arg(&self.inbox_id)
            .arg(&self.registry_id)
            .query(con)?;
        let registry_from = self.registry_id.clone();
        let mut behind = false;
        let mut skipped = 0;
        for (key, items) in streams(reply) {
            let items = entries(items);
            if key == self.inbox {
                if let Some((id, _)) = items.last() {
                    self.inbox_id = id.clone();
                }
                for (_, entry) in items {
                    match entry {
                        Some(entry) => self.deliver(&entry),
                        None => skipped += 1,
                    }
                }
            } else {
                behind = items.len() >= BATCH;
                if let Some((id, _)) = items.last() {
                    self.registry_id = id.clone();
                }
                for (_, entry) in items {
                    match entry.as_deref().and_then(wire::decode::<RegistryEvent>) {
                        Some(event) => self.send(FromBridge::Event(event)),
                        None => skipped += 1,
                    }
                }
            }
        }
        if skipped > 0 {
            tracing::warn!(skipped, "cluster: stream entries no node of this version wrote were skipped");
        }
        // A full batch: this reader is behind, and may be so far behind that the stream's
        // cap has trimmed events it never read, whose changes would then stay unknown here.
        if behind {
            let info: Value = redis::cmd("XINFO").arg("STREAM").arg(keys::REGISTRY).query(con)?;
            if trimmed_past(info, &registry_from) {
                tracing::warn!(
                    "cluster: the registry stream was trimmed past what this node had read; it reads every node's share again"
                );
                self.resync(con)?;
            }
        }
        Ok(())
    }

    fn deliver(&mut self, entry: &[u8]) {
        let Some(envelope) = wire::decode::<Envelope>(entry) else {
            tracing::warn!("cluster: an undecodable inbox entry was skipped");
            return;
        };
        if envelope.to_epoch != self.epoch {
            // For an earlier run of this node: its connections are gone.
            return;
        }
        match self.dedupe.handle(&envelope.from, envelope.from_epoch, envelope.seq) {
            Verdict::Duplicate => {
                self.metrics.duplicates.fetch_add(1, Relaxed);
                return;
            }
            Verdict::Gap { lost } => {
                self.metrics.lost.fetch_add(lost, Relaxed);
                tracing::warn!(from = envelope.from, lost, "cluster: deliveries from another node were lost");
            }
            Verdict::Deliver => {}
        }
        self.metrics.messages_in.fetch_add(1, Relaxed);
        self.send(FromBridge::Delivery(envelope.delivery));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_error() -> redis::RedisError {
        std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()
    }

    fn refused() -> redis::RedisError {
        (redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError), "WRONGTYPE").into()
    }

    fn rooms(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[(&str, &str)]) -> Value {
        let fields = fields.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect();
        Value::Array(vec![bulk(id), Value::Array(fields)])
    }

    #[test]
    fn a_stream_entry_without_its_field_keeps_its_id_so_the_reader_moves_past_it() {
        let reply = Value::Array(vec![
            Value::Array(vec![bulk("ticksock:inbox:n1"), Value::Array(vec![entry("1-0", &[("m", "a")])])]),
            Value::Array(vec![
                bulk("ticksock:registry"),
                Value::Array(vec![entry("2-0", &[("m", "b")]), entry("3-0", &[("x", "c")])]),
            ]),
        ]);
        let read: Vec<(String, Vec<Entry>)> =
            streams(reply).into_iter().map(|(key, items)| (key, entries(items))).collect();
        assert_eq!(
            read,
            [
                ("ticksock:inbox:n1".to_owned(), vec![("1-0".to_owned(), Some(b"a".to_vec()))]),
                (
                    "ticksock:registry".to_owned(),
                    vec![("2-0".to_owned(), Some(b"b".to_vec())), ("3-0".to_owned(), None)]
                ),
            ],
            "the last id read is 3-0, the entry the reader cannot use"
        );
        let map = Value::Map(vec![(bulk("s"), Value::Array(vec![entry("4-0", &[("m", "d")])]))]);
        assert_eq!(streams(map).len(), 1, "RESP3's map");
    }

    #[test]
    fn a_share_with_fields_that_are_not_counts_is_read_without_them() {
        let hash = Value::Array(vec![
            bulk("ann"),
            bulk("2"),
            bulk("bob"),
            bulk("many"),
            Value::BulkString(vec![0xff]),
            bulk("1"),
            bulk("cid"),
            bulk("1"),
            bulk("odd"),
        ]);
        assert_eq!(counts(hash), [("ann".to_owned(), 2), ("cid".to_owned(), 1)]);
        assert_eq!(counts(Value::Nil), []);
        let set = Value::Array(vec![bulk("r1"), Value::BulkString(vec![0xff]), bulk("r2")]);
        assert_eq!(names(set), ["r1", "r2"]);
    }

    #[test]
    fn a_reader_knows_when_the_stream_was_trimmed_past_what_it_had_read() {
        // As Redis 7.0 answers after `XADD MAXLEN ~` trimmed it: nothing deleted by XDEL.
        let info = |first: &str| {
            Value::Array(vec![
                bulk("length"),
                Value::Int(100_000),
                bulk("max-deleted-entry-id"),
                bulk("0-0"),
                bulk("first-entry"),
                entry(first, &[("x", "1")]),
            ])
        };
        assert!(trimmed_past(info("1700000000000-5"), "1700000000000-4"));
        assert!(trimmed_past(info("1700000000001-0"), "1700000000000-9"));
        assert!(!trimmed_past(info("1700000000000-4"), "1700000000000-4"), "it starts where the reader is");
        assert!(!trimmed_past(info("1700000000000-4"), "1700000000000-8"), "what went was read");
        let deleted = Value::Array(vec![bulk("max-deleted-entry-id"), bulk("9-0")]);
        assert!(trimmed_past(deleted, "8-5"), "an entry past it was deleted");
        let recorded = Value::Array(vec![bulk("recorded-first-entry-id"), bulk("9-0")]);
        assert!(trimmed_past(recorded, "8-5"));
        assert!(!trimmed_past(Value::Array(vec![bulk("length"), Value::Int(0)]), "5-0"), "an empty stream");
        assert!(stream_id("99-x").is_none());
    }

    #[test]
    fn the_writer_waits_for_nothing_while_deliveries_wait_and_redis_takes_them() {
        let now = Instant::now();
        let (heartbeat, connect) = (now + Duration::from_secs(1), now + Duration::from_millis(250));
        assert_eq!(wake_at(now, true, true, heartbeat, connect), now);
        assert_eq!(wake_at(now, true, false, heartbeat, connect), heartbeat);
        assert_eq!(wake_at(now, false, true, heartbeat, connect), connect, "held until Redis is back");
        assert_eq!(wake_at(now, false, false, heartbeat, now + Duration::from_secs(2)), heartbeat);
    }

    #[test]
    fn a_claim_that_fails_leaves_it_and_those_after_it_to_be_answered_never_dropped() {
        let mut asked = Vec::new();
        let (answers, failed) = claim_each(rooms(&["a", "b", "c", "d"]), |room| {
            asked.push(room.to_owned());
            match room {
                "b" => Err(refused()),
                "c" => Err(io_error()),
                _ => Ok(ClaimOutcome::Mine),
            }
        });
        assert_eq!(asked, ["a", "b", "c"], "nothing is asked of a connection that failed");
        assert_eq!(
            answers,
            [("a".to_owned(), ClaimOutcome::Mine), ("b".to_owned(), ClaimOutcome::Unreachable)],
            "a claim Redis refuses is held here; the connection goes on"
        );
        let (e, unanswered) = failed.expect("the connection failed at c");
        assert!(connection_failed(&e));
        assert_eq!(unanswered, ["c", "d"]);
        assert!(!connection_failed(&refused()));

        let (answers, failed) = claim_each(rooms(&["x"]), |_| Ok(ClaimOutcome::Mine));
        assert_eq!((answers.len(), failed.is_none()), (1, true));
    }
}
