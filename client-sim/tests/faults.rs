//! The faults scenario against a server in this process whose heartbeat is fast (ping after
//! 100 ms of quiet, dead after 300 ms): connections killed by a reset or left half-open, every
//! call made on a live connection answered, every half-open one closed by the server's
//! heartbeat, and none left behind.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use client_sim::{Options, Scenario};
use ticksock_arena::Arena;
use ticksock_server::{Config, RunningServer, Server};

fn start_arena(ping_interval: Duration, idle_timeout: Duration) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ping_interval,
        idle_timeout,
        close_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    Server::start(config, Arena::new(Default::default())).expect("server starts")
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

fn faults(addr: SocketAddr, bots: u32, lifetime: f64, rst_fraction: f64, hold: f64) -> Options {
    Options {
        scenario: Scenario::Faults,
        bots,
        rate: 20.0,
        duration: 3.0,
        ramp: 400.0,
        room_size: 10,
        fault_lifetime: lifetime,
        rst_fraction,
        half_open_hold: hold,
        name_prefix: "fault".into(),
        quiet: true,
        ..Options::new(&url(addr))
    }
}

#[test]
fn resets_and_half_open_kills_lose_no_call_and_the_heartbeat_closes_every_half_open_one() {
    let server = start_arena(Duration::from_millis(100), Duration::from_millis(300));
    // Lives of 0.15 to 0.45 s; a half-open connection is held 0.6 s, twice the idle timeout.
    let opts = faults(server.local_addr(), 40, 0.3, 0.5, 0.6);
    let report = client_sim::run(&opts).expect("runs");
    println!("{}", report.table());
    let c = &report.counters;
    assert_eq!(report.errors, 0, "{:?} {:?} {c:?}", report.error_codes, report.connect_errors);
    assert!(c.kills_rst >= 40 && c.kills_half_open >= 40, "{c:?}");
    // Every call made on a live connection was answered: none timed out or was lost to a
    // drop, and all that were sent are answered or, at the very end, in flight.
    assert_eq!((c.timed_out, c.disconnected_calls, c.unexpected_drops), (0, 0, 0), "{c:?}");
    assert_eq!(c.replied + report.in_flight_at_end, report.sent, "{c:?}");
    assert!(c.calls > 1000, "moves were made: {c:?}");
    // Every half-open connection whose hold ended was found closed; the others were still
    // held when the run ended (at most one per bot).
    assert_eq!(c.half_open_missed, 0);
    assert!(c.half_open_found + 40 >= c.kills_half_open && c.half_open_found > 0, "{c:?}");
    // Each kill starts a new life: a reconnect, unless the run ended first.
    assert!(c.reconnects + 40 >= c.kills_rst + c.kills_half_open, "{c:?}");
    // The server closed them by its heartbeat (a reset is a read error, not a timeout).
    let timeouts = server.metrics().reactor().timeouts;
    assert!(timeouts >= c.half_open_found, "{timeouts} timeout closes, {c:?}");
    let f = report.faults.expect("faults figures");
    assert!(f.kills_per_sec > 0.0 && f.rst_fraction == 0.5);
    let table = report.table();
    assert!(table.contains("kills: reset / half-open"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("valid JSON");
    assert_eq!(json["counters"]["kills_rst"], c.kills_rst);
    assert_eq!(json["faults"]["half_open_hold_secs"], 0.6);

    // Nothing is left behind: the server lets go of every connection, the last half-open ones
    // (dropped when the run ended) included.
    let start = Instant::now();
    while server.metrics().reactor().open > 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", server.metrics().reactor());
        std::thread::sleep(Duration::from_millis(20));
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_half_open_connection_the_server_does_not_close_in_time_is_an_error() {
    // The server waits 5 s for a silent peer; the bots hold theirs 0.1 s (and a second's
    // grace): every half-open kill whose hold ends in the run is missed.
    let server = start_arena(Duration::from_secs(2), Duration::from_secs(5));
    let opts = Options { duration: 2.0, ..faults(server.local_addr(), 5, 0.2, 0.0, 0.1) };
    let report = client_sim::run(&opts).expect("runs");
    println!("{}", report.table());
    let c = &report.counters;
    assert_eq!(c.kills_rst, 0, "{c:?}");
    assert!(c.half_open_missed >= 5, "{c:?}");
    assert_eq!(c.half_open_found, 0, "{c:?}");
    assert_eq!(report.errors, c.half_open_missed, "the misses are the only errors: {c:?}");
    server.shutdown().expect("clean shutdown");
}
