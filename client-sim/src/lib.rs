//! A load simulator of protocol-true bots for the ticksock server.
//!
//! Each bot is a real client: it opens its own WebSocket (offering `ticksock.v1`, non-blocking
//! from the TCP connect through the upgrade), waits for the welcome, and speaks the binary
//! protocol through the `client` crate's [`Session`](ticksock_client::Session), so call ids, timeouts,
//! heartbeats and reconnects are the library's. A few mio event loops ([`Options::threads`])
//! drive all the bots; there is never a thread per bot.
//!
//! Scenarios:
//! - `arena` (default): log in, join a room `arena-{n}` (at most [`Options::room_size`] bots per
//!   room), send `move` calls at [`Options::rate`] per second, `chat` every
//!   [`Options::chat_interval`] seconds, and receive the room's `state` pushes, whose gaps are
//!   measured against the tick period from the welcome.
//! - `echo`: keep [`Options::window`] `echo` calls of [`Options::body_bytes`] in flight per bot.
//! - `churn`: connect, log in, join a room `churn-{n}`, then either leave and close with the
//!   full WebSocket closing handshake, or (a fraction [`Options::drop_fraction`] of the cycles)
//!   drop the socket without a close frame; wait [`Options::churn_pause`] and do it again.
//! - `idle`: connect, make one `echo` call, then stay connected and silent (the client library
//!   answers the server's pings) until the end of the run. With [`Options::server_pid`] the
//!   report gives the server's resident memory per connection.
//!
//! With [`Options::server_pid`] the run also reads the server process's open descriptors and
//! resident memory from `/proc` before, during and after the run, and its
//! `ticksock_connections_open` gauge from `GET /metrics`, once more at the end of the steady
//! window while every bot is still connected: see [`report::ServerFigures`].
//!
//! # Modules
//! - [`report`]: the counters and distributions a run produces, as a table or JSON.
//! - `worker`: one event loop thread and its bots.
//!
//! # Timeline of a run
//! Bots start at [`Options::ramp`] per second. The *steady window* starts when the last bot has
//! been started and lasts [`Options::duration`] seconds; rates and CPU percentages are measured
//! over it, counts and latencies over the whole run.

pub mod probe;
pub mod report;
mod worker;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use crate::report::{
    ChurnFigures, Counters, Quantiles, Report, ServerFigures, TickJitter, Window, percent, process_cpu_secs,
};
use crate::worker::{Live, LiveSlot, Plan, histogram};

/// What the bots do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Log in, join an arena, move at `--rate`, chat now and then, receive state pushes.
    Arena,
    /// Keep `--window` echo calls in flight per bot (pure throughput; the server's per-connection
    /// rate limit, 1000 messages/s by default, applies).
    Echo,
    /// Connect, log in, join, then leave and close cleanly or drop abruptly; again and again.
    Churn,
    /// Connect, make one echo call, then stay connected and silent until the end.
    Idle,
}

/// The simulator's command line.
#[derive(Debug, Clone, Parser)]
#[command(name = "client-sim", version, about = "Protocol-true load bots for the ticksock server")]
pub struct Options {
    /// The server's URL.
    #[arg(long, default_value = "ws://127.0.0.1:7777/")]
    pub url: String,
    /// How many bots.
    #[arg(long, default_value_t = 100)]
    pub bots: u32,
    /// Calls per second per bot (arena: `move` calls).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Seconds of steady load after the last bot has started.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Write the report as JSON to this file too.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Event loop threads driving the bots.
    #[arg(long, default_value_t = 1)]
    pub threads: u32,
    /// Bots started per second.
    #[arg(long, default_value_t = 1000.0)]
    pub ramp: f64,
    /// What the bots do.
    #[arg(long, value_enum, default_value_t = Scenario::Arena)]
    pub scenario: Scenario,
    /// Echo calls in flight per bot (echo scenario).
    #[arg(long, default_value_t = 1)]
    pub window: u32,
    /// Bytes in each echo call's body (echo scenario).
    #[arg(long, default_value_t = 32)]
    pub body_bytes: usize,
    /// Exit with status 1 when the errors (timeouts, error replies, failed connects, calls lost
    /// to drops, refused calls, bad pushes) exceed this.
    #[arg(long, default_value_t = 0)]
    pub max_errors: u64,
    /// Bots per arena room (the server holds at most 64).
    #[arg(long, default_value_t = 50)]
    pub room_size: u32,
    /// Seconds between two `chat` calls of a bot (arena).
    #[arg(long, default_value_t = 10.0)]
    pub chat_interval: f64,
    /// Seconds a call may wait for its answer.
    #[arg(long, default_value_t = 5.0)]
    pub call_timeout: f64,
    /// Reconnect attempts in a row before a bot gives up.
    #[arg(long, default_value_t = 5)]
    pub max_attempts: u32,
    /// Bot names are PREFIX-N.
    #[arg(long, default_value = "bot")]
    pub name_prefix: String,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Churn: the fraction of cycles (0 to 1) that end by dropping the TCP connection without a
    /// close frame, right after the `join` reply; the others `leave` and close cleanly.
    #[arg(long, default_value_t = 0.25)]
    pub drop_fraction: f64,
    /// Churn: seconds a bot waits between the end of a cycle and its next connect (rounded up
    /// to the millisecond; at least 0.1 s after a failed cycle).
    #[arg(long, default_value_t = 0.0)]
    pub churn_pause: f64,
    /// The server's process id, on this machine: read its open descriptors (`/proc/PID/fd`)
    /// and resident memory (`/proc/PID/status`) before, during and after the run, and its
    /// `ticksock_connections_open` from `GET /metrics`. Exit status 1 when its descriptors are
    /// not back within `--max-fd-growth` of the baseline after `--settle` seconds.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Seconds to wait after the run before the server's figures are read again.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
    /// Descriptors the server may hold above its baseline after the settle delay.
    #[arg(long, default_value_t = 0)]
    pub max_fd_growth: u64,
    /// Decode every push in full as its topic's type (and check that each `state` holds the
    /// bot's own player), instead of the first `state` push of each connection only. Costs
    /// about a microsecond per 50-player `state` push.
    #[arg(long)]
    pub validate_pushes: bool,
}

impl Options {
    /// The defaults, against `url`.
    pub fn new(url: &str) -> Self {
        Self::parse_from(["client-sim", "--url", url])
    }
}

/// Runs the simulation and returns its report. Prints a live progress line on stderr unless
/// [`Options::quiet`].
pub fn run(opts: &Options) -> Result<Report, ticksock_client::Error> {
    let addr = ticksock_client::connection::resolve(&opts.url)?;
    ticksock_client::connection::upgrade_request(&opts.url)?;
    let mut server = match opts.server_pid {
        Some(pid) => Some(ServerWatch::start(pid, addr)?),
        None => None,
    };
    let opts = Arc::new(opts.clone());
    let threads = opts.threads.max(1);
    let start = Instant::now() + Duration::from_millis(10);
    let ramp_secs = f64::from(opts.bots.saturating_sub(1)) / opts.ramp.max(0.001);
    let steady_start = start + Duration::from_secs_f64(ramp_secs);
    let end = steady_start + Duration::from_secs_f64(opts.duration.max(0.0));
    let slots: Vec<Arc<LiveSlot>> = (0..threads).map(|_| Arc::new(LiveSlot::default())).collect();
    let live = Arc::new(Live { slots: slots.clone(), rtt: Mutex::new(histogram()) });
    // The workers wait here at the end of the steady window, before closing their sockets,
    // until the server has been looked at with every bot still connected.
    let hold = Arc::new(std::sync::Barrier::new(threads as usize + 1));
    let cpu_start = process_cpu_secs();

    let mut handles = Vec::new();
    for (t, slot) in slots.iter().enumerate() {
        let plan = Plan {
            opts: opts.clone(),
            addr,
            bots: (0..opts.bots).filter(|i| *i % threads == t as u32).collect(),
            start,
            steady_start,
            end,
            slot: slot.clone(),
            live: live.clone(),
            hold: hold.clone(),
        };
        let handle = std::thread::Builder::new().name(format!("sim-{t}")).spawn(move || worker::run(plan))?;
        handles.push(handle);
    }

    let cpu_at_steady = watch(&opts, &live, start, steady_start, end, server.as_mut());
    let cpu_end = process_cpu_secs();
    if let Some(server) = server.as_mut() {
        server.loaded();
    }
    hold.wait();
    let wall = start.elapsed().as_secs_f64();

    let mut total = Counters::default();
    let mut at_steady = Counters::default();
    let mut sent = 0;
    let mut sent_at_steady = 0;
    let mut in_flight_at_end = 0;
    let mut connected_at_end = 0;
    let mut rtt = histogram();
    let mut rtt_steady = histogram();
    let mut gaps = histogram();
    let mut cycle_us = histogram();
    let mut timer_late = histogram();
    let mut tick_hz = 0;
    let mut worker_cpu = 0.0;
    let mut error_codes = std::collections::BTreeMap::new();
    let mut connect_errors = std::collections::BTreeMap::new();
    for handle in handles {
        let w = handle.join().map_err(|_| std::io::Error::other("a worker thread panicked"))??;
        total.add(&w.total);
        at_steady.add(&w.at_steady);
        sent += w.sent;
        sent_at_steady += w.sent_at_steady;
        in_flight_at_end += w.in_flight_at_end;
        connected_at_end += w.connected_at_end;
        // Same bounds everywhere: adding cannot fail.
        let _ = rtt.add(&w.rtt);
        let _ = rtt_steady.add(&w.rtt_steady);
        let _ = gaps.add(&w.gaps);
        let _ = cycle_us.add(&w.cycle_us);
        let _ = timer_late.add(&w.timer_late);
        tick_hz = tick_hz.max(w.tick_hz);
        worker_cpu += w.cpu_at_end - w.cpu_at_steady;
        for (code, n) in w.error_codes {
            *error_codes.entry(code).or_insert(0) += n;
        }
        for (message, n) in w.connect_errors {
            *connect_errors.entry(message).or_insert(0) += n;
        }
    }

    let secs = opts.duration.max(0.0);
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let process_steady = cpu_end - cpu_at_steady;
    let steady = Window {
        secs,
        calls_per_sec: per_sec(sent - sent_at_steady),
        answers_per_sec: per_sec(
            (total.replied + total.errored).saturating_sub(at_steady.replied + at_steady.errored),
        ),
        pushes_per_sec: per_sec(total.pushes - at_steady.pushes),
        state_pushes_per_sec: per_sec(total.pushes_state - at_steady.pushes_state),
        worker_cpu_secs: worker_cpu,
        worker_cpu_percent: percent(worker_cpu, secs),
        process_cpu_secs: process_steady,
        process_cpu_percent: percent(process_steady, secs),
    };
    let nominal_us = if tick_hz > 0 { 1_000_000 / u64::from(tick_hz) } else { 0 };
    let churn = (opts.scenario == Scenario::Churn).then(|| ChurnFigures {
        drop_fraction: opts.drop_fraction,
        pause_secs: opts.churn_pause,
        cycles_per_sec: per_sec(total.cycles - at_steady.cycles),
        cycles_per_sec_whole_run: if wall > 0.0 { total.cycles as f64 / wall } else { 0.0 },
        cycle_us: Quantiles::of(&cycle_us),
    });
    // The workers have closed their sockets: now the server's side of the story.
    let server = server.map(|watch| watch.finish(&opts, connected_at_end));
    Ok(Report {
        url: opts.url.clone(),
        scenario: match opts.scenario {
            Scenario::Arena => "arena".into(),
            Scenario::Echo => "echo".into(),
            Scenario::Churn => "churn".into(),
            Scenario::Idle => "idle".into(),
        },
        bots: u64::from(opts.bots),
        threads: u64::from(threads),
        rate: opts.rate,
        window: u64::from(opts.window),
        ramp_secs,
        errors: total.errors(),
        counters: total,
        sent,
        in_flight_at_end,
        connected_at_end,
        error_codes,
        connect_errors,
        rtt_us: Quantiles::of(&rtt),
        rtt_steady_us: Quantiles::of(&rtt_steady),
        tick_jitter: TickJitter {
            tick_hz,
            nominal_us,
            gap_us: Quantiles::of(&gaps),
            ticks_skipped: total.ticks_skipped,
        },
        steady,
        timer_late_us: Quantiles::of(&timer_late),
        process_cpu_secs: cpu_end - cpu_start,
        wall_secs: wall,
        churn,
        server,
    })
}

/// The server process, looked at before, during and after a run (`--server-pid`).
struct ServerWatch {
    figures: ServerFigures,
    addr: std::net::SocketAddr,
}

impl ServerWatch {
    /// The baseline. Fails (the run does not start) when the process cannot be read.
    fn start(pid: u32, addr: std::net::SocketAddr) -> Result<Self, ticksock_client::Error> {
        let before = probe::sample(Some(pid))
            .map_err(|e| std::io::Error::other(format!("--server-pid {pid}: /proc/{pid}: {e}")))?;
        // After the descriptors were counted: the request is a connection of its own.
        let open_before = probe::scrape(addr, "ticksock_connections_open").ok();
        Ok(Self {
            figures: ServerFigures {
                pid,
                fds_before: before.fds,
                fds_peak: before.fds,
                rss_kib_before: before.rss_kib,
                rss_kib_peak: before.rss_kib,
                hwm_kib_before: before.hwm_kib,
                open_before,
                ..ServerFigures::default()
            },
            addr,
        })
    }

    /// The look at the end of the steady window, every bot still connected (the workers wait
    /// for it before they close their sockets).
    fn loaded(&mut self) {
        self.sample();
        if let Ok(now) = probe::sample(Some(self.figures.pid)) {
            self.figures.fds_loaded = now.fds;
            self.figures.rss_kib_loaded = now.rss_kib;
        }
    }

    /// A look during the run, for the peaks.
    fn sample(&mut self) {
        if let Ok(now) = probe::sample(Some(self.figures.pid)) {
            let f = &mut self.figures;
            f.fds_peak = f.fds_peak.max(now.fds);
            f.rss_kib_peak = f.rss_kib_peak.max(now.rss_kib);
        }
    }

    /// Right after the run, then again after the settle delay, watching the descriptors
    /// come back to their baseline.
    fn finish(mut self, opts: &Options, connected: u64) -> ServerFigures {
        let pid = Some(self.figures.pid);
        let end = Instant::now();
        self.sample();
        let f = &mut self.figures;
        if let Ok(now) = probe::sample(pid) {
            f.fds_end = now.fds;
            f.rss_kib_end = now.rss_kib;
        }
        f.settle_secs = opts.settle.max(0.0);
        let settled_at = end + Duration::from_secs_f64(f.settle_secs);
        loop {
            let now = Instant::now();
            if f.fds_back_after_ms.is_none() && probe::open_fds(pid).is_ok_and(|fds| fds <= f.fds_before) {
                f.fds_back_after_ms = Some(now.duration_since(end).as_millis() as u64);
            }
            if now >= settled_at {
                break;
            }
            std::thread::sleep(Duration::from_millis(50).min(settled_at - now));
        }
        if let Ok(now) = probe::sample(pid) {
            f.fds_settled = now.fds;
            f.rss_kib_settled = now.rss_kib;
            f.hwm_kib_settled = now.hwm_kib;
        }
        f.open_settled = probe::scrape(self.addr, "ticksock_connections_open").ok();
        f.fds_back = f.fds_settled <= f.fds_before + opts.max_fd_growth;
        if opts.scenario == Scenario::Idle && connected > 0 {
            let growth = f.rss_kib_loaded as f64 - f.rss_kib_before as f64;
            f.rss_per_connection_kib = Some(growth / connected as f64);
        }
        self.figures
    }
}

/// Waits for the end of the run, printing the progress line once a second (unless quiet).
/// Returns the process CPU time at the start of the steady window.
fn watch(
    opts: &Options,
    live: &Live,
    start: Instant,
    steady_start: Instant,
    end: Instant,
    mut server: Option<&mut ServerWatch>,
) -> f64 {
    let mut cpu_at_steady = None;
    let mut last_answered = 0u64;
    let mut last = Instant::now();
    loop {
        let now = Instant::now();
        if cpu_at_steady.is_none() && now >= steady_start {
            cpu_at_steady = Some(process_cpu_secs());
        }
        if now >= end {
            break;
        }
        let mut wake = (now + Duration::from_secs(1)).min(end);
        if cpu_at_steady.is_none() {
            wake = wake.min(steady_start);
        }
        std::thread::sleep(wake.saturating_duration_since(now));
        if let Some(server) = server.as_deref_mut() {
            server.sample();
        }
        if opts.quiet {
            continue;
        }
        let now = Instant::now();
        let sum = |f: fn(&LiveSlot) -> u64| live.slots.iter().map(|s| f(s)).sum::<u64>();
        let connected = sum(|s| s.connected.load(std::sync::atomic::Ordering::Relaxed));
        let answered = sum(|s| s.answered.load(std::sync::atomic::Ordering::Relaxed));
        let errors = sum(|s| s.errors.load(std::sync::atomic::Ordering::Relaxed));
        let rate = (answered - last_answered.min(answered)) as f64 / now.duration_since(last).as_secs_f64();
        let p99 = live.rtt.lock().map(|h| h.value_at_quantile(0.99)).unwrap_or(0);
        eprint!(
            "\r[{:6.1}s] bots {connected:>6}/{} connected | {rate:>8.0} answers/s | p99 {:>8.2} ms | errors {errors}   ",
            now.duration_since(start).as_secs_f64(),
            opts.bots,
            p99 as f64 / 1000.0,
        );
        last_answered = answered;
        last = now;
    }
    if !opts.quiet {
        eprintln!();
    }
    cpu_at_steady.unwrap_or_else(process_cpu_secs)
}
