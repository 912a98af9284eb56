//! Each close the server starts, provoked over a real socket, carries the reason text that
//! `docs/PROTOCOL.md` section 7.5 gives for it (and `close` in the server defines): the codes
//! are checked elsewhere, the texts here.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Client, raw_upgrade};
use ticksock_server::__internals::close;
use ticksock_server::{AppError, Config, Ctx, Game, Router, RunningServer, Server};
use tungstenite::Message;
use tungstenite::protocol::frame::Frame as WsFrame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

struct Harness;

impl Game for Harness {
    fn routes(router: &mut Router<Self>) {
        router.route("flood", |_, ctx: &mut Ctx<'_>, caller, (count, size): (u32, u32)| {
            let blob = "x".repeat(size as usize);
            for _ in 0..count {
                ctx.push(caller.conn, "blob", &blob);
            }
            Ok::<_, AppError>(())
        });
        router.route("big", |_, _, _, size: u32| Ok::<_, AppError>("x".repeat(size as usize)));
    }
}

fn start(config: Config) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        close_timeout: Duration::from_millis(300),
        ..config
    };
    Server::start(config, Harness).expect("server starts")
}

/// Reads until the server's close frame and returns its code and reason.
fn close_of(ws: &mut tungstenite::WebSocket<TcpStream>) -> (u16, String) {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => return (u16::from(frame.code), frame.reason.to_string()),
            Ok(Message::Close(None)) => panic!("a close frame without a code"),
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

/// Everything the server sends until it closes TCP, split into frames: the close frame's code
/// and reason.
fn raw_close_of(mut s: TcpStream) -> (u16, String) {
    let mut all = Vec::new();
    // The server may end with a reset once its close frame is out; what arrived is kept.
    let _ = s.read_to_end(&mut all);
    let mut rest = &all[..];
    while rest.len() >= 2 {
        let (opcode, len) = (rest[0] & 0x0f, usize::from(rest[1] & 0x7f));
        let (start, len) = match len {
            126 => (4, usize::from(u16::from_be_bytes([rest[2], rest[3]]))),
            127 => panic!("no server frame here is that long"),
            len => (2, len),
        };
        let payload = &rest[start..start + len];
        if opcode == 0x8 {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            return (code, String::from_utf8(payload[2..].to_vec()).expect("a UTF-8 reason"));
        }
        rest = &rest[start + len..];
    }
    panic!("no close frame in {all:02x?}")
}

/// A masked client frame (mask 0 keeps the payload readable).
fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn closes_for_what_a_client_sent_carry_their_reasons() {
    let server = start(Config { max_message_bytes: 1024, max_frame_bytes: 1024, ..Config::default() });
    let addr = server.local_addr();

    let mut c = Client::connect(addr);
    c.ws.send(Message::Text("hello".into())).expect("send");
    assert_eq!(close_of(&mut c.ws), (close::UNSUPPORTED, "text messages are not part of ticksock.v1".into()));

    let mut j = common::connect_raw(addr, Some(ticksock_protocol::SUBPROTOCOL_JSON)).expect("upgrade");
    j.send(Message::Binary(vec![0, 1, 0].into())).expect("send");
    assert_eq!(
        close_of(&mut j),
        (close::UNSUPPORTED, "binary messages are not part of ticksock.v1.json".into())
    );

    let mut c = Client::connect(addr);
    c.send_raw(vec![7]);
    assert_eq!(close_of(&mut c.ws), (close::INVALID_DATA, "undecodable frame".into()));

    let mut c = Client::connect(addr);
    let not_utf8 = WsFrame::message(vec![0xff, 0xfe], OpCode::Data(Data::Text), true);
    c.ws.send(Message::Frame(not_utf8)).expect("send");
    assert_eq!(close_of(&mut c.ws), (close::INVALID_DATA, "invalid UTF-8".into()));

    let mut c = Client::connect(addr);
    c.send_raw(vec![0; 2000]);
    assert_eq!(close_of(&mut c.ws), (close::TOO_BIG, "message too big".into()));

    let mut s = raw_upgrade(addr);
    s.write_all(&[0x82, 0x01, 0x00]).expect("an unmasked frame");
    assert_eq!(raw_close_of(s), (close::PROTOCOL, "protocol error".into()));

    // A Close with 1005, a code a peer may not send: tungstenite answers with its own text.
    let mut s = raw_upgrade(addr);
    s.write_all(&masked(0x8, &1005u16.to_be_bytes())).expect("a close with 1005");
    assert_eq!(raw_close_of(s), (close::PROTOCOL, "Protocol violation".into()));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn policy_closes_carry_their_reasons() {
    let server = start(Config {
        rate_messages_per_sec: 10,
        rate_burst_messages: 10,
        rate_strikes: 3,
        ..Config::default()
    });
    let mut c = Client::connect(server.local_addr());
    for id in 0..40 {
        c.request(id, "nope", &[]);
    }
    assert_eq!(close_of(&mut c.ws), (close::POLICY, "rate limit exceeded".into()));
    server.shutdown().expect("clean shutdown");

    let server =
        start(Config { max_outbound_bytes: 256 << 10, write_coalesce_bytes: 16 << 10, ..Config::default() });
    let mut hog = Client::connect(server.local_addr());
    // Pushes to a client that reads nothing are held back and dropped (PROTOCOL.md 7.3);
    // its replies are not: 2 MiB of them, unread, pass the cap of 256 KiB.
    hog.request_typed(1, "flood", &(4096u32, 16u32 << 10));
    for id in 2..130 {
        hog.request_typed(id, "big", &(16u32 << 10));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.metrics().reactor().overflow_closes == 0 {
        assert!(Instant::now() < deadline, "the hog was never cut off");
        std::thread::sleep(Duration::from_millis(10)); // polling a counter, not waiting for a timer
    }
    assert_eq!(close_of(&mut hog.ws), (close::POLICY, "outbound buffer full".into()));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_shutdown_closes_with_its_reason() {
    let server = start(Config::default());
    let mut c = Client::connect(server.local_addr());
    let stopper = server.stopper();
    std::thread::spawn(move || stopper.stop());
    assert_eq!(close_of(&mut c.ws), (close::GOING_AWAY, "server shutting down".into()));
    server.wait().expect("clean shutdown");
}
