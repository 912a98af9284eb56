//! Every tunable of the server: its default, the reason for it, and its command-line flag
//! (`Config` derives `clap::Args`; `--listen` values and duration units have their own modules).
//! Just over 400 lines: one field per setting, each with the reason and the measurement behind
//! its default, which belong together.

mod listen;
mod origins;
pub(crate) mod tick_rate;
mod units;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::FromArgMatches;
use clap::parser::ValueSource;

use crate::StaticFiles;

pub use origins::{AllowedOrigins, Origin};

/// How the logic thread asks the OS scheduler to run it. A tick that starts late is late for
/// every player, and on a busy machine an ordinary thread waits for another's time slice
/// (milliseconds) before it runs; a raised or real-time thread runs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogicPriority {
    /// An ordinary thread, like every other.
    Normal,
    /// Nice -10: a larger share of the CPU and earlier wake-ups, but it may still wait for
    /// another thread's slice.
    Raised,
    /// `SCHED_FIFO` at the lowest real-time priority (1) around each tick: from 10 ms before
    /// its deadline (a third of the period above 33 Hz) until it has run, so that it
    /// preempts ordinary threads the moment it is due; an ordinary thread in between, at
    /// nice -10 (at the nice value it started with where real-time is permitted and a raised
    /// nice value is not), so that
    /// the requests between ticks are handled with the scheduler's batching instead of a
    /// preemption per batch (which cost as much CPU again per request). Linux keeps 5 % of
    /// each second for other threads (`sched_rt_runtime_us`) even if a game's tick loops.
    /// Falls back to `Raised`, then `Normal`, where not permitted (it needs `CAP_SYS_NICE` or
    /// an `RLIMIT_RTPRIO` above 0).
    /// Threads a game spawns from its handlers or hooks inherit the policy of the moment; a
    /// game that starts busy worker threads there should set theirs.
    #[default]
    Realtime,
}

/// Room in the outbound queue beside a session's whole replay buffer, for the Resumed frame
/// and control frames sent with it (see `Config::session_replay_bytes`).
pub const REPLAY_HEADROOM: usize = 4096;

/// The largest [`Config::min_turn_interval`]: beyond it the sleep would add more than a
/// tick-worthy delay (20 ms) to every round trip.
pub const MAX_TURN_INTERVAL: Duration = Duration::from_millis(10);

/// The server's configuration. Every limit the server enforces is a field here, and every
/// field but `echo` and `static_files` is a command-line flag.
///
/// [`Config::default`] suits a game server on the open internet; [`Config::echo`] raises the
/// message limits for WebSocket conformance suites, whose largest cases send 16 MiB messages.
///
/// # On the command line
/// `Config` derives [`clap::Args`]: each field is a flag named after it (durations in the unit
/// the flag's name ends with: `--idle-timeout-ms`, `--min-turn-interval-us`,
/// `--shutdown-timeout-secs`), its doc comment is the flag's help, and the help shows the
/// default [`Config::default`] has. A game flattens it into its own parser:
///
/// ```
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct Args {
///     /// A flag of the game's own.
///     #[arg(long)]
///     bots: usize,
///     #[command(flatten)]
///     config: ticksock_server::Config,
/// }
///
/// let args = Args::parse_from(["game", "--bots", "3", "--tick-hz", "20", "--listen", "9000"]);
/// assert_eq!(args.config.tick_hz, 20);
/// assert_eq!(args.config.listen.to_string(), "127.0.0.1:9000");
/// ```
///
/// Parsed that way, the fields whose flags were not given have [`Config::default`]'s values. A
/// game that starts from other values (as the arena's echo mode starts from [`Config::echo`])
/// lays the flags given over them with [`Config::update_from_typed_flags`].
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Server")]
pub struct Config {
    /// Where to listen: `HOST:PORT`, `[IPv6]:PORT`, or a bare `PORT` on 127.0.0.1.
    ///
    /// A host name is resolved once, when the flag is read, to the first address the system
    /// resolver returns.
    ///
    /// Default `127.0.0.1:7777`.
    #[arg(long, value_name = "ADDR", value_parser = listen::parse, default_value_t = Config::default().listen)]
    pub listen: SocketAddr,
    /// A PEM file with the server's certificate chain, its own certificate first. With
    /// `--tls-key`, every connection speaks TLS (`wss://`, and `https://` for the page); give
    /// both or neither.
    ///
    /// Read at start: a file that does not load stops the server with the reason. Read again
    /// on SIGHUP (under `run_until_signal`): new connections use the new certificate, open
    /// ones keep theirs, and a reload that fails keeps the old one and logs why. The handshake
    /// deadline and `--max-handshake-bytes` cover the TLS handshake too.
    ///
    /// Default none. Without it the server speaks plain TCP (`ws://`), as behind a
    /// TLS-terminating reverse proxy.
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// A PEM file with the private key of `--tls-cert` (PKCS #8, PKCS #1 or SEC1).
    ///
    /// Default none.
    #[arg(long, value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// Game ticks per second.
    ///
    /// The server warns at start when the OS timer cannot hold the rate: when its period is
    /// shorter than two of the timer's shortest waits, so that ticks would be skipped.
    ///
    /// Default 30.
    #[arg(long, value_name = "HZ", default_value_t = Config::default().tick_hz)]
    pub tick_hz: u16,
    /// Echo mode: every data message, text or binary, comes back unchanged, through the
    /// reactor and the logic thread; clients need not offer a subprotocol. Default off.
    /// Not a flag: a binary that offers echo mode has its own (the arena's `--echo`).
    #[arg(skip)]
    pub echo: bool,
    /// Open connections (handshaking or open) at most; one more is answered `503` and closed
    /// before its handshake.
    ///
    /// Default 10 000.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_connections)]
    pub max_connections: usize,
    /// The largest WebSocket message accepted, in bytes; a larger one closes the connection
    /// with 1009.
    ///
    /// Default 64 KiB.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_message_bytes)]
    pub max_message_bytes: usize,
    /// The largest WebSocket frame payload accepted, in bytes; a larger one closes the
    /// connection with 1009. At most `--max-message-bytes`.
    ///
    /// Default 64 KiB.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_frame_bytes)]
    pub max_frame_bytes: usize,
    /// Bytes read from a socket per `read` call.
    ///
    /// tungstenite allocates this eagerly per context (its own default, 128 KiB, would cost
    /// 640 MB at 5000 connections each holding one), so it is small. The reactor lends
    /// contexts only to the connections it reads (and to those with part of a message
    /// buffered): an idle connection holds none.
    ///
    /// Default 2 KiB.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().read_buffer_bytes)]
    pub read_buffer_bytes: usize,
    /// Frames queued for one connection are written together once they reach this many bytes
    /// or when a batch ends, whichever is first.
    ///
    /// Default 64 KiB.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().write_coalesce_bytes)]
    pub write_coalesce_bytes: usize,
    /// The most bytes queued for one connection that its peer has not read yet.
    ///
    /// Pushes to a client that reads too slowly are held back by class past
    /// `--hold-after-bytes`; what this caps is then its queue and the replies held for it: a
    /// client whose replies alone cross it is closed (1008). Must exceed
    /// `--write-coalesce-bytes`.
    ///
    /// Default 1 MiB.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_outbound_bytes)]
    pub max_outbound_bytes: usize,
    /// Unwritten bytes queued for one connection from which the server holds its frames back
    /// by class (PROTOCOL.md 7.3): replies all kept, in order; a newer state on a latest-wins
    /// topic in place of the one held; other pushes (events) kept up to `--max-held-events`.
    ///
    /// What is queued stands between a new state and the client: at a client's reading rate
    /// R, a state it draws is about this many bytes over R old (16 KiB at 100 KB/s: a sixth of
    /// a second), plus what the kernel buffers (`--tcp-notsent-lowat`). A client that keeps up
    /// never queues this much between two flushes (a tick's state is a few KiB), so holding
    /// costs it nothing. Must be below `--max-outbound-bytes`.
    ///
    /// Default 16 KiB.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().hold_after_bytes)]
    pub hold_after_bytes: usize,
    /// The most bytes a connection's socket keeps unsent in the kernel (Linux's
    /// `TCP_NOTSENT_LOWAT`); 0 leaves the system's setting. Past it a write takes nothing, so
    /// what a slow reader is sent waits in the server, where it is held back by class
    /// (`--hold-after-bytes`), instead of in a kernel buffer that grows to megabytes
    /// (`tcp_wmem`), where every state waits its turn.
    ///
    /// Bytes in flight (sent, not acknowledged) are not counted, so a fast client's throughput
    /// does not depend on it; a slow reader's states are about this many bytes older. Without
    /// it, a loopback client reading 50 KB/s drew states 5.4 s old after 6 s
    /// (docs/BENCHMARKS.md, issue 18, slow readers).
    ///
    /// Default 16 KiB.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().tcp_notsent_lowat)]
    pub tcp_notsent_lowat: usize,
    /// The most events (pushes on topics that are not latest-wins) held back for one slow
    /// connection; past it the oldest is dropped and counted, and the client is told the count
    /// (push `ticksock.dropped`, PROTOCOL.md 7.3).
    ///
    /// A burst of chat at 30 lines a tick is 256 lines in 8 ticks: a client briefly behind (a
    /// mobile link stalling for a second) loses nothing of a normal conversation, while a
    /// client that stays behind costs at most this many frames.
    ///
    /// Default 256.
    #[arg(long, value_name = "COUNT", default_value_t = Config::default().max_held_events)]
    pub max_held_events: usize,
    /// How long a connection whose frames are held back may take nothing from its socket
    /// before it is closed (4005, PROTOCOL.md 7.5; a version 2 link is dropped, and its session
    /// waits for a resume). A slow reader that takes anything at all stays.
    ///
    /// Long enough for a mobile link's stall (a few seconds) or a tab the browser throttles,
    /// short enough that a client that has stopped reading does not hold its frames for long.
    ///
    /// Default 15 s.
    #[arg(
        long = "stalled-reader-timeout-ms",
        value_name = "MS",
        value_parser = units::millis,
        default_value = units::in_millis(Config::default().stalled_reader_timeout)
    )]
    pub stalled_reader_timeout: Duration,
    /// The largest HTTP upgrade request (request line and headers); a larger one is answered
    /// `431` and closed.
    ///
    /// Default 8 KiB.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_handshake_bytes)]
    pub max_handshake_bytes: usize,
    /// How long a client may take to complete its HTTP upgrade before it is closed
    /// (slow or silent clients).
    ///
    /// Default 5 s.
    #[arg(
        long = "handshake-timeout-ms",
        value_name = "MS",
        value_parser = units::millis,
        default_value = units::in_millis(Config::default().handshake_timeout)
    )]
    pub handshake_timeout: Duration,
    /// The web pages that may open a WebSocket to the server, by their origin: a
    /// comma-separated list of `scheme://host[:port]` (`https://game.example.com`,
    /// `http://localhost:8080`; the host in any case, a scheme's default port optional),
    /// `self` for the server's own host (an `Origin` whose `host[:port]` equals the request's
    /// `Host` header), or `*` for any. An upgrade whose `Origin` is not allowed is refused with
    /// `403`. An upgrade without `Origin` is always allowed, and plain HTTP requests (a page,
    /// `/metrics`) are not checked.
    ///
    /// A browser sends a player's cookies with an upgrade whatever page opens it, so without
    /// this check any site the player visits could open a socket to the game as that player
    /// (cross-site WebSocket hijacking). Clients that are not pages (native apps, the Rust
    /// client, bots) send no `Origin`, and could send any they like: refusing them would
    /// protect nothing. `self` lets the page the server serves itself connect, under whatever
    /// name it is reached; a list replaces it (list `self` too to keep it). Behind a reverse
    /// proxy, the proxy must pass `Origin` and `Host` through unchanged.
    ///
    /// Default `self`. In echo mode ([`Config::echo`]) `*`: conformance suites send an `Origin`
    /// of their own.
    #[arg(
        long,
        value_name = "ORIGINS",
        value_parser = origins::parse,
        default_value_t = Config::default().allowed_origins
    )]
    pub allowed_origins: AllowedOrigins,
    /// After this long without hearing from a connection the server sends it a WebSocket ping.
    ///
    /// Default 10 s.
    #[arg(
        long = "ping-interval-ms",
        value_name = "MS",
        value_parser = units::millis,
        default_value = units::in_millis(Config::default().ping_interval)
    )]
    pub ping_interval: Duration,
    /// A connection silent for this long (not even answering pings) is closed.
    ///
    /// Default 30 s.
    #[arg(
        long = "idle-timeout-ms",
        value_name = "MS",
        value_parser = units::millis,
        default_value = units::in_millis(Config::default().idle_timeout)
    )]
    pub idle_timeout: Duration,
    /// How long the server waits for the peer's close frame after sending its own.
    ///
    /// Default 2 s.
    #[arg(
        long = "close-timeout-ms",
        value_name = "MS",
        value_parser = units::millis,
        default_value = units::in_millis(Config::default().close_timeout)
    )]
    pub close_timeout: Duration,
    /// How long a connection the server ends may still send before its socket is closed:
    /// the server shuts down its side of TCP (the peer sees end of stream after the last
    /// frame) and reads and discards what the peer still sends, for at most this long and
    /// `linger_bytes`.
    ///
    /// Closing a socket with unread input makes the kernel send a reset right behind the
    /// last frames, and a client stack that reports the reset first (Python's asyncio did)
    /// loses them: the reply and the close frame of a client that sent an oversize message
    /// right after a request. nginx drains the same way (`lingering_close`, 5 s per read, 30
    /// s in all); 2 s is the close timeout's bound again, and lets a peer on a slow link finish
    /// a message in flight. A lingering socket holds a descriptor but no connection slot.
    ///
    /// Default 2 s.
    #[arg(
        long = "linger-timeout-ms",
        value_name = "MS",
        value_parser = units::millis,
        default_value = units::in_millis(Config::default().linger_timeout)
    )]
    pub linger_timeout: Duration,
    /// Bytes the server reads and discards from a connection it ends before it closes the
    /// socket anyway (see `linger_timeout`).
    ///
    /// One oversize message in flight is what a client in good faith still sends after its
    /// close; 1 MiB covers sixteen of the largest messages the default accepts. A peer that
    /// sends more is not in good faith and gets the reset.
    ///
    /// Default 1 MiB.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().linger_bytes)]
    pub linger_bytes: u64,
    /// How long a version 2 session whose link dropped waits for its client to resume it
    /// (PROTOCOL.md section 11), keeping its user, groups, rooms and what is sent to it.
    ///
    /// A phone that changes networks, a Wi-Fi blip or a laptop lid closed for a coffee come
    /// back within a minute or two; Socket.IO's connection state recovery keeps 2 minutes for
    /// the same reason. What it costs is bounded by `session_replay_bytes` per session.
    ///
    /// Default 120 s.
    #[arg(
        long = "session-grace-ms",
        value_name = "MS",
        value_parser = units::millis,
        default_value = units::in_millis(Config::default().session_grace)
    )]
    pub session_grace: Duration,
    /// Bytes of replies and pushes a version 2 session keeps for its client until the client
    /// acknowledges them, counted as sent (each frame with its WebSocket header): while it has
    /// a link (about a second's worth, at the client's acknowledgement pace), and while it waits
    /// for a resume. A session without a link that would pass it ends; one with a link that
    /// passes it can no longer be resumed. Capped at `max_outbound_bytes` minus 4 KiB
    /// ([`Config::session_replay_bound`]), so that a resume can replay all of it into the new
    /// link's outbound queue at once.
    ///
    /// The arena's busiest player draws about 12 KB of state a second, so 512 KiB holds about
    /// 40 s of it, and a player in a quiet lobby a few bytes; a game whose players need a
    /// longer window raises this and `max_outbound_bytes` together.
    ///
    /// Default 512 KiB.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().session_replay_bytes)]
    pub session_replay_bytes: usize,
    /// How long the requests a version 2 session has taken may go unacknowledged before the
    /// server sends an Ack on its own.
    ///
    /// Clients acknowledge at the same pace: a second bounds what each side keeps for the
    /// other to a second of traffic, and costs at most one small frame a second.
    ///
    /// Default 1 s.
    #[arg(
        long = "ack-interval-ms",
        value_name = "MS",
        value_parser = units::millis,
        default_value = units::in_millis(Config::default().ack_interval)
    )]
    pub ack_interval: Duration,
    /// Messages the reactor has passed to the logic thread and that it has not handled yet,
    /// at most.
    ///
    /// When the logic thread is that far behind, the reactor stops reading sockets (TCP
    /// pushes back on the clients) instead of buffering more than the batch it was filling
    /// (up to 64 messages; a batch always goes when nothing waits).
    ///
    /// Default 8192.
    #[arg(long, value_name = "N", default_value_t = Config::default().inbound_queue)]
    pub inbound_queue: usize,
    /// Capacity of the channel from the logic thread to the reactor, in batches.
    ///
    /// Default 1024.
    #[arg(long, value_name = "N", default_value_t = Config::default().outbound_queue)]
    pub outbound_queue: usize,
    /// How long a connection whose identity expired may go on sending requests, to renew it
    /// with `auth` (PROTOCOL.md 13.4); then it gets `auth_expired` and close 4004. Only for a
    /// game with an authenticator.
    ///
    /// Default 30 s. A client refreshes a token a round trip or two after it notices; a
    /// mobile client in the background may take longer, and a longer grace only delays the
    /// close of a connection that will not renew.
    #[arg(long = "auth-grace-ms", value_name = "MS", value_parser = units::millis, default_value = units::in_millis(Config::default().auth_grace))]
    pub auth_grace: Duration,
    /// Worker threads that run slow work off the logic thread
    /// ([`Ctx::spawn_job`](crate::Ctx::spawn_job): database writes, calls to other services).
    ///
    /// Default 4. Such work mostly waits (on a disk, a network), so more workers than cores
    /// keep the queue moving; an idle worker costs a parked thread and its stack.
    #[arg(long, value_name = "N", default_value_t = Config::default().job_workers)]
    pub job_workers: usize,
    /// Jobs waiting for a worker, at most. A job submitted beyond it is refused at once with
    /// `BUSY` (PROTOCOL.md section 6), so a slow database shows as refusals the clients can
    /// back off from, not as a queue that grows without end.
    ///
    /// Default 1024. A second of 1000 writes per second queued behind a stalled disk.
    #[arg(long, value_name = "N", default_value_t = Config::default().job_queue)]
    pub job_queue: usize,
    /// Messages read from one connection per turn of the reactor before it serves the others,
    /// so one busy client cannot starve the rest.
    ///
    /// Default 64.
    #[arg(long, value_name = "N", default_value_t = Config::default().read_budget)]
    pub read_budget: usize,
    /// Connections sent a broadcast (a tick's state pushes, a message to a room) that the
    /// reactor writes per turn, after the turn's replies; the rest wait for the next turns.
    ///
    /// So replies and reads go on between the slices of a tick's burst to thousands instead
    /// of waiting for all of it, while each connection still gets one write for everything it
    /// has queued.
    ///
    /// Default 256.
    #[arg(long, value_name = "N", default_value_t = Config::default().broadcast_flush_slice)]
    pub broadcast_flush_slice: usize,
    /// The shortest time between two turns of the reactor: after a short turn it sleeps the
    /// rest before polling again, so that messages arriving meanwhile are handled together.
    ///
    /// Under a steady trickle (a load generator that answers each echo at once) a turn would
    /// otherwise carry a message or two, and each would cost a hand-over to the logic thread
    /// and back; with 100 µs the server's CPU per echo fell from 2.4–2.7 µs to 1.3–1.6 µs
    /// (docs/BENCHMARKS.md). It adds at most twice this much to a round trip (once when the
    /// request is read, once when the reply is written); a busy reactor, whose turns are
    /// longer, never sleeps. 0 turns it off. At most 10 ms (`MAX_TURN_INTERVAL`).
    ///
    /// Default 100 µs.
    #[arg(
        long = "min-turn-interval-us",
        value_name = "US",
        value_parser = units::micros,
        default_value = units::in_micros(Config::default().min_turn_interval)
    )]
    pub min_turn_interval: Duration,
    /// Messages per second one connection may send on average, pings and pongs included. A
    /// request over the rate is answered `RATE_LIMITED` and not handled.
    ///
    /// The limit is a token bucket: it holds `rate_burst_messages` tokens, refills at this
    /// rate, and each message takes one. So a connection is never refused while, over every
    /// span of time T, it sends at most `rate_burst_messages + T * rate_messages_per_sec`
    /// messages. A game client sends tens of messages a second; 1000 leaves it room for
    /// anything but a flood, and a loop that sends as fast as the server answers (an echo
    /// benchmark) does cross it.
    ///
    /// Default 1000.
    #[arg(long, value_name = "N", default_value_t = Config::default().rate_messages_per_sec)]
    pub rate_messages_per_sec: u32,
    /// Messages one connection may send at once, above its average (the token bucket's size;
    /// see `rate_messages_per_sec`).
    ///
    /// One second's worth of the default rate: a client that was stalled for a second (a
    /// mobile link, a tab in the background) may send what it held back at once.
    ///
    /// Default 1000.
    #[arg(long, value_name = "N", default_value_t = Config::default().rate_burst_messages)]
    pub rate_burst_messages: u32,
    /// Payload bytes per second one connection may send on average, likewise (a second token
    /// bucket, which a message must also pass).
    ///
    /// Default 1 MiB.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().rate_bytes_per_sec)]
    pub rate_bytes_per_sec: u32,
    /// Payload bytes one connection may send at once, above its average (the byte bucket's
    /// size). At least `max_message_bytes`, or the largest message could never pass.
    ///
    /// One second's worth of the default byte rate, sixteen of the largest messages.
    ///
    /// Default 1 MiB.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().rate_burst_bytes)]
    pub rate_burst_bytes: u32,
    /// Messages refused in a row for the rate, after which the connection is closed with
    /// 1008.
    ///
    /// Default 100.
    #[arg(long, value_name = "N", default_value_t = Config::default().rate_strikes)]
    pub rate_strikes: u32,
    /// How long the whole shutdown sequence (on SIGINT or SIGTERM) may take before the binary
    /// exits anyway, with status 1.
    ///
    /// Default 5 s.
    #[arg(
        long = "shutdown-timeout-secs",
        value_name = "SECS",
        value_parser = units::secs,
        default_value = units::in_secs(Config::default().shutdown_timeout)
    )]
    pub shutdown_timeout: Duration,
    /// How the OS schedules the logic thread, so that ticks start on time on a busy machine.
    ///
    ///
    /// Default `Realtime`, falling back to `Raised` and then `Normal` where the OS does not
    /// permit it.
    #[arg(long, value_enum, default_value_t = Config::default().logic_priority)]
    pub logic_priority: LogicPriority,
    /// The files a plain HTTP `GET` on the game port is answered with (a game's page and
    /// scripts). Default none: every path but `/metrics` is 404. Not a flag: the game
    /// chooses them.
    #[arg(skip)]
    pub static_files: StaticFiles,
    /// The cluster this node joins (`docs/CLUSTER.md`). Default none: a single node, which
    /// never talks to Redis. Its flags are [`ClusterArgs`](crate::cluster::ClusterArgs)'s,
    /// which a game flattens beside these.
    #[arg(skip)]
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7777)),
            tls_cert: None,
            tls_key: None,
            tick_hz: 30,
            echo: false,
            max_connections: 10_000,
            max_message_bytes: 64 << 10,
            max_frame_bytes: 64 << 10,
            read_buffer_bytes: 2 << 10,
            write_coalesce_bytes: 64 << 10,
            max_outbound_bytes: 1 << 20,
            hold_after_bytes: 16 << 10,
            tcp_notsent_lowat: 16 << 10,
            max_held_events: 256,
            stalled_reader_timeout: Duration::from_secs(15),
            max_handshake_bytes: 8 << 10,
            handshake_timeout: Duration::from_secs(5),
            allowed_origins: AllowedOrigins::same_host(),
            ping_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(2),
            linger_timeout: Duration::from_secs(2),
            linger_bytes: 1 << 20,
            session_grace: Duration::from_secs(120),
            session_replay_bytes: 512 << 10,
            ack_interval: Duration::from_secs(1),
            inbound_queue: 8192,
            auth_grace: Duration::from_secs(30),
            job_workers: 4,
            job_queue: 1024,
            outbound_queue: 1024,
            read_budget: 64,
            broadcast_flush_slice: 256,
            min_turn_interval: Duration::from_micros(100),
            rate_messages_per_sec: 1000,
            rate_burst_messages: 1000,
            rate_bytes_per_sec: 1 << 20,
            rate_burst_bytes: 1 << 20,
            rate_strikes: 100,
            shutdown_timeout: Duration::from_secs(5),
            logic_priority: LogicPriority::Realtime,
            static_files: StaticFiles::none(),
            cluster: None,
        }
    }
}

impl Config {
    /// The configuration of echo mode: the defaults, with `echo` on, every origin allowed, and
    /// message limits raised so that conformance suites' 16 MiB messages fit. The read buffer keeps its default
    /// (2 KiB): tungstenite allocates and zeroes it per connection, and echo mode is also what
    /// a generic WebSocket load generator drives. With a 64 KiB buffer an idle echo connection
    /// cost 64.8 KiB of RSS (2.76 KiB with 2 KiB), and Autobahn passed no faster (17.3 s with
    /// 2 KiB against 19 s with 64 KiB).
    pub fn echo() -> Self {
        Self {
            echo: true,
            max_message_bytes: 32 << 20,
            max_frame_bytes: 32 << 20,
            max_outbound_bytes: 64 << 20,
            // Autobahn sends an `Origin` of its own, and an echo server holds nothing a
            // player's cookies would unlock.
            allowed_origins: AllowedOrigins::any(),
            // Conformance suites send thousands of messages as fast as they can.
            rate_messages_per_sec: u32::MAX,
            rate_burst_messages: u32::MAX,
            rate_bytes_per_sec: u32::MAX,
            rate_burst_bytes: u32::MAX,
            ..Self::default()
        }
    }

    /// The tungstenite configuration these limits imply.
    pub fn websocket_config(&self) -> tungstenite::protocol::WebSocketConfig {
        // tungstenite writes only control frames (data frames are framed by the reactor), and
        // hands each to the connection's outbound queue at once, which applies
        // `write_coalesce_bytes` and `max_outbound_bytes` to everything.
        tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_bytes)
            .write_buffer_size(0)
            .max_write_buffer_size(self.max_outbound_bytes)
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_frame_bytes))
    }

    /// The bytes a version 2 session holds for its client: `session_replay_bytes`, capped at
    /// `max_outbound_bytes` less [`REPLAY_HEADROOM`] so that a resume can replay all of it into
    /// the new link's outbound queue at once (at least one byte: the newest frame is always
    /// held whatever its size).
    pub fn session_replay_bound(&self) -> usize {
        self.session_replay_bytes.min(self.max_outbound_bytes.saturating_sub(REPLAY_HEADROOM)).max(1)
    }

    /// The tick period.
    pub fn tick_period(&self) -> Duration {
        Duration::from_secs(1) / u32::from(self.tick_hz.max(1))
    }

    /// Lays the flags the user typed over `self`: the fields whose flags appear in `matches`
    /// (parsed by a command that flattens `Config`) get the typed values, the others keep
    /// theirs, defaults shown in the help included. So echo mode starts from
    /// [`Config::echo`] and any flag still overrides it.
    ///
    /// A `--max-message-bytes` typed without `--max-frame-bytes` lowers the frame limit to
    /// it as well: a frame cannot carry more than its message, and the frame limit's default
    /// would otherwise exceed a lowered message limit and fail [`Config::validate`]. Likewise
    /// a `--rate-messages-per-sec` (`--rate-bytes-per-sec`) typed without its burst sets the
    /// burst to one second's worth (for bytes, at least `max_message_bytes`), as the defaults
    /// are.
    pub fn update_from_typed_flags(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        let mut typed = matches.clone();
        let defaulted: Vec<String> = typed
            .ids()
            .filter(|id| typed.value_source(id.as_str()) == Some(ValueSource::DefaultValue))
            .map(|id| id.as_str().to_owned())
            .collect();
        for id in &defaulted {
            // Cannot fail: each id comes from these matches' own list.
            let _cleared = typed.try_clear_id(id);
        }
        self.update_from_arg_matches(&typed)?;
        // The ids are the field names.
        if typed.contains_id("max_message_bytes") && !typed.contains_id("max_frame_bytes") {
            self.max_frame_bytes = self.max_frame_bytes.min(self.max_message_bytes);
        }
        // A rate typed without its burst keeps the defaults' relation, one second's worth
        // (and for bytes at least the largest message): `--rate-messages-per-sec 10` means a
        // burst of 10, not the default rate's 1000.
        if typed.contains_id("rate_messages_per_sec") && !typed.contains_id("rate_burst_messages") {
            self.rate_burst_messages = self.rate_messages_per_sec;
        }
        if typed.contains_id("rate_bytes_per_sec") && !typed.contains_id("rate_burst_bytes") {
            let largest = u32::try_from(self.max_message_bytes).unwrap_or(u32::MAX);
            self.rate_burst_bytes = self.rate_bytes_per_sec.max(largest);
        }
        Ok(())
    }

    /// Checks each value and the values against each other. An error names the flags a user
    /// types to fix it (`--tick-hz must be at least 1`).
    pub fn validate(&self) -> Result<(), crate::Error> {
        let bad = |rule: String| Err(crate::Error::Config(rule));
        if let Some(problem) = self.cluster.as_ref().and_then(|c| c.problems().into_iter().next()) {
            return bad(problem);
        }
        let at_least_one = [
            (self.tick_hz == 0, "--tick-hz"),
            (self.max_connections == 0, "--max-connections"),
            (self.read_buffer_bytes == 0, "--read-buffer-bytes"),
            (self.session_replay_bytes == 0, "--session-replay-bytes"),
            (self.inbound_queue == 0, "--inbound-queue"),
            (self.job_workers == 0, "--job-workers"),
            (self.job_queue == 0, "--job-queue"),
            (self.outbound_queue == 0, "--outbound-queue"),
            (self.read_budget == 0, "--read-budget"),
            (self.broadcast_flush_slice == 0, "--broadcast-flush-slice"),
            (self.hold_after_bytes == 0, "--hold-after-bytes"),
            (self.max_held_events == 0, "--max-held-events"),
            (self.stalled_reader_timeout.is_zero(), "--stalled-reader-timeout-ms"),
            (self.rate_messages_per_sec == 0, "--rate-messages-per-sec"),
            (self.rate_burst_messages == 0, "--rate-burst-messages"),
            (self.rate_bytes_per_sec == 0, "--rate-bytes-per-sec"),
        ];
        if let Some((_, flag)) = at_least_one.iter().find(|(zero, _)| *zero) {
            return bad(format!("{flag} must be at least 1"));
        }
        if self.max_outbound_bytes <= self.write_coalesce_bytes {
            return bad("--max-outbound-bytes must exceed --write-coalesce-bytes".into());
        }
        if self.hold_after_bytes >= self.max_outbound_bytes {
            return bad("--hold-after-bytes must be below --max-outbound-bytes".into());
        }
        if self.max_frame_bytes > self.max_message_bytes {
            return bad("--max-frame-bytes must not exceed --max-message-bytes".into());
        }
        if (self.rate_burst_bytes as usize) < self.max_message_bytes {
            return bad("--rate-burst-bytes must be at least --max-message-bytes".into());
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return bad("--tls-cert needs --tls-key (give both or neither)".into()),
            (None, Some(_)) => return bad("--tls-key needs --tls-cert (give both or neither)".into()),
            _ => {}
        }
        if self.min_turn_interval > MAX_TURN_INTERVAL {
            let most = units::in_micros(MAX_TURN_INTERVAL);
            return bad(format!("--min-turn-interval-us must be at most {most}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
