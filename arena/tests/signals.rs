//! The binary's graceful shutdown on SIGTERM and SIGINT: clients get close 1001, the process
//! exits 0 within its bound.

// The blocking socket client of the server's own tests: one copy for both crates.
#[path = "../../server/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Client;

fn shutdown_on(signal: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ticksock-arena"))
        .args(["--listen", "127.0.0.1:0", "--shutdown-timeout-secs", "5"])
        // Its database in the target dir, not the source tree (the default is the working dir).
        // One per test: the two tests run at once, and two servers starting together on one new
        // file race to create it.
        .args(["--db", &format!("{}/signals-{signal}.db", env!("CARGO_TARGET_TMPDIR"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("the server prints where it listens");
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ws://"))
        .and_then(|w| w.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));

    let mut client = Client::connect(addr);
    let _: ticksock_arena::proto::LoggedIn = client.call_ok(
        1,
        ticksock_arena::proto::ROUTE_LOGIN,
        &ticksock_arena::proto::Login { name: "sig".into() },
    );
    let sent = Instant::now();
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    assert_eq!(client.expect_close(), Some(1001), "clients are told the server is going away");
    drop(client);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(sent.elapsed() < Duration::from_secs(10), "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sigterm_shuts_down_gracefully() {
    shutdown_on("-TERM");
}

#[test]
fn sigint_shuts_down_gracefully() {
    shutdown_on("-INT");
}
