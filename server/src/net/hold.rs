//! Backpressure by class of message: the frames held back from one connection while its socket
//! is not keeping up (PROTOCOL.md 7.3, "Under backpressure").
//!
//! While a connection's outbound byte queue holds fewer than `Config::hold_after_bytes`
//! unwritten bytes and nothing is held, frames go straight into the byte queue as before: the
//! fast path costs one comparison. From then on they wait here, each by its class, until the
//! socket has taken enough that the byte queue is below that mark again:
//! - a **reply** (a Reply or an Error) waits first-in, first-out and is always delivered; only
//!   replies that alone would pass `Config::max_outbound_bytes` close the connection;
//! - a **state** (a push on a topic the game declared latest-wins, and replication's
//!   `replica`) replaces the one of its topic still held: the client gets the latest state,
//!   not every state;
//! - an **event** (every other push) waits in a bounded list (`Config::max_held_events`); past
//!   it the oldest is dropped, and counted. Before the next event released after drops, a
//!   push on the reserved topic `ticksock.dropped` tells the client how many were dropped
//!   ([`Released::DroppedNotice`]).
//!
//! What is held is released replies first (a client waits for each, and they are few), then
//! states (the latest of each topic, oldest first: what the client draws is at most the byte
//! queue's worth behind, however many events wait), then events, each class in the order it
//! was sent. So under backpressure a reply may overtake pushes made before it, and a state
//! events made before it; PROTOCOL.md 7.3 says so. A version 2 session numbers a frame when
//! it is released into the byte queue, not before (the reactor's `link`), so a conflated or
//! dropped frame was never numbered.
//!
//! A connection whose socket takes nothing for `Config::stalled_reader_timeout` while frames
//! are held is closed: [`Hold::stalled`]. Pure: no sockets, `now` passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::bridge::{DataOpcode, StateTopic};

/// The reason of the close a stalled reader gets (code
/// [`ticksock_protocol::CLOSE_STALLED_READER`]), listed in PROTOCOL.md 7.5.
pub const STALLED_READER_REASON: &str = "stopped reading";

/// What a frame is, for holding it: decided once per command by the logic thread (the
/// `answers` and `state` of [`Command::Send`](crate::bridge::Command)), not per recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A Reply or an Error answering the callback id: always delivered, in order.
    Reply(u32),
    /// A push on a latest-wins topic: a newer one replaces the one held.
    State(StateTopic),
    /// Any other push: bounded, dropped oldest-first.
    Event,
}

impl Class {
    /// The class of a command's frame: a reply if it answers a call, else by its topic.
    pub fn of(answers: Option<u32>, state: Option<StateTopic>) -> Self {
        match (answers, state) {
            (Some(id), _) => Class::Reply(id),
            (None, Some(topic)) => Class::State(topic),
            (None, None) => Class::Event,
        }
    }
}

/// One held frame: its payload, shared (a broadcast held for many is one allocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldOut {
    /// Text or binary, as the connection's encoding sends it.
    pub opcode: DataOpcode,
    /// The frame's payload (without the WebSocket header).
    pub bytes: Bytes,
    /// The callback id it answers, for a reply.
    pub answers: Option<u32>,
}

/// What [`Hold::pop`] gives back, in the order to queue it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// A held frame.
    Frame(HeldOut),
    /// Push `ticksock.dropped` with this count of events dropped since the last notice; the
    /// event it precedes is released next.
    DroppedNotice(u64),
}

/// What holding one frame did, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Held, nothing lost.
    Held,
    /// Held in place of an older state of its topic, which is gone.
    Conflated,
    /// Held, and the oldest held event was dropped to make room.
    DroppedEvent,
}

/// A frame waiting, with its place in the order frames were sent.
#[derive(Debug)]
struct Waiting {
    order: u64,
    frame: HeldOut,
}

/// The frames held back from one connection (see the module's doc).
#[derive(Debug)]
pub struct Hold {
    /// The next frame's place in the send order.
    next_order: u64,
    replies: VecDeque<Waiting>,
    /// One per topic (a game declares a few): a list, searched in full.
    states: Vec<(StateTopic, Waiting)>,
    events: VecDeque<Waiting>,
    max_events: usize,
    /// Payload bytes of the held replies, and of everything held.
    reply_bytes: usize,
    bytes: usize,
    /// Events dropped and not reported yet.
    unreported: u64,
    /// Since when the socket has taken nothing (reset by [`Hold::progressed`]).
    idle_since: Instant,
}

impl Hold {
    /// An empty hold, started at `now`, keeping at most `max_events` events (at least one).
    pub fn new(max_events: usize, now: Instant) -> Self {
        Self {
            next_order: 0,
            replies: VecDeque::new(),
            states: Vec::new(),
            events: VecDeque::new(),
            max_events: max_events.max(1),
            reply_bytes: 0,
            bytes: 0,
            unreported: 0,
            idle_since: now,
        }
    }

    /// Holds `frame` of class `class`.
    pub fn push(&mut self, class: Class, frame: HeldOut) -> Pushed {
        let order = self.next_order;
        self.next_order += 1;
        let len = frame.bytes.len();
        self.bytes += len;
        let waiting = Waiting { order, frame };
        match class {
            Class::Reply(_) => {
                self.reply_bytes += len;
                self.replies.push_back(waiting);
                Pushed::Held
            }
            Class::State(topic) => match self.states.iter_mut().find(|(t, _)| *t == topic) {
                Some((_, held)) => {
                    self.bytes -= held.frame.bytes.len();
                    *held = waiting;
                    Pushed::Conflated
                }
                None => {
                    self.states.push((topic, waiting));
                    Pushed::Held
                }
            },
            Class::Event => {
                self.events.push_back(waiting);
                if self.events.len() > self.max_events
                    && let Some(oldest) = self.events.pop_front()
                {
                    self.bytes -= oldest.frame.bytes.len();
                    self.unreported += 1;
                    return Pushed::DroppedEvent;
                }
                Pushed::Held
            }
        }
    }

    /// The next frame to queue: the oldest reply, else the oldest state, else the oldest
    /// event (after a notice of the events dropped before it, if any were).
    pub fn pop(&mut self) -> Option<Released> {
        let waiting = if let Some(reply) = self.replies.pop_front() {
            self.reply_bytes -= reply.frame.bytes.len();
            reply
        } else if let Some(at) = self.oldest_state() {
            self.states.swap_remove(at).1
        } else {
            if self.unreported > 0 && !self.events.is_empty() {
                return Some(Released::DroppedNotice(std::mem::take(&mut self.unreported)));
            }
            self.events.pop_front()?
        };
        self.bytes -= waiting.frame.bytes.len();
        Some(Released::Frame(waiting.frame))
    }

    /// Where the state held longest is, if one is.
    fn oldest_state(&self) -> Option<usize> {
        self.states.iter().enumerate().min_by_key(|(_, (_, w))| w.order).map(|(at, _)| at)
    }

    /// Whether nothing is held (a notice owed is always followed by a held event: events are
    /// dropped only to make room for a newer one).
    pub fn is_empty(&self) -> bool {
        self.replies.is_empty() && self.states.is_empty() && self.events.is_empty()
    }

    /// Payload bytes of the replies held: with the byte queue's, what the cap counts.
    pub fn reply_bytes(&self) -> usize {
        self.reply_bytes
    }

    /// Payload bytes of everything held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The socket took bytes at `now`: the reader is alive.
    pub fn progressed(&mut self, now: Instant) {
        self.idle_since = now;
    }

    /// Whether the socket has taken nothing for `timeout` or longer at `now`.
    pub fn stalled(&self, now: Instant, timeout: Duration) -> bool {
        now.saturating_duration_since(self.idle_since) >= timeout
    }
}

/// The payload of a `ticksock.dropped` push for `count` dropped events, in `encoding`
/// (PROTOCOL.md 7.3): a Push whose body is the count (a varint u64; a JSON number).
pub fn dropped_notice(encoding: ticksock_protocol::Encoding, count: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    // A u64 always encodes; nothing is appended only if it did not, which cannot happen.
    let _ = ticksock_protocol::wire::write_push(encoding, &mut out, ticksock_protocol::TOPIC_DROPPED, &count);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, len: usize) -> HeldOut {
        HeldOut { opcode: DataOpcode::Binary, bytes: Bytes::from(vec![tag; len]), answers: None }
    }

    fn reply(id: u32, len: usize) -> (Class, HeldOut) {
        let mut f = frame(id as u8, len);
        f.answers = Some(id);
        (Class::Reply(id), f)
    }

    /// Everything the hold releases, as (first byte, notice count) pairs.
    fn drain(hold: &mut Hold) -> Vec<(u8, u64)> {
        std::iter::from_fn(|| hold.pop())
            .map(|r| match r {
                Released::Frame(f) => (f.bytes[0], 0),
                Released::DroppedNotice(n) => (0, n),
            })
            .collect()
    }

    const STATE: Class = Class::State(StateTopic(1));
    const OTHER_STATE: Class = Class::State(StateTopic(2));

    #[test]
    fn the_class_follows_what_the_command_says() {
        assert_eq!(Class::of(Some(7), Some(StateTopic(1))), Class::Reply(7), "a reply is a reply");
        assert_eq!(Class::of(None, Some(StateTopic(1))), STATE);
        assert_eq!(Class::of(None, None), Class::Event);
    }

    #[test]
    fn a_newer_state_replaces_the_held_one_and_states_go_before_events() {
        let now = Instant::now();
        let mut hold = Hold::new(8, now);
        assert_eq!(hold.push(STATE, frame(1, 10)), Pushed::Held);
        assert_eq!(hold.push(Class::Event, frame(2, 5)), Pushed::Held);
        assert_eq!(hold.push(OTHER_STATE, frame(3, 7)), Pushed::Held);
        assert_eq!(hold.push(STATE, frame(4, 20)), Pushed::Conflated);
        assert_eq!(hold.bytes(), 5 + 7 + 20, "the replaced state's bytes are gone");
        assert_eq!(
            drain(&mut hold),
            [(3, 0), (4, 0), (2, 0)],
            "states first, by when each was last replaced; state 1 only once"
        );
        assert!(hold.is_empty());
        assert_eq!(hold.bytes(), 0);
    }

    #[test]
    fn replies_are_all_kept_in_order_and_counted_apart() {
        let mut hold = Hold::new(1, Instant::now());
        for id in 1..=50 {
            let (class, f) = reply(id, 100);
            assert_eq!(hold.push(class, f), Pushed::Held);
        }
        assert_eq!(hold.reply_bytes(), 5_000);
        hold.push(Class::Event, frame(200, 1_000));
        assert_eq!(hold.reply_bytes(), 5_000, "an event is not a reply");
        let got = drain(&mut hold);
        assert_eq!(got.len(), 51);
        assert!(got[..50].iter().zip(1..).all(|(&(tag, _), id)| tag == id));
        assert_eq!(hold.reply_bytes(), 0);
    }

    #[test]
    fn events_past_the_bound_drop_oldest_first_and_a_notice_precedes_the_next_one() {
        let mut hold = Hold::new(3, Instant::now());
        for tag in 1..=3 {
            assert_eq!(hold.push(Class::Event, frame(tag, 4)), Pushed::Held);
        }
        assert_eq!(hold.push(Class::Event, frame(4, 4)), Pushed::DroppedEvent, "one past the bound of 3");
        assert_eq!(hold.push(Class::Event, frame(5, 4)), Pushed::DroppedEvent);
        let (class, f) = reply(9, 4);
        hold.push(class, f);
        assert_eq!(hold.bytes(), 4 * 4);
        assert_eq!(drain(&mut hold), [(9, 0), (0, 2), (3, 0), (4, 0), (5, 0)], "1 and 2 dropped, told once");
        hold.push(Class::Event, frame(6, 4));
        assert_eq!(drain(&mut hold), [(6, 0)], "no drop since the last notice: no notice");
    }

    #[test]
    fn replies_go_first_then_states_then_the_notice_and_the_events() {
        let mut hold = Hold::new(1, Instant::now());
        hold.push(Class::Event, frame(1, 4));
        let (class, f) = reply(2, 4);
        hold.push(class, f);
        hold.push(STATE, frame(3, 4));
        assert_eq!(hold.push(Class::Event, frame(4, 4)), Pushed::DroppedEvent);
        hold.push(STATE, frame(5, 4));
        let (class, f) = reply(6, 4);
        hold.push(class, f);
        assert_eq!(drain(&mut hold), [(2, 0), (6, 0), (5, 0), (0, 1), (4, 0)]);
    }

    #[test]
    fn a_reader_is_stalled_once_the_socket_took_nothing_for_the_timeout() {
        let start = Instant::now();
        let timeout = Duration::from_secs(10);
        let mut hold = Hold::new(4, start);
        assert!(!hold.stalled(start + timeout - Duration::from_millis(1), timeout));
        assert!(hold.stalled(start + timeout, timeout), "held since it started");
        hold.progressed(start + Duration::from_secs(5));
        assert!(!hold.stalled(start + timeout, timeout), "it took bytes 5 s in");
        assert!(hold.stalled(start + Duration::from_secs(15), timeout));
    }

    #[test]
    fn the_dropped_notice_is_a_push_on_the_reserved_topic_with_a_varint_count() {
        use ticksock_protocol::Encoding;
        let binary = dropped_notice(Encoding::Binary, 300);
        // Tag 3 (Push), topic "ticksock.dropped" (16 bytes), then 300 as a varint (fb 2c 01).
        let mut expected = vec![3, 16];
        expected.extend_from_slice(b"ticksock.dropped");
        expected.extend_from_slice(&[0xfb, 0x2c, 0x01]);
        assert_eq!(binary, expected);
        let json = dropped_notice(Encoding::Json, 300);
        assert_eq!(
            std::str::from_utf8(&json).expect("utf-8"),
            r#"{"type":"push","topic":"ticksock.dropped","body":300}"#
        );
    }
}
