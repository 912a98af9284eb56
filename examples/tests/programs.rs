//! The example programs as a user runs them: each server program, started on a free port,
//! serves its page over HTTP and is called by its Rust client program; the counter shuts down
//! gracefully on Ctrl-C (SIGINT). These need real sockets and processes, so they wait, with
//! bounds, for real time to pass; the games' rules are tested without either, through the
//! harness, in `counter.rs` and `chat.rs`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Program, close_code, connect, http_get, push_where, raw_socket};
use ticksock_examples::chat::{self, Join, Line, Presence, ROUTE_JOIN, TOPIC_LINE, TOPIC_PRESENCE};
use ticksock_examples::counter;

/// Runs example `name` with `args` to its end, at most `within`; its exit status and each
/// line of its standard output with the time it came.
fn run_to_end(
    name: &str,
    args: &[&str],
    within: Duration,
) -> (std::process::ExitStatus, Vec<(Instant, String)>) {
    let mut child = Command::new(common::example(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the client example starts");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    // Read on a thread so that a client that hangs fails the test instead of blocking it.
    let reader = std::thread::spawn(move || {
        stdout.lines().map_while(Result::ok).map(|l| (Instant::now(), l)).collect::<Vec<_>>()
    });
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("{name} did not end by itself within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, reader.join().expect("the reader thread"))
}

#[test]
fn the_counter_client_adds_and_sees_the_total_pushed_once_a_second() {
    let server = Program::start("counter");
    let (status, lines) =
        run_to_end("counter_client", &[&server.url(), "--pushes", "3"], Duration::from_secs(15));
    assert!(status.success(), "counter_client: {status}; printed {lines:?}");
    let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(text[..3], ["add 1: total 1", "add 2: total 3", "add 3: total 6"], "{text:?}");
    let pushed: Vec<i64> = text[3..]
        .iter()
        .map(|l| l.strip_prefix("pushed total: ").and_then(|n| n.parse().ok()).expect("a push"))
        .collect();
    // At once on connecting (0), then once a second: the last one after the adds.
    assert_eq!((pushed.len(), pushed[0], pushed[2]), (3, 0, 6), "{text:?}");
    let gap = lines[5].0 - lines[4].0;
    assert!(gap >= Duration::from_millis(500), "pushes {gap:?} apart, not once a second");
}

#[test]
fn ctrl_c_closes_the_counters_clients_with_1001_and_exits_0() {
    let mut server = Program::start("counter");
    let mut ws = raw_socket(server.addr, ticksock_protocol::SUBPROTOCOL);
    server.wait_until_it_catches(2); // SIGINT
    let status =
        Command::new("kill").args(["-INT", &server.child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    assert_eq!(close_code(&mut ws), Some(1001), "clients are told the server is going away");
    drop(ws);
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn the_chat_client_joins_says_its_lines_and_leaves() {
    let server = Program::start("chat");
    let mut watcher = connect(server.addr);
    watcher.call::<_, ()>(ROUTE_JOIN, &Join { name: "watcher".into() }).expect("join");

    let args = [&server.url(), "--name", "rusty", "--say", "hello", "--say", "bye"];
    let (status, lines) = run_to_end("chat_client", &args, Duration::from_secs(15));
    assert!(status.success(), "chat_client: {status}; printed {lines:?}");
    let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(text, ["here: rusty, watcher", "rusty: hello", "rusty: bye"]);

    let joined = push_where(&mut watcher, TOPIC_PRESENCE, |_: &Presence| true);
    assert_eq!(joined, Presence { name: "rusty".into(), online: true });
    for said in ["hello", "bye"] {
        let line = push_where(&mut watcher, TOPIC_LINE, |_: &Line| true);
        assert_eq!(line, Line { from: "rusty".into(), text: said.into() });
    }
    let left = push_where(&mut watcher, TOPIC_PRESENCE, |_: &Presence| true);
    assert_eq!(left, Presence { name: "rusty".into(), online: false });
}

/// Serving files is the reactor's, which the test harness leaves out: so this fetches them
/// from the programs themselves. What the pages hold is checked in `counter.rs` and `chat.rs`.
#[test]
fn each_program_serves_its_page_and_the_browser_client() {
    for (name, files) in [("counter", counter::page()), ("chat", chat::page())] {
        let server = Program::start(name);
        for path in ["/", "/ticksock.js"] {
            let (status, content_type, body) = http_get(server.addr, path);
            let (expected, expected_type) = files.get(path).expect("a file of the page");
            assert_eq!((status, content_type.as_str()), (200, expected_type), "{name} {path}");
            assert!(
                body == expected,
                "{name} {path}: {} bytes served, not the {} of the file",
                body.len(),
                expected.len()
            );
        }
        assert_eq!(http_get(server.addr, "/nope").0, 404, "{name}");
    }
}
