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
    /// Messages per second one connection may send; over it, requests are answered
    /// RATE_LIMITED, and a connection that keeps on is closed with 1008.
    #[arg(long)]
    rate_messages_per_sec: Option<u32>,
    /// Seconds the shutdown sequence (on SIGINT or SIGTERM) may take before the process exits
    /// anyway with status 1.
    #[arg(long)]
    shutdown_timeout_secs: Option<u64>,
}

/// On the first SIGINT or SIGTERM, starts the shutdown sequence and arms a watchdog that ends
/// the process after `timeout`; a second signal ends it at once.
fn stop_on_signals(stopper: server::server::Stopper, timeout: Duration) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut first = true;
        for signal in signals.forever() {
            if !first {
                eprintln!("server: second signal {signal}, exiting now");
                std::process::exit(130);
            }
            first = false;
            eprintln!("server: signal {signal}, shutting down (at most {timeout:?})");
            stopper.stop();
            std::thread::spawn(move || {
                std::thread::sleep(timeout);
                eprintln!("server: shutdown took longer than {timeout:?}, exiting");
                std::process::exit(1);
            });
        }
    })?;
    Ok(())
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
    if let Some(n) = args.rate_messages_per_sec {
        config.rate_messages_per_sec = n;
    }
    if let Some(s) = args.shutdown_timeout_secs {
        config.shutdown_timeout = Duration::from_secs(s);
    }
    if let Some(s) = args.idle_timeout_secs {
        config.idle_timeout = Duration::from_secs(s);
    }
    let shutdown_timeout = config.shutdown_timeout;
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
    if let Err(e) = stop_on_signals(server.stopper(), shutdown_timeout) {
        eprintln!("server: cannot install signal handlers: {e}");
        return std::process::ExitCode::FAILURE;
    }
    match server.wait() {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
