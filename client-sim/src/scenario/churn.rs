//! `churn`: connect/close cycles. Each cycle a bot makes a new session and connection, logs in
//! as `PREFIX-N`, joins `churn-{N / room size}`, then either calls `leave` and closes with the
//! WebSocket closing handshake, or (a fraction `--drop-fraction` of the cycles) drops the socket
//! right after the `join` reply, without a close frame. It waits `--churn-pause` and starts
//! again; a failed cycle ends at once and the next starts after at least 100 ms.
//!
//! The clean close writes a close frame to the socket itself and reads until the server closes
//! the TCP connection: `Session::close` has the library drop the socket right after sending
//! its close frame, without waiting for the server's answer, which is not the closing
//! handshake this scenario is meant to exercise.

use std::io::Write as _;
use std::time::{Duration, Instant};

use ticksock_arena::proto::ROUTE_LEAVE;
use ticksock_client::{CallId, Outcome};

use super::{Script, SocketEnd, join, logged_in, login, read_to_end};
use crate::Options;
use crate::tally::micros;
use crate::worker::{Bot, Cx};

/// The churn scenario's settings.
pub(crate) struct Churn {
    drop_fraction: f64,
    pause: Duration,
    /// How long the server may take to close the connection after our close frame.
    close_timeout: Duration,
}

/// Where a churn bot is in its cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum ChurnBot {
    /// Not connected (or waiting for the welcome).
    #[default]
    Offline,
    LoggingIn(CallId),
    Joining(CallId),
    /// `leave` sent.
    Leaving(CallId),
    /// Our close frame is sent; reading until the server closes the connection.
    Closing,
    /// Between two cycles. The old session is left alone until the next one starts.
    Paused,
}

/// A churn bot's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ChurnTimer {
    /// Start the next cycle.
    NextCycle,
    /// The server has not closed the connection after our close frame.
    CloseTimeout,
}

/// How a cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CycleEnd {
    /// Closing handshake done: the server answered our close frame and closed the connection.
    Clean,
    /// Dropped on purpose, without a close frame.
    Dropped,
    /// Something went wrong (counted as an error where it happened).
    Failed,
}

/// A masked client close frame with status 1000: FIN + opcode 8, mask bit + length 2, the
/// masking key, then the code, masked.
fn close_frame(mask: [u8; 4]) -> [u8; 8] {
    let [hi, lo] = 1000u16.to_be_bytes();
    [0x88, 0x82, mask[0], mask[1], mask[2], mask[3], hi ^ mask[0], lo ^ mask[1]]
}

impl Churn {
    pub(crate) fn new(opts: &Options) -> Self {
        Self {
            drop_fraction: opts.drop_fraction,
            pause: Duration::from_secs_f64(opts.churn_pause.max(0.0)),
            close_timeout: Duration::from_secs_f64(opts.call_timeout.max(0.001)),
        }
    }

    /// Ends the current cycle and schedules the next.
    fn end_cycle(&self, bot: &mut Bot<Self>, now: Instant, end: CycleEnd, cx: &mut Cx<ChurnTimer>) {
        if bot.state == ChurnBot::Paused {
            return; // Already ended (a failure reported twice).
        }
        bot.state = ChurnBot::Paused;
        // Dropping the connection closes the socket: for `Dropped`, without a close frame.
        bot.conn = None;
        bot.mark_down(cx);
        let c = &mut cx.tally.counters;
        let mut pause = self.pause;
        match end {
            CycleEnd::Clean | CycleEnd::Dropped => {
                c.cycles += 1;
                if end == CycleEnd::Clean {
                    c.clean_closes += 1;
                } else {
                    c.abrupt_drops += 1;
                }
                let took = now.saturating_duration_since(bot.session_started);
                cx.tally.cycle_us.saturating_record(micros(took));
            }
            CycleEnd::Failed => {
                c.cycle_failures += 1;
                pause = pause.max(Duration::from_millis(100));
            }
        }
        bot.generation = bot.generation.wrapping_add(1);
        bot.schedule(cx, now + pause, ChurnTimer::NextCycle);
    }

    /// A fresh session, and connect.
    fn next_cycle(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ChurnTimer>) {
        bot.new_session(now);
        bot.state = ChurnBot::Offline;
        bot.drive(self, now, false, cx);
    }

    /// Starts the closing handshake. Every request has been answered, so nothing is left in
    /// the WebSocket's write buffer and the close frame can go straight to the socket.
    fn start_close(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ChurnTimer>) {
        let mask = (bot.rng.below(1 << 32) as u32).to_ne_bytes();
        let frame = close_frame(mask);
        let written = match bot.conn.as_mut().and_then(|c| c.tcp_mut()) {
            Some(tcp) => matches!(tcp.write(&frame), Ok(n) if n == frame.len()),
            None => false,
        };
        if !written {
            // A socket that does not take 8 bytes when nothing else is waiting: not clean.
            cx.tally.counters.unclean_closes += 1;
            return self.end_cycle(bot, now, CycleEnd::Failed, cx);
        }
        bot.state = ChurnBot::Closing;
        bot.schedule(cx, now + self.close_timeout, ChurnTimer::CloseTimeout);
        // Edge-triggered: whatever arrived before now raises no new event, so read it now.
        self.read_until_closed(bot, now, cx);
    }

    /// Reads (and discards: the server's close frame) until the server closes the connection,
    /// which completes the cycle.
    fn read_until_closed(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ChurnTimer>) {
        let Some(tcp) = bot.conn.as_mut().and_then(|c| c.tcp_mut()) else { return };
        match read_to_end(tcp) {
            SocketEnd::Closed => self.end_cycle(bot, now, CycleEnd::Clean, cx),
            SocketEnd::Open => {}
            SocketEnd::Failed(e) => {
                cx.tally.counters.unclean_closes += 1;
                cx.connect_failed(now, Some(ticksock_client::Error::Io(e)));
                self.end_cycle(bot, now, CycleEnd::Failed, cx);
            }
        }
    }
}

impl Script for Churn {
    type BotState = ChurnBot;
    type Timer = ChurnTimer;

    fn on_connected(&self, bot: &mut Bot<Self>, now: Instant, cx: &mut Cx<ChurnTimer>) {
        if let Some(id) = login(bot, now, cx) {
            bot.state = ChurnBot::LoggingIn(id);
        }
    }

    /// Login, then join, then leave and close, or drop. Anything but a reply ends the cycle as
    /// a failure (the outcome was counted as an error already).
    fn on_outcome(
        &self,
        bot: &mut Bot<Self>,
        id: CallId,
        outcome: Outcome,
        now: Instant,
        cx: &mut Cx<ChurnTimer>,
    ) {
        match bot.state {
            ChurnBot::LoggingIn(login) if login == id => {
                if !logged_in(bot, outcome) {
                    return self.end_cycle(bot, now, CycleEnd::Failed, cx);
                }
                if let Some(id) = join(bot, "churn", now, cx) {
                    bot.state = ChurnBot::Joining(id);
                }
            }
            ChurnBot::Joining(join) if join == id => {
                if !outcome.is_reply() {
                    return self.end_cycle(bot, now, CycleEnd::Failed, cx);
                }
                let abrupt = (bot.rng.below(1_000_000) as f64) < self.drop_fraction * 1_000_000.0;
                if abrupt {
                    self.end_cycle(bot, now, CycleEnd::Dropped, cx);
                } else if let Some(id) = bot.call(ROUTE_LEAVE, &(), now, cx) {
                    bot.state = ChurnBot::Leaving(id);
                } else {
                    self.end_cycle(bot, now, CycleEnd::Failed, cx);
                }
            }
            ChurnBot::Leaving(leave) if leave == id => {
                if outcome.is_reply() {
                    self.start_close(bot, now, cx);
                } else {
                    self.end_cycle(bot, now, CycleEnd::Failed, cx);
                }
            }
            _ => {}
        }
    }

    fn on_timer(
        &self,
        bot: &mut Bot<Self>,
        timer: ChurnTimer,
        _at: Instant,
        now: Instant,
        cx: &mut Cx<ChurnTimer>,
    ) {
        match (timer, bot.state) {
            (ChurnTimer::NextCycle, ChurnBot::Paused) => self.next_cycle(bot, now, cx),
            (ChurnTimer::CloseTimeout, ChurnBot::Closing) => {
                cx.tally.counters.unclean_closes += 1;
                cx.connect_failed(
                    now,
                    Some(ticksock_client::Error::Protocol(
                        "the server did not close the connection after our close frame".into(),
                    )),
                );
                self.end_cycle(bot, now, CycleEnd::Failed, cx);
            }
            _ => {}
        }
    }

    /// A paused bot's old session is over: its timers (the next cycle's) stay.
    fn on_offline(&self, bot: &mut Bot<Self>) {
        if bot.state != ChurnBot::Paused {
            bot.state = ChurnBot::Offline;
            bot.generation = bot.generation.wrapping_add(1);
        }
    }

    /// Any socket that goes mid-cycle ends the cycle as a failure; a welcomed one the server
    /// dropped is an unexpected drop too. A churn bot starts over with a new session instead of
    /// letting this one reconnect.
    fn on_socket_closed(&self, bot: &mut Bot<Self>, welcomed: bool, now: Instant, cx: &mut Cx<ChurnTimer>) {
        if welcomed {
            cx.tally.counters.unexpected_drops += 1;
        }
        self.end_cycle(bot, now, CycleEnd::Failed, cx);
    }

    /// Paused: nothing to do until the next cycle. Closing: read until the server closes.
    fn takes_over(&self, bot: &mut Bot<Self>, now: Instant, readable: bool, cx: &mut Cx<ChurnTimer>) -> bool {
        match bot.state {
            ChurnBot::Paused => true,
            ChurnBot::Closing => {
                if readable {
                    self.read_until_closed(bot, now, cx);
                }
                true
            }
            _ => false,
        }
    }

    /// A paused bot's session is over; its calls are not in flight.
    fn in_flight_at_end(&self, bot: &Bot<Self>) -> u64 {
        if bot.state == ChurnBot::Paused { 0 } else { bot.session.pending_calls() as u64 }
    }
}
