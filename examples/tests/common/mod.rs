//! What the tests of the example programs (`programs.rs`) use: the programs built by cargo and
//! run on a free loopback port, blocking clients, plain HTTP and raw WebSocket helpers. The
//! games' own tests need none of it: they run through `ticksock_server::testing`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use ticksock_client::{BlockingClient, Event};

/// The longest any test waits for something the server does at once or on its next ticks.
pub const WAIT: Duration = Duration::from_secs(5);

/// A connected blocking client of the server at `addr`.
pub fn connect(addr: SocketAddr) -> BlockingClient {
    BlockingClient::connect(&format!("ws://{addr}/"), ticksock_client::Config::default(), WAIT)
        .expect("the client connects")
}

/// The next push on `topic` whose body satisfies `wanted`, waiting at most [`WAIT`];
/// other events and pushes are passed over.
pub fn push_where<T: DeserializeOwned + std::fmt::Debug>(
    client: &mut BlockingClient,
    topic: &str,
    mut wanted: impl FnMut(&T) -> bool,
) -> T {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.wait_event(left) {
            Some(Event::Push { topic: t, body }) if t == topic => {
                let value: T = ticksock_protocol::decode_body(&body).expect("the push decodes");
                if wanted(&value) {
                    return value;
                }
                seen.push(value);
            }
            Some(_) => {}
            None => panic!("no wanted push on `{topic}` within {WAIT:?}; saw {seen:?}"),
        }
    }
}

/// A plain HTTP `GET`: the status, the `Content-Type` and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("the server answers and closes");
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a header ends");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status");
    let content_type = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-type")))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    (status, content_type, response[split + 4..].to_vec())
}

/// A WebSocket to the server at `addr` offering `subprotocol`, its welcome frame read.
pub fn raw_socket(addr: SocketAddr, subprotocol: &str) -> tungstenite::WebSocket<TcpStream> {
    use tungstenite::client::IntoClientRequest;
    let stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut request = format!("ws://{addr}/").into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", subprotocol.parse().expect("header"));
    let (mut ws, _) = tungstenite::client(request, stream).expect("upgrade");
    ws.read().expect("the welcome frame");
    ws
}

/// Reads until the server closes the socket; the close code it sent, if any.
pub fn close_code(ws: &mut tungstenite::WebSocket<TcpStream>) -> Option<u16> {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                panic!("the server did not close within {WAIT:?}")
            }
            Err(_) => return None,
        }
    }
}

// ----- the example programs ---------------------------------------------------------------

/// The path of the example program `name`, built by cargo for the profile these tests were
/// built with. Cargo has no `CARGO_BIN_EXE_` for examples, so this asks it, once per test
/// binary, for all of this crate's examples: after `cargo test`, which builds them too, it only
/// checks that they are fresh.
pub fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(build_examples);
    built.get(name).cloned().unwrap_or_else(|| panic!("cargo built no example `{name}`: {built:?}"))
}

fn build_examples() -> HashMap<String, PathBuf> {
    // This test runs from <target>/<profile dir>/deps/; the profile dir names the profile.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).and_then(|p| p.file_name());
    let profile = match profile_dir.and_then(|p| p.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let output = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--examples", "--message-format=json", "--profile", profile])
        .args(["--manifest-path", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")])
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo build --examples failed: {}", output.status);
    let mut built = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let is_example =
            message["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "example"));
        if let (true, Some(name), Some(path)) =
            (is_example, message["target"]["name"].as_str(), message["executable"].as_str())
        {
            built.insert(name.to_owned(), PathBuf::from(path));
        }
    }
    built
}

/// An example server program, killed when dropped (a test that fails must not leave it).
pub struct Program {
    /// The process.
    pub child: Child,
    /// Where it listens, from the line it prints first.
    pub addr: SocketAddr,
    /// The rest of its standard output: held open, not read, so that a later print of the
    /// program does not fail on a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Program {
    /// Starts example `name` on a free loopback port and reads where it listens.
    pub fn start(name: &str) -> Program {
        let mut child = Command::new(example(name))
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the example starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the example prints where it listens");
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("ws://"))
            .and_then(|w| w.trim_end_matches([',', '/']).parse().ok())
            .unwrap_or_else(|| panic!("no ws:// address in {line:?}"));
        Program { child, addr, _stdout: stdout }
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Waits until the process catches `signal` (its handler is installed), at most [`WAIT`].
    /// A signal sent earlier would meet the default action and kill it. Linux only (`/proc`).
    pub fn wait_until_it_catches(&self, signal: u32) {
        let status = format!("/proc/{}/status", self.child.id());
        let deadline = Instant::now() + WAIT;
        loop {
            let caught = std::fs::read_to_string(&status)
                .ok()
                .and_then(|s| {
                    s.lines().find_map(|l| l.strip_prefix("SigCgt:").map(str::trim).map(str::to_owned))
                })
                .and_then(|mask| u64::from_str_radix(&mask, 16).ok())
                .is_some_and(|mask| mask & (1 << (signal - 1)) != 0);
            if caught {
                return;
            }
            assert!(Instant::now() < deadline, "the example did not install its signal handler");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the process to exit, at most `within`.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the example did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
