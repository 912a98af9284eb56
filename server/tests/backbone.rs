//! The backbone over real loopback sockets: callback ids, ordering, isolation, slot reuse,
//! every error code, heartbeats, and the HTTP side.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Client, Frame, connect_raw};
use ticksock_protocol::error_code;
use ticksock_server::config::MAX_TURN_INTERVAL;
use ticksock_server::{AppError, Caller, Config, ConnId, Ctx, Game, Router, RunningServer, Server};

/// A game for tests: immediate and deferred replies, failures on demand.
#[derive(Default)]
struct TestGame {
    /// Deferred calls, answered when the tick reaches the stored index.
    later: Vec<(u64, Caller, u32)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Later {
    ticks: u64,
    value: u32,
}

impl Game for TestGame {
    fn routes(router: &mut Router<Self>) {
        router
            .route("double", |_, _, _, n: u32| Ok(n * 2))
            .route("fail", |_, _, _, code: u16| -> Result<(), AppError> {
                Err(AppError::new(code, "as asked"))
            })
            .route("panic", |_, _, _, (): ()| -> Result<(), AppError> { panic!("test panic (expected)") })
            .deferred("later", |game: &mut TestGame, ctx: &mut Ctx<'_>, caller, req: Later| {
                game.later.push((ctx.tick() + req.ticks, caller, req.value));
                Ok(())
            })
            .deferred("never", |_, _, _, (): ()| Ok(()));
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.tick();
        self.later.retain(|&(due, caller, value)| {
            if due <= now {
                ctx.reply(caller, &value);
                false
            } else {
                true
            }
        });
    }
}

fn start(config: Config) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        tick_hz: 100,
        close_timeout: Duration::from_millis(300),
        ..config
    };
    Server::start(config, TestGame::default()).expect("server starts")
}

fn reply_u32(frame: &Frame) -> (u32, u32) {
    match frame {
        Frame::Reply { id, body } => (*id, ticksock_protocol::decode_body(body).expect("u32 body")),
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn many_calls_in_flight_are_matched_by_id_even_out_of_order() {
    let server = start(Config::default());
    let mut client = Client::connect(server.local_addr());
    // Ids 1..=60: the odd ones are answered at once, the even ones after 1 to 5 ticks,
    // the later-sent ones sooner, so the answers come back out of order.
    let mut expected = HashMap::new();
    for id in 1..=60u32 {
        if id % 2 == 1 {
            client.request_typed(id, "double", &id);
            expected.insert(id, id * 2);
        } else {
            client.request_typed(id, "later", &Later { ticks: u64::from(6 - id % 5), value: id + 1000 });
            expected.insert(id, id + 1000);
        }
    }
    let mut order = Vec::new();
    while !expected.is_empty() {
        let (id, value) = reply_u32(&client.recv_answer());
        assert_eq!(expected.remove(&id), Some(value), "reply {id} carried {value}");
        order.push(id);
    }
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_ne!(order, sorted, "deferred replies should arrive out of order");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn two_connections_never_see_each_others_replies() {
    let server = start(Config::default());
    let mut a = Client::connect(server.local_addr());
    let mut b = Client::connect(server.local_addr());
    assert_ne!(a.conn_id, b.conn_id);
    for id in 1..=20 {
        a.request_typed(id, "double", &id);
        b.request_typed(id, "double", &(id + 100));
    }
    for id in 1..=20 {
        assert_eq!(reply_u32(&a.recv_answer()), (id, id * 2));
        assert_eq!(reply_u32(&b.recv_answer()), (id, (id + 100) * 2));
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_reply_to_a_closed_connection_never_reaches_the_next_occupant_of_its_slot() {
    let server = start(Config::default());
    let mut a = Client::connect(server.local_addr());
    // Answered 20 ticks (200 ms) from now, after `a` has gone.
    a.request_typed(7, "later", &Later { ticks: 20, value: 666 });
    let a_id = ConnId::from_u64(a.conn_id);
    a.ws.close(None).expect("close");
    a.expect_close();
    drop(a);

    // Wait until the server has freed the slot, so the next connection takes it.
    let mut b = loop {
        let b = Client::connect(server.local_addr());
        if ConnId::from_u64(b.conn_id).index() == a_id.index() {
            break b;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let b_id = ConnId::from_u64(b.conn_id);
    assert_ne!(b_id.generation(), a_id.generation());

    // Give the stale reply time to be produced, then check b only sees its own answers.
    std::thread::sleep(Duration::from_millis(400));
    b.request_typed(7, "double", &21u32);
    assert_eq!(reply_u32(&b.recv_answer()), (7, 42), "b must not get a's reply 666");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn every_error_code_is_answered_with_the_callback_id_and_the_connection_survives() {
    let server = start(Config::default());
    let mut c = Client::connect(server.local_addr());
    let error_of = |frame: Frame| match frame {
        Frame::Error { id, code, .. } => (id, code),
        other => panic!("expected an error, got {other:?}"),
    };

    c.request(1, "no-such-route", &[]);
    assert_eq!(error_of(c.recv_answer()), (1, error_code::UNKNOWN_ROUTE));

    c.request(2, "double", &[0xff]); // not a valid u32 varint
    assert_eq!(error_of(c.recv_answer()), (2, error_code::BAD_BODY));

    c.request_typed(3, "panic", &());
    assert_eq!(error_of(c.recv_answer()), (3, error_code::INTERNAL));

    // Request tag, id 4, a route of length 2 that is not UTF-8.
    c.send_raw(vec![0, 4, 2, 0xff, 0xfe]);
    assert_eq!(error_of(c.recv_answer()), (4, error_code::BAD_FRAME));

    c.request_typed(5, "fail", &1234u16);
    assert_eq!(error_of(c.recv_answer()), (5, 1234));

    // Still fine after all that.
    assert_eq!(reply_u32(&c.call(6, "double", &5u32)), (6, 10));

    // A deferred call nobody answers is failed at shutdown, not left hanging.
    c.request_typed(7, "never", &());
    assert_eq!(reply_u32(&c.call(8, "double", &1u32)), (8, 2));
    let stopping = std::thread::spawn(move || server.shutdown());
    assert_eq!(error_of(c.recv_answer()), (7, error_code::SHUTTING_DOWN));
    assert_eq!(c.expect_close(), Some(1001));
    stopping.join().expect("shutdown thread").expect("clean shutdown");
}

#[test]
fn an_undecodable_frame_without_an_id_closes_with_1007_and_others_are_unaffected() {
    let server = start(Config::default());
    let mut bystander = Client::connect(server.local_addr());
    let mut c = Client::connect(server.local_addr());
    c.send_raw(vec![9]); // unknown frame kind
    assert_eq!(c.expect_close(), Some(1007));
    let mut empty = Client::connect(server.local_addr());
    empty.send_raw(vec![]);
    assert_eq!(empty.expect_close(), Some(1007));
    assert_eq!(reply_u32(&bystander.call(1, "double", &4u32)), (1, 8));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_text_frame_closes_with_1003() {
    let server = start(Config::default());
    let mut c = Client::connect(server.local_addr());
    c.ws.send(tungstenite::Message::Text("hello".into())).expect("send");
    assert_eq!(c.expect_close(), Some(1003));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_message_over_the_limit_closes_with_1009() {
    let server = start(Config { max_message_bytes: 1024, max_frame_bytes: 1024, ..Config::default() });
    let mut c = Client::connect(server.local_addr());
    c.request(1, "double", &[0u8; 1000]); // under the limit: answered
    assert!(matches!(c.recv_answer(), Frame::Error { id: 1, .. }));
    c.request(2, "double", &[0u8; 1100]);
    assert_eq!(c.expect_close(), Some(1009));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_client_without_the_subprotocol_gets_a_clear_http_400() {
    let server = start(Config::default());
    for offered in [None, Some("chat.v2")] {
        match connect_raw(server.local_addr(), offered) {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400);
                let body = response.body().as_ref().expect("a body");
                assert!(String::from_utf8_lossy(body).contains(ticksock_protocol::SUBPROTOCOL));
            }
            other => panic!("expected HTTP 400, got {other:?}"),
        }
    }
    server.shutdown().expect("clean shutdown");
}

fn http_get(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("the server answers and closes");
    response
}

#[test]
fn plain_http_gets_an_answer_not_a_hang() {
    let server = start(Config { static_files: common::a_page(), ..Config::default() });
    let ok = http_get(server.local_addr(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200") && ok.ends_with("<p>game</p>"), "{ok}");
    let missing = http_get(server.local_addr(), "GET /nothing HTTP/1.1\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_server_without_static_files_serves_no_page() {
    let server = start(Config::default());
    let missing = http_get(server.local_addr(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn over_max_connections_is_answered_503_and_existing_ones_are_unaffected() {
    let server = start(Config { max_connections: 2, ..Config::default() });
    let mut a = Client::connect(server.local_addr());
    let _b = Client::connect(server.local_addr());
    let refused = http_get(server.local_addr(), "GET / HTTP/1.1\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert_eq!(reply_u32(&a.call(1, "double", &2u32)), (1, 4));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_silent_connection_is_pinged_then_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(400);
    let server =
        start(Config { ping_interval: Duration::from_millis(100), idle_timeout: idle, ..Config::default() });
    let mut silent = Client::connect(server.local_addr());
    // This client answers pings by reading; it must outlive the idle timeout.
    let mut lively = Client::connect(server.local_addr());
    let opened = Instant::now();

    // The silent one does not read, so tungstenite cannot answer the server's pings.
    let mut pings = 0;
    lively.ws.get_mut().set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
    while opened.elapsed() < idle * 3 {
        match lively.ws.read() {
            Ok(tungstenite::Message::Ping(_)) => pings += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(_)) => {}
            Err(e) => panic!("lively client was closed: {e}"),
        }
        let _ = lively.ws.flush();
    }
    assert!(pings >= 1, "the server pings a quiet connection");
    lively.ws.get_mut().set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    assert_eq!(reply_u32(&lively.call(1, "double", &3u32)), (1, 6));

    // The silent connection was dropped: reading now ends in EOF or reset, not a timeout.
    silent.ws.get_mut().set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let mut closed = false;
    for _ in 0..10 {
        match silent.ws.read() {
            Ok(tungstenite::Message::Ping(_)) => continue,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "the silent connection should have been closed");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_silent_tcp_client_is_closed_after_the_handshake_timeout() {
    let server = start(Config { handshake_timeout: Duration::from_millis(200), ..Config::default() });
    let mut s = TcpStream::connect(server.local_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    s.write_all(b"GET / HTTP/1.1\r\n").expect("partial request");
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without a response");
    assert!(started.elapsed() < Duration::from_secs(2));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn the_reactor_turns_no_more_often_than_min_turn_interval() {
    // Each call's reply goes out on a later turn than its request was read in, so with the
    // largest interval allowed (10 ms) between turns five calls in a row take at least four.
    let paced = start(Config { min_turn_interval: MAX_TURN_INTERVAL, ..Config::default() });
    let mut c = Client::connect(paced.local_addr());
    let started = Instant::now();
    for id in 1..=5u32 {
        assert_eq!(reply_u32(&c.call(id, "double", &id)), (id, id * 2));
    }
    let took = started.elapsed();
    assert!(took >= 4 * MAX_TURN_INTERVAL, "5 calls took {took:?}");
    paced.shutdown().expect("clean shutdown");

    // The default (100 µs) costs a round trip next to nothing.
    let server = start(Config::default());
    let mut c = Client::connect(server.local_addr());
    let started = Instant::now();
    for id in 1..=5u32 {
        assert_eq!(reply_u32(&c.call(id, "double", &id)), (id, id * 2));
    }
    let took = started.elapsed();
    // A loose bound, for loaded machines: five local round trips take about a millisecond.
    assert!(took < Duration::from_millis(160), "5 calls took {took:?} with the default interval");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn an_idle_server_shuts_down_without_waiting_for_a_timer() {
    // Nothing to send at the end: the reactor must still see at once that the logic thread is
    // done, not at its next sweep (1 s with the default timeouts).
    let server = start(Config::default());
    let started = Instant::now();
    server.shutdown().expect("clean shutdown");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "shutdown took {took:?}");
}

#[test]
fn a_large_static_file_reaches_a_slow_reader_whole_past_the_handshake_timeout() {
    // The handshake timeout bounds a stalled client, not an answer that is still moving: a
    // 16 MiB file read at about 20 MB/s takes longer than the 300 ms timeout here.
    let dir = std::env::temp_dir().join(format!("ticksock-large-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("big.bin"), &file).expect("write");
    let static_files = ticksock_server::StaticFiles::from_dir(&dir).expect("reads");
    std::fs::remove_dir_all(&dir).expect("cleanup");
    let server =
        start(Config { static_files, handshake_timeout: Duration::from_millis(300), ..Config::default() });

    let mut s = TcpStream::connect(server.local_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 512 << 10];
    let started = Instant::now();
    loop {
        let n = s.read(&mut chunk).expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
        std::thread::sleep(Duration::from_millis(25));
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    assert!(started.elapsed() > Duration::from_millis(300), "the read was not slow enough to test anything");
    assert_eq!(got.len() - head_end, file.len(), "the whole file, after {:?}", started.elapsed());
    assert!(got[head_end..] == file[..], "the file's bytes");
    server.shutdown().expect("clean shutdown");
}
