//! `--replication`: an arena bot's replicated view, and the check of it against the server's.
//!
//! Each bot keeps a [`Mirror`] of the view the server replicates to it (PROTOCOL.md 14): every
//! `replica` push is applied to it, and the tick it says is due is acknowledged with
//! `replica_ack`. Every `--digest-every` seconds (and 0.3 s after each `join`) the bot asks the
//! server for the digest of the view it last sent (`replica_digest`, 8.9) and compares it with
//! its own view of that tick (14.5).
//!
//! Which view is "of that tick": the reply names the tick of the last update the server sent
//! before it ran the call. Updates sent before the call are applied before it is made; those
//! sent after it but before its reply arrive before the reply on the same connection. So the
//! tick is the mirror's at the call, or one it applied while the call was in flight; the bot
//! records the digest of each of those views ([`Probe`]) and looks the reply's tick up there.
//! A tick not found there is an update the mirror never held (lost, or refused): a failure,
//! counted apart from a digest that differs.
//!
//! With `--mirror-share` below 1 the other bots only follow: each reads its updates' tick
//! and baseline and acknowledges them on the same schedule ([`AckSchedule`]), so the server
//! sends them what it sends a mirroring bot, at a fraction of the simulator's CPU (a load run
//! larger than the simulator could rebuild views for); they make no digest check.
//!
//! Everything here is sans-I/O: bodies, outcomes and `now` come in, counts and the tick to
//! acknowledge go out (tested below without sockets).

use std::time::Instant;

use ticksock_arena::proto::{PLAYER_FIELD_ID, PLAYER_FIELD_POS};
use ticksock_client::replica::{AckSchedule, Mirror, MirrorConfig};
use ticksock_client::{CallId, Outcome};
use ticksock_protocol::replica::AckOutcome;

use crate::report::Counters;

/// Views recorded while a digest call is in flight, at most: at 30 updates a second, more than
/// two seconds of them. A reply slower than that finds its tick missing (counted as unseen,
/// a failure: the run is then too slow to check, which the report shows by its round trips).
const MAX_PROBED_VIEWS: usize = 64;

/// A digest call in flight, and the digest of every view the mirror held since it was made.
#[derive(Debug)]
struct Probe {
    call: CallId,
    /// (tick, digest), oldest first.
    seen: Vec<(u64, u64)>,
}

/// How a bot follows its updates.
#[derive(Debug)]
enum Follow {
    /// Rebuilds its view, and checks it.
    Mirror(Mirror),
    /// Reads each update's tick only, to acknowledge it.
    TickOnly(AckSchedule),
}

/// One bot's replicated view and its checks.
#[derive(Debug)]
pub(crate) struct ReplicaCheck {
    follow: Follow,
    /// The interest grid's cell (`--aoi-cell`), to count the bot's own cell changes.
    cell: i32,
    /// The bot's player, once in its arena.
    player: Option<u32>,
    /// Its avatar's entity, once seen in the view (an avatar keeps its entity until it leaves).
    own_entity: Option<u32>,
    /// Its avatar's cell at the last update that moved it.
    own_cell: Option<(i32, i32)>,
    probe: Option<Probe>,
    /// `replica_ack` calls awaiting their answer.
    acks: Vec<CallId>,
    /// The next digest compared is the first since a `join`.
    first_since_join: bool,
}

impl ReplicaCheck {
    /// A bot's check, with the server's interest cell `cell` (arena units); `mirror`: whether
    /// it rebuilds its view (else it only follows the ticks).
    pub(crate) fn new(cell: i32, mirror: bool) -> Self {
        let config = MirrorConfig::default();
        let follow = if mirror {
            Follow::Mirror(Mirror::new(config))
        } else {
            Follow::TickOnly(AckSchedule::new(config.ack_interval))
        };
        Self {
            follow,
            cell: cell.max(1),
            player: None,
            own_entity: None,
            own_cell: None,
            probe: None,
            acks: Vec::new(),
            first_since_join: false,
        }
    }

    /// The connection is gone: its server session, and so its replicated view, ended.
    pub(crate) fn offline(&mut self) {
        *self = Self::new(self.cell, matches!(self.follow, Follow::Mirror(_)));
    }

    /// The bot joined its arena as `player`: the next update is a full snapshot.
    pub(crate) fn joined(&mut self, player: Option<u32>) {
        self.player = player;
        self.first_since_join = true;
    }

    /// Applies the body of a `replica` push.
    pub(crate) fn on_update(&mut self, body: &[u8], c: &mut Counters) {
        let mirror = match &mut self.follow {
            Follow::Mirror(mirror) => mirror,
            Follow::TickOnly(acks) => {
                // The tick and the baseline lead the body.
                match ticksock_protocol::decode_body_prefix::<(u64, Option<u64>)>(body) {
                    Ok(((tick, baseline), _)) => {
                        acks.updated(tick, baseline.is_none());
                        c.replica_updates += 1;
                        c.replica_full += u64::from(baseline.is_none());
                    }
                    Err(_) => c.replica_not_applied += 1,
                }
                return;
            }
        };
        let applied = match mirror.apply(body) {
            Ok(applied) => applied,
            Err(_) => {
                c.replica_not_applied += 1;
                return;
            }
        };
        c.replica_updates += 1;
        c.replica_full += u64::from(applied.full);
        if let Some(probe) = self.probe.as_mut()
            && probe.seen.len() < MAX_PROBED_VIEWS
        {
            probe.seen.push((applied.tick, mirror.digest()));
        }
        if applied.full || applied.left.iter().any(|id| Some(*id) == self.own_entity) {
            self.own_entity = None;
        }
        let moved = match self.own_entity {
            Some(own) => applied.changed.contains(&own),
            None => {
                self.own_entity = self.find_own();
                self.own_entity.is_some()
            }
        };
        if moved && let Some(cell) = self.own_cell_now() {
            if self.own_cell.is_some_and(|was| was != cell) {
                c.cell_crossings += 1;
            }
            self.own_cell = Some(cell);
        }
    }

    fn mirror(&self) -> Option<&Mirror> {
        match &self.follow {
            Follow::Mirror(mirror) => Some(mirror),
            Follow::TickOnly(_) => None,
        }
    }

    /// The bot's avatar's entity in the current view, by its player id field.
    fn find_own(&self) -> Option<u32> {
        let player = self.player?;
        let view = self.mirror()?.view()?;
        view.iter()
            .find(|(_, e)| e.field::<u32>(PLAYER_FIELD_ID).and_then(Result::ok) == Some(player))
            .map(|(id, _)| id)
    }

    fn own_cell_now(&self) -> Option<(i32, i32)> {
        let entity = self.mirror()?.view()?.get(self.own_entity?)?;
        let (x, y) = entity.field::<(i32, i32)>(PLAYER_FIELD_POS)?.ok()?;
        Some((x / self.cell, y / self.cell))
    }

    /// The tick to acknowledge now, if one is due.
    pub(crate) fn poll_ack(&mut self, now: Instant) -> Option<u64> {
        match &mut self.follow {
            Follow::Mirror(mirror) => mirror.poll_ack(now),
            Follow::TickOnly(acks) => acks.poll(now),
        }
    }

    /// A `replica_ack` call went out as `call`.
    pub(crate) fn ack_sent(&mut self, call: CallId, c: &mut Counters) {
        c.replica_acks += 1;
        self.acks.push(call);
    }

    /// Whether the bot checks a digest now: it rebuilds its view, and no check is in flight.
    pub(crate) fn may_probe(&self) -> bool {
        self.mirror().is_some() && self.probe.is_none()
    }

    /// A `replica_digest` call went out as `call`: the mirror's view now is one the reply may
    /// name.
    pub(crate) fn probe_sent(&mut self, call: CallId) {
        let mut seen = Vec::new();
        if let Some(mirror) = self.mirror().filter(|m| m.view().is_some()) {
            seen.push((mirror.tick(), mirror.digest()));
        }
        self.probe = Some(Probe { call, seen });
    }

    /// Handles the outcome of call `id` if it is one of this check's; whether it was. Failed
    /// calls are the worker's errors already; a reply is compared or counted here.
    pub(crate) fn on_outcome(&mut self, id: CallId, outcome: &Outcome, c: &mut Counters) -> bool {
        if let Some(at) = self.acks.iter().position(|call| *call == id) {
            self.acks.swap_remove(at);
            match reply::<AckOutcome>(outcome) {
                Some(AckOutcome::Accepted) => c.replica_acks_accepted += 1,
                Some(AckOutcome::Stale) => c.replica_acks_stale += 1,
                Some(AckOutcome::Unknown) => c.replica_acks_unknown += 1,
                None => {}
            }
            return true;
        }
        let Some(probe) = self.probe.take_if(|p| p.call == id) else { return false };
        match reply::<Option<(u64, u64)>>(outcome) {
            Some(Some((tick, digest))) => match probe.seen.iter().find(|(t, _)| *t == tick) {
                Some((_, mine)) => {
                    c.digest_checks += 1;
                    c.digest_mismatches += u64::from(*mine != digest);
                    c.digest_after_join += u64::from(std::mem::take(&mut self.first_since_join));
                }
                None => c.digest_tick_unseen += 1,
            },
            Some(None) => c.digest_absent += 1,
            // An error reply or a failed call: counted by the worker.
            None => {}
        }
        true
    }
}

/// A reply's body as `T` (`None`: no reply, or one that does not decode, which the worker
/// counts as a protocol error).
fn reply<T: serde::de::DeserializeOwned>(outcome: &Outcome) -> Option<T> {
    outcome.reply_body().and_then(|body| ticksock_protocol::decode_body(body).ok())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ticksock_protocol::replica::{EntityUpdate, FieldUpdate, ReplicaUpdate};

    use super::*;

    fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
        ticksock_protocol::encode_body(value).expect("encodes")
    }

    fn player(id: u32, player: u32, x: i32, y: i32) -> EntityUpdate {
        EntityUpdate {
            id,
            kind: 1,
            fields: vec![
                FieldUpdate { index: PLAYER_FIELD_POS, value: encode(&(x, y)) },
                FieldUpdate { index: PLAYER_FIELD_ID, value: encode(&player) },
            ],
        }
    }

    fn moved(id: u32, x: i32, y: i32) -> EntityUpdate {
        EntityUpdate {
            id,
            kind: 1,
            fields: vec![FieldUpdate { index: PLAYER_FIELD_POS, value: encode(&(x, y)) }],
        }
    }

    fn update(
        tick: u64,
        baseline: Option<u64>,
        entered: Vec<EntityUpdate>,
        changed: Vec<EntityUpdate>,
    ) -> Vec<u8> {
        encode(&ReplicaUpdate { tick, baseline, entered, changed, left: Vec::new() })
    }

    fn answer<T: serde::Serialize>(value: &T) -> Outcome {
        Outcome::Reply(encode(value))
    }

    fn calls() -> (CallId, CallId, CallId) {
        (CallId(1), CallId(2), CallId(3))
    }

    #[test]
    fn a_digest_is_compared_with_the_view_of_the_tick_the_server_names() {
        let (digest_call, other, _) = calls();
        let mut check = ReplicaCheck::new(100, true);
        let mut c = Counters::default();
        check.joined(Some(7));
        check.on_update(&update(3, None, vec![player(1, 7, 10, 10)], vec![]), &mut c);
        check.probe_sent(digest_call);
        // While the call is in flight the mirror goes on to tick 4.
        check.on_update(&update(4, Some(3), vec![], vec![moved(1, 15, 10)]), &mut c);
        // The server ran the call after sending tick 3: the digest of tick 3's view.
        let mut tick3 = ReplicaCheck::new(100, true);
        tick3.on_update(&update(3, None, vec![player(1, 7, 10, 10)], vec![]), &mut Counters::default());
        assert!(!check.on_outcome(other, &answer(&()), &mut c), "not its call");
        assert!(check.on_outcome(
            digest_call,
            &answer(&Some((3u64, tick3.mirror().expect("mirrors").digest()))),
            &mut c
        ));
        assert_eq!((c.digest_checks, c.digest_mismatches, c.digest_after_join), (1, 0, 1));
        assert!(check.may_probe());

        // The next check: the server names tick 4 with another digest: a mismatch, no longer
        // the first since the join.
        check.probe_sent(digest_call);
        check.on_outcome(digest_call, &answer(&Some((4u64, 12345u64))), &mut c);
        assert_eq!((c.digest_checks, c.digest_mismatches, c.digest_after_join), (2, 1, 1));
        // A tick the mirror never held: unseen, not compared.
        check.probe_sent(digest_call);
        check.on_outcome(digest_call, &answer(&Some((5u64, 1u64))), &mut c);
        assert_eq!((c.digest_checks, c.digest_tick_unseen), (2, 1));
        // None: nothing sent yet (or no digests on the server).
        check.probe_sent(digest_call);
        check.on_outcome(digest_call, &answer(&None::<(u64, u64)>), &mut c);
        assert_eq!(c.digest_absent, 1);
    }

    #[test]
    fn updates_are_counted_refused_ones_apart_and_cell_changes_of_the_own_avatar() {
        let mut check = ReplicaCheck::new(100, true);
        let mut c = Counters::default();
        check.joined(Some(7));
        check.on_update(&update(1, None, vec![player(1, 7, 95, 10), player(2, 8, 50, 50)], vec![]), &mut c);
        assert_eq!(check.own_entity, Some(1));
        // Another player crossing a cell is not the bot's crossing; its own is.
        check.on_update(&update(2, Some(1), vec![], vec![moved(2, 150, 50)]), &mut c);
        assert_eq!(c.cell_crossings, 0);
        check.on_update(&update(3, Some(1), vec![], vec![moved(1, 105, 10)]), &mut c);
        check.on_update(&update(4, Some(3), vec![], vec![moved(1, 110, 10)]), &mut c);
        assert_eq!(c.cell_crossings, 1);
        // A delta from a baseline the mirror does not hold is refused, and so is garbage.
        check.on_update(&update(5, Some(99), vec![], vec![]), &mut c);
        check.on_update(&[0xff], &mut c);
        assert_eq!((c.replica_updates, c.replica_full, c.replica_not_applied), (4, 1, 2));
        // Offline: a new connection starts afresh (its full snapshot applies, tick 1 again).
        check.offline();
        check.on_update(&update(1, None, vec![player(3, 7, 10, 10)], vec![]), &mut c);
        assert_eq!((c.replica_updates, c.replica_not_applied), (5, 2));
    }

    #[test]
    fn acknowledgements_are_due_at_once_after_a_snapshot_and_their_answers_counted() {
        let (ack, _, _) = calls();
        let t0 = Instant::now();
        let mut check = ReplicaCheck::new(100, true);
        let mut c = Counters::default();
        assert_eq!(check.poll_ack(t0), None);
        check.on_update(&update(1, None, vec![player(1, 7, 10, 10)], vec![]), &mut c);
        assert_eq!(check.poll_ack(t0), Some(1));
        check.ack_sent(ack, &mut c);
        check.on_update(&update(2, Some(1), vec![], vec![moved(1, 11, 10)]), &mut c);
        assert_eq!(check.poll_ack(t0 + Duration::from_millis(10)), None, "within the interval");
        assert!(check.on_outcome(ack, &answer(&AckOutcome::Accepted), &mut c));
        assert!(!check.on_outcome(ack, &answer(&AckOutcome::Accepted), &mut c), "answered once");
        assert_eq!((c.replica_acks, c.replica_acks_accepted), (1, 1));
    }
}

#[cfg(test)]
mod tick_only_tests {
    use ticksock_protocol::replica::ReplicaUpdate;

    use super::*;

    #[test]
    fn a_following_bot_counts_and_acknowledges_updates_without_a_view_or_checks() {
        let t0 = Instant::now();
        let mut check = ReplicaCheck::new(100, false);
        let mut c = Counters::default();
        let update = |tick, baseline| {
            let u = ReplicaUpdate { tick, baseline, entered: vec![], changed: vec![], left: vec![7] };
            ticksock_protocol::encode_body(&u).expect("encodes")
        };
        check.on_update(&update(5, None), &mut c);
        assert_eq!(check.poll_ack(t0), Some(5), "a snapshot is acknowledged at once");
        check.on_update(&update(6, Some(5)), &mut c);
        assert_eq!(check.poll_ack(t0), None, "then at most once per interval");
        check.on_update(&[0xff], &mut c);
        assert_eq!((c.replica_updates, c.replica_full, c.replica_not_applied), (2, 1, 1));
        assert!(!check.may_probe(), "no view, no digest check");
    }
}
