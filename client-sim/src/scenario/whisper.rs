//! `whisper`: log in as `PREFIX-N`, join `lobby`, and from the start of the steady window
//! whisper to a partner at `--whisper-rate` per second (random phase per bot), until its end.
//! `lobby` holds 64 connections per node, so only the first `--room-size` bots of each URL
//! join it; the others whisper from no arena (a whisper needs only a login).
//! The partner ([`partner`]) is the next bot, which the round-robin spreading over the
//! `--url`s puts on another node: in a cluster every whisper crosses nodes.
//!
//! A whisper's text is `SENDER SEQ SENT_US` ([`WhisperText`]): the sender's index, its
//! sequence number towards that partner (from 0, kept across reconnects), and when it was sent
//! on the simulator's own clock (µs since the run's start; sender and receiver share the
//! process). The receiver times the delivery and checks the sequence per sender ([`Inbox`]):
//! duplicates and whispers that arrive after a later one are counted. A whisper the server
//! accepted (its call answered `()`) and nobody received by the end of the drain is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ticksock_arena::proto::{ChatLine, Join, ROUTE_JOIN, ROUTE_WHISPER, TOPIC_WHISPER, Whisper};
use ticksock_client::{CallId, Outcome};

use super::{Script, logged_in, login};
use crate::Options;
use crate::tally::{Tally, micros};
use crate::worker::{Bot, Cx};

/// The room every whisper bot joins: it exists on every node of a cluster.
const ROOM: &str = "lobby";

/// The bot bot `index` whispers to, of `bots` spread round-robin over `urls` URLs: the next
/// one, which is on another URL when there are several. Only the last bot's "next" (the
/// first) can share its URL (when `bots % urls == 1`); it takes the second bot then.
pub(crate) fn partner(index: u32, bots: u32, urls: u32) -> u32 {
    let bots = bots.max(1);
    let urls = urls.max(1);
    let next = (index + 1) % bots;
    if urls > 1 && bots > 2 && next % urls == index % urls { (index + 2) % bots } else { next }
}

/// What a whisper says: who sent it, its number towards its partner, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WhisperText {
    pub sender: u32,
    pub seq: u64,
    /// Microseconds from the run's start to the call.
    pub sent_us: u64,
}

impl WhisperText {
    pub(crate) fn encode(&self) -> String {
        format!("{} {} {}", self.sender, self.seq, self.sent_us)
    }

    /// The whisper `text` is, if it is one of this simulator's.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(' ');
        let whisper = Self {
            sender: parts.next()?.parse().ok()?,
            seq: parts.next()?.parse().ok()?,
            sent_us: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(whisper)
    }
}

/// How a whisper arrived, against the ones from its sender before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// After every earlier one it was sent after (gaps may be filled later).
    InOrder,
    /// After a later one of the same sender.
    OutOfOrder,
    /// Received before.
    Duplicate,
}

/// One receiver's view of its senders' sequences.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    senders: BTreeMap<u32, Sequence>,
}

/// One sender's numbers as received: the highest, and those below it not received yet.
#[derive(Debug, Default)]
struct Sequence {
    highest: Option<u64>,
    missing: BTreeSet<u64>,
}

impl Inbox {
    /// Notes whisper `seq` of `sender`.
    pub(crate) fn receive(&mut self, sender: u32, seq: u64) -> Arrival {
        let s = self.senders.entry(sender).or_default();
        match s.highest {
            Some(highest) if seq <= highest => {
                if s.missing.remove(&seq) {
                    Arrival::OutOfOrder
                } else {
                    Arrival::Duplicate
                }
            }
            highest => {
                let first_missing = highest.map_or(0, |h| h + 1);
                s.missing.extend(first_missing..seq);
                s.highest = Some(seq);
                Arrival::InOrder
            }
        }
    }
}

/// The whisper scenario's settings.
pub(crate) struct WhisperScenario {
    every: Duration,
    bots: u32,
    urls: u32,
    /// Bots per URL that join `lobby` (`--room-size`).
    in_lobby: u32,
}

/// Where a whisper bot is in its connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not connected (or waiting for the welcome).
    #[default]
    Offline,
    LoggingIn(CallId),
    Joining(CallId),
    /// In `lobby`: whispering (once the steady window starts).
    Whispering,
}

/// A whisper bot: its phase, and what outlives its connections (its sequence, its inbox).
#[derive(Debug, Default)]
pub(crate) struct WhisperBot {
    phase: Phase,
    /// The next whisper's number.
    next_seq: u64,
    inbox: Inbox,
}

/// A whisper bot's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum WhisperTimer {
    Whisper,
    /// Log in or join again, after a refusal.
    Retry,
}

impl WhisperScenario {
    pub(crate) fn new(opts: &Options) -> Self {
        Self {
            every: Duration::from_secs_f64(1.0 / opts.whisper_rate.max(0.001)),
            bots: opts.bots,
            urls: u32::try_from(opts.urls.len()).unwrap_or(u32::MAX),
            in_lobby: opts.room_size,
        }
    }

    /// Whether bot `index` joins `lobby`: the first `--room-size` of its URL do.
    fn joins_lobby(&self, index: u32) -> bool {
        index / self.urls.max(1) < self.in_lobby
    }

    /// Starts whispering: with the steady window (every partner has started), at a random
    /// phase, so that the bots' whispers spread over each period.
    fn start(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<WhisperTimer>) {
        bot.state.phase = Phase::Whispering;
        let from = now.max(cx.steady_start());
        let phase = Duration::from_nanos(bot.rng.below(self.every.as_nanos() as u64));
        bot.schedule(cx, from + phase, WhisperTimer::Whisper);
    }

    fn login(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<WhisperTimer>) {
        if let Some(id) = login(bot, now, cx) {
            bot.state.phase = Phase::LoggingIn(id);
        }
    }

    fn join(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<WhisperTimer>) {
        let join = Join { room: ROOM.to_owned() };
        if let Some(id) = bot.call_resendable(ROUTE_JOIN, &join, now, cx) {
            bot.state.phase = Phase::Joining(id);
        }
    }

    fn whisper(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<WhisperTimer>) {
        let to = partner(bot.index, self.bots, self.urls);
        let text = WhisperText {
            sender: bot.index,
            seq: bot.state.next_seq,
            sent_us: micros(now.saturating_duration_since(cx.run_start)),
        };
        let to = format!("{}-{to}", cx.opts.name_prefix);
        if bot.call(ROUTE_WHISPER, &Whisper { to, text: text.encode() }, now, cx).is_some() {
            bot.state.next_seq += 1;
        }
    }
}

impl Script for WhisperScenario {
    type BotState = WhisperBot;
    type Timer = WhisperTimer;

    fn on_connected(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<WhisperTimer>) {
        self.login(bot, now, cx);
    }

    fn on_outcome(
        &self,
        bot: &mut Bot<Self>,
        id: CallId,
        outcome: Outcome,
        now: Instant,
        cx: &mut Cx<WhisperTimer>,
    ) {
        let retry = now + Duration::from_secs(1);
        match bot.state.phase {
            Phase::LoggingIn(login) if login == id => {
                if !logged_in(bot, outcome) {
                    bot.schedule(cx, retry, WhisperTimer::Retry);
                } else if self.joins_lobby(bot.index) {
                    self.join(bot, now, cx);
                } else {
                    self.start(bot, now, cx);
                }
            }
            Phase::Joining(join) if join == id => {
                if !outcome.is_reply() {
                    return bot.schedule(cx, retry, WhisperTimer::Retry);
                }
                self.start(bot, now, cx);
            }
            // Every other call is a whisper (of this connection, or a late one of the last).
            _ if outcome.is_reply() => cx.tally.whisper.sent += 1,
            _ if matches!(outcome, Outcome::Closed) => {}
            _ => cx.tally.whisper.failed += 1,
        }
    }

    fn on_timer(
        &self,
        bot: &mut Bot<Self>,
        timer: WhisperTimer,
        at: Instant,
        now: Instant,
        cx: &mut Cx<WhisperTimer>,
    ) {
        match (timer, bot.state.phase) {
            (WhisperTimer::Whisper, Phase::Whispering) => {
                cx.tally.timer_late.saturating_record(micros(now.saturating_duration_since(at)));
                if !cx.in_window(now) {
                    return; // The drain: no new whispers.
                }
                self.whisper(bot, now, cx);
                let next = if at + self.every > now { at + self.every } else { now + self.every };
                bot.schedule(cx, next, WhisperTimer::Whisper);
            }
            (WhisperTimer::Retry, Phase::LoggingIn(_)) => self.login(bot, now, cx),
            (WhisperTimer::Retry, Phase::Joining(_)) => self.join(bot, now, cx),
            _ => {}
        }
    }

    fn on_offline(&self, bot: &mut Bot<Self>) {
        // The sequence and the inbox outlive the connection: a whisper is numbered once.
        bot.state.phase = Phase::Offline;
        bot.generation = bot.generation.wrapping_add(1);
    }

    fn on_push(
        &self,
        state: &mut WhisperBot,
        topic: &str,
        body: &[u8],
        now: Instant,
        run_start: Instant,
        tally: &mut Tally,
    ) {
        if topic != TOPIC_WHISPER {
            return;
        }
        let line = ticksock_protocol::decode_body::<ChatLine>(body).ok();
        let Some(whisper) = line.as_ref().and_then(|line| WhisperText::parse(&line.text)) else {
            tally.counters.whispers_unknown += 1;
            return;
        };
        let w = &mut tally.whisper;
        match state.inbox.receive(whisper.sender, whisper.seq) {
            Arrival::Duplicate => {
                w.duplicated += 1;
                return;
            }
            Arrival::OutOfOrder => w.out_of_order += 1,
            Arrival::InOrder => {}
        }
        w.received += 1;
        let received_us = micros(now.saturating_duration_since(run_start));
        w.latency.saturating_record(received_us.saturating_sub(whisper.sent_us).max(1));
    }

    /// The run goes on to the end of the drain: a bot cannot know that the whispers to it
    /// have all arrived.
    fn settled(&self, _bot: &Bot<Self>) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partner_is_another_bot_on_another_url() {
        for urls in 2..=5 {
            for bots in 2..=40 {
                for i in 0..bots {
                    let p = partner(i, bots, urls);
                    assert!(p < bots, "{i} of {bots}");
                    assert_ne!(p, i, "{i} of {bots} over {urls}");
                    assert_ne!(p % urls, i % urls, "{i} of {bots} over {urls} URLs: partner {p}");
                }
            }
        }
        assert_eq!(partner(0, 1, 3), 0, "a lone bot whispers to itself");
        assert_eq!(partner(6, 7, 3), 1, "bot 0 is on bot 6's URL: the next one");
        assert_eq!(partner(2, 7, 1), 3, "one URL: the next bot");
    }

    #[test]
    fn a_whisper_text_reads_back_and_nothing_else_does() {
        let w = WhisperText { sender: 12, seq: 345, sent_us: 6_789_000 };
        assert_eq!(WhisperText::parse(&w.encode()), Some(w));
        assert!(w.encode().len() <= ticksock_arena::proto::MAX_CHAT_LEN);
        for other in ["", "hello from 3", "1 2", "1 2 3 4", "1 -2 3", "a b c"] {
            assert_eq!(WhisperText::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn an_inbox_tells_duplicates_and_late_arrivals() {
        let mut inbox = Inbox::default();
        assert_eq!(inbox.receive(7, 0), Arrival::InOrder);
        assert_eq!(inbox.receive(7, 1), Arrival::InOrder);
        assert_eq!(inbox.receive(7, 1), Arrival::Duplicate);
        assert_eq!(inbox.receive(7, 4), Arrival::InOrder, "2 and 3 are missing so far");
        assert_eq!(inbox.receive(7, 3), Arrival::OutOfOrder);
        assert_eq!(inbox.receive(7, 3), Arrival::Duplicate);
        assert_eq!(inbox.receive(7, 2), Arrival::OutOfOrder);
        assert_eq!(inbox.receive(8, 0), Arrival::InOrder, "each sender is a sequence of its own");
        assert_eq!(inbox.receive(8, 0), Arrival::Duplicate);
        assert_eq!(inbox.receive(7, 5), Arrival::InOrder);
    }
}
