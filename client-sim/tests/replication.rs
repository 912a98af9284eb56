//! `--replication` against an arena in this process that sends state by replication: every
//! bot mirrors its view, acknowledges it, loses its link now and then, rejoins, and compares
//! its view with the server's digest; a run where nothing could be compared fails.

use std::net::SocketAddr;
use std::time::Duration;

use client_sim::Options;
use ticksock_arena::replication::ReplicationSettings;
use ticksock_arena::{Arena, ArenaConfig};
use ticksock_server::{Config, RunningServer, Server};

/// An arena whose rooms hold 200 players, replicating with digests when `digests`.
fn start_arena(digests: bool) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        close_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let replication = ReplicationSettings { digests, ..ReplicationSettings::default() };
    let game =
        Arena::new(ArenaConfig { capacity: 200, replication: Some(replication), ..ArenaConfig::default() });
    Server::start(config, game).expect("server starts")
}

/// `bots` bots in one arena, moving 10 times a second, checking digests twice a second.
fn replicating(addr: SocketAddr, bots: u32, duration: f64) -> Options {
    Options {
        bots,
        rate: 10.0,
        duration,
        ramp: 100.0,
        room_size: 200,
        replication: true,
        digest_every: 0.5,
        quiet: true,
        ..Options::new(&format!("ws://{addr}/"))
    }
}

#[test]
fn every_view_equals_the_servers_through_moves_late_joins_and_lost_links() {
    let server = start_arena(true);
    // Bots start over 0.8 s (late joiners into a moving arena) and lose their link every
    // 1.5 s on average: each rejoin is a new full snapshot, and others see them leave and
    // enter.
    let opts = Options { link_loss_every: 1.5, ..replicating(server.local_addr(), 80, 4.0) };
    let report = client_sim::run(&opts).expect("a report");
    let r = report.replica.clone().expect("replication figures");
    assert_eq!(report.failed_checks(), Vec::<(&str, u64)>::new(), "{}", report.table());
    assert_eq!(report.errors, 0, "{}", report.table());
    assert!(r.checks >= 400, "80 bots × 2 a second × 4 s, less time offline: {}", report.table());
    assert!(report.counters.link_losses >= 80, "{}", report.table());
    assert!(r.after_join > 80, "rejoins' snapshots are checked too: {}", report.table());
    assert!(r.full_snapshots >= r.after_join, "{}", report.table());
    assert!(r.cell_crossings > 0, "5 units a tick cross 100-unit cells: {}", report.table());
    assert!(r.acks_accepted > 0 && r.updates > r.full_snapshots * 10, "{}", report.table());
    assert!(report.steady.state_bytes_per_bot_sec > 0.0);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_server_without_digests_fails_the_run_as_unchecked() {
    let server = start_arena(false);
    let report = client_sim::run(&replicating(server.local_addr(), 5, 1.0)).expect("a report");
    let r = report.replica.clone().expect("replication figures");
    assert_eq!((r.checks, r.mismatches), (0, 0));
    assert!(r.absent > 0 && r.updates > 0, "{}", report.table());
    let failed = report.failed_checks();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].0.contains("no digest compared"), "{failed:?}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn replication_options_are_checked() {
    let problem = |args: &[&str]| {
        use clap::Parser;
        let opts = Options::parse_from(["client-sim"].iter().chain(args));
        opts.problem().unwrap_or_default()
    };
    assert_eq!(problem(&["--replication", "--link-loss-every", "2"]), "");
    assert!(problem(&["--replication", "--faults"]).contains("without --faults"));
    assert!(problem(&["--scenario", "echo", "--link-loss-every", "1"]).contains("arena scenario"));
    assert!(problem(&["--replication", "--digest-every", "0"]).contains("above 0"));
    assert!(problem(&["--link-loss-every=-1"]).contains("at least 0"));
    assert!(problem(&["--replication", "--mirror-share", "2"]).contains("from 0 to 1"));
}
