//! The `ticksock-arena` binary: the arena example game with its demo page, or echo mode for
//! conformance suites and load generators.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use ticksock_arena::{Arena, ArenaConfig};
use ticksock_server::config::LogicPriority;
use ticksock_server::{Config, Echo, Server};

/// The ticksock game server: the "arena" example game over WebSocket (subprotocols
/// ticksock.v1 and ticksock.v1.json), with the demo page at GET / and metrics at GET /metrics.
///
/// Every limit has a default suited to a game server on the open internet; each flag below
/// overrides one.
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
    /// clients that offer no subprotocol, raises the message limits to 32 MiB and lifts the
    /// rate limits.
    #[arg(long)]
    echo: bool,
    /// How the OS schedules the logic thread, so ticks start on time on a busy machine:
    /// realtime (SCHED_FIFO 1 around each tick; nice -10 between where permitted, else the
    /// starting nice value) falls back to raised (nice -10), then normal, where not permitted.
    #[arg(long, value_enum, default_value_t = LogicPriority::Realtime)]
    logic_priority: LogicPriority,
    #[command(flatten)]
    limits: Limits,
}

/// The limits, each `None` unless given.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Limits")]
struct Limits {
    /// Connections at most; one more is answered HTTP 503 before its handshake. [default: 10000]
    #[arg(long)]
    max_connections: Option<usize>,
    /// Largest WebSocket message accepted, in bytes; over it: close 1009. [default: 65536]
    #[arg(long)]
    max_message_bytes: Option<usize>,
    /// Largest WebSocket frame payload accepted, in bytes; over it: close 1009. [default: 65536]
    #[arg(long)]
    max_frame_bytes: Option<usize>,
    /// Bytes read per socket read; tungstenite allocates this per connection. [default: 2048]
    #[arg(long)]
    read_buffer_bytes: Option<usize>,
    /// Frames for one connection are written together up to this many bytes. [default: 65536]
    #[arg(long)]
    write_coalesce_bytes: Option<usize>,
    /// Bytes queued for a client that does not read, at most; over it: close 1008. [default: 1048576]
    #[arg(long)]
    max_outbound_bytes: Option<usize>,
    /// Largest HTTP upgrade request, in bytes; over it: HTTP 431. [default: 8192]
    #[arg(long)]
    max_handshake_bytes: Option<usize>,
    /// Milliseconds a client may take to complete its upgrade before it is closed. [default: 5000]
    #[arg(long)]
    handshake_timeout_ms: Option<u64>,
    /// Milliseconds of quiet before the server pings a connection. [default: 10000]
    #[arg(long)]
    ping_interval_ms: Option<u64>,
    /// Milliseconds of silence after which a connection is closed. [default: 30000]
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
    /// Milliseconds to wait for a peer's close frame after sending ours. [default: 2000]
    #[arg(long)]
    close_timeout_ms: Option<u64>,
    /// Messages passed to the logic thread and not handled yet, at most; past it, the reactor
    /// stops reading sockets. [default: 8192]
    #[arg(long)]
    inbound_queue: Option<usize>,
    /// Batches the logic-to-reactor channel holds. [default: 1024]
    #[arg(long)]
    outbound_queue: Option<usize>,
    /// Messages read from one connection per reactor turn. [default: 64]
    #[arg(long)]
    read_budget: Option<usize>,
    /// Connections sent a broadcast that the reactor writes per turn, after the turn's
    /// replies. [default: 256]
    #[arg(long)]
    broadcast_flush_slice: Option<usize>,
    /// Microseconds between two reactor turns at least; a short turn sleeps the rest, so a
    /// trickle of messages is handled in groups; adds up to twice this to a round trip
    /// (0: off; at most 10000). [default: 100]
    #[arg(long)]
    min_turn_interval_us: Option<u64>,
    /// Messages per second one connection may send; over it: RATE_LIMITED error replies.
    /// [default: 1000]
    #[arg(long)]
    rate_messages_per_sec: Option<u32>,
    /// Payload bytes per second one connection may send. [default: 1048576]
    #[arg(long)]
    rate_bytes_per_sec: Option<u32>,
    /// Messages refused for the rate in a row before the connection is closed with 1008.
    /// [default: 100]
    #[arg(long)]
    rate_strikes: Option<u32>,
    /// Seconds the shutdown sequence (on SIGINT or SIGTERM) may take before the process exits
    /// anyway with status 1. [default: 5]
    #[arg(long)]
    shutdown_timeout_secs: Option<u64>,
}

impl Limits {
    fn apply(&self, c: &mut Config) {
        fn set<T: Copy>(field: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        let ms = |v: Option<u64>| v.map(Duration::from_millis);
        set(&mut c.max_connections, self.max_connections);
        set(&mut c.max_message_bytes, self.max_message_bytes);
        set(&mut c.max_frame_bytes, self.max_frame_bytes);
        set(&mut c.read_buffer_bytes, self.read_buffer_bytes);
        set(&mut c.write_coalesce_bytes, self.write_coalesce_bytes);
        set(&mut c.max_outbound_bytes, self.max_outbound_bytes);
        set(&mut c.max_handshake_bytes, self.max_handshake_bytes);
        set(&mut c.handshake_timeout, ms(self.handshake_timeout_ms));
        set(&mut c.ping_interval, ms(self.ping_interval_ms));
        set(&mut c.idle_timeout, ms(self.idle_timeout_ms));
        set(&mut c.close_timeout, ms(self.close_timeout_ms));
        set(&mut c.inbound_queue, self.inbound_queue);
        set(&mut c.outbound_queue, self.outbound_queue);
        set(&mut c.read_budget, self.read_budget);
        set(&mut c.broadcast_flush_slice, self.broadcast_flush_slice);
        set(&mut c.min_turn_interval, self.min_turn_interval_us.map(Duration::from_micros));
        set(&mut c.rate_messages_per_sec, self.rate_messages_per_sec);
        set(&mut c.rate_bytes_per_sec, self.rate_bytes_per_sec);
        set(&mut c.rate_strikes, self.rate_strikes);
        set(&mut c.shutdown_timeout, self.shutdown_timeout_secs.map(Duration::from_secs));
        if self.max_message_bytes.is_some() && self.max_frame_bytes.is_none() {
            // A smaller message limit caps the frame limit too.
            c.max_frame_bytes = c.max_frame_bytes.min(c.max_message_bytes);
        }
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = if args.echo { Config::echo() } else { Config::default() };
    config.listen = args.listen;
    config.tick_hz = args.tick_hz;
    config.logic_priority = args.logic_priority;
    args.limits.apply(&mut config);
    let started = if args.echo {
        Server::start(config, Echo)
    } else {
        config.static_files = ticksock_arena::demo_page();
        Server::start(config, Arena::new(ArenaConfig::default()))
    };
    let server = match started {
        Ok(server) => server,
        Err(e) => {
            eprintln!("ticksock-arena: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = server.local_addr();
    let (hz, priority) = (args.tick_hz, server.logic_priority());
    if args.echo {
        println!("listening on ws://{addr}/ (echo mode, logic thread {priority:?})");
    } else {
        println!(
            "listening on ws://{addr}/ (arena game, {hz} Hz, logic thread {priority:?}); demo page at http://{addr}/"
        );
    }
    match server.run_until_signal() {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ticksock-arena: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_defaults_are_the_config_defaults() {
        // The help text states each default; keep them honest.
        let c = Config::default();
        let help = <Args as clap::CommandFactory>::command().render_long_help().to_string();
        for (flag, value) in [
            ("max-connections", c.max_connections.to_string()),
            ("max-message-bytes", c.max_message_bytes.to_string()),
            ("max-frame-bytes", c.max_frame_bytes.to_string()),
            ("read-buffer-bytes", c.read_buffer_bytes.to_string()),
            ("write-coalesce-bytes", c.write_coalesce_bytes.to_string()),
            ("max-outbound-bytes", c.max_outbound_bytes.to_string()),
            ("max-handshake-bytes", c.max_handshake_bytes.to_string()),
            ("handshake-timeout-ms", c.handshake_timeout.as_millis().to_string()),
            ("ping-interval-ms", c.ping_interval.as_millis().to_string()),
            ("idle-timeout-ms", c.idle_timeout.as_millis().to_string()),
            ("close-timeout-ms", c.close_timeout.as_millis().to_string()),
            ("inbound-queue", c.inbound_queue.to_string()),
            ("outbound-queue", c.outbound_queue.to_string()),
            ("read-budget", c.read_budget.to_string()),
            ("broadcast-flush-slice", c.broadcast_flush_slice.to_string()),
            ("min-turn-interval-us", c.min_turn_interval.as_micros().to_string()),
            ("rate-messages-per-sec", c.rate_messages_per_sec.to_string()),
            ("rate-bytes-per-sec", c.rate_bytes_per_sec.to_string()),
            ("rate-strikes", c.rate_strikes.to_string()),
            ("shutdown-timeout-secs", c.shutdown_timeout.as_secs().to_string()),
            ("logic-priority", format!("{:?}", c.logic_priority).to_lowercase()),
        ] {
            let at = help.find(&format!("--{flag}")).unwrap_or_else(|| panic!("--{flag} is documented"));
            let rest = &help[at..];
            let next = rest[2..].find("\n  --").map_or(rest.len(), |n| n + 2);
            assert!(rest[..next].contains(&format!("[default: {value}]")), "--{flag}: {}", &rest[..next]);
        }
    }

    #[test]
    fn flags_override_the_config() {
        let args =
            Args::parse_from(["ticksock-arena", "--max-connections", "5", "--idle-timeout-ms", "1500"]);
        let mut c = Config::default();
        args.limits.apply(&mut c);
        assert_eq!(c.max_connections, 5);
        assert_eq!(c.idle_timeout, Duration::from_millis(1500));
        assert_eq!(c.max_message_bytes, Config::default().max_message_bytes);
    }
}
