//! One event loop thread: a mio `Poll` over the sockets of its share of the bots, their timers,
//! and a sweep for their session timers. Each bot is a `ticksock_client::Session` over a
//! `ticksock_client::Connection`, so the call bookkeeping is the client library's; what a bot
//! does is its scenario's [`Script`].
//!
//! - `bot`: one bot's I/O and the counting every scenario shares ([`Bot`], [`Cx`]);
//! - `conditioner`: the link conditioner between a bot's session and its socket (latency,
//!   jitter, a bandwidth cap), when asked for;
//! - `kill`: a bot's connection killed as a network fault would (a reset, or half-open);
//! - `pushes`: pushes counted, `state` ticks timed, bodies checked;
//! - `ticks`: the exact check of `state` ticks under `--faults` ([`TickLedger`]);
//! - `timers`: the bots' own timers (a wheel and a heap);
//! - `live`: what the workers publish while the run goes on ([`Live`]);
//! - `redirect`: the servers a bot connects to ([`Target`]), and what following a redirect
//!   needs.

mod bot;
mod conditioner;
mod kill;
mod live;
mod pushes;
mod redirect;
mod ticks;
mod timers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll};

pub(crate) use bot::{Bot, Cx};
pub(crate) use conditioner::{Shape, WINDOW_BYTES};
pub(crate) use kill::{Kill, arm_reset, hold_open};
pub(crate) use live::{Live, LiveFigures, LiveSlot};
pub(crate) use redirect::Target;
pub(crate) use ticks::TickLedger;
use timers::Wake;

use crate::Options;
use crate::report::thread_cpu_secs;
use crate::scenario::Script;
use crate::tally::Tally;

/// How often every bot's session timers are looked at (call timeouts, heartbeat, reconnect);
/// also the longest a worker takes to notice [`Live::halt`].
const SWEEP: Duration = Duration::from_millis(100);
/// How often the worker publishes its live figures.
const PUBLISH: Duration = Duration::from_millis(250);

/// What a worker must do.
pub(crate) struct Plan {
    pub opts: Arc<Options>,
    /// The servers' URLs (`--url`, in order).
    pub targets: Arc<[Target]>,
    /// The global indices of its bots.
    pub bots: Vec<u32>,
    pub start: Instant,
    pub steady_start: Instant,
    /// The end of the steady window.
    pub end: Instant,
    /// `--faults`: the latest the run goes on after `end` for its bots to settle (else `end`).
    pub drain_end: Instant,
    pub slot: Arc<LiveSlot>,
    pub live: Arc<Live>,
    /// Waited on at the end, before the sockets are closed (see `run` in lib.rs).
    pub hold: Arc<std::sync::Barrier>,
}

/// Runs one worker until the plan's end (or [`Live::halt`]), its bots following `script`;
/// returns what it measured. Past the end of the steady window it goes on, up to the drain
/// limit, while any bot is not [settled](Script::settled) (`--faults`: outages under way).
/// Rates are over the window: the counts are taken again at its end.
pub(crate) fn run<S: Script>(plan: Plan, script: S) -> std::io::Result<Tally> {
    // Waits on the barrier whichever way this function ends, so the main thread never hangs.
    let mut hold = Hold { barrier: plan.hold.clone(), released: false };
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let registry = poll.registry().try_clone()?;
    let mut cx: Cx<S::Timer> =
        Cx::new(plan.opts.clone(), registry, plan.start, (plan.steady_start, plan.end));
    let ramp = plan.opts.ramp.max(0.001);
    let launch_at = |global: u32| plan.start + Duration::from_secs_f64(f64::from(global) / ramp);
    let mut bots: Vec<Bot<S>> = Vec::with_capacity(plan.bots.len());
    // The counts, requests sent and CPU time when the steady window started, and ended.
    let mut at_steady = None;
    let mut at_end = None;
    let mut next_settle_check = plan.end;
    let mut next_sweep = plan.start;
    let mut next_publish = plan.start;
    let mut due = Vec::new();
    loop {
        let now = Instant::now();
        if plan.live.halted() {
            break;
        }
        if now >= plan.end {
            if at_end.is_none() {
                let sent = bots.iter().map(Bot::sent).sum();
                at_end = Some((cx.tally.counters, sent, thread_cpu_secs()));
            }
            if now >= plan.drain_end {
                break;
            }
            if now >= next_settle_check {
                next_settle_check = now + SWEEP;
                if bots.iter().all(|b| script.settled(b)) {
                    break;
                }
            }
        }
        if at_steady.is_none() && now >= plan.steady_start {
            let sent = bots.iter().map(Bot::sent).sum();
            at_steady = Some((cx.tally.counters, sent, thread_cpu_secs()));
        }
        while let Some(&global) = plan.bots.get(bots.len()) {
            if launch_at(global) > now {
                break;
            }
            let mut config = bot::session_config(&plan.opts, global);
            script.configure(&mut config);
            // `run` checked that there is at least one URL (`Options::problem`).
            let home = plan.targets[global as usize % plan.targets.len()].clone();
            let mut bot = Bot::new(global, bots.len(), config, home, now);
            cx.tally.counters.bots_launched += 1;
            bot.drive(&script, now, false, &mut cx);
            bots.push(bot);
        }
        cx.timers().due(now, &mut due);
        for entry in due.drain(..) {
            let Some(bot) = bots.get_mut(entry.bot) else { continue };
            match entry.timer {
                Wake::Script(timer) if bot.generation == entry.generation => {
                    script.on_timer(bot, timer, entry.at, now, &mut cx);
                    bot.flush(&script, now, &mut cx);
                }
                Wake::Script(_) => {}
                Wake::Link => bot.link_due(&script, now, &mut cx),
            }
        }
        if now >= next_sweep {
            next_sweep = now + SWEEP;
            for bot in &mut bots {
                if bot.session.poll_timeout().is_some_and(|at| at <= now) {
                    bot.drive(&script, now, false, &mut cx);
                }
            }
        }
        if now >= next_publish {
            next_publish = now + PUBLISH;
            publish(&plan, &mut cx);
        }
        let mut wake = next_sweep.min(next_publish);
        wake = if now < plan.end { wake.min(plan.end) } else { wake.min(plan.drain_end) };
        if let Some(&global) = plan.bots.get(bots.len()) {
            wake = wake.min(launch_at(global));
        }
        if let Some(at) = cx.timers().next_wake() {
            wake = wake.min(at);
        }
        if at_steady.is_none() {
            wake = wake.min(plan.steady_start);
        }
        let timeout = wake.saturating_duration_since(Instant::now());
        if let Err(e) = poll.poll(&mut events, Some(timeout))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(e);
        }
        for event in events.iter() {
            if let Some(bot) = bots.get_mut(event.token().0) {
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                bot.drive(&script, Instant::now(), readable, &mut cx);
            }
        }
    }
    plan.live.finish();
    // Measure before closing: closing fails the calls still in flight.
    let cpu_now = thread_cpu_secs();
    publish(&plan, &mut cx);
    let sent = bots.iter().map(Bot::sent).sum();
    let (at_end, sent_at_end, cpu_at_end) = at_end.unwrap_or((cx.tally.counters, sent, cpu_now));
    let (at_steady, sent_at_steady, cpu_at_steady) = at_steady.unwrap_or((at_end, sent_at_end, cpu_at_end));
    let tally = Tally {
        at_steady,
        at_end,
        sent,
        sent_at_steady,
        sent_at_end,
        resent: bots.iter().map(Bot::resent).sum(),
        in_flight_at_end: bots.iter().map(|b| script.in_flight_at_end(b)).sum(),
        connected_at_end: cx.connected_now,
        steady_cpu_secs: cpu_at_end - cpu_at_steady,
        unsettled_at_end: bots.iter().filter(|b| !script.settled(b)).count() as u64,
        ..cx.tally
    };
    // The server is looked at with every bot still connected before anything is closed.
    hold.release();
    let now = Instant::now();
    for bot in &mut bots {
        bot.session.close(now);
        if let Some(conn) = bot.conn.as_mut() {
            let _ = conn.transmit(&mut bot.session);
        }
    }
    Ok(tally)
}

/// The end-of-window barrier, waited on once: explicitly, or on an early return (an error).
struct Hold {
    barrier: Arc<std::sync::Barrier>,
    released: bool,
}

impl Hold {
    fn release(&mut self) {
        if !self.released {
            self.released = true;
            self.barrier.wait();
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release();
    }
}

fn publish<T: Ord>(plan: &Plan, cx: &mut Cx<T>) {
    plan.live.publish(&plan.slot, &cx.tally, cx.connected_now, &mut cx.rtt_delta, &mut cx.last_connect_error);
}
