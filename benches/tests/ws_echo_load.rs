//! `ws_echo_load` end to end against a real server in each of its forms: plain echo against
//! `--echo`, and `--protocol` against the arena's `echo` route, in rate mode and window mode.

use std::process::Command;
use std::time::Duration;

use ticksock_arena::Arena;
use ticksock_server::{Config, Echo, RunningServer, Server};

fn config(base: Config) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        close_timeout: Duration::from_millis(300),
        // Window mode sends as fast as answers come back, past the default per-connection rate.
        rate_messages_per_sec: 1_000_000,
        rate_bytes_per_sec: 1 << 30,
        ..base
    }
}

fn echo_server() -> RunningServer {
    Server::start(config(Config::echo()), Echo).expect("echo server starts")
}

fn arena_server() -> RunningServer {
    Server::start(config(Config::default()), Arena::new(Default::default())).expect("arena starts")
}

/// Runs the generator with `args` after its address; its stdout, which must report success.
fn run(protocol: bool, server: &RunningServer, args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ws_echo_load"));
    if protocol {
        command.arg("--protocol");
    }
    let out = command.arg(server.local_addr().to_string()).args(args).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The answers counted in the generator's first line.
fn echoes(stdout: &str) -> u64 {
    let (before, _) = stdout.split_once(" echoes in").expect("the summary line");
    before.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a count")
}

#[test]
fn both_forms_get_every_message_back_at_a_rate() {
    for (protocol, server) in [(false, echo_server()), (true, arena_server())] {
        // 4 connections x 50 messages/s for 0.5 s: 100 due, and at most those answered (the
        // last ones may still be in flight on a busy machine); a window would make thousands.
        let stdout = run(protocol, &server, &["4", "8", "0.5", "32", "50"]);
        assert!(stdout.contains("0 mismatches, 0 refused"), "{stdout}");
        assert!((50..=100).contains(&echoes(&stdout)), "{stdout}");
        assert!(stdout.contains("send behind its due time ms: p50"), "{stdout}");
        server.shutdown().expect("clean shutdown");
    }
}

#[test]
fn both_forms_keep_their_window_full() {
    for (protocol, server) in [(false, echo_server()), (true, arena_server())] {
        let stdout = run(protocol, &server, &["2", "4", "0.3", "16"]);
        assert!(stdout.contains("0 mismatches, 0 refused"), "{stdout}");
        assert!(echoes(&stdout) > 100, "{stdout}");
        server.shutdown().expect("clean shutdown");
    }
}

#[test]
fn a_refused_call_fails_the_run() {
    // 100 messages/s allowed, 2000/s sent: most calls are answered `rate_limited`, and the
    // strikes are set high enough that the connection stays open to say so.
    let limited = Config {
        rate_messages_per_sec: 100,
        rate_burst_messages: 10,
        rate_strikes: 1_000_000,
        ..config(Config::default())
    };
    let server = Server::start(limited, Arena::new(Default::default())).expect("arena starts");
    let out = Command::new(env!("CARGO_BIN_EXE_ws_echo_load"))
        .args(["--protocol", &server.local_addr().to_string(), "1", "64", "0.3", "8", "2000"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let (_, refused) = stdout.split_once("mismatches, ").expect("the summary line");
    let refused: u64 = refused.split(' ').next().and_then(|n| n.parse().ok()).expect("a count");
    assert!(refused > 100, "{stdout}");
    server.shutdown().expect("clean shutdown");
}
