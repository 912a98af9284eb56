//! `faults`: connections that die the way real ones do. Each life of a bot: a new session and
//! connection, log in as `PREFIX-N`, join `faults-{N / room size}`, send a `move` every
//! `1/--rate` s for a random lifetime (uniform over `[L/2, 3L/2]`, `L` = `--fault-lifetime`),
//! then kill the connection in one of two ways and start the next life:
//!
//! - **reset** (a fraction `--rst-fraction` of the kills): set `SO_LINGER` to 0 and close the
//!   socket, so the kernel sends a TCP reset instead of a FIN. The next life starts at once.
//! - **silent half-open** (the others): stop reading and writing, but keep the socket open for
//!   `--half-open-hold` s, which must be longer than the server's idle timeout: the server must
//!   find the connection dead by its own heartbeat and close it. After the hold the bot reads
//!   what the socket holds, discarding it, to see whether the server closed it (a FIN or a
//!   reset at the end); a socket still open [`CONFIRM_GRACE`] later counts as a half-open
//!   connection the server missed, an error. Then it drops the socket and starts the next life.
//!
//! A connection is alive until its bot decides to kill it, so every call made on it must be
//! answered: once the lifetime is over the bot makes no more calls and waits for the answers
//! to those in flight (a call that times out is an error, as everywhere), and kills the
//! connection only when none is pending. Kills are therefore not errors and lose no call; they
//! are counted apart (`kills_rst`, `kills_half_open`, `half_open_found`). A connection that
//! drops while the bot still uses it is an error (`unexpected_drops`); its session then
//! reconnects as any bot's would.

use std::time::{Duration, Instant};

use ticksock_arena::proto::{Move, ROUTE_MOVE};
use ticksock_client::{CallId, Outcome};

use super::{Script, SocketEnd, join, logged_in, login, read_to_end};
use crate::Options;
use crate::tally::micros;
use crate::worker::{Bot, Cx, arm_reset, hold_open};

/// How often a held socket is read after the hold, until the server's close shows.
const CONFIRM_POLL: Duration = Duration::from_millis(20);
/// How long after the hold a held socket may still be open. A server that closed it in time
/// may still have bytes for it on the way, stuck behind the receive window the bot stopped
/// reading, and its FIN comes after them: reading lets them through within milliseconds on
/// loopback. Seconds of grace would hide a server that finds dead peers late.
const CONFIRM_GRACE: Duration = Duration::from_secs(1);

/// The faults scenario's settings.
pub(crate) struct Faults {
    move_every: Duration,
    /// The mean lifetime of a connection, from the `join` reply to the kill decision.
    lifetime: Duration,
    rst_fraction: f64,
    hold: Duration,
}

/// A faults bot: where it is in its life, and the socket of a half-open connection it holds.
#[derive(Debug, Default)]
pub(crate) struct FaultsBot {
    stage: Stage,
    /// The socket of a half-open connection, held outside the session and the event loop so
    /// that nothing reads or writes it (a duplicate of the connection's descriptor: closing
    /// the connection's own then sends nothing to the server).
    held: Option<socket2::Socket>,
}

/// Where a faults bot is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Stage {
    /// Not connected (or waiting for the welcome).
    #[default]
    Offline,
    LoggingIn(CallId),
    Joining(CallId),
    /// In its room, moving, until its lifetime is over.
    Playing,
    /// The lifetime is over: no more calls; waiting for the answers to those in flight.
    Draining,
    /// Killed silently: the socket is held, neither read nor written, until the hold is over.
    HalfOpen,
    /// The hold is over: reading what the held socket has, until the server's close shows or
    /// the deadline passes.
    Confirming {
        deadline: Instant,
    },
    /// Killed; the next life starts on the next timer.
    Dead,
}

impl Stage {
    /// Whether the bot killed its connection (and the session no longer runs a socket).
    fn killed(self) -> bool {
        matches!(self, Stage::HalfOpen | Stage::Confirming { .. } | Stage::Dead)
    }
}

/// A faults bot's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FaultsTimer {
    Move,
    /// The connection's lifetime is over.
    LifeOver,
    /// A half-open connection has been held long enough.
    HoldOver,
    /// Read the held socket again.
    ConfirmPoll,
    /// Start the next life.
    NextLife,
    /// Log in or join again, after a refusal.
    Retry,
}

/// How a connection is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// `SO_LINGER` 0, then close: a TCP reset.
    Reset,
    /// Silence, the socket held open.
    HalfOpen,
}

impl Faults {
    pub(crate) fn new(opts: &Options) -> Self {
        Self {
            move_every: Duration::from_secs_f64(1.0 / opts.rate.max(0.001)),
            lifetime: Duration::from_secs_f64(opts.fault_lifetime.max(0.001)),
            rst_fraction: opts.rst_fraction.clamp(0.0, 1.0),
            hold: Duration::from_secs_f64(opts.half_open_hold.max(0.0)),
        }
    }

    /// A connection's lifetime: uniform over `[L/2, 3L/2]`, from a draw `r` in `[0, 1)`.
    fn lifetime(&self, r: f64) -> Duration {
        self.lifetime.mul_f64(0.5 + r.clamp(0.0, 1.0))
    }

    /// The way to kill a connection, from a draw `r` in `[0, 1)`.
    fn kill_kind(&self, r: f64) -> Kill {
        if r < self.rst_fraction { Kill::Reset } else { Kill::HalfOpen }
    }

    fn login(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<FaultsTimer>) {
        if let Some(id) = login(bot, now, cx) {
            bot.state.stage = Stage::LoggingIn(id);
        }
    }

    fn join(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<FaultsTimer>) {
        if let Some(id) = join(bot, "faults", now, cx) {
            bot.state.stage = Stage::Joining(id);
        }
    }

    /// Kills the connection once no call on it waits for its answer.
    fn kill_when_drained(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<FaultsTimer>) {
        if bot.state.stage == Stage::Draining && bot.session.pending_calls() == 0 {
            let kind = self.kill_kind(bot.rng.next_f64());
            self.kill(bot, kind, now, cx);
        }
    }

    fn kill(&self, bot: &mut Bot<Self>, kind: Kill, now: Instant, cx: &mut Cx<FaultsTimer>) {
        bot.mark_down(cx);
        // This life's timers (moves) are forgotten; the kill's own come next.
        bot.generation = bot.generation.wrapping_add(1);
        let tcp = bot.conn.as_mut().and_then(|c| c.tcp_mut());
        match kind {
            Kill::Reset => {
                cx.tally.counters.kills_rst += 1;
                if let Some(tcp) = tcp {
                    arm_reset(tcp);
                }
                self.next_life_soon(bot, now, cx);
            }
            Kill::HalfOpen => {
                cx.tally.counters.kills_half_open += 1;
                let held = tcp.and_then(|tcp| hold_open(tcp, cx));
                if held.is_none() {
                    // No socket to hold (or no descriptor left): the kill becomes a plain close.
                    cx.tally.counters.half_open_missed += 1;
                    return self.next_life_soon(bot, now, cx);
                }
                bot.state.held = held;
                // The session's side of the socket closes; the held duplicate keeps it open.
                bot.conn = None;
                bot.state.stage = Stage::HalfOpen;
                bot.schedule(cx, now + self.hold, FaultsTimer::HoldOver);
            }
        }
    }

    /// Closes the bot's sockets and starts the next life on the next turn.
    fn next_life_soon(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<FaultsTimer>) {
        bot.conn = None;
        bot.state.held = None;
        bot.state.stage = Stage::Dead;
        bot.schedule(cx, now, FaultsTimer::NextLife);
    }

    /// Reads what the held socket has until the server's close shows (then the next life), or
    /// until it would block (then reads again shortly, until the deadline).
    fn confirm(&self, bot: &mut Bot<Self>, now: Instant, deadline: Instant, cx: &mut Cx<FaultsTimer>) {
        let end = match bot.state.held.as_mut() {
            Some(socket) => read_to_end(socket),
            None => SocketEnd::Failed(std::io::ErrorKind::NotConnected.into()),
        };
        match end {
            // A reset or another error on a socket we never wrote to is the peer's close too.
            SocketEnd::Closed | SocketEnd::Failed(_) => {
                cx.tally.counters.half_open_found += 1;
                self.next_life_soon(bot, now, cx);
            }
            SocketEnd::Open if now >= deadline => {
                cx.tally.counters.half_open_missed += 1;
                self.next_life_soon(bot, now, cx);
            }
            SocketEnd::Open => bot.schedule(cx, now + CONFIRM_POLL, FaultsTimer::ConfirmPoll),
        }
    }
}

impl Script for Faults {
    type BotState = FaultsBot;
    type Timer = FaultsTimer;

    fn on_connected(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<FaultsTimer>) {
        self.login(bot, now, cx);
    }

    fn on_outcome(
        &self,
        bot: &mut Bot<Self>,
        id: CallId,
        outcome: Outcome,
        now: Instant,
        cx: &mut Cx<FaultsTimer>,
    ) {
        let retry = now + Duration::from_secs(1);
        match bot.state.stage {
            Stage::LoggingIn(login) if login == id => {
                if logged_in(bot, outcome) {
                    self.join(bot, now, cx);
                } else {
                    bot.schedule(cx, retry, FaultsTimer::Retry);
                }
            }
            Stage::Joining(join) if join == id => {
                if !outcome.is_reply() {
                    return bot.schedule(cx, retry, FaultsTimer::Retry);
                }
                bot.state.stage = Stage::Playing;
                let phase = Duration::from_nanos(bot.rng.below(self.move_every.as_nanos() as u64));
                bot.schedule(cx, now + phase, FaultsTimer::Move);
                let lifetime = self.lifetime(bot.rng.next_f64());
                bot.schedule(cx, now + lifetime, FaultsTimer::LifeOver);
            }
            Stage::Draining => self.kill_when_drained(bot, now, cx),
            _ => {}
        }
    }

    fn on_timer(
        &self,
        bot: &mut Bot<Self>,
        timer: FaultsTimer,
        at: Instant,
        now: Instant,
        cx: &mut Cx<FaultsTimer>,
    ) {
        match (timer, bot.state.stage) {
            (FaultsTimer::Move, Stage::Playing) => {
                cx.tally.timer_late.saturating_record(micros(now.saturating_duration_since(at)));
                let dx = bot.rng.below(3) as i8 - 1;
                let dy = bot.rng.below(3) as i8 - 1;
                bot.call(ROUTE_MOVE, &Move { dx, dy }, now, cx);
                let next =
                    if at + self.move_every > now { at + self.move_every } else { now + self.move_every };
                bot.schedule(cx, next, FaultsTimer::Move);
            }
            (FaultsTimer::LifeOver, Stage::Playing) => {
                bot.state.stage = Stage::Draining;
                self.kill_when_drained(bot, now, cx);
            }
            (FaultsTimer::HoldOver, Stage::HalfOpen) => {
                let deadline = now + CONFIRM_GRACE;
                bot.state.stage = Stage::Confirming { deadline };
                self.confirm(bot, now, deadline, cx);
            }
            (FaultsTimer::ConfirmPoll, Stage::Confirming { deadline }) => {
                self.confirm(bot, now, deadline, cx)
            }
            (FaultsTimer::NextLife, Stage::Dead) => {
                bot.new_session(now);
                bot.state.stage = Stage::Offline;
                bot.drive(self, now, false, cx);
            }
            (FaultsTimer::Retry, Stage::LoggingIn(_)) => self.login(bot, now, cx),
            (FaultsTimer::Retry, Stage::Joining(_)) => self.join(bot, now, cx),
            _ => {}
        }
    }

    /// A killed bot's old session is over: its timers (the kill's) stay.
    fn on_offline(&self, bot: &mut Bot<Self>) {
        if !bot.state.stage.killed() {
            bot.state.stage = Stage::Offline;
            bot.generation = bot.generation.wrapping_add(1);
        }
    }

    /// A connection that drops before its bot killed it is an error; the session reconnects.
    fn on_socket_closed(&self, bot: &mut Bot<Self>, welcomed: bool, _now: Instant, cx: &mut Cx<FaultsTimer>) {
        if welcomed && !bot.state.stage.killed() {
            cx.tally.counters.unexpected_drops += 1;
        }
    }

    /// Killed: the old session runs no socket any more, and must not reconnect by itself.
    fn takes_over(
        &self,
        bot: &mut Bot<Self>,
        _now: Instant,
        _readable: bool,
        _cx: &mut Cx<FaultsTimer>,
    ) -> bool {
        bot.state.stage.killed()
    }

    /// A killed bot's calls were all answered before the kill.
    fn in_flight_at_end(&self, bot: &Bot<Self>) -> u64 {
        if bot.state.stage.killed() { 0 } else { bot.session.pending_calls() as u64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(lifetime: f64, rst_fraction: f64) -> Faults {
        let opts = Options { fault_lifetime: lifetime, rst_fraction, ..Options::new("ws://127.0.0.1:1/") };
        Faults::new(&opts)
    }

    #[test]
    fn lifetimes_spread_around_the_mean_and_kills_split_by_the_fraction() {
        let f = faults(4.0, 0.3);
        assert_eq!(f.lifetime(0.0), Duration::from_secs(2));
        assert_eq!(f.lifetime(0.5), Duration::from_secs(4));
        assert!(f.lifetime(0.999_999) < Duration::from_secs(6));
        assert_eq!(f.kill_kind(0.0), Kill::Reset);
        assert_eq!(f.kill_kind(0.299), Kill::Reset);
        assert_eq!(f.kill_kind(0.3), Kill::HalfOpen);
        assert_eq!(faults(4.0, 0.0).kill_kind(0.0), Kill::HalfOpen, "no resets at 0");
        assert_eq!(faults(4.0, 1.0).kill_kind(0.999_999), Kill::Reset, "only resets at 1");
        assert_eq!(faults(4.0, 7.0).kill_kind(0.999_999), Kill::Reset, "clamped to 1");
    }
}
