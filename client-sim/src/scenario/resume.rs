//! The arena under `--faults`: the bots play as in `arena` (log in, join `arena-{N / room
//! size}`, `move` at `--rate`, `chat` now and then), but speak version 2, every
//! `--once-every`th call is `once`, and their links are killed at random and resumed.
//!
//! # A bot's faults
//! - While its link is up and it plays, a bot's link is killed after an exponential time of
//!   mean `60 / --fault-rate` s; and a share `--fault-fresh-share` of the bots' first sessions
//!   is killed before it carried anything: right after the welcome (nothing sent), or right
//!   after the first frame (the `login`; with `--accounts guest`, the `guest` or `auth`) went
//!   out. Kills stop at the end of the steady window.
//! - A kill is a reset (`--fault-rst-share`), or half-open: the socket held open, unread and
//!   unwritten (see `worker::kill`). Some half-open kills are *early* (`--fault-early-share`):
//!   the bot reconnects within half the server's idle timeout, before the server finds the old
//!   link dead, and holds the old socket until the resume: the server must then end that link
//!   (PROTOCOL.md 11.4, point 4), which the bot checks by reading it to its end within a second.
//! - The bot stays offline for an outage drawn between `--outage-min` and `--outage-max`; its
//!   `move` and `once` calls go on meanwhile into the session's offline queue (at most
//!   [`OFFLINE_PENDING`] waiting, then moves are skipped and counted). Then its session
//!   reconnects and resumes by itself.
//!
//! # What is checked
//! - The resume's answer against the window (`fault_plan`): `Resumed` where it must succeed,
//!   `ResumeFailed` with a reason where it must fail; a session that ends without a kill, or a
//!   link that drops without one, is an error.
//! - Every call ends once: answered, or failed with its session (explicitly: the client says
//!   its fate is unknown). A timeout (the call timeout outlasts any outage) or an answer lost
//!   (`stale_request`) is a lost call; a `once` answer other than 1 is a request run twice.
//! - The `state` ticks of each session go up by exactly one across its resumes (`worker::ticks`).
//!
//! Calls are stamped with the session that made them: one queued offline and sent on the next
//! session after a refused resume (a `move` before the new `join`) fails with an error reply
//! there, which is the old session's end showing, not an error.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ticksock_arena::proto::{Chat, Move, ROUTE_CHAT, ROUTE_MOVE, ROUTE_ONCE};
use ticksock_client::{CallId, Outcome, SessionEnd};
use ticksock_protocol::{Version, resume_reason};

use super::fault_plan::{Expect, FaultPlan, FreshKill, HeldRate, KillKind, held_rate};
use super::sign_in::{self, SignIn, Step};
use super::{Script, SocketEnd, join, read_to_end};
use crate::Options;
use crate::tally::micros;
use crate::worker::{Bot, Cx, Kill};

/// Calls a bot lets wait while offline (queued, or sent and unanswered); past it, its moves
/// are skipped until it is back. The session's offline queue takes 64.
pub(crate) const OFFLINE_PENDING: usize = 32;
/// How soon after a resume the server must have ended the old, half-open link.
const OLD_LINK_GRACE: Duration = Duration::from_secs(1);
/// How often the old link is read meanwhile.
const OLD_LINK_POLL: Duration = Duration::from_millis(20);
/// Refusals of the server's known gap (a session killed before its first frame) described per
/// worker; the others are described up to the tally's bound.
const GAP_EXAMPLES: u64 = 2;

/// The scenario's settings.
pub(crate) struct Resume {
    plan: FaultPlan,
    move_every: Duration,
    chat_every: Duration,
    once_every: u64,
    /// Calls per second per bot, for the estimate of the bytes a session holds.
    rate: f64,
}

/// A bot: where it is in the game, its calls, and its outage.
#[derive(Debug, Default)]
pub(crate) struct ResumeBot {
    stage: Stage,
    /// Sessions started so far (each `Connected`); calls are stamped with it.
    session: u32,
    /// Calls waiting for their outcome.
    calls: HashMap<CallId, CallStamp>,
    /// Moves and `once` calls made.
    made: u64,
    /// The outage under way: from the kill to the resume's answer.
    outage: Option<Outage>,
    /// The half-open socket of the killed link, held until its fate is known.
    old_link: Option<OldLink>,
}

/// Where a bot is in the game.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Stage {
    /// Its session is not logged in.
    #[default]
    LoggedOut,
    /// Logging in (`login`, or `guest` and `auth` with `--accounts guest`).
    SigningIn(SignIn),
    Joining(CallId),
    /// In its arena: moving and chatting (also while offline).
    Playing,
}

/// What a call was.
#[derive(Debug, Clone, Copy)]
struct CallStamp {
    /// The session that made it.
    session: u32,
    /// A `once` call.
    once: bool,
}

/// A killed link, until its session's resume is answered.
#[derive(Debug, Clone, Copy)]
struct Outage {
    kind: KillKind,
    killed_at: Instant,
    /// The bytes the server holds for the session gains per second meanwhile.
    held: HeldRate,
    /// The outage is over: the bot reconnected and waits for the resume's answer.
    reconnecting: bool,
    /// The old link was still open on the server when the bot reconnected.
    still_linked: bool,
    /// A new session's kill: before or after its first frame.
    fresh: Option<FreshKill>,
}

/// The socket of a half-open link.
#[derive(Debug)]
struct OldLink {
    socket: socket2::Socket,
    /// Set when the session resumed: the server must have closed the link by then.
    deadline: Option<Instant>,
}

/// The scenario's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ResumeTimer {
    Move,
    Chat,
    /// Kill the link now.
    Kill,
    /// The outage is over: reconnect.
    OutageOver,
    /// Read the old link again.
    OldLinkPoll,
    /// Log in or join again, after a refusal.
    Retry,
}

impl Resume {
    pub(crate) fn new(opts: &Options) -> Self {
        Self {
            plan: FaultPlan::new(opts),
            move_every: Duration::from_secs_f64(1.0 / opts.rate.max(0.001)),
            chat_every: Duration::from_secs_f64(opts.chat_interval.max(0.001)),
            once_every: u64::from(opts.once_every),
            rate: opts.rate.max(0.0),
        }
    }

    /// Stamps call `id` (if the session took it) with the current session.
    fn stamp(bot: &mut Bot<Self>, id: Option<CallId>, once: bool) -> Option<CallId> {
        let id = id?;
        bot.state.calls.insert(id, CallStamp { session: bot.state.session, once });
        Some(id)
    }

    fn sign_in(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ResumeTimer>) {
        if let Some(call) = sign_in::start(bot, now, cx) {
            Self::stamp(bot, Some(call.id()), false);
            bot.state.stage = Stage::SigningIn(call);
        }
    }

    fn join(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ResumeTimer>) {
        let id = join(bot, "arena", now, cx);
        if let Some(id) = Self::stamp(bot, id, false) {
            bot.state.stage = Stage::Joining(id);
        }
    }

    /// In the arena: moves and chats start, at random phases, and the next kill is set.
    fn play(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ResumeTimer>) {
        bot.state.stage = Stage::Playing;
        let phase = Duration::from_nanos(bot.rng.below(self.move_every.as_nanos() as u64));
        bot.schedule(cx, now + phase, ResumeTimer::Move);
        let phase = Duration::from_nanos(bot.rng.below(self.chat_every.as_nanos() as u64));
        bot.schedule(cx, now + phase, ResumeTimer::Chat);
        self.schedule_kill(bot, now, cx);
    }

    fn schedule_kill(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ResumeTimer>) {
        if let Some(after) = self.plan.next_kill_in(bot.rng.next_f64()) {
            bot.schedule(cx, now + after, ResumeTimer::Kill);
        }
    }

    /// Whether a bot offline has room for another call.
    fn may_call(bot: &Bot<Self>) -> bool {
        bot.session.is_connected() || bot.session.pending_calls() < OFFLINE_PENDING
    }

    /// A `move`, or every `--once-every`th call a `once`.
    fn next_call(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ResumeTimer>) {
        if !Self::may_call(bot) {
            cx.tally.counters.moves_skipped_offline += 1;
            return;
        }
        bot.state.made += 1;
        if self.once_every > 0 && bot.state.made.is_multiple_of(self.once_every) {
            let id = bot.call(ROUTE_ONCE, &(), now, cx);
            if Self::stamp(bot, id, true).is_some() {
                cx.tally.counters.calls_once += 1;
            }
        } else {
            let dx = bot.rng.below(3) as i8 - 1;
            let dy = bot.rng.below(3) as i8 - 1;
            let id = bot.call(ROUTE_MOVE, &Move { dx, dy }, now, cx);
            Self::stamp(bot, id, false);
        }
    }

    /// Kills the bot's link as `kind` and holds it offline for an outage. `fresh`: a new
    /// session's kill.
    fn kill(
        &self,
        bot: &mut Bot<Self>,
        kind: KillKind,
        fresh: Option<FreshKill>,
        now: Instant,
        cx: &mut Cx<ResumeTimer>,
    ) {
        let tick_hz = bot.session.welcome().map_or(0, |(hz, _)| hz);
        let state = (bot.state.stage == Stage::Playing).then_some(bot.track.state);
        let room_size = cx.opts.room_size as usize;
        let held = held_rate(tick_hz, state, room_size, bot.track.player_id.unwrap_or(0), self.rate);
        let c = &mut cx.tally.counters;
        match kind {
            KillKind::Reset => c.kills_rst += 1,
            KillKind::HalfOpen { early } => {
                c.kills_half_open += 1;
                c.kills_early += u64::from(early);
            }
        }
        // Set before the kill: the session's events of the drop are handled within it.
        bot.state.outage =
            Some(Outage { kind, killed_at: now, held, reconnecting: false, still_linked: false, fresh });
        bot.held_offline = true;
        let how = if kind == KillKind::Reset { Kill::Reset } else { Kill::HalfOpen };
        let old_socket = bot.kill_link(self, how, now, cx);
        if how == Kill::HalfOpen && old_socket.is_none() {
            // No descriptor to hold it with: the link was closed instead.
            cx.tally.counters.half_open_missed += 1;
        }
        bot.state.old_link = old_socket.map(|socket| OldLink { socket, deadline: None });
        let outage = self.plan.outage(kind, bot.rng.next_f64());
        bot.schedule(cx, now + outage, ResumeTimer::OutageOver);
    }

    /// The outage is over: notes whether the old link is still open, and reconnects.
    fn outage_over(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ResumeTimer>) {
        let Some(outage) = bot.state.outage.as_mut().filter(|o| !o.reconnecting) else { return };
        outage.reconnecting = true;
        cx.tally.counters.resumes_attempted += 1;
        if let Some(old) = bot.state.old_link.as_mut() {
            // Reading discards what the server wrote meanwhile: the resume replays it.
            if let SocketEnd::Open = read_to_end(&mut old.socket) {
                outage.still_linked = true;
                cx.tally.counters.old_links_open_at_reconnect += 1;
            } else {
                // The server found it dead already.
                bot.state.old_link = None;
            }
        }
        bot.held_offline = false;
        bot.drive(self, now, false, cx);
    }

    /// Judges the resume's answer (`refused` for a reason, or `None`: resumed) against the
    /// window; an answer against the window is described in the tally. Returns whether there
    /// was an outage of the bot's making.
    fn judge(
        &self,
        bot: &mut Bot<Self>,
        refused: Option<&'static str>,
        now: Instant,
        cx: &mut Cx<ResumeTimer>,
    ) -> bool {
        let Some(outage) = bot.state.outage.take() else { return false };
        // A resume can only be answered on a link the bot opened after the outage.
        bot.held_offline = false;
        let offline = now.saturating_duration_since(outage.killed_at).as_secs_f64();
        let expect = self.plan.expect(outage.kind, outage.still_linked, offline, outage.held);
        let c = &mut cx.tally.counters;
        let count = match (refused, expect) {
            (None, Expect::Resume) => &mut c.resumed_inside,
            (None, Expect::Either) => &mut c.resumed_edge,
            (None, Expect::Fail) => &mut c.resumed_outside,
            (Some(_), Expect::Resume) => {
                c.failed_inside_before_first_frame +=
                    u64::from(outage.fresh == Some(FreshKill::BeforeFirstFrame));
                &mut c.failed_inside
            }
            (Some(_), Expect::Either) => &mut c.failed_edge,
            (Some(_), Expect::Fail) => &mut c.failed_outside,
        };
        *count += 1;
        // The server gap of sessions killed before their first frame has its own count: a few
        // examples of it are enough, and the room is kept for anything else.
        let gap = refused.is_some() && outage.fresh == Some(FreshKill::BeforeFirstFrame);
        let described = !gap || c.failed_inside_before_first_frame <= GAP_EXAMPLES;
        if described && matches!((refused, expect), (Some(_), Expect::Resume) | (None, Expect::Fail)) {
            let answer = refused.map_or_else(|| "resumed".to_owned(), |reason| format!("refused `{reason}`"));
            cx.tally.note_surprise(format!(
                "bot {} session {}: {}, offline {offline:.1} s, {:.0} to {:.0} kB held: {answer}",
                bot.index,
                bot.state.session,
                describe(&outage),
                outage.held.low * offline / 1000.0,
                outage.held.high * offline / 1000.0,
            ));
        }
        true
    }

    /// Reads the old link after a resume: the server must close it within [`OLD_LINK_GRACE`].
    fn check_old_link(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ResumeTimer>) {
        let Some(old) = bot.state.old_link.as_mut() else { return };
        let Some(deadline) = old.deadline else { return };
        match read_to_end(&mut old.socket) {
            SocketEnd::Closed | SocketEnd::Failed(_) => {
                cx.tally.counters.old_links_ended_by_resume += 1;
                bot.state.old_link = None;
            }
            SocketEnd::Open if now >= deadline => {
                cx.tally.counters.old_links_not_ended += 1;
                bot.state.old_link = None;
            }
            SocketEnd::Open => bot.schedule(cx, now + OLD_LINK_POLL, ResumeTimer::OldLinkPoll),
        }
    }
}

/// An outage in words: how its link was killed.
fn describe(outage: &Outage) -> String {
    let kind = match outage.kind {
        KillKind::Reset => "reset",
        KillKind::HalfOpen { early: true } => "half-open (early)",
        KillKind::HalfOpen { early: false } => "half-open",
    };
    let when = match outage.fresh {
        Some(FreshKill::BeforeFirstFrame) => " before its first frame",
        Some(FreshKill::AfterFirstFrame) => " right after its first frame",
        None => "",
    };
    let linked = if outage.still_linked { ", old link still open at the reconnect" } else { "" };
    format!("{kind}{when}{linked}")
}

/// A refused resume's reason, by name.
fn end_reason(reason: &SessionEnd) -> &'static str {
    match reason {
        SessionEnd::ResumeFailed { reason, .. } => resume_reason::name(*reason),
        SessionEnd::ServerSpeaksV1 => "v1_server",
        SessionEnd::CountMismatch { .. } => "count_mismatch",
    }
}

impl Script for Resume {
    type BotState = ResumeBot;
    type Timer = ResumeTimer;

    /// A new session: the first, or the one after a refused resume. Some first sessions are
    /// killed before they carried anything. (Not the later ones: a session after a refused
    /// resume carries the calls queued during the outage, which would then wait out a second
    /// outage and outlast their timeout, sized for one.)
    fn on_connected(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ResumeTimer>) {
        bot.state.session += 1;
        bot.state.stage = Stage::LoggedOut;
        if bot.session.version() != Some(Version::V2) {
            cx.tally.counters.links_not_v2 += 1;
        }
        let fresh = self.plan.fresh_kill(bot.rng.next_f64(), bot.rng.next_f64());
        let kind = self.plan.kill_kind(bot.rng.next_f64(), bot.rng.next_f64());
        match fresh.filter(|_| bot.state.session == 1 && cx.in_window(now)) {
            None => self.sign_in(bot, now, cx),
            Some(FreshKill::BeforeFirstFrame) => {
                cx.tally.counters.kills_fresh_before += 1;
                self.kill(bot, kind, fresh, now, cx);
            }
            Some(FreshKill::AfterFirstFrame) => {
                cx.tally.counters.kills_fresh_after += 1;
                self.sign_in(bot, now, cx);
                bot.flush(self, now, cx);
                if bot.conn.is_some() {
                    self.kill(bot, kind, fresh, now, cx);
                }
            }
        }
    }

    fn on_outcome(
        &self,
        bot: &mut Bot<Self>,
        id: CallId,
        outcome: Outcome,
        now: Instant,
        cx: &mut Cx<ResumeTimer>,
    ) {
        let stamp = bot.state.calls.remove(&id);
        if stamp.is_some_and(|s| s.once)
            && let Some(body) = outcome.reply_body()
            && ticksock_protocol::decode_body::<u32>(body).ok() != Some(1)
        {
            cx.tally.counters.once_ran_twice += 1;
        }
        let current = stamp.is_some_and(|s| s.session == bot.state.session);
        let retry = now + Duration::from_secs(1);
        match bot.state.stage {
            Stage::SigningIn(call) if call.id() == id && current => {
                match sign_in::step(bot, call, outcome, now, cx) {
                    Step::Done => self.join(bot, now, cx),
                    Step::Next(next) => {
                        Self::stamp(bot, Some(next.id()), false);
                        bot.state.stage = Stage::SigningIn(next);
                    }
                    Step::Failed => bot.schedule(cx, retry, ResumeTimer::Retry),
                }
            }
            Stage::Joining(join) if join == id && current => {
                if outcome.is_reply() {
                    sign_in::note_player(bot, &outcome);
                    self.play(bot, now, cx);
                } else {
                    bot.schedule(cx, retry, ResumeTimer::Retry);
                }
            }
            _ => {}
        }
    }

    fn on_timer(
        &self,
        bot: &mut Bot<Self>,
        timer: ResumeTimer,
        at: Instant,
        now: Instant,
        cx: &mut Cx<ResumeTimer>,
    ) {
        let next = |every: Duration| if at + every > now { at + every } else { now + every };
        match (timer, bot.state.stage) {
            (ResumeTimer::Move, Stage::Playing) => {
                cx.tally.timer_late.saturating_record(micros(now.saturating_duration_since(at)));
                self.next_call(bot, now, cx);
                bot.schedule(cx, next(self.move_every), ResumeTimer::Move);
            }
            (ResumeTimer::Chat, Stage::Playing) => {
                if Self::may_call(bot) {
                    let text = format!("hello from {}", bot.index);
                    let id = bot.call(ROUTE_CHAT, &Chat { text }, now, cx);
                    Self::stamp(bot, id, false);
                }
                bot.schedule(cx, next(self.chat_every), ResumeTimer::Chat);
            }
            (ResumeTimer::Kill, _)
                if cx.in_window(now) && bot.state.outage.is_none() && bot.session.is_connected() =>
            {
                let kind = self.plan.kill_kind(bot.rng.next_f64(), bot.rng.next_f64());
                self.kill(bot, kind, None, now, cx);
            }
            (ResumeTimer::OutageOver, _) => self.outage_over(bot, now, cx),
            (ResumeTimer::OldLinkPoll, _) => self.check_old_link(bot, now, cx),
            (ResumeTimer::Retry, Stage::SigningIn(_)) => self.sign_in(bot, now, cx),
            (ResumeTimer::Retry, Stage::Joining(_)) => self.join(bot, now, cx),
            _ => {}
        }
    }

    /// The session goes on where it was; a bot killed before it logged in does it now.
    fn on_resumed(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ResumeTimer>) {
        cx.tally.counters.resumes_ok += 1;
        let planned = self.judge(bot, None, now, cx);
        if let Some(old) = bot.state.old_link.as_mut() {
            old.deadline = Some(now + OLD_LINK_GRACE);
            self.check_old_link(bot, now, cx);
        }
        match bot.state.stage {
            Stage::LoggedOut => self.sign_in(bot, now, cx),
            Stage::Playing if planned => self.schedule_kill(bot, now, cx),
            _ => {}
        }
    }

    /// The resume was refused: judged, and the old link let go. The session's calls have
    /// failed; the new session's `Connected` follows.
    fn on_session_ended(
        &self,
        bot: &mut Bot<Self>,
        reason: SessionEnd,
        now: Instant,
        cx: &mut Cx<ResumeTimer>,
    ) {
        cx.tally.counters.resumes_failed += 1;
        *cx.tally.resume_failures.entry(end_reason(&reason)).or_default() += 1;
        if !self.judge(bot, Some(end_reason(&reason)), now, cx) {
            cx.tally.counters.sessions_ended_unplanned += 1;
        }
        bot.state.old_link = None;
        bot.state.stage = Stage::LoggedOut;
    }

    /// A session's calls are stamped: a failure of one made by an earlier session is that
    /// session's end showing.
    fn is_expected_failure(&self, bot: &Bot<Self>, id: CallId, outcome: &Outcome) -> bool {
        !outcome.is_reply() && bot.state.calls.get(&id).is_some_and(|s| s.session < bot.state.session)
    }

    /// Settled once back, and the old link's fate known.
    fn settled(&self, bot: &Bot<Self>) -> bool {
        bot.state.outage.is_none() && bot.state.old_link.is_none() && bot.session.is_connected()
    }

    /// The session ended with its link (a close frame): the calls stay stamped, the rest
    /// starts over with the next session.
    fn on_offline(&self, bot: &mut Bot<Self>) {
        bot.state.stage = Stage::LoggedOut;
        bot.state.outage = None;
        bot.state.old_link = None;
        bot.held_offline = false;
        bot.generation = bot.generation.wrapping_add(1);
    }

    /// A link that drops without a kill is an error; its session resumes as any would.
    fn on_socket_closed(
        &self,
        _bot: &mut Bot<Self>,
        welcomed: bool,
        _now: Instant,
        cx: &mut Cx<ResumeTimer>,
    ) {
        if welcomed {
            cx.tally.counters.unexpected_drops += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_described_by_how_its_link_was_killed() {
        let outage = Outage {
            kind: KillKind::HalfOpen { early: true },
            killed_at: Instant::now(),
            held: HeldRate::default(),
            reconnecting: true,
            still_linked: true,
            fresh: Some(FreshKill::AfterFirstFrame),
        };
        assert_eq!(
            describe(&outage),
            "half-open (early) right after its first frame, old link still open at the reconnect"
        );
        let reset = Outage { kind: KillKind::Reset, still_linked: false, fresh: None, ..outage };
        assert_eq!(describe(&reset), "reset");
    }

    #[test]
    fn refused_resumes_are_named_by_their_reason() {
        let failed = |reason| SessionEnd::ResumeFailed { reason, message: String::new() };
        assert_eq!(end_reason(&failed(resume_reason::ENDED)), "ended");
        assert_eq!(end_reason(&failed(resume_reason::GAP_LOST)), "gap_lost");
        assert_eq!(end_reason(&SessionEnd::ServerSpeaksV1), "v1_server");
        assert_eq!(end_reason(&SessionEnd::CountMismatch { problem: String::new() }), "count_mismatch");
    }
}
