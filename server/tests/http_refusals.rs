//! Every HTTP refusal of a connection, over a real socket, byte for byte: the status line, the
//! headers and the body that `docs/PROTOCOL.md` section 10 ("Refusals") gives for it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ticksock_server::{Config, Game, Router, RunningServer, Server};

struct NoRoutes;

impl Game for NoRoutes {
    fn routes(_: &mut Router<Self>) {}
}

fn start(config: Config) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        close_timeout: Duration::from_millis(300),
        ..config
    };
    Server::start(config, NoRoutes).expect("server starts")
}

/// Sends `request` on a new connection and returns all the server sends until it closes.
fn exchange(server: &RunningServer, request: &[u8]) -> String {
    let mut s = TcpStream::connect(server.local_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(request).expect("write");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("the answer, then the server closes");
    String::from_utf8(answer).expect("an ASCII answer")
}

/// An upgrade request with these header lines after `Host`, and the blank line.
fn upgrade_with(lines: &[&str]) -> Vec<u8> {
    let mut request = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for line in lines {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.into_bytes()
}

const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const VERSION: &str = "Sec-WebSocket-Version: 13";
const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
const PROTOCOL: &str = "Sec-WebSocket-Protocol: ticksock.v1";

/// The whole answer of a plain-text refusal.
fn refusal(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

#[test]
fn each_400_has_its_exact_body() {
    let server = start(Config::default());
    let cases: [(&str, Vec<u8>, &str); 7] = [
        (
            "no subprotocol offered",
            upgrade_with(&[UPGRADE, CONNECTION, VERSION, KEY]),
            "this server speaks the WebSocket subprotocols ticksock.v2, ticksock.v1, ticksock.v2.json, ticksock.v1.json; offer one in Sec-WebSocket-Protocol\n",
        ),
        (
            "no common subprotocol",
            upgrade_with(&[UPGRADE, CONNECTION, VERSION, KEY, "Sec-WebSocket-Protocol: chat, ticksock.v3"]),
            "this server speaks the WebSocket subprotocols ticksock.v2, ticksock.v1, ticksock.v2.json, ticksock.v1.json; offer one in Sec-WebSocket-Protocol\n",
        ),
        ("not HTTP", b"\x00\x01garbage\r\n\r\n".to_vec(), "malformed HTTP request\n"),
        (
            "an upgrade by POST",
            format!("POST / HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n{CONNECTION}\r\n{VERSION}\r\n{KEY}\r\n{PROTOCOL}\r\n\r\n")
                .into_bytes(),
            "a WebSocket upgrade must be an HTTP/1.1 GET\n",
        ),
        (
            "an upgrade over HTTP/1.0",
            format!("GET / HTTP/1.0\r\nHost: x\r\n{UPGRADE}\r\n{CONNECTION}\r\n{VERSION}\r\n{KEY}\r\n{PROTOCOL}\r\n\r\n")
                .into_bytes(),
            "a WebSocket upgrade must be an HTTP/1.1 GET\n",
        ),
        (
            "no Connection: upgrade",
            upgrade_with(&[UPGRADE, "Connection: keep-alive", VERSION, KEY, PROTOCOL]),
            "missing `Connection: upgrade`\n",
        ),
        (
            "no Sec-WebSocket-Key",
            upgrade_with(&[UPGRADE, CONNECTION, VERSION, PROTOCOL]),
            "missing Sec-WebSocket-Key\n",
        ),
    ];
    for (what, request, body) in cases {
        assert_eq!(exchange(&server, &request), refusal("400 Bad Request", "", body), "{what}");
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_version_other_than_13_gets_426_naming_13() {
    let server = start(Config::default());
    for version in ["Sec-WebSocket-Version: 8", "Sec-WebSocket-Version: 14"] {
        let answer = exchange(&server, &upgrade_with(&[UPGRADE, CONNECTION, version, KEY, PROTOCOL]));
        assert_eq!(
            answer,
            refusal(
                "426 Upgrade Required",
                "Sec-WebSocket-Version: 13\r\n",
                "only WebSocket version 13 is supported\n"
            ),
            "{version}"
        );
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn an_oversized_head_gets_431_and_so_do_too_many_headers() {
    let server = start(Config { max_handshake_bytes: 1024, ..Config::default() });
    // Over the limit, but small enough to arrive in one read: the server then closes with
    // nothing unread, so the close is not a reset that could destroy the answer in flight.
    let padding = format!("X-Padding: {}", "a".repeat(1200));
    assert_eq!(
        exchange(&server, &upgrade_with(&[UPGRADE, CONNECTION, VERSION, KEY, PROTOCOL, &padding])),
        refusal("431 Request Header Fields Too Large", "", "request too large\n")
    );
    let many: Vec<String> = (0..40).map(|i| format!("X-{i}: y")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        exchange(&server, &upgrade_with(&many)),
        refusal("431 Request Header Fields Too Large", "", "too many headers\n")
    );
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_connection_over_the_limit_gets_503_with_retry_after() {
    let server = start(Config { max_connections: 1, ..Config::default() });
    let _first = common::Client::connect(server.local_addr());
    let answer = exchange(&server, &upgrade_with(&[UPGRADE, CONNECTION, VERSION, KEY, PROTOCOL]));
    assert_eq!(
        answer,
        refusal("503 Service Unavailable", "Retry-After: 5\r\n", "server is at its connection limit\n")
    );
    server.shutdown().expect("clean shutdown");
}

#[test]
fn plain_requests_get_404_and_405_with_their_exact_bodies() {
    let server = start(Config::default());
    assert_eq!(
        exchange(&server, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"),
        refusal("404 Not Found", "", "not found\n")
    );
    assert_eq!(
        exchange(&server, b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"),
        refusal("405 Method Not Allowed", "Allow: GET, HEAD\r\n", "method not allowed\n")
    );
    server.shutdown().expect("clean shutdown");
}
