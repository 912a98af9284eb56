//! The simulator against a real server in this process, briefly.

use std::io::Read as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use client_sim::{Options, Scenario};
use ticksock_arena::Arena;
use ticksock_server::{Config, RunningServer, Server};

fn start_arena() -> RunningServer {
    start_with(Config::default())
}

fn start_with(config: Config) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        close_timeout: Duration::from_millis(300),
        ..config
    };
    Server::start(config, Arena::new(Default::default())).expect("server starts")
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

#[test]
fn two_hundred_arena_bots_play_for_three_seconds_without_an_error() {
    let server = start_arena();
    let opts = Options {
        bots: 200,
        rate: 5.0,
        duration: 3.0,
        ramp: 400.0,
        // Chat often enough that some chat pushes are seen in 3 s.
        chat_interval: 1.0,
        quiet: true,
        ..Options::new(&url(server.local_addr()))
    };
    let report = client_sim::run(&opts).expect("runs");
    let c = &report.counters;
    println!("{}", report.table());
    assert_eq!(report.errors, 0, "{:?} {:?}", report.error_codes, report.connect_errors);
    assert_eq!(c.bots_connected, 200);
    assert_eq!(report.connected_at_end, 200);
    assert_eq!(c.connect_failures, 0);
    // 200 bots x 5 moves/s x 3 s, plus logins, joins and chats; allow for the start-up.
    assert!(c.replied >= 2500, "only {} calls answered", c.replied);
    assert_eq!(c.replied + report.in_flight_at_end, report.sent, "every call sent is answered or in flight");
    assert!(report.rtt_us.count >= 2500 && report.rtt_us.p50 > 0);
    // Every bot receives its arena's state each tick (30 Hz): 200 x 30 x 3 s, roughly.
    assert!(c.pushes_state > 10_000, "{} state pushes", c.pushes_state);
    assert!(c.pushes_chat > 0 && c.pushes_presence > 0);
    assert_eq!(report.tick_jitter.tick_hz, 30);
    assert!(report.tick_jitter.gap_us.p50 > 10_000 && report.tick_jitter.gap_us.p50 < 60_000);
    assert!(report.steady.worker_cpu_secs > 0.0);
    // The server's own ticks, from its histograms: 30 slots a second over the 3 s steady
    // window (read at its start and end, a tick either way; a loaded machine may skip some),
    // and more over the whole run.
    let ticks = &report.server_ticks;
    assert_eq!(ticks.bucket_bounds_us[..5], [100, 250, 500, 750, 1000], "{ticks:?}");
    let steady = ticks.steady.as_ref().expect("read at the window's start and end");
    assert!((85..=95).contains(&(steady.ticks + steady.skipped)), "{steady:?}");
    assert_eq!(steady.lateness.count, steady.ticks);
    let p99 = steady.lateness.p99.expect("ticks ran");
    assert!(
        p99.estimate_us > p99.above_us && p99.at_most_us.is_some_and(|le| p99.estimate_us <= le),
        "{p99:?}"
    );
    assert!(steady.duration.p99.is_some() && steady.lateness.mean_us > 0.0, "{steady:?}");
    let run = ticks.run.as_ref().expect("read before the run");
    assert!(run.ticks > steady.ticks, "{run:?}");
    assert!(report.table().contains("server tick lateness, steady (ms) p50/p99/mean"));
    // The JSON carries the same figures.
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("valid JSON");
    assert_eq!(json["counters"]["replied"], c.replied);
    assert_eq!(json["errors"], 0);
    assert_eq!(json["server_ticks"]["steady"]["ticks"], steady.ticks);
    assert!(json["server_ticks"]["steady"]["lateness"]["p99"]["at_most_us"].is_u64());
    server.shutdown().expect("clean shutdown");
}

#[test]
fn validate_pushes_decodes_every_push_in_full_and_finds_nothing_wrong() {
    let server = start_arena();
    let opts = Options {
        bots: 60,
        rate: 5.0,
        duration: 1.5,
        ramp: 600.0,
        chat_interval: 0.5,
        validate_pushes: true,
        quiet: true,
        ..Options::new(&url(server.local_addr()))
    };
    let report = client_sim::run(&opts).expect("runs");
    let c = &report.counters;
    assert_eq!(report.errors, 0, "{:?} {:?}", report.error_codes, report.connect_errors);
    assert!(c.pushes_state > 1000 && c.pushes_chat > 0, "{c:?}");
    // Every state, chat and presence push went through the full decode.
    assert_eq!(c.pushes_decoded, c.pushes_state + c.pushes_chat + c.pushes_presence);
    assert_eq!(c.bad_pushes, 0);
    server.shutdown().expect("clean shutdown");

    // Without the option only the first state push of each connection is decoded in full.
    let server = start_arena();
    let opts = Options { validate_pushes: false, urls: vec![url(server.local_addr())], ..opts };
    let report = client_sim::run(&opts).expect("runs");
    let c = &report.counters;
    assert_eq!(report.errors, 0);
    assert_eq!(c.pushes_decoded, c.connections, "{c:?}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn idle_bots_make_one_call_then_stay_connected_by_answering_the_servers_pings() {
    // The server pings after 200 ms of quiet and drops a connection silent for 600 ms: bots
    // that did not answer its pings would be gone long before the end of 2 s.
    let server = start_with(Config {
        ping_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(600),
        ..Config::default()
    });
    let opts = Options {
        bots: 50,
        scenario: Scenario::Idle,
        duration: 2.0,
        ramp: 500.0,
        quiet: true,
        // This process is the server: its memory is read like any other's.
        server_pid: Some(std::process::id()),
        settle: 0.2,
        max_fd_growth: 1000,
        ..Options::new(&url(server.local_addr()))
    };
    let report = client_sim::run(&opts).expect("runs");
    let c = &report.counters;
    println!("{}", report.table());
    assert_eq!(report.errors, 0, "{:?} {:?}", report.error_codes, report.connect_errors);
    assert_eq!((c.bots_connected, report.connected_at_end, c.disconnects), (50, 50, 0));
    assert_eq!((report.sent, c.replied, c.echo_mismatches), (50, 50, 0), "one echo call per bot");
    assert_eq!(c.unexpected_drops, 0);
    let s = report.server.expect("server figures");
    // Both ends of every connection live in this process (other tests come and go meanwhile,
    // so the baseline is not compared).
    assert!(s.fds_loaded >= 100, "{s:?}");
    assert!(s.rss_kib_loaded > 0 && s.rss_per_connection_kib.is_some(), "{s:?}");
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("valid JSON");
    assert!(json["server"]["rss_per_connection_kib"].is_number());
    assert!(report.table().contains("server RSS growth per connection"));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn echo_bots_keep_their_window_full() {
    // Echo bots send as fast as answers come back, well past the default per-connection rate
    // limits (1000 messages/s, and 1 MiB/s, which 100-byte echoes pass at about 9000/s per
    // bot), so this server allows more.
    let server = start_with(Config {
        rate_messages_per_sec: 1_000_000,
        rate_bytes_per_sec: 1 << 30,
        ..Config::default()
    });
    let opts = Options {
        bots: 20,
        scenario: Scenario::Echo,
        window: 4,
        body_bytes: 100,
        duration: 1.0,
        ramp: 1000.0,
        quiet: true,
        ..Options::new(&url(server.local_addr()))
    };
    let report = client_sim::run(&opts).expect("runs");
    assert_eq!(report.errors, 0, "{:?}", report.error_codes);
    assert_eq!(report.counters.echo_mismatches, 0);
    assert!(report.counters.replied > 1000, "{} echoes", report.counters.replied);
    // At the end each bot still has its window in flight.
    assert_eq!(report.in_flight_at_end, 20 * 4);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn echo_bots_at_a_rate_send_on_their_timers_not_on_answers() {
    let server = start_arena();
    let opts = Options {
        bots: 20,
        scenario: Scenario::Echo,
        echo_rate: 20.0,
        duration: 1.0,
        ramp: 1000.0,
        quiet: true,
        ..Options::new(&url(server.local_addr()))
    };
    let report = client_sim::run(&opts).expect("runs");
    assert_eq!(report.errors, 0, "{:?}", report.error_codes);
    assert_eq!(report.counters.echo_mismatches, 0);
    // 20 bots x 20 calls/s for the second of steady load, plus the ramp's 20 ms and the
    // workers' start and stop: about 400. A bot that sent on every answer (one in flight, the
    // default window) would make thousands.
    let calls = report.counters.calls;
    assert!((300..=520).contains(&calls), "{calls} calls");
    assert!(report.counters.replied + 20 >= calls, "{} of {calls} answered", report.counters.replied);
    assert!(report.timer_late_us.count > 0, "the timers fired and were timed");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn the_binary_exits_non_zero_when_errors_exceed_the_limit_and_writes_json() {
    // Nobody listens there: every connect fails.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port");
    let json = std::env::temp_dir().join(format!("client-sim-test-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_client-sim"))
        .args(["--url", &url(addr), "--bots", "3", "--duration", "0.5", "--max-attempts", "1", "--quiet"])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("connect attempts / failed"), "{table}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("valid JSON");
    assert!(report["counters"]["connect_failures"].as_u64().expect("a number") >= 3);
    let _ = std::fs::remove_file(&json);

    // A generous limit turns the same run into a success.
    let out = Command::new(env!("CARGO_BIN_EXE_client-sim"))
        .args(["--url", &url(addr), "--bots", "3", "--duration", "0.5", "--max-attempts", "1", "--quiet"])
        .args(["--max-errors", "1000"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
}

/// A loopback port where nothing listens (bound, then released).
fn port_without_a_server() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port")
}

#[test]
fn a_run_against_no_server_stops_early_with_the_latest_connect_error() {
    let addr = port_without_a_server();
    let opts = Options {
        bots: 5,
        duration: 60.0,
        first_connect_timeout: 0.3,
        quiet: true,
        ..Options::new(&url(addr))
    };
    let started = Instant::now();
    let error = client_sim::run(&opts).expect_err("no server there");
    assert!(started.elapsed() < Duration::from_secs(5), "stopped after {:?}", started.elapsed());
    match &error {
        client_sim::Error::NoConnection { url: u, attempts, last_error, .. } => {
            assert_eq!(*u, url(addr));
            assert!(*attempts >= 5, "{error}");
            assert!(last_error.contains("refused"), "{error}");
        }
        other => panic!("not a NoConnection: {other}"),
    }
}

#[test]
fn the_binary_shows_connect_errors_live_then_stops_with_a_clear_message_when_no_server_listens() {
    let addr = port_without_a_server();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_client-sim"))
        .args(["--url", &url(addr), "--bots", "3", "--duration", "60", "--first-connect-timeout", "1.5"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "no report for a run that never started");
    // The progress line (printed after one second) names the latest connection error...
    assert!(stderr.contains("0/3 connected") && stderr.contains("| last connect error "), "{stderr}");
    // ...and the last line says what happened and what to check.
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("client-sim: no bot connected to {} within 1.5 s", url(addr))),
        "{stderr}"
    );
    assert!(last.contains("refused") && last.contains("Is the server running"), "{stderr}");
}

#[test]
fn an_interrupted_run_stops_at_once_and_still_reports() {
    let server = start_arena();
    let opts = Options { bots: 5, duration: 60.0, quiet: true, ..Options::new(&url(server.local_addr())) };
    let started = Instant::now();
    // Set before the start: the run stops at its first look.
    let report = client_sim::run_until(&opts, &AtomicBool::new(true)).expect("a report");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let after = report.interrupted_after_secs.expect("marked as interrupted");
    assert!(after < 1.0, "{after}");
    assert_eq!(report.steady.secs, 0.0);
    assert_eq!(report.errors, 0, "{:?}", report.connect_errors);
    assert!(report.table().contains("INTERRUPTED"));
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("valid JSON");
    assert!(json["interrupted_after_secs"].is_number());
    server.shutdown().expect("clean shutdown");
}

#[test]
fn ctrl_c_prints_the_report_of_the_run_so_far_and_exits_130() {
    let server = start_arena();
    let mut child = Command::new(env!("CARGO_BIN_EXE_client-sim"))
        .args(["--url", &url(server.local_addr()), "--bots", "5", "--rate", "20", "--duration", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    // The first progress line (after a second) with every bot connected: the run is under way,
    // and the signal handler was installed before it started.
    let mut stderr = child.stderr.take().expect("piped");
    let mut seen = Vec::new();
    let mut chunk = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains(" 5/5 connected") {
        let n = stderr.read(&mut chunk).expect("reads stderr");
        assert!(n > 0, "exited early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
    let interrupted_at = Instant::now();
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(kill.success());
    stderr.read_to_end(&mut seen).expect("reads stderr");
    let out = child.wait_with_output().expect("exits");
    let stderr = String::from_utf8_lossy(&seen);
    assert!(interrupted_at.elapsed() < Duration::from_secs(5), "took {:?}", interrupted_at.elapsed());
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("client-sim: interrupted after "), "{stderr}");
    let table = String::from_utf8_lossy(&out.stdout);
    println!("{table}");
    assert!(table.lines().next().is_some_and(|l| l.starts_with("url ")), "{table}");
    assert!(table.contains("INTERRUPTED"), "{table}");
    let row = |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
    assert!(row("bots connected").contains("5 of 5"), "{table}");
    assert!(row("errors (for --max-errors)").ends_with(" 0"), "{table}");
    server.shutdown().expect("clean shutdown");
}
