//! The ticksock game server: one reactor thread owns every socket, one logic thread runs the
//! game at a fixed tick, and crossbeam channels join them.
//!
//! ```text
//!  clients ──TCP/WebSocket──▶ reactor thread ──ToLogic──▶ logic thread (Game + Router)
//!          ◀─────────────────  (mio, slab)   ◀──Batch + Waker──  (fixed tick)
//! ```
//!
//! # Modules
//! - [`server`]: starting and stopping a server ([`Server::start`]).
//! - [`config`]: every limit and timing, with defaults ([`Config`]).
//! - [`app`]: the API a game implements: [`Game`], [`Router`], [`Ctx`].
//! - [`hub`]: users, groups and per-connection session data, reached through [`Ctx`].
//! - [`rooms`]: rooms with their own state and tick, disposed of after a grace time empty.
//! - [`game`]: the built-in example games: the arena, and echo for conformance suites.
//! - [`logic`]: the logic core (no I/O, `now` passed in) and the thread that drives it.
//! - `reactor`: the mio event loop: HTTP upgrade, WebSocket I/O, heartbeats, backpressure.
//! - [`outbound`]: a connection's outbound queue: data frames framed in place, one write.
//! - [`assets`]: the demo page and browser client, built in, served at `GET /`.
//! - [`handshake`]: the HTTP upgrade as a pure decision on the bytes received.
//! - [`inbound`]: what to do with each client message, and the whole read path over memory.
//! - [`tick`], [`heartbeat`], [`rate`]: the clock rules, as pure arithmetic on instants.
//! - [`metrics`]: counters and histograms, served as Prometheus text at `GET /metrics`.
//! - [`bridge`]: what crosses the channels.
//! - [`conn_id`]: connection ids with a generation, so late replies never reach a newcomer.

pub mod app;
pub mod assets;
pub mod bridge;
pub mod config;
pub mod conn_id;
mod encode;
pub mod game;
pub mod handshake;
pub mod heartbeat;
pub mod hub;
pub mod inbound;
pub mod logic;
pub mod metrics;
pub mod outbound;
pub mod rate;
mod reactor;
pub mod rooms;
pub mod server;
pub mod tick;
mod wake;

pub use app::{AppError, Caller, Ctx, Game, Router};
pub use config::Config;
pub use conn_id::ConnId;
pub use server::{RunningServer, Server};

/// What can go wrong starting or running a server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is inconsistent; the message says which values. Fix the values.
    #[error("invalid configuration: {0}")]
    Config(String),
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
