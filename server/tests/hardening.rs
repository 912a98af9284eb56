//! Limits and bad input over real sockets: each limit is crossed and the documented outcome
//! checked, with a bystander connection that must not notice.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Client, Frame, raw_upgrade};
use ticksock_protocol::error_code;
use ticksock_server::__internals::TO_LOGIC_BATCH;
use ticksock_server::{AppError, Config, Ctx, Game, Router, RunningServer, Server};
use tungstenite::Message;
use tungstenite::protocol::frame::Frame as WsFrame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

#[derive(Default)]
struct Harness {
    /// Calls of `count` handled.
    counted: u32,
}

impl Game for Harness {
    fn routes(router: &mut Router<Self>) {
        router
            .route("double", |_, _, _, n: u32| Ok::<_, AppError>(n * 2))
            .route("count", |game: &mut Harness, _, _, (): ()| {
                game.counted += 1;
                Ok::<_, AppError>(game.counted)
            })
            .route("counted", |game: &mut Harness, _, _, (): ()| Ok::<_, AppError>(game.counted))
            .route("sum", |_, _, _, v: Vec<u64>| Ok::<_, AppError>(v.iter().sum::<u64>()))
            .route("slow", |_, _, _, ms: u64| {
                // Blocks the logic thread on purpose, to make it fall behind.
                std::thread::sleep(Duration::from_millis(ms));
                Ok::<_, AppError>(())
            })
            .route("leave_me", |_, ctx: &mut Ctx<'_>, caller, (): ()| {
                ctx.close(caller.conn, 4000, "as asked");
                Ok::<_, AppError>(())
            })
            .route("flood", |_, ctx: &mut Ctx<'_>, caller, (count, size): (u32, u32)| {
                // A string encodes with one copy, even in a debug build.
                let blob = "x".repeat(size as usize);
                for _ in 0..count {
                    ctx.push(caller.conn, "blob", &blob);
                }
                Ok::<_, AppError>(())
            });
    }
}

fn start(config: Config) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        close_timeout: Duration::from_millis(300),
        ..config
    };
    Server::start(config, Harness::default()).expect("server starts")
}

fn double(c: &mut Client, id: u32, n: u32) {
    assert_eq!(
        c.call(id, "double", &n),
        Frame::Reply { id, body: ticksock_protocol::encode_body(&(n * 2)).expect("encode") }
    );
}

#[test]
fn over_the_rate_requests_are_refused_then_the_connection_is_closed_with_1008() {
    let server = start(Config {
        rate_messages_per_sec: 10,
        rate_burst_messages: 10,
        rate_strikes: 5,
        ..Config::default()
    });
    let mut bystander = Client::connect(server.local_addr());
    let mut c = Client::connect(server.local_addr());
    for id in 0..10 {
        c.request_typed(id, "double", &id);
    }
    for id in 10..15 {
        c.request_typed(id, "double", &id);
    }
    let mut answered = 0;
    let mut refused = Vec::new();
    for _ in 0..15 {
        match c.recv_answer() {
            Frame::Reply { .. } => answered += 1,
            Frame::Error { id, code, .. } => {
                assert_eq!(code, error_code::RATE_LIMITED);
                refused.push(id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // The burst allowance is 10; the test is fast enough that at most one token came back.
    assert!((10..=11).contains(&answered), "{answered} answered");
    assert!(refused.len() >= 4, "{refused:?}");
    // Keep going past the strikes: closed with 1008.
    for id in 100..110 {
        c.request_typed(id, "double", &id);
    }
    assert_eq!(c.expect_close(), Some(1008));
    double(&mut bystander, 1, 21);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_client_that_does_not_read_costs_bounded_memory_is_closed_when_stalled_and_others_are_unaffected() {
    let server = start(Config {
        max_outbound_bytes: 256 << 10,
        write_coalesce_bytes: 16 << 10,
        stalled_reader_timeout: Duration::from_secs(1),
        ..Config::default()
    });
    let mut bystander = Client::connect(server.local_addr());
    let mut hog = Client::connect(server.local_addr());
    // 64 MiB of pushes to a client that reads nothing: far beyond the kernel's socket buffers.
    // They are events (PROTOCOL.md 7.3): held back up to `max_held_events`, the rest dropped,
    // until the stalled-reader time closes it.
    hog.request_typed(1, "flood", &(4096u32, 16u32 << 10));
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.metrics().reactor().stalled_closes == 0 {
        assert!(Instant::now() < deadline, "the hog was never cut off");
        double(&mut bystander, 2, 2);
        std::thread::sleep(Duration::from_millis(10)); // polling a counter, within the bystander's rate
    }
    double(&mut bystander, 3, 3);
    let counters = server.metrics().reactor();
    let held_bound = Config::default().max_held_events as u64 * ((16 << 10) + 16);
    assert!(counters.held_bytes_max <= held_bound, "held {} bytes", counters.held_bytes_max);
    assert!(counters.events_dropped > 0);
    // The hog finds a 4005 after what was buffered, or a reset once the close timed out.
    hog.ws.get_mut().set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut bytes = 0usize;
    let outcome = loop {
        match hog.ws.read() {
            Ok(Message::Binary(b)) => bytes += b.len(),
            Ok(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(_) => break None,
        }
    };
    assert!(bytes < 32 << 20, "the server stopped buffering long before 64 MiB ({bytes} bytes arrived)");
    assert!(matches!(outcome, Some(ticksock_protocol::CLOSE_STALLED_READER) | None), "{outcome:?}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_ping_flood_that_reads_no_pongs_is_closed_and_others_are_unaffected() {
    // Pings count against the inbound rate like any message, and their pongs against the
    // outbound cap: a client that pings without reading costs bounded memory, then goes.
    let server = start(Config {
        rate_messages_per_sec: 500,
        max_outbound_bytes: 64 << 10,
        write_coalesce_bytes: 16 << 10,
        ..Config::default()
    });
    let mut bystander = Client::connect(server.local_addr());
    let mut flooder = Client::connect(server.local_addr());
    let closes = |s: &RunningServer| {
        let r = s.metrics().reactor();
        r.rate_limited_closes + r.overflow_closes
    };
    let payload = vec![0x55u8; 125];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0u32;
    while closes(&server) == 0 {
        assert!(Instant::now() < deadline, "the flooder was never cut off after {sent} pings");
        // Once the server drops it, writes fail; that is the expected end.
        if flooder.ws.write(Message::Ping(payload.clone().into())).and_then(|()| flooder.ws.flush()).is_err()
        {
            break;
        }
        sent += 1;
        if sent.is_multiple_of(1000) {
            double(&mut bystander, sent, 2);
        }
    }
    double(&mut bystander, 1, 3);
    assert!(sent > 500, "cut off after only {sent} pings, under the rate");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn when_the_logic_thread_falls_behind_the_reactor_stops_reading_instead_of_buffering() {
    let server = start(Config { inbound_queue: 4, ..Config::default() });
    let mut c = Client::connect(server.local_addr());
    let mut bystander = Client::connect(server.local_addr());
    c.request_typed(0, "slow", &300u64);
    for id in 1..=200u32 {
        c.request_typed(id, "double", &id);
    }
    bystander.request_typed(1, "double", &5u32);
    // Everything is answered, in order, once the logic thread catches up.
    assert_eq!(c.recv_answer(), Frame::Reply { id: 0, body: vec![] });
    for id in 1..=200u32 {
        assert_eq!(
            c.recv_answer(),
            Frame::Reply { id, body: ticksock_protocol::encode_body(&(id * 2)).expect("encode") }
        );
    }
    assert!(matches!(bystander.recv_answer(), Frame::Reply { id: 1, .. }));
    let r = server.metrics().reactor();
    // The logic thread was busy with the first batch (more than 4 messages may go when
    // nothing waits); the reactor held only the batch it was filling when it stopped reading.
    // Had it gone on reading, its backlog would have held every request after those.
    assert!(r.backlog_max <= TO_LOGIC_BATCH as u64, "backlog grew to {}", r.backlog_max);
    assert!(r.backlog_max >= 1, "the test did not make the logic thread fall behind");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_body_claiming_a_huge_length_gets_bad_body_not_an_abort() {
    let server = start(Config::default());
    let mut c = Client::connect(server.local_addr());
    // Vec<u64> whose length claims 2^62 elements.
    c.request(1, "sum", &[253, 0, 0, 0, 0, 0, 0, 0, 0x40, 1, 2, 3]);
    assert!(matches!(c.recv_answer(), Frame::Error { id: 1, code: error_code::BAD_BODY, .. }));
    assert_eq!(c.call_ok::<_, u64>(2, "sum", &vec![1u64, 2, 3]), 6);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_single_frame_over_the_frame_limit_closes_with_1009_but_fragments_under_it_pass() {
    let server = start(Config { max_frame_bytes: 1024, max_message_bytes: 8192, ..Config::default() });
    let mut c = Client::connect(server.local_addr());
    // A 3000-byte `sum` request in three frames of 1000 bytes: within both limits.
    let numbers: Vec<u64> = (0..1000).map(|i| i * 1_000_000).collect();
    let mut frame = Vec::new();
    ticksock_protocol::frame::write_request_header(&mut frame, 1, "sum");
    frame.extend(ticksock_protocol::encode_body(&numbers).expect("encode"));
    assert!(frame.len() > 2048 && frame.len() < 8192, "{}", frame.len());
    let chunks: Vec<&[u8]> = frame.chunks(1000).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 { OpCode::Data(Data::Binary) } else { OpCode::Data(Data::Continue) };
        c.ws.write(Message::Frame(WsFrame::message(chunk.to_vec(), opcode, i == chunks.len() - 1)))
            .expect("write");
    }
    c.ws.flush().expect("flush");
    let expected: u64 = numbers.iter().sum();
    assert_eq!(
        c.recv_answer(),
        Frame::Reply { id: 1, body: ticksock_protocol::encode_body(&expected).expect("encode") }
    );
    // One frame of 1100 bytes: over the frame limit.
    c.request(2, "sum", &[0u8; 1100]);
    assert_eq!(c.expect_close(), Some(1009));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn an_unmasked_client_frame_is_a_protocol_error_closed_with_1002() {
    let server = start(Config::default());
    let mut s = raw_upgrade(server.local_addr());
    s.write_all(&[0x82, 0x03, 0x00, 0x01, 0x00]).expect("unmasked binary frame");
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    // After the welcome frame: a close frame (0x88) whose code is 1002 (0x03ea).
    let close = all.windows(4).position(|w| w[0] == 0x88 && w[2] == 0x03 && w[3] == 0xea);
    assert!(close.is_some(), "no close 1002 in {all:02x?}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn requests_before_a_violation_are_answered_before_the_close() {
    // A text frame on the binary protocol closes with 1003; the requests sent ahead of it on
    // the same connection still get their replies, ahead of the close frame.
    let server = start(Config::default());
    let mut c = Client::connect(server.local_addr());
    for id in 1..=20u32 {
        c.request_typed(id, "double", &id);
    }
    c.ws.send(Message::Text("not on this protocol".into())).expect("send text");
    for id in 1..=20u32 {
        assert_eq!(
            c.recv_answer(),
            Frame::Reply { id, body: ticksock_protocol::encode_body(&(id * 2)).expect("encode") }
        );
    }
    assert_eq!(c.expect_close(), Some(1003));

    // Likewise before a protocol violation (an unmasked frame), which drops the connection.
    let mut s = raw_upgrade(server.local_addr());
    let request = [0x00, 0x07, 0x06, b'd', b'o', b'u', b'b', b'l', b'e', 0x05];
    let mut frame = vec![0x82, 0x80 | request.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(&request); // masked with a zero key
    frame.extend_from_slice(&[0x82, 0x03, 0x00, 0x01, 0x00]);
    s.write_all(&frame).expect("a request, then an unmasked frame");
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    // The reply (tag 01, id 07, 10 = 0x0a) and then the close frame with 1002 (0x03ea).
    let reply = all.windows(5).position(|w| w == [0x82, 0x03, 0x01, 0x07, 0x0a]);
    let close = all.windows(4).position(|w| w[0] == 0x88 && w[2] == 0x03 && w[3] == 0xea);
    assert!(matches!((reply, close), (Some(r), Some(c)) if r < c), "{all:02x?}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn after_a_close_for_what_it_sent_the_clients_close_reply_is_read_and_tcp_closes_at_once() {
    // Close 1003 goes out behind the replies; the client's close reply must then be read, so
    // the server closes TCP at once instead of waiting out the close timeout (10 s here).
    let server = start(Config { close_timeout: Duration::from_secs(10), ..Config::default() });
    let mut c = Client::connect(server.local_addr());
    c.ws.send(Message::Text("not on this protocol".into())).expect("send text");
    assert_eq!(c.expect_close(), Some(1003));
    c.ws.flush().expect("the close reply goes out");
    let stream = c.ws.get_mut();
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest);
    assert!(closed.is_ok(), "the server did not close TCP after the close reply: {closed:?}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn requests_sent_after_the_game_closed_a_connection_are_not_handled() {
    // The client asks to be closed and, without waiting, calls `count` 19 times: whichever
    // side of the close they reach the server on (the reactor, or the logic thread), none may
    // act on the game.
    let server = start(Config::default());
    let mut c = Client::connect(server.local_addr());
    c.request_typed(1, "leave_me", &());
    for id in 2..=20u32 {
        c.request_typed(id, "count", &());
    }
    assert_eq!(c.expect_close(), Some(4000));
    // Once the server has read the close reply, which follows the requests on the stream, and
    // closed TCP, every request has reached it.
    c.ws.flush().expect("the close reply goes out");
    let mut rest = Vec::new();
    c.ws.get_mut().read_to_end(&mut rest).expect("the server closes TCP");
    let mut d = Client::connect(server.local_addr());
    let counted: u32 = d.call_ok(1, "counted", &());
    assert_eq!(counted, 0, "requests after the close were handled");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn an_upgrade_request_over_the_handshake_limit_is_answered_431() {
    let server = start(Config { max_handshake_bytes: 1024, ..Config::default() });
    let mut s = TcpStream::connect(server.local_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let request = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n", "a".repeat(2000));
    s.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn metrics_are_served_as_prometheus_text_and_agree_with_what_happened() {
    let server = start(Config::default());
    let mut c = Client::connect(server.local_addr());
    for id in 0..5 {
        double(&mut c, id, id);
    }
    c.request(9, "nope", &[]);
    assert!(matches!(c.recv_answer(), Frame::Error { code: error_code::UNKNOWN_ROUTE, .. }));
    let mut s = TcpStream::connect(server.local_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("metrics");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("ticksock_requests_forwarded_total 5\n"), "{text}");
    assert!(text.contains("ticksock_requests_handled_total 5\n"), "{text}");
    assert!(text.contains("ticksock_error_replies_total{code=\"unknown_route\"} 1\n"), "{text}");
    assert!(text.contains("ticksock_connections_upgraded_total 1\n"), "{text}");
    assert!(text.contains("ticksock_tick_lateness_seconds_count"), "{text}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn head_answers_carry_no_body_and_metrics_ignores_the_query() {
    let server = start(Config { static_files: common::a_page(), ..Config::default() });
    let exchange = |request: &str| {
        let mut s = TcpStream::connect(server.local_addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        s.write_all(request.as_bytes()).expect("write");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("answer, then close");
        answer
    };
    for (request, status) in [("HEAD /metrics?x=1", "200"), ("HEAD /nope", "404"), ("HEAD /", "200")] {
        let answer = exchange(&format!("{request} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{answer}");
        assert!(answer.ends_with("\r\n\r\n"), "a body after the head of a HEAD answer: {answer}");
    }
    let metrics = exchange("GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(metrics.starts_with("HTTP/1.1 200 "), "{metrics}");
    assert!(metrics.contains("ticksock_connections_upgraded_total"), "{metrics}");
    let refused = exchange("PUT / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        refused.starts_with("HTTP/1.1 405 ") && refused.contains("\r\nAllow: GET, HEAD\r\n"),
        "{refused}"
    );
    server.shutdown().expect("clean shutdown");
}

#[test]
fn shutdown_answers_every_request_it_accepted() {
    let server = start(Config { rate_messages_per_sec: u32::MAX, ..Config::default() });
    let addr = server.local_addr();
    let mut c = Client::connect(addr);
    // Keep requests streaming while the server shuts down.
    let sender = c.ws.get_ref().try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let mut ws =
            tungstenite::WebSocket::from_raw_socket(sender, tungstenite::protocol::Role::Client, None);
        let mut sent = 0u32;
        for id in 0..100_000u32 {
            let frame = ticksock_protocol::ClientFrame::Request { id, route: "double", body: &[1] }.to_vec();
            if ws.send(Message::Binary(frame.into())).is_err() {
                break;
            }
            sent += 1;
            if id % 64 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(100));
    let metrics = {
        let stopper = server.stopper();
        std::thread::spawn(move || stopper.stop());
        let mut replies = 0u64;
        let close = loop {
            match c.ws.read() {
                Ok(Message::Binary(_)) => replies += 1,
                Ok(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(e) => panic!("no close frame: {e}"),
            }
        };
        assert_eq!(close, Some(1001));
        (replies, server)
    };
    let (replies, server) = metrics;
    let forwarded = server.metrics().reactor().requests_forwarded;
    let stats = server.wait().expect("clean shutdown");
    let _ = writer.join();
    assert!(forwarded > 0);
    assert_eq!(stats.requests, forwarded, "the logic thread handled every request the reactor accepted");
    assert_eq!(replies, forwarded, "the client got an answer to every accepted request");
}
