//! Version 2 sessions over real sockets (PROTOCOL.md section 11): a link dropped without a
//! close is resumed with what it missed, requests resent after a resume run at most once, and
//! each way a resume can fail is refused with its reason and costs the session nothing.
//!
//! Over 600 lines: independent tests, one rule of section 11 each, that share the small version
//! 2 client and the game at the top (written against the protocol crate alone, so that the
//! server is checked by something other than the client crate that shares its authors).

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ticksock_protocol::v2::{self, ServerFrame};
use ticksock_protocol::{Encoding, Secret, error_code, resume_reason};
use ticksock_server::{AppError, Config, ConnId, Ctx, Game, Router, RunningServer, Server};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// What the game saw, in order.
type Log = Arc<Mutex<Vec<String>>>;

struct Counter {
    log: Log,
    /// Runs of each (connection, callback id).
    runs: Arc<Mutex<HashMap<(ConnId, u32), u32>>>,
}

impl Game for Counter {
    fn routes(router: &mut Router<Self>) {
        router.latest_wins("latest");
        router
            .route("latest", |_, ctx: &mut Ctx<'_>, caller, (count, len): (u32, u32)| {
                let blob = "x".repeat(len as usize);
                for i in 0..count {
                    ctx.push(caller.conn, "latest", &(i, &blob));
                }
                Ok::<_, AppError>(())
            })
            .route("count", |game: &mut Counter, _, caller, (): ()| {
                let mut runs = game.runs.lock();
                let n = runs.entry((caller.conn, caller.id)).or_default();
                *n += 1;
                Ok::<_, AppError>(*n)
            })
            .route("push", |_, ctx: &mut Ctx<'_>, caller, n: u32| {
                for i in 0..n {
                    ctx.push(caller.conn, "n", &i);
                }
                Ok::<_, AppError>(())
            })
            .route("blob", |_, ctx: &mut Ctx<'_>, caller, len: u32| {
                ctx.push(caller.conn, "blob", &"x".repeat(len as usize));
                Ok::<_, AppError>(())
            })
            .route("blob_to", |_, ctx: &mut Ctx<'_>, _, (conn, len): (u64, u32)| {
                ctx.push(ConnId::from_u64(conn), "blob", &"x".repeat(len as usize));
                Ok::<_, AppError>(())
            })
            .route("push_blobs", |_, ctx: &mut Ctx<'_>, caller, (count, len): (u32, u32)| {
                let blob = "x".repeat(len as usize);
                for _ in 0..count {
                    ctx.push(caller.conn, "blob", &blob);
                }
                Ok::<_, AppError>(())
            })
            .route("close_me", |_, ctx: &mut Ctx<'_>, caller, (): ()| {
                ctx.close(caller.conn, 4000, "as asked");
                Ok::<_, AppError>(())
            });
    }

    fn on_connect(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.log.lock().push(format!("connect {conn}"));
    }
    fn on_drop(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.log.lock().push(format!("drop {conn}"));
        // Sent while it has no link: kept for the resume.
        ctx.push(conn, "while_dropped", &7u32);
    }
    fn on_resume(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.log.lock().push(format!("resume {conn}"));
    }
    fn on_expire(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.log.lock().push(format!("expire {conn}"));
    }
    fn on_disconnect(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.log.lock().push(format!("disconnect {conn}"));
    }
}

struct Harness {
    server: RunningServer,
    log: Log,
    runs: Arc<Mutex<HashMap<(ConnId, u32), u32>>>,
}

fn start(config: Config) -> Harness {
    let log = Log::default();
    let runs = Arc::default();
    let game = Counter { log: Arc::clone(&log), runs: Arc::clone(&runs) };
    let config = Config { listen: "127.0.0.1:0".parse().expect("addr"), ..config };
    Harness { server: Server::start(config, game).expect("server starts"), log, runs }
}

impl Harness {
    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Waits until the game's log holds `line`.
    fn await_log(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log.lock().iter().any(|l| l == line) {
            assert!(Instant::now() < deadline, "never logged {line:?}; log: {:?}", self.log.lock());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn most_runs(&self) -> u32 {
        self.runs.lock().values().copied().max().unwrap_or(0)
    }
}

/// A server frame, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Reply(u32, Vec<u8>),
    /// A reply stamped with a tick (a session that asked for stamps, PROTOCOL.md 4.3).
    TickReply(u32, u64, Vec<u8>),
    Error(u32, u16),
    Push(String, Vec<u8>),
    Resumed(u64, Secret),
    ResumeFailed(u16),
    Ack(u64),
}

/// What a version 2 client keeps of its session (PROTOCOL.md 11.2).
#[derive(Debug, Clone, Copy)]
struct State {
    conn_id: u64,
    epoch: u64,
    secret: Secret,
    /// Sequenced frames received on the session.
    received: u64,
    /// The next request's number.
    next_seq: u64,
}

/// A version 2 client written against the protocol crate alone.
struct Link {
    ws: WebSocket<TcpStream>,
    s: State,
}

impl Link {
    /// A new link offering `ticksock.v2`, its Welcome read.
    fn connect(addr: SocketAddr) -> Link {
        Link::connect_to(addr, "/")
    }

    /// A new link to `path` (which may hold a query) offering `ticksock.v2`, its Welcome read.
    fn connect_to(addr: SocketAddr, path: &str) -> Link {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut request = format!("ws://{addr}{path}").into_client_request().expect("request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", "ticksock.v2".parse().expect("header"));
        let (mut ws, response) = tungstenite::client(request, stream).expect("upgrade");
        let chosen = response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok());
        assert_eq!(chosen, Some("ticksock.v2"));
        let Message::Binary(bytes) = ws.read().expect("welcome") else { panic!("not binary") };
        match v2::decode_server_frame(Encoding::Binary, &bytes).expect("decodes") {
            ServerFrame::Welcome { version, conn_id, epoch, secret, .. } => {
                assert_eq!(version, 2);
                Link { ws, s: State { conn_id, epoch, secret, received: 0, next_seq: 1 } }
            }
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    fn conn(&self) -> ConnId {
        ConnId::from_u64(self.s.conn_id)
    }

    fn send(&mut self, frame: Vec<u8>) {
        self.ws.send(Message::Binary(frame.into())).expect("send");
    }

    /// Sends a request with an explicit number, acknowledging what was received.
    fn request_numbered<T: serde::Serialize>(&mut self, seq: u64, id: u32, route: &str, body: &T) {
        self.request_acking(seq, self.s.received, id, route, body);
    }

    /// Sends a request with an explicit number and acknowledgement.
    fn request_acking<T: serde::Serialize>(&mut self, seq: u64, ack: u64, id: u32, route: &str, body: &T) {
        let mut frame = Vec::new();
        v2::write_request(Encoding::Binary, &mut frame, seq, ack, id, route, body).expect("encode");
        self.send(frame);
    }

    /// Sends the next request.
    fn request<T: serde::Serialize>(&mut self, id: u32, route: &str, body: &T) -> u64 {
        let seq = self.s.next_seq;
        self.s.next_seq += 1;
        self.request_numbered(seq, id, route, body);
        seq
    }

    fn ack(&mut self) {
        let mut frame = Vec::new();
        v2::write_client_ack(Encoding::Binary, &mut frame, self.s.received);
        self.send(frame);
    }

    fn recv(&mut self) -> Got {
        loop {
            let message = self.ws.read().expect("a frame");
            let Message::Binary(bytes) = message else { continue };
            let got = match v2::decode_server_frame(Encoding::Binary, &bytes).expect("decodes") {
                ServerFrame::Reply { id, body } => Got::Reply(id, body.to_vec()),
                ServerFrame::TickReply { id, tick, body } => Got::TickReply(id, tick, body.to_vec()),
                ServerFrame::Error { id, code, .. } => Got::Error(id, code),
                ServerFrame::Push { topic, body } => Got::Push(topic.into_owned(), body.to_vec()),
                ServerFrame::Resumed { received, secret } => Got::Resumed(received, secret),
                ServerFrame::ResumeFailed { reason, .. } => Got::ResumeFailed(reason),
                ServerFrame::Ack { received } => Got::Ack(received),
                ServerFrame::Welcome { .. } => panic!("a second welcome"),
            };
            if matches!(got, Got::Reply(..) | Got::TickReply(..) | Got::Error(..) | Got::Push(..)) {
                self.s.received += 1;
            }
            return got;
        }
    }

    /// The next frame that is not a push of the game's `on_drop` (which every drop makes).
    fn recv_answer(&mut self) -> Got {
        loop {
            match self.recv() {
                Got::Push(topic, _) if topic == "while_dropped" => {}
                other => return other,
            }
        }
    }

    /// Drops the TCP connection without a close frame, as a network would; the session's
    /// state is what is left.
    fn kill(self) -> State {
        let _ = self.ws.get_ref().shutdown(Shutdown::Both);
        self.s
    }
}

impl State {
    /// A new link that resumes this session, claiming `received` frames received with
    /// `secret`; the server's answer. On success the link carries the session on.
    fn resume_with(&self, addr: SocketAddr, secret: Secret, received: u64) -> (Link, Got) {
        let mut link = Link::connect(addr);
        let mut frame = Vec::new();
        v2::write_resume(Encoding::Binary, &mut frame, self.conn_id, self.epoch, &secret, received);
        link.send(frame);
        let answer = link.recv();
        if let Got::Resumed(_, secret) = answer {
            link.s = State { secret, received, ..*self };
        }
        (link, answer)
    }

    /// Resumes, expecting success: the new link, and the server's received count.
    fn resume(&self, addr: SocketAddr) -> (Link, u64) {
        let (link, answer) = self.resume_with(addr, self.secret, self.received);
        match answer {
            Got::Resumed(received, _) => (link, received),
            other => panic!("expected Resumed, got {other:?}"),
        }
    }
}

fn u32_body(n: u32) -> Vec<u8> {
    ticksock_protocol::encode_body(&n).expect("encode")
}

#[test]
fn a_dropped_link_resumes_with_every_reply_and_push_it_missed_in_order() {
    let h = start(Config::default());
    let mut a = Link::connect(h.addr());
    assert_eq!(a.request(1, "count", &()), 1);
    assert_eq!(a.recv(), Got::Reply(1, u32_body(1)));
    h.await_log(&format!("connect {}", a.conn()));
    // Two pushes and a reply sent, none read before the link dies.
    a.request(2, "push", &2u32);
    a.request(3, "count", &());
    std::thread::sleep(Duration::from_millis(100));
    let conn = a.conn();
    let state = a.kill();
    h.await_log(&format!("drop {conn}"));
    let (mut b, received) = state.resume(h.addr());
    assert_eq!(received, 3, "the server had taken requests 1..=3");
    let replay: Vec<Got> = (0..5).map(|_| b.recv()).collect();
    assert_eq!(
        replay,
        [
            Got::Push("n".into(), u32_body(0)),
            Got::Push("n".into(), u32_body(1)),
            Got::Reply(2, vec![]),
            Got::Reply(3, u32_body(1)),
            Got::Push("while_dropped".into(), u32_body(7)),
        ]
    );
    h.await_log(&format!("resume {conn}"));
    // The session goes on: the same connection for the game, the numbering continued.
    assert_eq!(b.request(4, "count", &()), 4);
    assert_eq!(b.recv(), Got::Reply(4, u32_body(1)));
    let log = h.log.lock().clone();
    assert_eq!(log, [format!("connect {conn}"), format!("drop {conn}"), format!("resume {conn}")]);
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_session_that_asked_for_tick_stamps_keeps_them_across_a_resume_and_errors_carry_none() {
    let h = start(Config::default());
    let mut a = Link::connect_to(h.addr(), "/?ticks=1");
    a.request(1, "count", &());
    let Got::TickReply(1, first, body) = a.recv() else { panic!("not a stamped reply") };
    assert_eq!(body, u32_body(1));
    a.request(2, "no_such_route", &());
    assert_eq!(a.recv(), Got::Error(2, ticksock_protocol::error_code::UNKNOWN_ROUTE));
    a.request(3, "count", &());
    std::thread::sleep(Duration::from_millis(100));
    let conn = a.conn();
    let state = a.kill();
    h.await_log(&format!("drop {conn}"));
    // The resuming link does not ask again: the session keeps what its first link asked for.
    let (mut b, _) = state.resume(h.addr());
    match b.recv_answer() {
        Got::TickReply(3, tick, body) => {
            assert!(tick >= first, "ticks only grow: {tick} after {first}");
            assert_eq!(body, u32_body(1));
        }
        other => panic!("expected the kept stamped reply, got {other:?}"),
    }
    b.request(4, "count", &());
    assert!(matches!(b.recv_answer(), Got::TickReply(4, ..)));
    // A session that did not ask gets plain replies, as before.
    let mut plain = Link::connect_to(h.addr(), "/?ticks=0");
    plain.request(1, "count", &());
    assert_eq!(plain.recv(), Got::Reply(1, u32_body(1)));
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_request_resent_after_a_resume_runs_once_and_is_answered_from_what_was_kept() {
    let h = start(Config::default());
    let mut a = Link::connect(h.addr());
    a.request(1, "count", &());
    assert_eq!(a.recv(), Got::Reply(1, u32_body(1)));
    a.request(2, "count", &());
    // Its reply is sent but never read: the link dies first.
    std::thread::sleep(Duration::from_millis(100));
    let conn = a.conn();
    let state = a.kill();
    h.await_log(&format!("drop {conn}"));
    let (mut b, received) = state.resume(h.addr());
    assert_eq!(received, 2);
    assert_eq!(b.recv(), Got::Reply(2, u32_body(1)), "replayed");
    assert_eq!(b.recv(), Got::Push("while_dropped".into(), u32_body(7)));
    // A client that resends request 2 anyway, before acknowledging its answer: answered
    // again from the kept answer, not run.
    b.request_acking(2, 1, 2, "count", &());
    assert_eq!(b.recv(), Got::Reply(2, u32_body(1)));
    // Once acknowledged, the answer is gone: a resend is refused as stale, and still not run.
    b.ack();
    b.request_numbered(2, 2, "count", &());
    assert_eq!(b.recv(), Got::Error(2, error_code::STALE_REQUEST));
    // A number that skips ahead is refused and not counted.
    b.request_numbered(9, 9, "count", &());
    assert_eq!(b.recv(), Got::Error(9, error_code::BAD_FRAME));
    b.request_numbered(3, 3, "count", &());
    assert_eq!(b.recv(), Got::Reply(3, u32_body(1)));
    assert_eq!(h.most_runs(), 1, "no request ran twice");
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_resume_that_beats_the_old_links_timeout_ends_that_link_and_nothing_else() {
    let h = start(Config::default());
    let mut a = Link::connect(h.addr());
    a.request(1, "count", &());
    assert_eq!(a.recv(), Got::Reply(1, u32_body(1)));
    // The old link stays open but silent: half-open, as far as the server can tell.
    let (mut b, received) = a.s.resume(h.addr());
    assert_eq!(received, 1);
    h.await_log(&format!("resume {}", b.conn()));
    // The server ended the old link at once, without a close frame.
    match a.ws.read() {
        Err(
            tungstenite::Error::Protocol(_)
            | tungstenite::Error::Io(_)
            | tungstenite::Error::ConnectionClosed,
        ) => {}
        other => panic!("the old link was not ended: {other:?}"),
    }
    // ... and that end did not touch the session: the game heard of a drop and a resume, in
    // that order, and never of a disconnect.
    b.request(2, "count", &());
    assert_eq!(b.recv_answer(), Got::Reply(2, u32_body(1)));
    let conn = b.conn();
    let log = h.log.lock().clone();
    assert_eq!(log, [format!("connect {conn}"), format!("drop {conn}"), format!("resume {conn}")]);
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn each_refused_resume_has_its_reason_and_costs_the_session_nothing() {
    let h = start(Config::default());
    let mut a = Link::connect(h.addr());
    a.request(1, "count", &());
    assert_eq!(a.recv(), Got::Reply(1, u32_body(1)));
    let s = a.s;
    let unknown = State { conn_id: ConnId::new(9, 999_999).to_u64(), ..s };
    let other_run = State { epoch: s.epoch ^ 1, ..s };
    let cases = [
        ("a wrong secret", s.resume_with(h.addr(), [0xab; 16], 1).1, resume_reason::BAD_SECRET),
        ("more than was sent", s.resume_with(h.addr(), s.secret, 5).1, resume_reason::BAD_COUNT),
        (
            "a session never made",
            unknown.resume_with(h.addr(), s.secret, 0).1,
            resume_reason::UNKNOWN_SESSION,
        ),
        ("another server run", other_run.resume_with(h.addr(), s.secret, 1).1, resume_reason::RESTARTED),
    ];
    for (what, got, reason) in cases {
        assert_eq!(got, Got::ResumeFailed(reason), "{what}");
    }
    // After all that, the real owner resumes; once it has shown it read its Resumed, a replay
    // of its resume is superseded.
    let (mut b, _) = s.resume(h.addr());
    b.request(2, "count", &());
    assert_eq!(b.recv_answer(), Got::Reply(2, u32_body(1)));
    let (_, replayed) = s.resume_with(h.addr(), s.secret, 1);
    assert_eq!(replayed, Got::ResumeFailed(resume_reason::SUPERSEDED));
    // A resume that is not the first frame is refused and ignored.
    let mut frame = Vec::new();
    v2::write_resume(Encoding::Binary, &mut frame, b.s.conn_id, b.s.epoch, &b.s.secret, 1);
    b.send(frame);
    assert_eq!(b.recv_answer(), Got::ResumeFailed(resume_reason::NOT_FIRST));
    b.request(3, "count", &());
    assert_eq!(b.recv_answer(), Got::Reply(3, u32_body(1)), "the session is unharmed");
    let log = h.log.lock().clone();
    assert!(!log.iter().any(|l| l.starts_with("disconnect")), "{log:?}");
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_resume_whose_resumed_was_lost_can_be_made_again_with_the_same_secret() {
    let h = start(Config::default());
    let mut a = Link::connect(h.addr());
    a.request(1, "count", &());
    assert_eq!(a.recv(), Got::Reply(1, u32_body(1)));
    let state = a.kill();
    // The resume succeeds, but its link dies before the client reads Resumed.
    let mut frame = Vec::new();
    v2::write_resume(Encoding::Binary, &mut frame, state.conn_id, state.epoch, &state.secret, 1);
    let mut lost = Link::connect(h.addr());
    lost.send(frame);
    std::thread::sleep(Duration::from_millis(50));
    lost.kill();
    // The client still holds the old secret: it resumes with it, and the session goes on.
    let (mut b, received) = state.resume(h.addr());
    assert_eq!(received, 1);
    b.request(2, "count", &());
    // Pushes of the two drops (the game's `on_drop`) come first.
    let answer = loop {
        match b.recv() {
            Got::Push(topic, _) if topic == "while_dropped" => {}
            other => break other,
        }
    };
    assert_eq!(answer, Got::Reply(2, u32_body(1)));
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_session_ends_at_its_grace_and_a_later_resume_is_told_so() {
    let h = start(Config { session_grace: Duration::from_millis(200), ..Config::default() });
    let mut a = Link::connect(h.addr());
    a.request(1, "count", &());
    assert_eq!(a.recv(), Got::Reply(1, u32_body(1)));
    let conn = a.conn();
    let state = a.kill();
    h.await_log(&format!("drop {conn}"));
    h.await_log(&format!("disconnect {conn}"));
    let log = h.log.lock().clone();
    assert_eq!(
        log,
        [
            format!("connect {conn}"),
            format!("drop {conn}"),
            format!("expire {conn}"),
            format!("disconnect {conn}")
        ]
    );
    let (mut c, got) = state.resume_with(h.addr(), state.secret, 1);
    assert_eq!(got, Got::ResumeFailed(resume_reason::ENDED));
    // The link carries on as the new session of its Welcome.
    c.request(1, "count", &());
    assert_eq!(c.recv(), Got::Reply(1, u32_body(1)));
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_session_without_a_link_ends_when_it_would_hold_more_than_its_bound() {
    let h = start(Config { session_replay_bytes: 4096, ..Config::default() });
    let mut a = Link::connect(h.addr());
    a.request(1, "count", &());
    assert_eq!(a.recv(), Got::Reply(1, u32_body(1)));
    a.ack();
    let conn = a.conn();
    let state = a.kill();
    h.await_log(&format!("drop {conn}"));
    // Another player sends it two blobs of 3000 bytes while it has no link.
    let mut other = Link::connect(h.addr());
    other.request(1, "blob_to", &(state.conn_id, 3000u32));
    assert_eq!(other.recv(), Got::Reply(1, vec![]));
    assert_eq!(h.server.metrics().reactor().resumes, 0);
    other.request(2, "blob_to", &(state.conn_id, 3000u32));
    assert_eq!(other.recv(), Got::Reply(2, vec![]));
    h.await_log(&format!("disconnect {conn}"));
    assert_eq!(state.resume_with(h.addr(), state.secret, 1).1, Got::ResumeFailed(resume_reason::ENDED));
    h.server.shutdown().expect("clean shutdown");
}

/// A server whose outbound queue is 72 KiB and whose replay bound fills all of it but its
/// headroom, and a session on it that has made one call.
fn small_buffers_and_a_session() -> (Harness, Link) {
    let config = Config {
        write_coalesce_bytes: 16 << 10,
        max_outbound_bytes: 72 << 10,
        session_replay_bytes: (72 << 10) - 4096,
        stalled_reader_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    let h = start(config);
    let mut a = Link::connect(h.addr());
    a.request(1, "count", &());
    assert_eq!(a.recv(), Got::Reply(1, u32_body(1)));
    (h, a)
}

#[test]
fn a_replay_buffer_filled_to_its_bound_is_replayed_whole_into_the_new_link() {
    // The bound is the outbound queue's less its headroom: the replay must fit it at once.
    let (h, mut a) = small_buffers_and_a_session();
    a.ack();
    let conn = a.conn();
    let state = a.kill();
    h.await_log(&format!("drop {conn}"));
    // 65 000 of its 69 632 bytes filled while it has no link, in three blobs.
    let mut other = Link::connect(h.addr());
    for id in 1..=3 {
        other.request(id, "blob_to", &(state.conn_id, 21_650u32));
        assert_eq!(other.recv(), Got::Reply(id, vec![]));
    }
    let (mut b, _) = state.resume(h.addr());
    let topics: Vec<String> = (0..4)
        .map(|_| match b.recv() {
            Got::Push(topic, _) => topic,
            other => panic!("expected a push, got {other:?}"),
        })
        .collect();
    assert_eq!(topics, ["while_dropped", "blob", "blob", "blob"]);
    b.request(2, "count", &());
    assert_eq!(b.recv(), Got::Reply(2, u32_body(1)), "the new link survived its replay");
    assert_eq!(h.server.metrics().reactor().overflow_closes, 0);
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_session_whose_link_died_before_its_first_frame_resumes_and_is_announced_then() {
    let h = start(Config::default());
    let a = Link::connect(h.addr());
    let conn = a.conn();
    let state = a.kill();
    std::thread::sleep(Duration::from_millis(50));
    assert!(h.log.lock().is_empty(), "the game knows nothing of it yet: {:?}", h.log.lock());
    let (mut b, received) = state.resume(h.addr());
    assert_eq!(received, 0);
    h.await_log(&format!("connect {conn}"));
    b.request(1, "count", &());
    assert_eq!(b.recv_answer(), Got::Reply(1, u32_body(1)));
    assert_eq!(h.log.lock().clone(), [format!("connect {conn}")], "a connect, not a drop and a resume");
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_session_whose_link_died_before_its_first_frame_keeps_what_that_link_asked_for() {
    let h = start(Config::default());
    let a = Link::connect_to(h.addr(), "/?ticks=1");
    let conn = a.conn();
    let state = a.kill();
    std::thread::sleep(Duration::from_millis(50));
    // The resuming link does not ask: the session has what its first link asked for.
    let (mut b, _) = state.resume(h.addr());
    h.await_log(&format!("connect {conn}"));
    b.request(1, "count", &());
    assert!(matches!(b.recv_answer(), Got::TickReply(1, ..)), "the first link asked for stamps");
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_session_the_server_is_closing_cannot_be_resumed() {
    let h = start(Config { close_timeout: Duration::from_secs(10), ..Config::default() });
    let mut a = Link::connect(h.addr());
    a.request(1, "count", &());
    assert_eq!(a.recv(), Got::Reply(1, u32_body(1)));
    // The game closes it; the client never reads the close frame (so never answers it), and
    // resumes instead.
    a.request(2, "close_me", &());
    let conn = a.conn();
    std::thread::sleep(Duration::from_millis(200));
    let (_, got) = a.s.resume_with(h.addr(), a.s.secret, a.s.received);
    assert_eq!(got, Got::ResumeFailed(resume_reason::ENDED));
    drop(a);
    h.await_log(&format!("disconnect {conn}"));
    assert!(!h.log.lock().iter().any(|l| l.starts_with("resume")));
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn sessions_waiting_for_a_resume_never_outnumber_the_connection_limit() {
    let h = start(Config { max_connections: 2, ..Config::default() });
    let mut states = Vec::new();
    for id in 1..=3u32 {
        let mut link = Link::connect(h.addr());
        link.request(id, "count", &());
        assert_eq!(link.recv(), Got::Reply(id, u32_body(1)));
        let conn = link.conn();
        states.push(link.kill());
        h.await_log(&format!("drop {conn}"));
    }
    // The third drop made three waiting sessions for a limit of two: the oldest went.
    let first = ConnId::from_u64(states[0].conn_id);
    h.await_log(&format!("disconnect {first}"));
    assert_eq!(h.server.metrics().reactor().sessions_evicted, 1);
    assert_eq!(
        states[0].resume_with(h.addr(), states[0].secret, 1).1,
        Got::ResumeFailed(resume_reason::ENDED)
    );
    let (mut b, _) = states[2].resume(h.addr());
    b.request(9, "count", &());
    assert_eq!(b.recv_answer(), Got::Reply(9, u32_body(1)));
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_link_that_stops_reading_is_dropped_not_closed_and_its_session_waits() {
    let (h, mut a) = small_buffers_and_a_session();
    let conn = a.conn();
    // 3000 pushes of 2 KB to a client that reads none of them: past what the kernel's socket
    // buffers take, they are held back (PROTOCOL.md 7.3), and its socket takes nothing for the
    // stalled-reader time.
    a.request(2, "push_blobs", &(3000u32, 2000u32));
    h.await_log(&format!("drop {conn}"));
    // Dropped, not closed: the game heard `drop` first. (The pushes that follow, 6 MB, cannot
    // be held for a resume within 68 KiB, so the session then ends: `disconnect` may follow.)
    assert_eq!(h.log.lock()[..2], [format!("connect {conn}"), format!("drop {conn}")]);
    // The reactor publishes its counters once per turn: the game may hear of the drop first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.server.metrics().reactor().stalled_closes == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(h.server.metrics().reactor().stalled_closes, 1);
    assert_eq!(h.server.metrics().reactor().overflow_closes, 0, "no 1008");
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_session_that_lost_frames_while_linked_cannot_resume_and_ends() {
    let h = start(Config { session_replay_bytes: 4096, ..Config::default() });
    let mut a = Link::connect(h.addr());
    // Two blobs of 3000 bytes sent while the client acknowledges nothing: the first is let go.
    a.request(1, "blob", &3000u32);
    a.request(2, "blob", &3000u32);
    for _ in 0..4 {
        a.recv();
    }
    let conn = a.conn();
    let mut state = a.kill();
    h.await_log(&format!("drop {conn}"));
    // It had read everything, but told the server nothing: the server cannot know.
    state.received = 0;
    assert_eq!(state.resume_with(h.addr(), state.secret, 0).1, Got::ResumeFailed(resume_reason::GAP_LOST));
    h.await_log(&format!("disconnect {conn}"));
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn states_conflated_for_a_link_that_does_not_keep_up_were_never_numbered() {
    // From 1 KiB queued on, a link's frames are held back (PROTOCOL.md 7.3): of 200 states
    // pushed in one batch, the client gets the first few and the last.
    let h = start(Config { hold_after_bytes: 1024, ..Config::default() });
    let mut a = Link::connect(h.addr());
    a.request(1, "latest", &(200u32, 4000u32));
    a.request(2, "count", &());
    let (mut states, mut replies) = (Vec::new(), Vec::new());
    while states.last() != Some(&199) || replies.len() < 2 {
        match a.recv() {
            Got::Push(topic, body) if topic == "latest" => {
                let (i, _): (u32, String) = ticksock_protocol::decode_body(&body).expect("state");
                states.push(i);
            }
            Got::Reply(id, _) => replies.push(id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(states.len() < 20, "states were conflated: got {}", states.len());
    assert!(states.windows(2).all(|w| w[0] < w[1]), "in order: {states:?}");
    assert_eq!(replies, [1, 2]);
    // The client's count of sequenced frames is the server's: a resume claiming it replays
    // nothing it has, only what came after (the push of `on_drop`).
    let received = a.s.received;
    assert_eq!(received, states.len() as u64 + 2);
    let conn = a.conn();
    let state = a.kill();
    h.await_log(&format!("drop {conn}"));
    let (mut b, server_received) = state.resume(h.addr());
    assert_eq!(server_received, 2);
    assert_eq!(b.recv(), Got::Push("while_dropped".into(), u32_body(7)), "nothing received is sent again");
    assert_eq!(h.server.metrics().reactor().states_conflated, 200 - states.len() as u64);
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn requests_are_acknowledged_on_their_own_after_the_interval() {
    let h = start(Config { ack_interval: Duration::from_millis(50), ..Config::default() });
    let mut a = Link::connect(h.addr());
    a.request(1, "count", &());
    a.request(2, "count", &());
    let mut acked = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while acked.is_none() {
        assert!(Instant::now() < deadline, "no Ack came");
        if let Got::Ack(received) = a.recv() {
            acked = Some(received);
        }
    }
    assert_eq!(acked, Some(2));
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_version_1_client_is_served_as_before_beside_version_2() {
    let h = start(Config::default());
    let mut ws = {
        let stream = TcpStream::connect(h.addr()).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut request = format!("ws://{}/", h.addr()).into_client_request().expect("request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", "ticksock.v1".parse().expect("header"));
        tungstenite::client(request, stream).expect("upgrade").0
    };
    let Message::Binary(welcome) = ws.read().expect("welcome") else { panic!("binary") };
    assert!(matches!(
        ticksock_protocol::decode_server_frame(Encoding::Binary, &welcome),
        Ok(ticksock_protocol::ServerFrame::Welcome { version: 1, .. })
    ));
    let mut request = Vec::new();
    ticksock_protocol::write_request(Encoding::Binary, &mut request, 5, "count", &()).expect("encode");
    ws.send(Message::Binary(request.into())).expect("send");
    let Message::Binary(reply) = ws.read().expect("reply") else { panic!("binary") };
    assert_eq!(reply.as_ref(), [1, 5, 1]);
    // Its drop is a disconnect: no session.
    let _ = ws.get_ref().shutdown(Shutdown::Both);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !h.log.lock().iter().any(|l| l.starts_with("disconnect")) {
        assert!(Instant::now() < deadline, "{:?}", h.log.lock());
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(!h.log.lock().iter().any(|l| l.starts_with("drop")));
    h.server.shutdown().expect("clean shutdown");
}
