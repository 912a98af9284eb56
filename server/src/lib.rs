//! ticksock-server: a game server framework. One reactor thread owns every socket, one logic
//! thread runs the game at a fixed tick, and bounded channels join them. Clients call routes
//! with a `u32` callback id and get exactly one answer carrying it.
//!
//! ```text
//!  clients ──TCP/WebSocket──▶ net (reactor thread) ──bridge: ToLogic──▶ logic (logic thread)
//!          ◀────────────────  mio, slab, sockets   ◀──bridge: Batch───  Game via api, tick
//! ```
//!
//! # What a game uses (public)
//! - [`Game`], [`Router`], [`Ctx`], [`Caller`], [`AppError`] ([`api`]): routes and hooks.
//! - [`Hub`], [`Rooms`], [`UserPolicy`]: users, groups, sessions and rooms, through [`Ctx`].
//! - [`api::replica`]: state replication: entities and fields the engine sends each client as
//!   deltas of what it may see, from the tick it acknowledged.
//! - [`Server`], [`RunningServer`], [`Stopper`]: starting, running until a signal, stopping.
//! - [`Config`] ([`config`]): every limit and timing, with its default and the reason for it.
//! - [`StaticFiles`]: the files a game serves over plain HTTP beside its WebSocket, if any.
//! - [`Echo`]: the game of echo mode, for WebSocket conformance suites.
//! - [`metrics`]: the counters a running server publishes (also at `GET /metrics`).
//! - [`cluster`]: [`ClusterConfig`](cluster::ClusterConfig) and its flags
//!   ([`ClusterArgs`](cluster::ClusterArgs)) to join a cluster; what the registry knows of the
//!   other nodes ([`Registry`](cluster::Registry), through [`Hub::cluster`]).
//! - [`testing`]: [`TestServer`](testing::TestServer), a game driven in memory with a simulated
//!   clock, for the game's own tests: connect clients, call routes, advance ticks, take pushes.
//!
//! # How the crate is laid out (internal)
//! - `net/`: the **reactor thread**. The mio loop (`Reactor`) and, one file a job,
//!   accepting, reading, applying the logic thread's batches, writing, the uplink to the logic
//!   thread, and the connection lifecycle (heartbeats, timeouts, shutdown stages); below it
//!   the pure pieces it decides with: the HTTP upgrade (`handshake`), what a message means
//!   (`inbound`), the outbound queue, heartbeat and rate arithmetic, the lingering close
//!   (`linger`), and version 2 sessions (`session`: numbering, replay buffer, resume
//!   decisions), which `link` carries out on the connections.
//! - `logic/`: the **logic thread**. `Logic`, the sans-I/O core that turns messages and ticks
//!   into commands (`now` passed in), the thread that drives it, the tick schedule and the
//!   thread's scheduling priority.
//! - `bridge/`: **what crosses between them**: the messages, the batch with its one payload
//!   buffer, the route table, the doorbell that wakes the logic thread and the waker that
//!   wakes the reactor.
//! - `api/`: the **game-facing API**, which runs on the logic thread.
//! - `testing/`: the **test harness**, which drives `logic` in memory in place of the logic
//!   thread and imitates what the reactor does that a game can see.
//! - [`jobs`]: **the worker pool**: slow work (a database write, a call to another service)
//!   off the logic thread, its result back as an event between ticks.
//! - [`cluster`]: **the other nodes**, in a cluster over Redis (`docs/CLUSTER.md`): the
//!   logic thread's copy of the registry and its link to the bridge, the bridge's writer and
//!   reader threads (the only code that talks to Redis), and the pure parts both use (entries,
//!   exactly-once numbering, tickets). A single node starts none of it.
//!
//! # Rules the layout keeps
//! - `net` never imports `api` or `logic`; `logic` never imports `net`; `bridge` imports none
//!   of the three; `api` imports only `bridge` and `cluster`'s logic-side link; `cluster`
//!   imports neither `net` nor `logic`, and of `api` only `AppError` (its threads reach the
//!   logic thread through a channel and `bridge`'s doorbell). So the reactor cannot call game code, and the
//!   game cannot touch a socket. `testing` stands in for the logic thread: it drives `logic`
//!   through `bridge`'s messages and takes from `net` only the close code of a shutdown.
//! - Frame bytes are written and read by [`ticksock_protocol::wire`] alone; the reactor only
//!   adds the WebSocket header around a payload the logic thread encoded.
//! - Only the game-facing API above is public. Benches and fuzz targets reach the internals
//!   through [`__internals`], which is hidden, unstable and not for games.

pub mod api;
mod bridge;
pub mod cluster;
pub mod config;
mod conn_id;
mod echo;
pub mod jobs;
mod logic;
pub mod metrics;
mod net;
mod server;
mod static_files;
pub mod testing;

pub use api::{
    AppError, Authenticator, BindError, CLOSE_REPLACED, Caller, Ctx, Game, Guard, Hub, HubMut, Identity,
    Rooms, Router, UserPolicy,
};
pub use config::Config;
pub use conn_id::ConnId;
pub use echo::Echo;
pub use jobs::JobFor;
pub use logic::LogicStats;
pub use server::{RunningServer, Server, Stopper};
pub use static_files::{MAX_STATIC_DIR_BYTES, StaticFile, StaticFiles};

/// What can go wrong starting or running a server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is inconsistent; the message says which values. Fix the values.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Joining the cluster failed: Redis is unreachable or refused what the node asked. The
    /// message says which; check `--cluster` and that Redis runs.
    #[error("cannot join the cluster: {0}")]
    Cluster(String),
    /// The TLS certificate or key (`--tls-cert`, `--tls-key`) did not load; the message names
    /// the file and why. Fix the file or the flag.
    #[error("cannot load the TLS certificate: {0}")]
    Tls(String),
    /// Binding the listening socket failed (address in use, no permission). Pick another
    /// address or free this one.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The event loop failed (the OS refused a poll or a thread). The server has stopped.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A server thread panicked: a bug. The server has stopped.
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

/// The internals that benches and fuzz targets drive directly. Hidden, unstable, and not part
/// of the API: a game never needs them.
#[doc(hidden)]
pub mod __internals {
    pub use crate::bridge::{
        Batch, Command, DataOpcode, Frame, Payload, RouteId, RouteTable, StateTopic, TO_LOGIC_BATCH, ToLogic,
    };
    pub use crate::logic::Logic;
    pub use crate::logic::tick::{Tick, TickSchedule};
    pub use crate::net::data_frames::{DataFrames, Parsed};
    pub use crate::net::handshake;
    pub use crate::net::hold::{Class, HeldOut, Hold, Released, STALLED_READER_REASON};
    pub use crate::net::inbound::close;
    pub use crate::net::inbound::{self, ReadPathOutcome, run_read_path};
    pub use crate::net::outbound::{OutboundQueue, QueueFull};
}
