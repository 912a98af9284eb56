//! A load simulator of protocol-true bots for the ticksock server.
//!
//! Each bot is a real client: it opens its own WebSocket (offering `ticksock.v1`, or with
//! [`Options::faults`] `ticksock.v2` first; non-blocking
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
//! - `echo`: keep [`Options::window`] `echo` calls of [`Options::body_bytes`] in flight per bot,
//!   or with [`Options::echo_rate`] send them at that rate per bot.
//! - `churn`: connect, log in, join a room `churn-{n}`, then either leave and close with the
//!   full WebSocket closing handshake, or (a fraction [`Options::drop_fraction`] of the cycles)
//!   drop the socket without a close frame; wait [`Options::churn_pause`] and do it again.
//! - `idle`: connect, make one `echo` call, then stay connected and silent (the client library
//!   answers the server's pings) until the end of the run. With [`Options::server_pid`] the
//!   report gives the server's resident memory per connection.
//! - `faults`: log in, join a room `faults-{n}`, send `move` calls at [`Options::rate`] for a
//!   random lifetime ([`Options::fault_lifetime`]), wait for every answer, then kill the
//!   connection: with a TCP reset (a fraction [`Options::rst_fraction`]), or by going silent
//!   with the socket held open for [`Options::half_open_hold`] seconds, so that the server has
//!   to find it dead by its heartbeat; then connect again. Kills are counted, not errors.
//! - `whisper`: log in, join `lobby` (the first [`Options::room_size`] bots per URL), and
//!   whisper to a partner on another URL at [`Options::whisper_rate`]; each whisper's delivery
//!   is timed and checked ([`report::WhisperFigures`]; lost or duplicated ones fail the run).
//!
//! With [`Options::accounts`] `guest` the arena's bots log in as guest accounts of their own
//! (PROTOCOL.md 8.8): `guest` once per bot for the whole run, then `auth` with its session token
//! on every new server session; with [`Options::persist_per_sec`] each also calls
//! `flush_stats` (a write answered once committed), timed apart ([`report::PersistFigures`]).
//!
//! With [`Options::replication`] the arena's bots check the state the server replicates to
//! them (PROTOCOL.md 14; the arena binary's `--replication --replica-digests`): each keeps a
//! [`Mirror`](ticksock_client::replica::Mirror) of its view, acknowledges it with
//! `replica_ack` (at most once per `move`), and every [`Options::digest_every`] seconds, and
//! 0.3 s after each `join`, compares its view of a tick with the server's digest of the view it
//! sent (`replica_digest`). With [`Options::link_loss_every`] their links are reset now and
//! then, and they reconnect, sign in and join again (a full snapshot each time). Views that
//! differ, updates that cannot be applied, or a run with nothing compared fail it
//! ([`Report::failed_checks`], figures in [`report::ReplicaFigures`]). Every run counts the
//! bytes of push bodies (all, and the state's: `state` or `replica`) per bot per second, and
//! reads the server's `ticksock_bytes_out_total` with its tick histograms.
//!
//! With [`Options::latency_ms`], [`Options::jitter_ms`] or [`Options::bandwidth_kbps`] each
//! bot's link goes through a conditioner, between its session and its socket, both ways: every
//! frame is held for the latency (uniform in latency ± jitter, frames of one direction kept in
//! order, as TCP keeps them), behind a token bucket of the bandwidth cap. The report splits
//! each answered call's round trip into the time its request and answer were held there and
//! the rest, the server, the network and the simulator ([`report::LinkFigures`]). Loss and
//! reordering are not modelled: TCP hides both from the application.
//!
//! Every run reads the server's tick histograms from its `GET /metrics` (the first URL's)
//! before the bots start and at the start and end of the steady window: the tick lateness
//! and duration over the run and the window, to the resolution of the server's buckets
//! ([`report::ServerTickFigures`]).
//!
//! With several [`Options::urls`] bot `i` connects to URL `i % n`. Bots of `arena` and
//! `whisper` follow an Error `redirect` of their `join` (PROTOCOL.md 12.2): a new connection to
//! the URL it names, the `join` again there, the old connection closed; counted in
//! [`report::Counters::redirects_followed`] and the `redirects_failed_*` counters.
//!
//! With [`Options::faults`] the arena's bots speak version 2 (PROTOCOL.md section 11) and their
//! links are killed at random (resets, half-open silences, early reconnects that beat the old
//! link's timeout, sessions killed before or right after their first frame), held offline for
//! [`Options::outage_min`] to [`Options::outage_max`] seconds while their calls queue, and
//! resumed. Each resume is judged against the window the server's grace and replay bound allow
//! ([`Options::server_grace`], [`Options::server_replay_bytes`]); calls, `once` answers and
//! `state` ticks are checked exactly; the report's [`Report::failed_checks`] lists what must be
//! zero and is not, and [`report::ResumeFigures`] holds the rest, with the server's sessions
//! from its `/metrics`. The run goes on after the steady window until every outage is over.
//!
//! With [`Options::server_pid`] the run also reads the server process's open descriptors and
//! resident memory from `/proc` before, during and after the run, and its
//! `ticksock_connections_open` gauge from `GET /metrics`, once more at the end of the steady
//! window while every bot is still connected: see [`report::ServerFigures`].
//!
//! # Modules
//! - [`report`]: the counters and distributions a run produces, as a table or JSON.
//! - [`probe`]: a process seen from outside (`/proc`, `GET /metrics`).
//! - [`error`]: why a run returned no report ([`Error`]).
//! - `worker`: one event loop thread and its bots' I/O (sessions, connections, timers, pushes,
//!   and the link conditioner).
//! - `scenario`: what the bots do, one file per scenario behind one trait (`Script`).
//! - `tally`: what a run measures, in one type that the workers' shares merge into.
//! - `session_watch`: the server's version 2 sessions during a `--faults` run (`/metrics`).
//! - `watch`: the main thread meanwhile: the progress line and the rules that end a run early.
//! - `server_watch`: the server process before, during and after the run (`--server-pid`).
//! - `tick_watch`: the server's ticks over the run, from its histograms (`tick_buckets`: the
//!   arithmetic of fixed buckets).
//!
//! # Timeline of a run
//! Bots start at [`Options::ramp`] per second. The *steady window* starts when the last bot has
//! been started and lasts [`Options::duration`] seconds; rates and CPU percentages are measured
//! over it, counts and latencies over the whole run.
//!
//! A run ends early in two cases. When no bot has been welcomed
//! [`Options::first_connect_timeout`] seconds after the start (the server is most likely not
//! there), [`run`] returns [`Error::NoConnection`], which carries the latest connection error.
//! When the interrupt flag given to [`run_until`] is set (the binary sets it on Ctrl-C), the
//! workers stop and the report covers the run so far ([`Report::interrupted_after_secs`]).
//!
//! About 850 lines: most of it is [`Options`], one documented field per flag, and the report's
//! assembly from the tally; the run itself is short and the scenarios, workers and report are
//! modules of their own.

pub mod error;
pub mod probe;
pub mod report;
mod scenario;
mod server_watch;
mod session_watch;
mod tally;
mod tick_buckets;
mod tick_watch;
mod watch;
mod worker;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use clap::{Parser, ValueEnum};

pub use crate::error::Error;
use crate::report::{
    AccountFigures, ChurnFigures, FaultFigures, LinkFigures, PersistFigures, Quantiles, ReplicaFigures,
    Report, ResumeFigures, ServerFigures, ServerSessionFigures, ServerTickFigures, TickJitter,
    TickStampFigures, UrlShare, WhisperFigures, Window, percent, process_cpu_secs,
};
use crate::server_watch::ServerWatch;
use crate::session_watch::SessionWatch;
use crate::tally::{LinkTally, Tally};
use crate::tick_watch::TickWatch;
use crate::watch::{Ending, Timeline};
use crate::worker::{Live, Plan, Target};

/// What the bots do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Log in, join an arena, move at `--rate`, chat now and then, receive state pushes.
    Arena,
    /// Keep `--window` echo calls in flight per bot (pure throughput; the server's per-connection
    /// rate limit, 1000 messages/s by default, applies), or send `--echo-rate` a second per bot.
    Echo,
    /// Connect, log in, join, then leave and close cleanly or drop abruptly; again and again.
    Churn,
    /// Log in, join `lobby`, and whisper to a partner on another URL (node) at
    /// `--whisper-rate`; every whisper's delivery is timed and checked (lost, duplicated, out
    /// of order).
    Whisper,
    /// Connect, make one echo call, then stay connected and silent until the end.
    Idle,
    /// Log in, join, move for a random lifetime, then kill the connection (a TCP reset, or
    /// silence with the socket held open) and connect again.
    Faults,
}

/// Arena: how the bots log in (`--accounts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Accounts {
    /// `login` by name (`PREFIX-N`): nothing is saved.
    None,
    /// A guest account per bot: `guest` once for the whole run, then `auth` with its session
    /// token on every new server session; the player is the account's (`guest-N`).
    Guest,
}

/// `--faults`: when a fresh session is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FreshWhen {
    /// Right after the welcome, before the client sent any frame.
    Before,
    /// Right after the session's first frame (the `login`) went out.
    After,
    /// Half each.
    Both,
}

/// The simulator's command line.
#[derive(Debug, Clone, Parser)]
#[command(name = "client-sim", version, about = "Protocol-true load bots for the ticksock server")]
pub struct Options {
    /// The server's URL. Give it once per node of a cluster (`--url A --url B ...`): bot `i`
    /// connects to the `i % n`th URL, and the report says how many bots went to each.
    #[arg(long = "url", default_value = "ws://127.0.0.1:7777/")]
    pub urls: Vec<String>,
    /// How many bots.
    #[arg(long, default_value_t = 100)]
    pub bots: u32,
    /// Calls per second per bot (arena and faults: `move` calls).
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
    /// Echo scenario at a fixed rate: this many `echo` calls a second per bot, each bot at a
    /// random phase, sent when due whatever is in flight (`--window` is then unused); 0 keeps
    /// `--window` in flight instead.
    #[arg(long, default_value_t = 0.0)]
    pub echo_rate: f64,
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
    /// Faults: the mean lifetime of a connection, in seconds, from the `join` reply to the
    /// decision to kill it; each lifetime is drawn uniformly between half and 1.5 times this.
    #[arg(long, default_value_t = 5.0)]
    pub fault_lifetime: f64,
    /// Faults: the fraction of kills (0 to 1) that reset the connection (`SO_LINGER` 0, then
    /// close); the others leave it half-open (silent, the socket held open).
    #[arg(long, default_value_t = 0.5)]
    pub rst_fraction: f64,
    /// Faults: seconds a half-open connection is held before the bot drops it and connects
    /// again. Make it longer than the server's idle timeout (30 s by default): the server must
    /// close the connection within it, or the kill counts as missed (an error).
    #[arg(long, default_value_t = 40.0)]
    pub half_open_hold: f64,
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
    /// Stop, with an error and no report (exit status 2), when no bot has connected this many
    /// seconds after the start: the server is most likely not there. 0: never.
    #[arg(long, default_value_t = 5.0)]
    pub first_connect_timeout: f64,
    /// Decode every push in full as its topic's type (and check that each `state` holds the
    /// bot's own player), instead of the first `state` push of each connection only. Costs
    /// about a microsecond per 50-player `state` push.
    #[arg(long)]
    pub validate_pushes: bool,
    /// Arena: inject faults into version 2 sessions. The bots offer `ticksock.v2`; their links
    /// are killed at random (a TCP reset, or silence with the socket held open), held offline
    /// for `--outage-min` to `--outage-max` s while their calls queue, then resumed; every
    /// call, `once` answer and `state` tick is checked (see the crate docs). Exit status 1 when
    /// a check fails.
    #[arg(long)]
    pub faults: bool,
    /// `--faults`: kills per bot per minute of its link being up (exponential gaps).
    #[arg(long, default_value_t = 1.0)]
    pub fault_rate: f64,
    /// `--faults`: the share of kills (0 to 1) that reset the connection; the others leave it
    /// half-open.
    #[arg(long, default_value_t = 0.5)]
    pub fault_rst_share: f64,
    /// `--faults`: the share of half-open kills (0 to 1) whose bot reconnects *early*: within
    /// half of `--server-idle-timeout`, while the server still holds the old link open.
    #[arg(long, default_value_t = 0.3)]
    pub fault_early_share: f64,
    /// `--faults`: the share of the bots' first sessions (0 to 1) killed before they carried
    /// anything: half right after the welcome (nothing sent), half right after the first frame.
    #[arg(long, default_value_t = 0.1)]
    pub fault_fresh_share: f64,
    /// `--faults`: which fresh kills: right after the welcome (`before` the first frame),
    /// right `after` the first frame, or `both` (half each).
    #[arg(long, value_enum, default_value_t = FreshWhen::Both)]
    pub fault_fresh_when: FreshWhen,
    /// `--faults`: the shortest outage, seconds.
    #[arg(long, default_value_t = 0.1)]
    pub outage_min: f64,
    /// `--faults`: the longest outage, seconds (outages are uniform between the two). Kills
    /// stop at the end of the steady window, and the run goes on until every outage is over
    /// and its resume answered (at most this plus `--call-timeout` more).
    #[arg(long, default_value_t = 120.0)]
    pub outage_max: f64,
    /// `--faults`: every Nth call of a bot is `once` instead of `move` (0: none).
    #[arg(long, default_value_t = 10)]
    pub once_every: u32,
    /// `--faults`: the server's `--session-grace-ms`, in seconds, to judge which resumes must
    /// succeed.
    #[arg(long, default_value_t = 120.0)]
    pub server_grace: f64,
    /// `--faults`: the server's `--session-replay-bytes`, likewise (its default, 512 KiB; the
    /// server counts each frame with its WebSocket header).
    #[arg(long, default_value_t = 512 << 10)]
    pub server_replay_bytes: u64,
    /// `--faults`: the server's `--idle-timeout-ms`, in seconds, likewise (a half-open link
    /// starts its grace only when the server gives up on it).
    #[arg(long, default_value_t = 30.0)]
    pub server_idle_timeout: f64,
    /// Whisper: whispers per second per bot, to its partner. Whispers start once the last bot
    /// has started (the steady window), so that every partner is online.
    #[arg(long, default_value_t = 2.0)]
    pub whisper_rate: f64,
    /// Whisper: seconds the run goes on after the steady window, without new whispers, for the
    /// last ones to arrive; a whisper the server accepted and nobody received by then is lost.
    #[arg(long, default_value_t = 2.0)]
    pub whisper_drain: f64,
    /// Arena: how the bots log in. `guest`: each bot gets a guest account once (`guest`
    /// without a device token) and logs in with its session token by `auth` instead of
    /// `login`, again on every new server session (a version 1 reconnect, a version 2 session
    /// after a refused resume); failures are errors, by code in the report. The server must
    /// keep accounts (the arena binary's `--db`).
    #[arg(long, value_enum, default_value_t = Accounts::None)]
    pub accounts: Accounts,
    /// Arena with `--accounts guest`: `flush_stats` calls per second per bot in its arena (a
    /// write answered once committed), timed and counted apart in the report. 0: none.
    #[arg(long, default_value_t = 0.0)]
    pub persist_per_sec: f64,
    /// Arena: the server sends state by replication (the arena binary's `--replication`,
    /// with `--replica-digests`): each bot applies its `replica` pushes to a mirror,
    /// acknowledges them (at most one `replica_ack` per `move`, when the mirror says one is
    /// due), and every `--digest-every` seconds compares its view with the server's digest of
    /// the view it sent (`replica_digest`). Exit status 1 when a view differs, an update cannot
    /// be applied, or no digest was compared (see the crate docs).
    #[arg(long)]
    pub replication: bool,
    /// `--replication`: seconds between two digest checks of a bot; its first comes 0.3 s
    /// after each `join` (a late joiner's full snapshot is checked at once).
    #[arg(long, default_value_t = 1.0)]
    pub digest_every: f64,
    /// `--replication`: the share of bots (0 to 1, spread evenly) that rebuild their view and
    /// check digests. The others read each update's tick only and acknowledge it on the same
    /// schedule, so the server sends them the same deltas: a load run larger than the
    /// simulator can rebuild views for (2000 mirroring bots in rooms of 500 keep one core busy).
    /// 0: a run that measures the traffic only (no check is expected, none fails the run).
    #[arg(long, default_value_t = 1.0)]
    pub mirror_share: f64,
    /// `--replication`: the server's `--aoi-cell` (arena units), to count the bots' crossings
    /// from one interest cell to another.
    #[arg(long, default_value_t = 100)]
    pub aoi_cell: i32,
    /// Arena: the mean seconds between two losses of a bot's link (a TCP reset once none of its
    /// calls is in flight; the bot reconnects, logs in and joins again). Gaps are uniform
    /// between half and 1.5 times this. 0: never.
    #[arg(long, default_value_t = 0.0)]
    pub link_loss_every: f64,
    /// Link conditioner: milliseconds added to every frame in each direction (the session's
    /// frames before they are written, the server's after they are read), so a round trip
    /// takes twice this more. 0: none. The report splits each round trip into the time held
    /// here and the rest.
    #[arg(long, default_value_t = 0.0)]
    pub latency_ms: f64,
    /// Link conditioner: each frame's delay is drawn uniformly from `--latency-ms` ± this many
    /// milliseconds (at most `--latency-ms`). Frames of one direction stay in order, as over
    /// TCP: one drawn shorter than the frame ahead of it waits for that one.
    #[arg(long, default_value_t = 0.0)]
    pub jitter_ms: f64,
    /// Link conditioner: a cap per bot and direction, in kilobits a second (1 kbps = 125
    /// bytes a second of WebSocket frames, headers counted, TCP/IP not); a token bucket that
    /// holds 20 ms of the cap (at least 1500 bytes). 0: none.
    #[arg(long, default_value_t = 0.0)]
    pub bandwidth_kbps: f64,
    /// Ask the server for tick-stamped replies (`?ticks=1`, PROTOCOL.md 4.3). In the arena
    /// scenario the report then shows, for each stamped `move`, its stamp minus the tick of the
    /// last `state` the bot had seen when the reply came (the stamped tick lag).
    #[arg(long)]
    pub tick_stamps: bool,
}

impl Scenario {
    /// Its name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Arena => "arena",
            Scenario::Echo => "echo",
            Scenario::Churn => "churn",
            Scenario::Whisper => "whisper",
            Scenario::Idle => "idle",
            Scenario::Faults => "faults",
        }
    }
}

impl Options {
    /// What is wrong with the arena's options here (`--accounts`, `--persist-per-sec`,
    /// `--replication`, `--link-loss-every`), if anything.
    fn arena_problem(&self) -> Option<&'static str> {
        if self.accounts != Accounts::None && self.scenario != Scenario::Arena {
            Some("--accounts applies to the arena scenario only")
        } else if !(self.persist_per_sec.is_finite() && self.persist_per_sec >= 0.0) {
            Some("--persist-per-sec must be at least 0")
        } else if self.persist_per_sec > 0.0 && self.accounts == Accounts::None {
            Some("--persist-per-sec needs --accounts guest: flush_stats saves an account's stats")
        } else if self.persist_per_sec > 0.0 && self.faults {
            Some("--persist-per-sec applies to the arena scenario without --faults")
        } else if (self.replication || self.link_loss_every != 0.0)
            && (self.scenario != Scenario::Arena || self.faults)
        {
            Some("--replication and --link-loss-every apply to the arena scenario without --faults")
        } else if !(0.0..=1.0).contains(&self.mirror_share) {
            Some("--mirror-share is a share from 0 to 1")
        } else if !(self.digest_every.is_finite() && self.digest_every > 0.0) {
            Some("--digest-every must be above 0")
        } else if !(self.link_loss_every.is_finite() && self.link_loss_every >= 0.0) {
            Some("--link-loss-every must be at least 0")
        } else {
            None
        }
    }

    /// What is wrong with the link conditioner's options, if anything.
    fn link_problem(&self) -> Option<&'static str> {
        let valid = |v: f64| v.is_finite() && v >= 0.0;
        if !(valid(self.latency_ms) && valid(self.jitter_ms) && valid(self.bandwidth_kbps)) {
            Some("--latency-ms, --jitter-ms and --bandwidth-kbps must be at least 0")
        } else if self.jitter_ms > self.latency_ms {
            Some("--jitter-ms must be at most --latency-ms (delays are latency ± jitter, never below 0)")
        } else {
            None
        }
    }

    /// The defaults, against `url`.
    pub fn new(url: &str) -> Self {
        Self::parse_from(["client-sim", "--url", url])
    }

    /// What is wrong with these options, if anything (a run with them would not mean much).
    pub fn problem(&self) -> Option<String> {
        if self.urls.is_empty() {
            return Some("--url: at least one URL".to_owned());
        }
        if self.scenario == Scenario::Whisper
            && !(self.whisper_rate.is_finite() && self.whisper_rate > 0.0 && self.whisper_drain >= 0.0)
        {
            return Some("--whisper-rate must be above 0 and --whisper-drain at least 0".to_owned());
        }
        if !(self.echo_rate.is_finite() && self.echo_rate >= 0.0) {
            return Some("--echo-rate must be at least 0 (0: keep --window in flight)".to_owned());
        }
        if self.echo_rate > 0.0 && self.scenario != Scenario::Echo {
            return Some("--echo-rate applies to the echo scenario only".to_owned());
        }
        if let Some(problem) = self.arena_problem().or_else(|| self.link_problem()) {
            return Some(problem.to_owned());
        }
        if !self.faults {
            return None;
        }
        let problem = if self.scenario != Scenario::Arena {
            "--faults applies to the arena scenario only"
        } else if !(0.0..=self.outage_max).contains(&self.outage_min) {
            "--outage-min must be at least 0 and at most --outage-max"
        } else if self.fault_rate.is_nan() || self.fault_rate < 0.0 {
            "--fault-rate must be at least 0"
        } else if [self.fault_rst_share, self.fault_early_share, self.fault_fresh_share]
            .iter()
            .any(|share| !(0.0..=1.0).contains(share))
        {
            "--fault-rst-share, --fault-early-share and --fault-fresh-share are shares from 0 to 1"
        } else {
            return None;
        };
        Some(problem.to_owned())
    }
}

/// Runs the simulation and returns its report. Prints a live progress line on stderr unless
/// [`Options::quiet`].
pub fn run(opts: &Options) -> Result<Report, Error> {
    run_until(opts, &AtomicBool::new(false))
}

/// Like [`run`], but the run stops early once `interrupt` is set (by a signal handler, say):
/// the workers stop within a tenth of a second, and the report covers the run so far.
pub fn run_until(opts: &Options, interrupt: &AtomicBool) -> Result<Report, Error> {
    if let Some(problem) = opts.problem() {
        return Err(Error::Options(problem));
    }
    let targets = opts
        .urls
        .iter()
        .map(|url| {
            ticksock_client::connection::upgrade_request(url, ticksock_client::Versions::V1Only)?;
            Ok(Target::new(url, ticksock_client::connection::resolve(url)?))
        })
        .collect::<Result<Vec<Target>, Error>>()?;
    // The server looked at from outside (`--server-pid`, `--faults`): the first URL's.
    let addr = targets[0].addr;
    let targets: Arc<[Target]> = targets.into();
    let mut server = opts.server_pid.map(|pid| ServerWatch::start(pid, addr)).transpose()?;
    let mut sessions = opts.faults.then(|| SessionWatch::start(addr));
    let mut ticks = TickWatch::start(addr);
    let opts = Arc::new(opts.clone());
    let threads = opts.threads.max(1);
    let timeline = Timeline::new(&opts, Instant::now());
    let live = Arc::new(Live::new(threads as usize));
    // The workers wait here at the end of the steady window, before closing their sockets,
    // until the server has been looked at with every bot still connected.
    let hold = Arc::new(Barrier::new(threads as usize + 1));
    let cpu_start = process_cpu_secs();

    let mut handles = Vec::new();
    for t in 0..threads {
        let plan = Plan {
            opts: opts.clone(),
            targets: targets.clone(),
            bots: (0..opts.bots).filter(|i| *i % threads == t).collect(),
            start: timeline.start,
            steady_start: timeline.steady_start,
            end: timeline.end,
            drain_end: timeline.drain_end,
            slot: live.slot(t as usize),
            live: live.clone(),
            hold: hold.clone(),
        };
        let worker = std::thread::Builder::new().name(format!("sim-{t}"));
        handles.push(worker.spawn(move || scenario::run_worker(plan))?);
    }

    let watched =
        watch::watch(&opts, &live, &timeline, interrupt, server.as_mut(), sessions.as_mut(), &mut ticks);
    let cpu_end = process_cpu_secs();
    let ending = watched.ending;
    if let (Some(server), Ending::Completed | Ending::Interrupted(_)) = (server.as_mut(), &ending) {
        server.loaded();
    }
    let server_ticks = ticks.finish();
    hold.wait();
    let wall_secs = timeline.start.elapsed().as_secs_f64();
    let drain_secs = watched.ended_at.saturating_duration_since(timeline.end).as_secs_f64();
    let mut tally = Tally::default();
    for handle in handles {
        tally.merge(&handle.join().map_err(|_| Error::WorkerPanicked)??);
    }
    let (steady_secs, interrupted_after_secs) = match ending {
        Ending::Completed => (opts.duration.max(0.0), None),
        Ending::Interrupted(at) => {
            (timeline.steady_secs_until(at), Some(at.saturating_duration_since(timeline.start).as_secs_f64()))
        }
        Ending::NoConnection(figures) => {
            return Err(Error::NoConnection {
                url: opts.urls.join(", "),
                secs: opts.first_connect_timeout,
                attempts: figures.connect_attempts,
                last_error: figures.last_connect_error.map_or_else(|| "none".to_owned(), |(_, e)| e),
            });
        }
    };
    // The workers have closed their sockets: now the server's side of the story.
    let server = server.map(|watch| watch.finish(&opts, tally.connected_at_end));
    let measured = Measured {
        steady_secs,
        cpu_steady_secs: watched.cpu_at_end - watched.cpu_at_steady,
        cpu_whole_secs: cpu_end - cpu_start,
        wall_secs,
        server,
        sessions: sessions.and_then(SessionWatch::finish),
        server_ticks,
        drain_secs,
        interrupted_after_secs,
    };
    Ok(report(&opts, tally, measured))
}

/// What the main thread measured, beside the workers' tally.
struct Measured {
    /// The steady window's length (shorter than `--duration` when interrupted).
    steady_secs: f64,
    /// The process's CPU time in the steady window.
    cpu_steady_secs: f64,
    /// The process's CPU time over the run.
    cpu_whole_secs: f64,
    wall_secs: f64,
    server: Option<ServerFigures>,
    /// `--faults`: the server's sessions, from its `/metrics`.
    sessions: Option<ServerSessionFigures>,
    /// The server's ticks, from its `/metrics`.
    server_ticks: ServerTickFigures,
    /// `--faults`: seconds the run went on after the steady window.
    drain_secs: f64,
    interrupted_after_secs: Option<f64>,
}

/// The report of a run: the merged tally, in rates over the steady window and summaries.
fn report(opts: &Options, total: Tally, m: Measured) -> Report {
    let secs = m.steady_secs;
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let (c, at, end) = (&total.counters, &total.at_steady, &total.at_end);
    let bots = f64::from(opts.bots.max(1));
    let steady = Window {
        secs,
        calls_per_sec: per_sec(total.sent_at_end.saturating_sub(total.sent_at_steady)),
        answers_per_sec: per_sec((end.replied + end.errored).saturating_sub(at.replied + at.errored)),
        pushes_per_sec: per_sec(end.pushes.saturating_sub(at.pushes)),
        state_pushes_per_sec: per_sec(end.pushes_state.saturating_sub(at.pushes_state)),
        push_bytes_per_bot_sec: per_sec(end.push_bytes.saturating_sub(at.push_bytes)) / bots,
        state_bytes_per_bot_sec: per_sec(end.state_bytes.saturating_sub(at.state_bytes)) / bots,
        worker_cpu_secs: total.steady_cpu_secs,
        worker_cpu_percent: percent(total.steady_cpu_secs, secs),
        process_cpu_secs: m.cpu_steady_secs,
        process_cpu_percent: percent(m.cpu_steady_secs, secs),
    };
    let tick_hz = total.tick_hz;
    let churn = (opts.scenario == Scenario::Churn).then(|| ChurnFigures {
        drop_fraction: opts.drop_fraction,
        pause_secs: opts.churn_pause,
        cycles_per_sec: per_sec(end.cycles.saturating_sub(at.cycles)),
        cycles_per_sec_whole_run: if m.wall_secs > 0.0 { c.cycles as f64 / m.wall_secs } else { 0.0 },
        cycle_us: Quantiles::of(&total.cycle_us),
    });
    let faults = (opts.scenario == Scenario::Faults).then(|| FaultFigures {
        lifetime_secs: opts.fault_lifetime,
        rst_fraction: opts.rst_fraction,
        half_open_hold_secs: opts.half_open_hold,
        kills_per_sec: if m.wall_secs > 0.0 {
            (c.kills_rst + c.kills_half_open) as f64 / m.wall_secs
        } else {
            0.0
        },
    });
    let resume = opts.faults.then(|| {
        let ticks = total.ticks.verdict();
        ResumeFigures {
            fault_rate_per_min: opts.fault_rate,
            rst_share: opts.fault_rst_share,
            early_share: opts.fault_early_share,
            fresh_share: opts.fault_fresh_share,
            fresh_when: format!("{:?}", opts.fault_fresh_when).to_lowercase(),
            outage_secs: (opts.outage_min, opts.outage_max),
            once_every: opts.once_every,
            server_grace_secs: opts.server_grace,
            server_replay_bytes: opts.server_replay_bytes,
            server_idle_timeout_secs: opts.server_idle_timeout,
            drain_secs: m.drain_secs,
            resume_failures: total.resume_failures.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
            pushes_lost: ticks.lost,
            pushes_missed_skipped: ticks.unseen_missed,
            ticks_unseen: ticks.unseen_ticks,
            unsettled_at_end: total.unsettled_at_end,
            server: m.sessions,
            surprises: total.surprises.clone(),
        }
    });
    let whisper = (opts.scenario == Scenario::Whisper).then(|| WhisperFigures {
        rate: opts.whisper_rate,
        drain_secs: m.drain_secs,
        sent: total.whisper.sent,
        failed: total.whisper.failed,
        received: total.whisper.received,
        lost: total.whisper.lost(),
        duplicated: total.whisper.duplicated,
        out_of_order: total.whisper.out_of_order,
        latency_us: Quantiles::of(&total.whisper.latency),
    });
    let accounts = (opts.accounts == Accounts::Guest).then(|| AccountFigures {
        guests_created: c.guests_created,
        guest_failures: c.guest_failures,
        auths_ok: c.auths_ok,
        auth_failures: c.auth_failures,
        failures: total.account_failures.clone(),
    });
    let persist = (opts.persist_per_sec > 0.0).then(|| PersistFigures {
        per_sec: opts.persist_per_sec,
        calls: c.persist_calls,
        replied: c.persist_replied,
        failed: c.persist_failed,
        replied_per_sec_steady: per_sec(end.persist_replied.saturating_sub(at.persist_replied)),
        failures: total.persist_failures.clone(),
        latency_us: Quantiles::of(&total.persist_latency),
        latency_steady_us: Quantiles::of(&total.persist_latency_steady),
    });
    let replica = opts.replication.then_some(ReplicaFigures {
        digest_every_secs: opts.digest_every,
        mirror_share: opts.mirror_share,
        link_loss_every_secs: opts.link_loss_every,
        updates: c.replica_updates,
        full_snapshots: c.replica_full,
        not_applied: c.replica_not_applied,
        acks: c.replica_acks,
        acks_accepted: c.replica_acks_accepted,
        acks_stale: c.replica_acks_stale,
        acks_unknown: c.replica_acks_unknown,
        checks: c.digest_checks,
        mismatches: c.digest_mismatches,
        tick_unseen: c.digest_tick_unseen,
        absent: c.digest_absent,
        after_join: c.digest_after_join,
        link_losses: c.link_losses,
        cell_crossings: c.cell_crossings,
    });
    Report {
        url: opts.urls.join(", "),
        urls: url_shares(&opts.urls, opts.bots),
        scenario: opts.scenario.name().into(),
        bots: u64::from(opts.bots),
        threads: u64::from(opts.threads.max(1)),
        rate: if opts.scenario == Scenario::Echo { opts.echo_rate } else { opts.rate },
        window: u64::from(opts.window),
        ramp_secs: Timeline::ramp_secs(opts),
        errors: c.errors(),
        counters: *c,
        sent: total.sent,
        in_flight_at_end: total.in_flight_at_end,
        connected_at_end: total.connected_at_end,
        rtt_us: Quantiles::of(&total.rtt),
        rtt_steady_us: Quantiles::of(&total.rtt_steady),
        tick_jitter: TickJitter {
            tick_hz,
            nominal_us: if tick_hz > 0 { 1_000_000 / u64::from(tick_hz) } else { 0 },
            gap_us: Quantiles::of(&total.gaps),
            ticks_skipped: c.ticks_skipped,
        },
        steady,
        timer_late_us: Quantiles::of(&total.timer_late),
        process_cpu_secs: m.cpu_whole_secs,
        wall_secs: m.wall_secs,
        churn,
        faults,
        resume,
        whisper,
        resent: total.resent,
        server: m.server,
        server_ticks: m.server_ticks,
        accounts,
        persist,
        tick_stamps: opts.tick_stamps.then(|| TickStampFigures { lag_ticks: Quantiles::of(&total.tick_lag) }),
        replica,
        link: link_figures(opts, &total.link),
        interrupted_after_secs: m.interrupted_after_secs,
        error_codes: total.error_codes,
        connect_errors: total.connect_errors,
    }
}

/// The link conditioner's settings and what it held, when the options ask for one.
fn link_figures(opts: &Options, held: &LinkTally) -> Option<LinkFigures> {
    let shape = worker::Shape::from_options(opts)?;
    Some(LinkFigures {
        latency_ms: opts.latency_ms,
        jitter_ms: opts.jitter_ms,
        bandwidth_kbps: opts.bandwidth_kbps,
        burst_bytes: if shape.bytes_per_sec > 0.0 { shape.burst_bytes() as u64 } else { 0 },
        window_bytes: worker::WINDOW_BYTES as u64,
        held_us: Quantiles::of(&held.held),
        rtt_less_held_us: Quantiles::of(&held.outside),
        held_steady_us: Quantiles::of(&held.held_steady),
        rtt_less_held_steady_us: Quantiles::of(&held.outside_steady),
        frame_out_held_us: Quantiles::of(&held.frame_out),
        frame_in_held_us: Quantiles::of(&held.frame_in),
        out_paused: held.out_paused,
        in_paused: held.in_paused,
    })
}

/// Each URL, and how many of `bots` start on it: bot `i` on URL `i % n`.
fn url_shares(urls: &[String], bots: u32) -> Vec<UrlShare> {
    let n = urls.len().max(1);
    let bots = bots as usize;
    urls.iter()
        .enumerate()
        .map(|(k, url)| UrlShare { url: url.clone(), bots: (bots / n + usize::from(k < bots % n)) as u64 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_repeat_and_share_the_bots_round_robin() {
        let opts = Options::parse_from([
            "client-sim",
            "--url",
            "ws://a:1/",
            "--url",
            "ws://b:2/",
            "--url",
            "ws://c:3/",
        ]);
        assert_eq!(opts.urls, ["ws://a:1/", "ws://b:2/", "ws://c:3/"]);
        let shares: Vec<u64> = url_shares(&opts.urls, 7).iter().map(|s| s.bots).collect();
        assert_eq!(shares, [3, 2, 2], "bots 0, 3, 6 / 1, 4 / 2, 5");
        assert_eq!(Options::new("ws://a:1/").urls, ["ws://a:1/"], "one --url as before");
        assert_eq!(Options::parse_from(["client-sim"]).urls, ["ws://127.0.0.1:7777/"], "the default");
    }

    #[test]
    fn account_options_that_make_no_sense_are_named() {
        let parse = |flags: &[&str]| {
            let line = ["client-sim", "--url", "ws://127.0.0.1:1/"].into_iter().chain(flags.iter().copied());
            Options::parse_from(line).problem().unwrap_or_default()
        };
        assert_eq!(parse(&["--accounts", "guest", "--persist-per-sec", "1"]), "");
        assert_eq!(parse(&["--accounts", "guest", "--faults"]), "", "a v2 session logs in by auth too");
        assert!(parse(&["--persist-per-sec", "1"]).contains("needs --accounts guest"));
        assert!(parse(&["--accounts", "guest", "--scenario", "echo"]).contains("arena scenario only"));
        assert!(parse(&["--accounts", "guest", "--persist-per-sec=-1"]).contains("at least 0"));
        assert!(
            parse(&["--accounts", "guest", "--persist-per-sec", "1", "--faults"])
                .contains("without --faults")
        );
        assert_eq!(Options::new("ws://a:1/").accounts, Accounts::None, "login by name unless asked");
    }

    #[test]
    fn link_conditioner_options_that_make_no_sense_are_named() {
        let parse = |flags: &[&str]| {
            let line = ["client-sim", "--url", "ws://127.0.0.1:1/"].into_iter().chain(flags.iter().copied());
            Options::parse_from(line).problem().unwrap_or_default()
        };
        assert_eq!(parse(&["--latency-ms", "80", "--jitter-ms", "20", "--bandwidth-kbps", "256"]), "");
        assert_eq!(parse(&["--bandwidth-kbps", "64"]), "", "a cap alone");
        assert!(parse(&["--latency-ms", "10", "--jitter-ms", "20"]).contains("at most --latency-ms"));
        assert!(parse(&["--latency-ms=-1"]).contains("at least 0"));
        assert!(parse(&["--bandwidth-kbps", "inf"]).contains("at least 0"));
    }

    #[test]
    fn fault_options_that_make_no_sense_are_named() {
        let faults = Options { faults: true, ..Options::new("ws://127.0.0.1:1/") };
        assert_eq!(faults.problem(), None, "the defaults");
        let problem = |edit: fn(&mut Options)| {
            let mut opts = faults.clone();
            edit(&mut opts);
            opts.problem().unwrap_or_default()
        };
        assert!(problem(|o| o.scenario = Scenario::Echo).contains("arena scenario only"));
        assert!(problem(|o| o.outage_min = 200.0).contains("--outage-min"));
        assert!(problem(|o| o.outage_min = -1.0).contains("--outage-min"));
        assert!(problem(|o| o.fault_rate = f64::NAN).contains("--fault-rate"));
        assert!(problem(|o| o.fault_early_share = 1.5).contains("shares from 0 to 1"));
        let v1 = Options { scenario: Scenario::Echo, outage_min: 500.0, ..Options::new("ws://127.0.0.1:1/") };
        assert_eq!(v1.problem(), None, "the fault settings mean nothing without --faults");
    }

    #[test]
    fn an_echo_rate_is_for_the_echo_scenario_and_not_negative() {
        let echo = Options { scenario: Scenario::Echo, echo_rate: 5.0, ..Options::new("ws://127.0.0.1:1/") };
        assert_eq!(echo.problem(), None);
        let arena = Options { scenario: Scenario::Arena, ..echo.clone() };
        assert!(arena.problem().unwrap_or_default().contains("echo scenario only"));
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let opts = Options { echo_rate: bad, ..echo.clone() };
            assert!(opts.problem().unwrap_or_default().contains("--echo-rate must be at least 0"), "{bad}");
        }
    }
}
