//! Pushes, borrowed from the receive buffer: counted by topic (and their bytes: all, and the
//! state's, `state` or `replica`), `state` ticks timed, and bodies checked as their topic's
//! type (the arena's messages, decoded through its own crate).
//!
//! A `state` push is read for its tick only ([`state_tick`]), except the first one of each
//! connection, which is decoded in full and must hold the bot's own player. With
//! `--validate-pushes` every push is decoded in full as its topic's type.
//!
//! With `--faults` the ticks are checked exactly instead of timed: each tick seen goes into
//! the worker's [`TickLedger`](super::TickLedger), each gap's ticks as missed by the session,
//! and a tick that does not increase is a duplicate (see `ticks`). The gaps are not timed
//! then: a resume replays the pushes of the outage in a burst.

use std::time::Instant;

use ticksock_arena::proto::{ChatLine, Presence, State, TOPIC_CHAT, TOPIC_PRESENCE, TOPIC_STATE, state_tick};
use ticksock_protocol::replica::TOPIC_REPLICA;

use crate::scenario::fault_plan::StateShape;
use crate::tally::{Tally, micros};

/// One bot's view of its `state` pushes.
#[derive(Debug, Default)]
pub(crate) struct Track {
    /// The bot's player, once logged in.
    pub player_id: Option<u32>,
    /// When the last `state` push arrived, and its tick.
    last_state: Option<(Instant, u64)>,
    /// A `state` push of this connection has been decoded in full and held the bot's player.
    validated: bool,
    /// `--faults`: the shape of the last `state` push (what the server holds per tick for
    /// the bot).
    pub state: StateShape,
}

/// How pushes are checked.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PushChecks {
    /// Decode every push in full (`--validate-pushes`).
    pub validate: bool,
    /// Check the ticks exactly (`--faults`).
    pub exact: bool,
}

impl Track {
    /// The tick of the last `state` push this connection received, if any.
    pub(crate) fn last_tick(&self) -> Option<u64> {
        self.last_state.map(|(_, tick)| tick)
    }

    /// A new connection (version 2: a new session): its first `state` push is checked in full
    /// again, and no gap is measured across the reconnect.
    pub(crate) fn new_connection(&mut self) {
        self.last_state = None;
        self.validated = false;
    }

    /// Counts and checks one push. Returns `true`: every push is handled here (none is left
    /// for the session to queue as an event).
    pub(crate) fn on_push(
        &mut self,
        topic: &str,
        body: &[u8],
        now: Instant,
        checks: PushChecks,
        tally: &mut Tally,
    ) -> bool {
        let validate = checks.validate;
        let c = &mut tally.counters;
        c.pushes += 1;
        c.push_bytes += body.len() as u64;
        match topic {
            TOPIC_STATE => {
                c.pushes_state += 1;
                c.state_bytes += body.len() as u64;
                if checks.exact {
                    // The tick and the players' count lead the body.
                    if let Ok(((_, players), prefix)) =
                        ticksock_protocol::decode_body_prefix::<(u64, u64)>(body)
                    {
                        let players = usize::try_from(players).unwrap_or(usize::MAX);
                        self.state = StateShape { body: body.len(), prefix, players };
                    }
                }
                let tick = if validate || !self.validated {
                    c.pushes_decoded += 1;
                    ticksock_protocol::decode_body::<State>(body).ok().map(|state| {
                        let me = self.player_id;
                        let holds_me = me.is_some_and(|me| state.players.iter().any(|p| p.id == me));
                        // A connected player is never left out of its arena's state.
                        if me.is_some() && !holds_me {
                            c.bad_pushes += 1;
                        }
                        self.validated = holds_me;
                        state.tick
                    })
                } else {
                    state_tick(body).ok()
                };
                let Some(tick) = tick else {
                    c.bad_pushes += 1;
                    return true;
                };
                if checks.exact {
                    tally.ticks.saw(tick);
                }
                if let Some((at, last)) = self.last_state {
                    if tick <= last && checks.exact {
                        // Seen before on this session (or out of order): the gap still runs
                        // from the highest tick.
                        c.pushes_duplicated += 1;
                        return true;
                    } else if tick <= last {
                        c.bad_pushes += 1; // Ticks must increase.
                    } else if checks.exact {
                        tally.ticks.missed_between(last, tick);
                        c.ticks_skipped += tick - last - 1;
                    } else {
                        tally.gaps.saturating_record(micros(now.saturating_duration_since(at)));
                        c.ticks_skipped += tick - last - 1;
                    }
                }
                self.last_state = Some((now, tick));
            }
            TOPIC_CHAT => {
                c.pushes_chat += 1;
                if validate {
                    c.pushes_decoded += 1;
                    if ticksock_protocol::decode_body::<ChatLine>(body).is_err() {
                        c.bad_pushes += 1;
                    }
                }
            }
            TOPIC_PRESENCE => {
                c.pushes_presence += 1;
                if validate {
                    c.pushes_decoded += 1;
                    if ticksock_protocol::decode_body::<Presence>(body).is_err() {
                        c.bad_pushes += 1;
                    }
                }
            }
            // Applied and checked by the scenario (`--replication`); counted here.
            TOPIC_REPLICA => {
                c.pushes_other += 1;
                c.state_bytes += body.len() as u64;
            }
            _ => c.pushes_other += 1,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ticksock_arena::proto::PlayerState;

    use super::*;

    fn state(tick: u64, ids: &[u32]) -> Vec<u8> {
        let players = ids.iter().map(|&id| PlayerState { id, x: 1, y: 2 }).collect();
        ticksock_protocol::encode_body(&State { tick, players }).expect("encodes")
    }

    #[test]
    fn state_ticks_are_timed_and_counted_and_the_first_push_is_checked_in_full() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut tally = Tally::default();
        let mut track = Track { player_id: Some(7), ..Track::default() };
        for (at, tick) in [(0, 10), (33, 11), (100, 13)] {
            assert!(track.on_push(
                TOPIC_STATE,
                &state(tick, &[3, 7]),
                ms(at),
                PushChecks::default(),
                &mut tally
            ));
        }
        let c = tally.counters;
        assert_eq!((c.pushes, c.pushes_state, c.pushes_decoded, c.bad_pushes), (3, 3, 1, 0));
        assert_eq!(c.ticks_skipped, 1, "tick 12 was never seen");
        assert_eq!(tally.gaps.len(), 2);
        assert!(tally.gaps.equivalent(tally.gaps.max(), 67_000));

        // A tick that does not increase, and a body that is not a `State`, are bad pushes.
        track.on_push(TOPIC_STATE, &state(13, &[3, 7]), ms(133), PushChecks::default(), &mut tally);
        track.on_push(TOPIC_STATE, &[0xff], ms(166), PushChecks::default(), &mut tally);
        assert_eq!(tally.counters.bad_pushes, 2);

        // After a reconnect the first state is decoded in full again: one without the bot is bad.
        track.new_connection();
        track.on_push(TOPIC_STATE, &state(20, &[3]), ms(200), PushChecks::default(), &mut tally);
        assert_eq!((tally.counters.pushes_decoded, tally.counters.bad_pushes), (2, 3));
        assert_eq!(tally.gaps.len(), 2, "no gap measured across the reconnect");
    }

    #[test]
    fn with_faults_the_ticks_go_to_the_ledger_and_a_tick_that_does_not_increase_is_a_duplicate() {
        let t0 = Instant::now();
        let mut tally = Tally::default();
        let mut track = Track { player_id: Some(7), ..Track::default() };
        let exact = PushChecks { validate: false, exact: true };
        for tick in [10, 11, 13, 12, 13, 14] {
            track.on_push(TOPIC_STATE, &state(tick, &[7]), t0, exact, &mut tally);
        }
        let c = tally.counters;
        assert_eq!((c.pushes_state, c.pushes_duplicated, c.bad_pushes, c.ticks_skipped), (6, 2, 0, 1));
        assert_eq!(tally.gaps.len(), 0, "not timed");
        assert_eq!(track.state, StateShape { body: state(14, &[7]).len(), prefix: 2, players: 1 });
        // 12 came after 13: out of order. It was missed between 11 and 13, and seen: lost.
        let v = tally.ticks.verdict();
        assert_eq!((v.lost, v.unseen_ticks), (1, 0));
    }

    const VALIDATE: PushChecks = PushChecks { validate: true, exact: false };

    #[test]
    fn with_validation_every_push_is_decoded_as_its_topics_type() {
        let t0 = Instant::now();
        let mut tally = Tally::default();
        let mut track = Track { player_id: Some(1), ..Track::default() };
        let chat =
            ticksock_protocol::encode_body(&ChatLine { player_id: 1, name: "a".into(), text: "hi".into() })
                .expect("encodes");
        track.on_push(TOPIC_STATE, &state(1, &[1]), t0, VALIDATE, &mut tally);
        track.on_push(TOPIC_STATE, &state(2, &[1]), t0, VALIDATE, &mut tally);
        track.on_push(TOPIC_CHAT, &chat, t0, VALIDATE, &mut tally);
        track.on_push(TOPIC_PRESENCE, &chat, t0, VALIDATE, &mut tally); // A chat line is no presence.
        track.on_push("other", &[], t0, VALIDATE, &mut tally);
        let c = tally.counters;
        assert_eq!((c.pushes_state, c.pushes_chat, c.pushes_presence, c.pushes_other), (2, 1, 1, 1));
        assert_eq!((c.pushes_decoded, c.bad_pushes), (4, 1));
    }
}
