//! `--allowed-origins` over real sockets: an upgrade from a page the server does not allow is
//! refused with the 403 of `docs/PROTOCOL.md` section 10, byte for byte, and the connections it
//! allows (its own host, a listed origin, no `Origin` at all) get their welcome.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Client, Frame};
use ticksock_server::config::AllowedOrigins;
use ticksock_server::{Config, Game, Router, RunningServer, Server};
use tungstenite::client::IntoClientRequest;

struct NoRoutes;

impl Game for NoRoutes {
    fn routes(_: &mut Router<Self>) {}
}

fn start(config: Config) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        close_timeout: Duration::from_millis(300),
        static_files: common::a_page(),
        ..config
    };
    Server::start(config, NoRoutes).expect("server starts")
}

/// The exact answer to an upgrade from an origin that is not allowed.
const FORBIDDEN: &str = "HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 52\r\n\
    Content-Type: text/plain; charset=utf-8\r\n\r\nWebSocket upgrades from this Origin are not allowed\n";

/// Upgrades to `addr` with the binary subprotocol as a page of `origin` would (as a native
/// client without one), reads the welcome and returns the client; or the HTTP status of the
/// refusal.
fn connect_from(addr: SocketAddr, origin: Option<&str>) -> Result<Client, u16> {
    let stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut request = format!("ws://{addr}/").into_client_request().expect("request");
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", ticksock_protocol::SUBPROTOCOL.parse().expect("header"));
    if let Some(origin) = origin {
        headers.insert("Origin", origin.parse().expect("header"));
    }
    match tungstenite::client(request, stream) {
        Ok((ws, _)) => {
            let mut client = Client { ws, conn_id: 0 };
            match client.recv() {
                Frame::Welcome { .. } => Ok(client),
                other => panic!("expected the welcome, got {other:?}"),
            }
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("the upgrade failed otherwise: {e}"),
    }
}

/// Sends `request` on a new connection and returns all the server sends until it closes.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(request.as_bytes()).expect("write");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("the answer, then the server closes");
    String::from_utf8(answer).expect("an ASCII answer")
}

/// A complete upgrade request to `addr`, from a page of `origin`.
fn upgrade_request(addr: SocketAddr, origin: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: ticksock.v1\r\nOrigin: {origin}\r\n\r\n"
    )
}

#[test]
fn by_default_the_servers_own_pages_and_native_clients_connect_and_other_sites_get_403() {
    let server = start(Config::default());
    let addr = server.local_addr();
    let port = addr.port();
    // The page the server serves itself, as the browser names it.
    assert!(connect_from(addr, Some(&format!("http://{addr}"))).is_ok());
    // No `Origin`: a native client.
    assert!(connect_from(addr, None).is_ok());
    // Another site, and the same host at another port, are refused before the WebSocket opens.
    assert_eq!(connect_from(addr, Some("https://evil.example")).err(), Some(403));
    let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1).max(1));
    assert_eq!(connect_from(addr, Some(&other_port)).err(), Some(403));
    assert_eq!(exchange(addr, &upgrade_request(addr, "https://evil.example")), FORBIDDEN);
    assert_eq!(exchange(addr, &upgrade_request(addr, &other_port)), FORBIDDEN);
    // A plain GET from that site is not an upgrade: the page is served.
    let page = exchange(addr, "GET / HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n") && page.ends_with("<p>game</p>"), "{page}");
    // The refusals cost nothing else: the server still takes its own page's upgrade.
    assert!(connect_from(addr, Some(&format!("http://{addr}"))).is_ok());
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_listed_origin_connects_and_a_star_lets_any_in() {
    let listed: AllowedOrigins = "https://game.example.com, http://localhost:8080".parse().expect("a list");
    let server = start(Config { allowed_origins: listed, ..Config::default() });
    let addr = server.local_addr();
    assert!(connect_from(addr, Some("http://localhost:8080")).is_ok());
    assert!(connect_from(addr, Some("https://GAME.example.com")).is_ok());
    assert!(connect_from(addr, None).is_ok());
    assert_eq!(connect_from(addr, Some("http://localhost:8081")).err(), Some(403));
    // The list replaces the default: the server's own host is not on it.
    assert_eq!(exchange(addr, &upgrade_request(addr, &format!("http://{addr}"))), FORBIDDEN);
    server.shutdown().expect("clean shutdown");

    let server = start(Config { allowed_origins: AllowedOrigins::any(), ..Config::default() });
    assert!(connect_from(server.local_addr(), Some("https://evil.example")).is_ok());
    server.shutdown().expect("clean shutdown");
}
