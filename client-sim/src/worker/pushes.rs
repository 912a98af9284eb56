//! Pushes, borrowed from the receive buffer: counted by topic, `state` ticks timed, and bodies
//! checked as their topic's type (the arena's messages, decoded through its own crate).
//!
//! A `state` push is read for its tick only ([`state_tick`]), except the first one of each
//! connection, which is decoded in full and must hold the bot's own player. With
//! `--validate-pushes` every push is decoded in full as its topic's type.

use std::time::Instant;

use ticksock_arena::proto::{ChatLine, Presence, State, TOPIC_CHAT, TOPIC_PRESENCE, TOPIC_STATE, state_tick};

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
}

impl Track {
    /// A new connection: its first `state` push is checked in full again, and no gap is
    /// measured across the reconnect.
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
        validate: bool,
        tally: &mut Tally,
    ) -> bool {
        let c = &mut tally.counters;
        c.pushes += 1;
        match topic {
            TOPIC_STATE => {
                c.pushes_state += 1;
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
                if let Some((at, last)) = self.last_state {
                    if tick > last {
                        tally.gaps.saturating_record(micros(now.saturating_duration_since(at)));
                        c.ticks_skipped += tick - last - 1;
                    } else {
                        c.bad_pushes += 1; // Ticks must increase.
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
            assert!(track.on_push(TOPIC_STATE, &state(tick, &[3, 7]), ms(at), false, &mut tally));
        }
        let c = tally.counters;
        assert_eq!((c.pushes, c.pushes_state, c.pushes_decoded, c.bad_pushes), (3, 3, 1, 0));
        assert_eq!(c.ticks_skipped, 1, "tick 12 was never seen");
        assert_eq!(tally.gaps.len(), 2);
        assert!(tally.gaps.equivalent(tally.gaps.max(), 67_000));

        // A tick that does not increase, and a body that is not a `State`, are bad pushes.
        track.on_push(TOPIC_STATE, &state(13, &[3, 7]), ms(133), false, &mut tally);
        track.on_push(TOPIC_STATE, &[0xff], ms(166), false, &mut tally);
        assert_eq!(tally.counters.bad_pushes, 2);

        // After a reconnect the first state is decoded in full again: one without the bot is bad.
        track.new_connection();
        track.on_push(TOPIC_STATE, &state(20, &[3]), ms(200), false, &mut tally);
        assert_eq!((tally.counters.pushes_decoded, tally.counters.bad_pushes), (2, 3));
        assert_eq!(tally.gaps.len(), 2, "no gap measured across the reconnect");
    }

    #[test]
    fn with_validation_every_push_is_decoded_as_its_topics_type() {
        let t0 = Instant::now();
        let mut tally = Tally::default();
        let mut track = Track { player_id: Some(1), ..Track::default() };
        let chat =
            ticksock_protocol::encode_body(&ChatLine { player_id: 1, name: "a".into(), text: "hi".into() })
                .expect("encodes");
        track.on_push(TOPIC_STATE, &state(1, &[1]), t0, true, &mut tally);
        track.on_push(TOPIC_STATE, &state(2, &[1]), t0, true, &mut tally);
        track.on_push(TOPIC_CHAT, &chat, t0, true, &mut tally);
        track.on_push(TOPIC_PRESENCE, &chat, t0, true, &mut tally); // A chat line is no presence.
        track.on_push("other", &[], t0, true, &mut tally);
        let c = tally.counters;
        assert_eq!((c.pushes_state, c.pushes_chat, c.pushes_presence, c.pushes_other), (2, 1, 1, 1));
        assert_eq!((c.pushes_decoded, c.bad_pushes), (4, 1));
    }
}
