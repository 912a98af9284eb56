//! How connections end, over raw sockets (so that what TCP does is visible): the closing
//! handshake after a close for what a client sent, the close timeout, the lingering close that
//! keeps a reset from destroying the last frames, and the rate limit's burst and its close.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ticksock_protocol::error_code;
use ticksock_server::{AppError, Config, Game, Router, RunningServer, Server};

struct Doubler;

impl Game for Doubler {
    fn routes(router: &mut Router<Self>) {
        router.route("double", |_, _, _, n: u32| Ok::<_, AppError>(n * 2)).route(
            "slow",
            |_, _, _, ms: u64| {
                // Holds the logic thread on purpose, so that replies are still owed when the
                // reactor decides to close.
                std::thread::sleep(Duration::from_millis(ms));
                Ok::<_, AppError>(ms)
            },
        );
    }
}

fn start(config: Config) -> RunningServer {
    let config = Config { listen: "127.0.0.1:0".parse().expect("addr"), ..config };
    Server::start(config, Doubler).expect("server starts")
}

const TEXT: u8 = 1;
const BINARY: u8 = 2;
const CLOSE: u8 = 8;

/// A WebSocket client written by hand, so that every byte and the TCP end are visible.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// What reading the connection ended with, after the frames.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The server closed TCP cleanly (FIN).
    Eof,
    /// A reset, or another error.
    Error(io::ErrorKind),
}

impl Raw {
    /// Upgrades with `subprotocol` and reads the welcome frame.
    fn connect(addr: SocketAddr, subprotocol: &str) -> Raw {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let request = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("upgrade request");
        let mut raw = Raw { stream, buf: Vec::new() };
        let head = loop {
            if let Some(end) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break raw.buf.drain(..end + 4).collect::<Vec<u8>>();
            }
            assert!(raw.fill().expect("upgrade answer") > 0, "closed during the upgrade");
        };
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
        let (opcode, _) = raw.frame().expect("welcome");
        assert!(opcode == BINARY || opcode == TEXT);
        raw
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// A masked frame (with a zero key, which leaves the payload as it is).
    fn frame_bytes(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n < 1 << 16 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(payload);
        out
    }

    fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.stream.write_all(&Self::frame_bytes(opcode, payload))
    }

    fn request(&mut self, id: u8, route: &str, body: &[u8]) {
        self.send(BINARY, &request_bytes(id, route, body)).expect("request");
    }

    /// The next frame (server frames are unmasked and, here, short enough for a 2-byte
    /// length), or the reason there is none.
    fn frame(&mut self) -> Result<(u8, Vec<u8>), End> {
        loop {
            if self.buf.len() >= 2 {
                let (len, head) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => {
                        (usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])), 4)
                    }
                    126 => (usize::MAX, 4),
                    n => (usize::from(n), 2),
                };
                if len != usize::MAX && self.buf.len() >= head + len {
                    let opcode = self.buf[0] & 0x0f;
                    let payload = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    return Ok((opcode, payload));
                }
            }
            match self.fill() {
                Ok(0) => return Err(End::Eof),
                Ok(_) => {}
                Err(e) => return Err(End::Error(e.kind())),
            }
        }
    }

    /// Reads frames until the close frame: the others, and the close code.
    fn until_close(&mut self) -> (Vec<(u8, Vec<u8>)>, u16) {
        let mut before = Vec::new();
        loop {
            match self.frame() {
                Ok((CLOSE, payload)) => return (before, u16::from_be_bytes([payload[0], payload[1]])),
                Ok(frame) => before.push(frame),
                Err(end) => panic!("no close frame, the connection ended: {end:?} after {before:?}"),
            }
        }
    }

    /// How the connection ends after the frames read so far (which must be all of them).
    fn end(&mut self) -> End {
        match self.frame() {
            Ok(frame) => panic!("a frame after the close: {frame:?}"),
            Err(end) => end,
        }
    }
}

/// A binary Request frame: tag 0, a 1-byte id, the route, the body.
fn request_bytes(id: u8, route: &str, body: &[u8]) -> Vec<u8> {
    assert!(id <= 250 && route.len() < 128);
    let mut out = vec![0, id, route.len() as u8];
    out.extend_from_slice(route.as_bytes());
    out.extend_from_slice(body);
    out
}

/// A client close frame's payload.
fn close_payload(code: u16) -> Vec<u8> {
    code.to_be_bytes().to_vec()
}

/// After a close for what the client sent (each kind 7.4 lists as closing at the protocol
/// level), the server waits for the client's close frame, then closes TCP at once, cleanly.
#[test]
fn after_a_protocol_level_close_tcp_ends_as_soon_as_the_clients_close_frame_arrives() {
    // A close timeout far above the bound below: only the client's close can explain it.
    let server = start(Config { close_timeout: Duration::from_secs(20), ..Config::default() });
    let cases: [(&str, u8, &[u8], u16); 4] = [
        ("ticksock.v1", TEXT, b"text on the binary protocol", 1003),
        ("ticksock.v1", BINARY, &[], 1007),
        ("ticksock.v1.json", TEXT, b"{\"id\": 1, \"route\"", 1007),
        ("ticksock.v1.json", BINARY, &[0, 1, 2], 1003),
    ];
    for (subprotocol, opcode, payload, code) in cases {
        let mut c = Raw::connect(server.local_addr(), subprotocol);
        c.send(opcode, payload).expect("the offending message");
        let (_, got) = c.until_close();
        assert_eq!(got, code, "{subprotocol} {payload:?}");
        // Like a client library, answer a little later, not in the same packet.
        std::thread::sleep(Duration::from_millis(20));
        let sent = Instant::now();
        c.send(CLOSE, &close_payload(got)).expect("close reply");
        assert_eq!(c.end(), End::Eof, "{subprotocol} {payload:?}: not a clean end of stream");
        let took = sent.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "{subprotocol} {payload:?}: TCP ended {took:?} after our close"
        );
    }
    server.shutdown().expect("clean shutdown");
}

/// A client that never answers the close frame: TCP ends at the close timeout, within the
/// sweep's granularity (a quarter of the timeout: the documented bound is 1.25 times the
/// timeout), cleanly.
#[test]
fn without_the_clients_close_frame_tcp_ends_at_the_close_timeout() {
    let close_timeout = Duration::from_millis(100);
    let server = start(Config { close_timeout, ..Config::default() });
    let mut c = Raw::connect(server.local_addr(), "ticksock.v1");
    c.send(TEXT, b"text").expect("text");
    let (_, code) = c.until_close();
    let closed_at = Instant::now();
    assert_eq!(code, 1003);
    assert_eq!(c.end(), End::Eof);
    let took = closed_at.elapsed();
    // The close frame left a moment before we read it; above the bound of 125 ms, the rest
    // is room for a loaded machine.
    assert!(
        took >= close_timeout - Duration::from_millis(20),
        "TCP ended after {took:?}, before the timeout"
    );
    assert!(took < Duration::from_millis(400), "TCP ended after {took:?}");
    server.shutdown().expect("clean shutdown");
}

/// The reset that ate the last frames: a client sends a request and right behind it a
/// message over the limit. The server closes with 1009 with the rest of that message unread;
/// it must still end with the reply, the close frame and a clean end of stream, not a reset.
#[test]
fn an_oversize_message_after_a_request_does_not_reset_the_reply_and_the_close_away() {
    let server = start(Config::default());
    let mut c = Raw::connect(server.local_addr(), "ticksock.v1");
    let mut bytes = Raw::frame_bytes(BINARY, &request_bytes(1, "double", &[21]));
    bytes.extend(Raw::frame_bytes(BINARY, &request_bytes(2, "double", &vec![0; 200_000])));
    c.stream.write_all(&bytes).expect("a request, then a message over the 64 KiB limit");
    let (frames, code) = c.until_close();
    assert_eq!(frames, [(BINARY, vec![0x01, 1, 42])], "the reply to the request before");
    assert_eq!(code, 1009);
    assert_eq!(c.end(), End::Eof, "the server reset the connection instead of ending it");
    server.shutdown().expect("clean shutdown");
}

/// The metrics line `name value`.
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("metrics");
    let prefix = format!("{name} ");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {name}"));
    line[prefix.len()..].parse().expect("a number")
}

/// Waits until `name` reads `want`.
fn await_metric(addr: SocketAddr, name: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = metric(addr, name);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{name} is {got}, not {want}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The lingering close is bounded: a peer that keeps sending after the end is cut at
/// `linger_bytes`, one that neither sends nor closes at `linger_timeout`.
#[test]
fn a_lingering_close_ends_at_its_byte_bound_and_at_its_timeout() {
    let server = start(Config {
        linger_bytes: 64 << 10,
        linger_timeout: Duration::from_millis(300),
        ..Config::default()
    });
    let addr = server.local_addr();

    // Cut at the byte bound: after the 1009 the client goes on sending.
    let mut flooder = Raw::connect(addr, "ticksock.v1");
    flooder.request(1, "double", &vec![0; 70_000]);
    let (_, code) = flooder.until_close();
    assert_eq!(code, 1009);
    assert_eq!(flooder.end(), End::Eof, "our side of TCP is shut right after the close frame");
    let started = Instant::now();
    let junk = vec![0u8; 16 << 10];
    let refused = loop {
        if let Err(e) = flooder.stream.write_all(&junk) {
            break e;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the server drained without bound");
    };
    assert!(
        matches!(refused.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe),
        "{refused}"
    );
    await_metric(addr, "ticksock_lingers_cut_total", 1);

    // Cut at the timeout: a client that reads our end of stream but never closes its side.
    let mut silent = Raw::connect(addr, "ticksock.v1");
    silent.send(TEXT, b"text").expect("text");
    let (_, code) = silent.until_close();
    silent.send(CLOSE, &close_payload(code)).expect("close reply");
    assert_eq!(silent.end(), End::Eof);
    assert_eq!(metric(addr, "ticksock_connections_lingering"), 1, "it waits for our end");
    await_metric(addr, "ticksock_connections_lingering", 0);
    assert_eq!(metric(addr, "ticksock_lingers_cut_total"), 2);

    // A client that closes its side ends the linger at once, and is not counted as cut.
    let mut polite = Raw::connect(addr, "ticksock.v1");
    polite.send(TEXT, b"text").expect("text");
    let (_, code) = polite.until_close();
    polite.send(CLOSE, &close_payload(code)).expect("close reply");
    assert_eq!(polite.end(), End::Eof);
    drop(polite);
    await_metric(addr, "ticksock_connections_lingering", 0);
    assert_eq!(metric(addr, "ticksock_lingers_cut_total"), 2);
    server.shutdown().expect("clean shutdown");
}

/// The documented burst: `rate_burst_messages` at once all pass, however low the rate, and
/// the next one is refused.
#[test]
fn a_burst_of_rate_burst_messages_passes_whole_and_the_next_is_refused() {
    let server = start(Config { rate_messages_per_sec: 2, rate_burst_messages: 40, ..Config::default() });
    let mut c = Raw::connect(server.local_addr(), "ticksock.v1");
    let mut bytes = Vec::new();
    for id in 0..41u8 {
        bytes.extend(Raw::frame_bytes(BINARY, &request_bytes(id, "double", &[id])));
    }
    c.stream.write_all(&bytes).expect("41 requests at once");
    let mut replied = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..41 {
        let (_, frame) = c.frame().expect("an answer");
        match frame[0] {
            0x01 => replied.push(frame[1]),
            0x02 => {
                assert_eq!(u16::from(frame[2]), error_code::RATE_LIMITED, "{frame:?}");
                refused.push(frame[1]);
            }
            _ => panic!("{frame:?}"),
        }
    }
    replied.sort_unstable();
    assert_eq!(replied, (0..40).collect::<Vec<u8>>());
    assert_eq!(refused, [40]);
    server.shutdown().expect("clean shutdown");
}

/// A rate-limit close goes behind the answers to the requests accepted before it: every
/// request the server took gets its reply before the close frame (7.2 has no exception).
#[test]
fn every_request_accepted_before_a_rate_limit_close_is_answered_before_the_close_frame() {
    let server = start(Config {
        rate_messages_per_sec: 1,
        rate_burst_messages: 5,
        rate_strikes: 3,
        ..Config::default()
    });
    let mut c = Raw::connect(server.local_addr(), "ticksock.v1");
    let mut bytes = Vec::new();
    // Five accepted, each holding the logic thread 40 ms, so their replies are still owed
    // when the fourth refusal in a row (id 8) closes the connection.
    for id in 0..5u8 {
        bytes.extend(Raw::frame_bytes(BINARY, &request_bytes(id, "slow", &[40])));
    }
    for id in 5..9u8 {
        bytes.extend(Raw::frame_bytes(BINARY, &request_bytes(id, "double", &[id])));
    }
    c.stream.write_all(&bytes).expect("nine requests at once");
    let (frames, code) = c.until_close();
    assert_eq!(code, 1008);
    let replied: Vec<u8> = frames.iter().filter(|(_, f)| f[0] == 0x01).map(|(_, f)| f[1]).collect();
    let refused: Vec<u8> = frames.iter().filter(|(_, f)| f[0] == 0x02).map(|(_, f)| f[1]).collect();
    assert_eq!(replied, [0, 1, 2, 3, 4], "every accepted request answered, before the close");
    assert_eq!(refused, [5, 6, 7, 8], "the fourth refusal in a row, answered too, closes");
    server.shutdown().expect("clean shutdown");
}
