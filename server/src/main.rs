//! The `server` binary: the arena example game, or echo mode for conformance suites.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use server::game::{
    Echo,
    arena::{Arena, ArenaConfig},
};
use server::{Config, Server};

/// The ticksock game server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7777")]
    listen: SocketAddr,
    /// Game ticks per second.
    #[arg(long, default_value_t = 30)]
    tick_hz: u16,
    /// Echo every data message back unchanged (for WebSocket conformance suites); accepts
    /// clients that offer no subprotocol, and raises the message limit to 32 MiB.
    #[arg(long)]
    echo: bool,
    /// Connections at most; more are answered 503.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Largest WebSocket message accepted, in bytes (over it: close 1009).
    #[arg(long)]
    max_message_bytes: Option<usize>,
    /// Seconds of quiet before the server pings a connection.
    #[arg(long)]
    ping_interval_secs: Option<u64>,
    /// Seconds of silence after which a connection is closed.
    #[arg(long)]
    idle_timeout_secs: Option<u64>,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut config = if args.echo { Config::echo() } else { Config::default() };
    config.listen = args.listen;
    config.tick_hz = args.tick_hz;
    if let Some(n) = args.max_connections {
        config.max_connections = n;
    }
    if let Some(n) = args.max_message_bytes {
        config.max_message_bytes = n;
        config.max_frame_bytes = config.max_frame_bytes.min(n);
    }
    if let Some(s) = args.ping_interval_secs {
        config.ping_interval = Duration::from_secs(s);
    }
    if let Some(s) = args.idle_timeout_secs {
        config.idle_timeout = Duration::from_secs(s);
    }
    let started = if args.echo {
        Server::start(config, Echo)
    } else {
        Server::start(config, Arena::new(ArenaConfig::default()))
    };
    let server = match started {
        Ok(server) => server,
        Err(e) => {
            eprintln!("server: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mode = if args.echo { "echo mode" } else { "arena game" };
    println!("listening on ws://{}/ ({mode}, {} Hz)", server.local_addr(), args.tick_hz);
    match server.wait() {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
