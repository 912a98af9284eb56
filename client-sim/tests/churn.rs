//! Churn against a server in this process: after thousands of connect/close cycles, some clean
//! and some abrupt, the server holds no connection, no arena holds a player, and this process
//! (server and bots) has exactly the descriptors it had before.
//!
//! The tests here count this process's descriptors, so they take turns (`ONE_AT_A_TIME`), and
//! nothing else lives in this test binary.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use client_sim::{Options, Scenario, probe};
use ticksock_arena::proto::{ROUTE_ROOMS, RoomInfo};
use ticksock_client::{BlockingClient, Config as ClientConfig};
use ticksock_server::RunningServer;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// Waits until the server's open-connection gauge is 0 and this process has at most
/// `baseline` descriptors; says what is still there after `within`.
fn back_to_baseline(server: &RunningServer, baseline: u64, within: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let open = server.metrics().reactor().open;
        let fds = probe::open_fds(None).expect("/proc/self/fd");
        if open == 0 && fds <= baseline {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= within {
            return Err(format!(
                "after {within:?}: the server holds {open} connections, this process {fds} descriptors \
                 (baseline {baseline})"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn churn_leaves_no_connection_no_player_and_no_descriptor_behind() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = common::start_arena();
    let baseline = probe::open_fds(None).expect("/proc/self/fd");
    let rss_before = probe::sample(None).expect("/proc/self/status").rss_kib;

    let opts = Options {
        scenario: Scenario::Churn,
        bots: 50,
        duration: 2.0,
        ramp: 500.0,
        room_size: 10,
        drop_fraction: 0.3,
        quiet: true,
        ..Options::new(&url(server.local_addr()))
    };
    let report = client_sim::run(&opts).expect("runs");
    println!("{}", report.table());
    let c = &report.counters;
    assert_eq!(report.errors, 0, "{:?} {:?}", report.error_codes, report.connect_errors);
    assert_eq!(c.cycle_failures, 0);
    assert_eq!(c.clean_closes + c.abrupt_drops, c.cycles);
    // Unoptimized, both ends in one process: still a few milliseconds a cycle.
    assert!(c.cycles >= 500, "only {} cycles", c.cycles);
    assert!(c.clean_closes >= 100 && c.abrupt_drops >= 50, "{c:?}");
    // A clean cycle makes three calls (login, join, leave), a dropped one two.
    assert!(c.replied >= 3 * c.clean_closes + 2 * c.abrupt_drops, "{c:?}");
    let churn = report.churn.expect("churn figures");
    assert!(churn.cycles_per_sec > 0.0 && churn.cycle_us.count == c.cycles);
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("valid JSON");
    assert_eq!(json["counters"]["cycles"], c.cycles);
    assert_eq!(json["churn"]["cycle_us"]["count"], c.cycles);

    // The server let go of every connection, and this process of every socket (both ends).
    let took = back_to_baseline(&server, baseline, Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
    let rss_after = probe::sample(None).expect("/proc/self/status").rss_kib;
    println!(
        "back to {baseline} descriptors {took:?} after the run; RSS {rss_before} KiB -> {rss_after} KiB"
    );

    // The logic side too: no arena counts a member (players who dropped are away, not in).
    let mut looker =
        BlockingClient::connect(&url(server.local_addr()), ClientConfig::default(), Duration::from_secs(5))
            .expect("connects");
    let rooms: Vec<RoomInfo> = looker.call(ROUTE_ROOMS, &()).expect("rooms");
    let churn_rooms: Vec<&RoomInfo> = rooms.iter().filter(|r| r.name.starts_with("churn-")).collect();
    assert_eq!(churn_rooms.len(), 5, "{rooms:?}");
    assert!(churn_rooms.iter().all(|r| r.players == 0), "{rooms:?}");
    looker.close();
    back_to_baseline(&server, baseline, Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));

    // The check catches a connection left behind: one held open (it never finishes its
    // upgrade) keeps the gauge at 1 and costs a descriptor at each end.
    let held = std::net::TcpStream::connect(server.local_addr()).expect("connects");
    let caught = back_to_baseline(&server, baseline, Duration::from_millis(500))
        .expect_err("a held connection went unnoticed");
    println!("with one connection held: {caught}");
    drop(held);
    back_to_baseline(&server, baseline, Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));

    server.shutdown().expect("clean shutdown");
}

#[test]
fn the_binary_checks_the_server_process_and_reports_churn_in_json() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The server is in this process, so `--server-pid` is this process's id.
    let server = common::start_arena();
    let json = std::env::temp_dir().join(format!("client-sim-churn-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_client-sim"))
        .args(["--url", &url(server.local_addr()), "--scenario", "churn", "--bots", "10"])
        .args(["--duration", "1", "--churn-pause", "0.01", "--settle", "1", "--quiet"])
        .args(["--server-pid", &std::process::id().to_string()])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("runs");
    let table = String::from_utf8_lossy(&out.stdout);
    println!("{table}");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("cycles completed (clean / dropped)"), "{table}");
    let back = table.lines().find(|l| l.starts_with("server fds back at baseline"));
    assert!(back.is_some_and(|l| l.contains(" yes, ")), "{table}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("valid JSON");
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["scenario"], "churn");
    assert_eq!(report["errors"], 0);
    assert!(report["counters"]["cycles"].as_u64().expect("a number") > 50, "{report}");
    // A 10 ms pause between cycles caps each bot at 100 cycles/s.
    assert!(report["churn"]["cycles_per_sec"].as_f64().expect("a number") < 1000.0, "{report}");
    let s = &report["server"];
    assert_eq!(s["pid"], std::process::id());
    assert_eq!(s["fds_back"], true, "{s}");
    assert!(s["fds_settled"].as_u64() <= s["fds_before"].as_u64(), "{s}");
    assert!(s["rss_kib_before"].as_u64().expect("a number") > 0, "{s}");
    // The gauge, read over HTTP: the reading connection itself is the one open.
    assert_eq!(s["open_before"], 1, "{s}");
    assert_eq!(s["open_settled"], 1, "{s}");
    server.shutdown().expect("clean shutdown");
}
