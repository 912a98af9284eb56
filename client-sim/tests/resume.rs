//! `--faults` against an arena server in this process, for a few seconds: version 2 links
//! killed by resets and half-open silence, some of fresh sessions, some reconnecting before the
//! server found the old link dead; sessions resumed inside the window with nothing lost, run
//! twice or repeated, and refused, explicitly, outside it; and the checks failing when the
//! window is misjudged.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use client_sim::Options;
use client_sim::report::Report;
use ticksock_arena::Arena;
use ticksock_server::{Config, RunningServer, Server};

/// An arena whose heartbeat finds a silent link dead after 1 s, and whose sessions wait
/// `grace` for a resume.
fn start_arena(grace: Duration) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ping_interval: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(1),
        close_timeout: Duration::from_millis(300),
        session_grace: grace,
        ..Config::default()
    };
    Server::start(config, Arena::new(Default::default())).expect("server starts")
}

/// 30 bots in rooms of 10, `--faults` with a kill a second per bot, outages of
/// `outages` seconds; the simulator is told the server's idle timeout and `told_grace`.
fn faults(addr: SocketAddr, outages: (f64, f64), told_grace: f64) -> Options {
    Options {
        bots: 30,
        rate: 10.0,
        duration: 3.0,
        ramp: 300.0,
        room_size: 10,
        chat_interval: 1.0,
        call_timeout: 3.0,
        faults: true,
        fault_rate: 60.0,
        fault_rst_share: 0.5,
        fault_early_share: 0.5,
        fault_fresh_share: 0.3,
        outage_min: outages.0,
        outage_max: outages.1,
        once_every: 3,
        server_grace: told_grace,
        server_idle_timeout: 1.0,
        name_prefix: "resume".into(),
        quiet: true,
        ..Options::new(&format!("ws://{addr}/"))
    }
}

fn checks(report: &Report) -> String {
    format!("{:?}\n{}", report.failed_checks(), report.table())
}

#[test]
fn inside_the_window_every_resume_succeeds_and_nothing_is_lost_run_twice_or_repeated() {
    // Outages up to 2 s against a 10 s grace: all inside, with seconds to spare for a loaded
    // machine. Half-open links held over 1 s are found dead by the server first; early ones
    // (under 0.5 s) are still open at the resume.
    let server = start_arena(Duration::from_secs(10));
    let report = client_sim::run(&faults(server.local_addr(), (0.05, 2.0), 10.0)).expect("runs");
    println!("{}", report.table());
    let c = &report.counters;
    // The one check that fails is the server's gap (tests/server_gaps.rs): a session killed
    // between its welcome and its first frame is refused `ended`.
    let gap = "resumes refused inside the window, of sessions killed before their first frame";
    let failed: Vec<_> = report.failed_checks().into_iter().filter(|(name, _)| *name != gap).collect();
    assert!(failed.is_empty(), "{}", checks(&report));
    assert_eq!(
        report.errors,
        c.failed_inside_before_first_frame,
        "{:?} {}",
        report.error_codes,
        checks(&report)
    );
    // Every kind of fault happened.
    assert!(c.kills_rst >= 10 && c.kills_half_open >= 10 && c.kills_early >= 3, "{}", checks(&report));
    assert!(c.kills_fresh_before >= 1 && c.kills_fresh_after >= 1, "{}", checks(&report));
    assert!(c.old_links_open_at_reconnect >= 1, "early reconnects beat the heartbeat: {}", checks(&report));
    assert_eq!(c.old_links_not_ended, 0);
    // Every outage ended in an answer to its resume, inside the window: resumed, but for the
    // gap's; the server counted the same.
    let kills = c.kills_rst + c.kills_half_open;
    assert_eq!((c.resumes_attempted, c.resumes_ok + c.resumes_failed), (kills, kills), "{}", checks(&report));
    assert_eq!((c.resumed_inside, c.failed_inside), (c.resumes_ok, c.resumes_failed), "{}", checks(&report));
    assert_eq!(c.failed_inside, c.failed_inside_before_first_frame, "{}", checks(&report));
    assert_eq!(c.calls_failed_session_ended, 0, "only sessions that had made no call ended");
    let r = report.resume.as_ref().expect("resume figures");
    let s = r.server.expect("the server's /metrics");
    assert_eq!((s.resumes, s.resume_failures, s.expired), (c.resumes_ok, c.resumes_failed, 0), "{s:?}");
    assert!(s.dropped_max >= 1 && s.samples >= 3, "{s:?}");
    // Calls flowed across the outages, and each ended once.
    assert!(c.calls_once >= 100 && c.once_ran_twice == 0, "{c:?}");
    assert_eq!(c.calls, c.replied + report.in_flight_at_end, "{c:?}");
    assert_eq!((c.timed_out, c.answers_lost, c.errored), (0, 0, 0));
    // Pushes: every session's ticks went up by one, across its resumes.
    assert!(c.pushes_state > 2_000, "{c:?}");
    assert_eq!((r.pushes_lost, c.pushes_duplicated), (0, 0));
    assert!(r.ticks_unseen <= s.ticks_skipped, "{r:?}");
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("valid JSON");
    assert_eq!(json["counters"]["resumes_ok"], c.resumes_ok);
    assert_eq!(json["resume"]["pushes_lost"], 0);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn outside_the_window_every_resume_is_refused_explicitly_and_the_bots_start_afresh() {
    // Resets only, outages of 5 to 5.5 s against a 0.5 s grace: each session ended long before
    // its bot came back.
    let server = start_arena(Duration::from_millis(500));
    let opts = Options {
        duration: 1.5,
        fault_rst_share: 1.0,
        fault_fresh_share: 0.0,
        ..faults(server.local_addr(), (5.0, 5.5), 0.5)
    };
    let report = client_sim::run(&opts).expect("runs");
    println!("{}", report.table());
    let c = &report.counters;
    assert!(report.failed_checks().is_empty(), "{}", checks(&report));
    assert!(c.kills_rst >= 10, "{c:?}");
    assert_eq!(
        (c.resumes_attempted, c.resumes_failed, c.failed_outside),
        (c.kills_rst, c.kills_rst, c.kills_rst)
    );
    assert_eq!((c.resumes_ok, c.failed_inside, c.resumed_outside), (0, 0, 0));
    let r = report.resume.as_ref().expect("resume figures");
    assert_eq!(r.resume_failures.get("ended"), Some(&c.kills_rst), "{r:?}");
    // The calls of the ended sessions failed, saying so; nothing was lost silently.
    assert!(c.calls_failed_session_ended > 0, "{c:?}");
    assert_eq!((c.timed_out, c.answers_lost, c.once_ran_twice, r.pushes_lost), (0, 0, 0, 0));
    // Each bot logged in again on a new session.
    assert_eq!(c.connections, 30 + c.kills_rst, "{c:?}");
    assert_eq!(r.server.map(|s| s.expired), Some(c.kills_rst));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_misjudged_window_fails_the_checks_and_the_exit_status() {
    // The simulator is told a 60 s grace, the server keeps sessions 0.5 s: resumes after 2 s
    // are refused where the simulator says they must succeed.
    let server = start_arena(Duration::from_millis(500));
    let addr = server.local_addr();
    let output = Command::new(env!("CARGO_BIN_EXE_client-sim"))
        .args(["--url", &format!("ws://{addr}/"), "--bots", "10", "--room-size", "10", "--rate", "5"])
        .args(["--duration", "1", "--faults", "--fault-rate", "120", "--fault-rst-share", "1"])
        .args(["--fault-fresh-share", "0", "--outage-min", "2", "--outage-max", "2.5"])
        .args(["--server-grace", "60", "--call-timeout", "2", "--quiet", "--json", "/dev/null"])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--faults checks failed: resumes refused inside the window"), "{stderr}");
    assert!(stdout.contains("CHECKS (--faults)") && stdout.contains("FAILED"), "{stdout}");
    server.shutdown().expect("clean shutdown");

    // Options that make no sense are refused before anything runs.
    let output = Command::new(env!("CARGO_BIN_EXE_client-sim"))
        .args(["--scenario", "echo", "--faults", "--quiet"])
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--faults applies to the arena scenario only"));
}
