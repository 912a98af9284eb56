//! The `ticksock-arena` binary: the arena example game with its demo page, or echo mode for
//! conformance suites and load generators.

use clap::{CommandFactory, FromArgMatches, Parser};
use ticksock_arena::accounts::Accounts;
use ticksock_arena::replication::ReplicationSettings;
use ticksock_arena::{Arena, ArenaConfig};
use ticksock_server::cluster::ClusterArgs;
use ticksock_server::{Config, Echo, Server};

/// The ticksock game server: the "arena" example game over WebSocket (subprotocols
/// ticksock.v2 and ticksock.v1, each also as JSON), with the demo page at GET / and metrics at
/// GET /metrics.
///
/// Every limit has a default suited to a game server on the open internet; each flag under
/// "Server" overrides one.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Echo every data message back unchanged (for WebSocket conformance suites); accepts
    /// clients that offer no subprotocol, raises the message limits to 32 MiB and lifts the
    /// rate limits (each flag given still overrides them).
    #[arg(long)]
    echo: bool,
    /// The arena's SQLite database (accounts, stats, the leaderboard), created with its
    /// migrations if missing. The key that signs session tokens is kept next to it, in
    /// `<PATH>.key`. Not used in echo mode.
    #[arg(long, value_name = "PATH", default_value = "ticksock-arena.db")]
    db: std::path::PathBuf,
    /// Connections per arena at most (its state grows with its players; with --replication
    /// each player is sent only its neighbourhood, so arenas can be far larger).
    #[arg(long, default_value_t = 64)]
    room_capacity: u32,
    /// Send each arena's state every N ticks (1: every tick); the simulation still runs every
    /// tick.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    state_every: u32,
    /// Send state by replication (PROTOCOL.md 8.9 and 14): each player its neighbourhood, as
    /// deltas from the tick it acknowledged, instead of every arena's full `state` push.
    #[arg(long)]
    replication: bool,
    /// With --replication: the interest grid's cell, in arena units.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i32).range(1..))]
    aoi_cell: i32,
    /// With --replication: how many cells around its own a player sees.
    #[arg(long, default_value_t = 1)]
    aoi_radius: u32,
    /// With --replication: keep each update's digest for the route `replica_digest` (a
    /// debug check of clients).
    #[arg(long)]
    replica_digests: bool,
    #[command(flatten)]
    config: Config,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// The server's configuration the command line asks for: echo mode's (`config.echo`) or the
/// defaults, with the flags given on top, checked.
fn read_command_line(matches: &clap::ArgMatches) -> Result<Config, clap::Error> {
    let args = Args::from_arg_matches(matches)?;
    let mut config = if args.echo { Config::echo() } else { args.config };
    config.update_from_typed_flags(matches)?;
    config.cluster = args.cluster.resolve();
    // Reported as a usage error, like a malformed flag: it names the flags to fix.
    config.validate().map_err(|e| Args::command().error(clap::error::ErrorKind::ValueValidation, e))?;
    Ok(config)
}

/// The game's settings the command line asks for.
fn game_config(matches: &clap::ArgMatches) -> ArenaConfig {
    // Clap gives each flag its default, so they are always there.
    let get = |name| matches.get_one::<u32>(name).copied().expect("a flag with a default");
    let replication = matches.get_flag("replication").then(|| ReplicationSettings {
        cell: matches.get_one::<i32>("aoi_cell").copied().expect("a flag with a default"),
        radius: get("aoi_radius"),
        digests: matches.get_flag("replica_digests"),
    });
    ArenaConfig {
        capacity: get("room_capacity"),
        state_every: get("state_every"),
        replication,
        ..ArenaConfig::default()
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let matches = Args::command().get_matches();
    let mut config = read_command_line(&matches).unwrap_or_else(|e| e.exit());
    let (echo, hz, cluster) = (config.echo, config.tick_hz, config.cluster.clone());
    // With a certificate every connection speaks TLS: the URLs to print say so.
    let (ws, http) = if config.tls_cert.is_some() { ("wss", "https") } else { ("ws", "http") };
    let started = if echo {
        Server::start(config, Echo)
    } else {
        config.static_files = ticksock_arena::demo_page();
        // Clap gives the flag its default, so it is always there.
        let db = matches.get_one::<std::path::PathBuf>("db").expect("--db has a default");
        let accounts = match Accounts::open(db) {
            Ok(accounts) => accounts,
            Err(e) => {
                eprintln!("ticksock-arena: cannot open the database {}: {e}", db.display());
                return std::process::ExitCode::FAILURE;
            }
        };
        let game = game_config(&matches);
        Server::start(config, Arena::new(ArenaConfig { accounts: Some(accounts), ..game }))
    };
    let server = match started {
        Ok(server) => server,
        Err(e) => {
            eprintln!("ticksock-arena: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = server.local_addr();
    let priority = server.logic_priority();
    if echo {
        println!("listening on {ws}://{addr}/ (echo mode, logic thread {priority:?})");
    } else {
        println!(
            "listening on {ws}://{addr}/ (arena game, {hz} Hz, logic thread {priority:?}); demo page at {http}://{addr}/"
        );
    }
    if let Some(cluster) = &cluster {
        let (name, url) = (cluster.node_name_at(addr), cluster.public_url_at(addr));
        println!("in the cluster at {} as node `{name}`, reached at {url}", cluster.redis_url);
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
    use std::time::Duration;

    use super::*;

    fn read(flags: &[&str]) -> Result<Config, clap::Error> {
        let line = std::iter::once("ticksock-arena").chain(flags.iter().copied());
        read_command_line(&Args::command().try_get_matches_from(line)?)
    }

    /// `Config`'s flags, from its declaration.
    fn config_flags() -> Vec<clap::Arg> {
        <Config as clap::Args>::augment_args(clap::Command::new("config")).get_arguments().cloned().collect()
    }

    #[test]
    fn every_server_flag_s_help_shows_the_config_default() {
        let help = Args::command().render_long_help().to_string();
        let flags = config_flags();
        assert!(flags.len() >= 20, "{} flags", flags.len());
        for arg in flags {
            let flag = format!("--{}", arg.get_long().expect("a long flag"));
            if ["--tls-cert", "--tls-key"].contains(&flag.as_str()) {
                // Their default is none (plain TCP): no value to show, only the flag.
                assert!(
                    arg.get_default_values().is_empty() && help.contains(&format!("  {flag} ")),
                    "{flag}"
                );
                continue;
            }
            let [default] = arg.get_default_values() else { panic!("{flag} has one default") };
            let at = help.find(&format!("  {flag} ")).unwrap_or_else(|| panic!("{flag} is in the help"));
            let rest = &help[at..];
            let next = rest[2..].find("\n  -").map_or(rest.len(), |n| n + 2);
            let shown = format!("[default: {}]", default.to_string_lossy());
            assert!(rest[..next].contains(&shown), "{flag} shows {shown}: {}", &rest[..next]);
        }
        // And those defaults are Config::default(): read back, they make the same config.
        let config = read(&[]).expect("no flags");
        assert_eq!(format!("{config:?}"), format!("{:?}", Config::default()));
    }

    #[test]
    fn flags_override_the_config() {
        let c = read(&["--max-connections", "5", "--idle-timeout-ms", "1500", "--listen", "9000"])
            .expect("flags");
        assert_eq!(c.max_connections, 5);
        assert_eq!(c.idle_timeout, Duration::from_millis(1500));
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.max_message_bytes, Config::default().max_message_bytes);
    }

    #[test]
    fn echo_mode_raises_the_limits_the_user_did_not_set() {
        let c = read(&["--echo", "--rate-messages-per-sec", "1000000"]).expect("flags");
        assert!(c.echo);
        assert_eq!(c.rate_messages_per_sec, 1_000_000);
        assert_eq!(c.rate_bytes_per_sec, Config::echo().rate_bytes_per_sec);
        assert_eq!(c.max_message_bytes, Config::echo().max_message_bytes);
        // A message limit given alone caps the frame limit, in either mode.
        let c = read(&["--echo", "--max-message-bytes", "1024"]).expect("flags");
        assert_eq!((c.max_message_bytes, c.max_frame_bytes), (1024, 1024));
        let c = read(&["--max-message-bytes", "1024"]).expect("flags");
        assert_eq!((c.max_message_bytes, c.max_frame_bytes), (1024, 1024));
    }

    #[test]
    fn an_inconsistent_command_line_is_a_usage_error_naming_the_flags() {
        let e = read(&["--tick-hz", "0"]).expect_err("zero");
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(e.to_string().contains("--tick-hz must be at least 1"), "{e}");
        let e = read(&["--max-outbound-bytes", "100", "--write-coalesce-bytes", "100"]).expect_err("equal");
        assert!(e.to_string().contains("--max-outbound-bytes must exceed --write-coalesce-bytes"), "{e}");
        let e = read(&["--listen", "nowhere"]).expect_err("no port");
        assert!(e.to_string().contains("--listen"), "{e}");
    }
}
