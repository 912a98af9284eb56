//! Version 2 sessions over real sockets (PROTOCOL.md section 11): a link dropped without a
//! close is resumed with what it missed, requests resent after a resume run at most once, and
//! each way a resume can fail is refused with its reason and costs the session nothing.

use std::collections::HashMap;
use std::io::ErrorKind;
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
        router
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
    Error(u32, u16),
    Push(String, Vec<u8>),
    Resumed(u64, Secret),
    ResumeFailed(u16),
    Ack(u64),
}

/// A version 2 client written against the protocol crate alone.
struct Link {
    ws: WebSocket<TcpStream>,
    conn_id: u64,
    epoch: u64,
    secret: Secret,
    /// Sequenced frames received on the session.
    received: u64,
    /// The next request's number.
    next_seq: u64,
}

impl Link {
    /// A new link offering `ticksock.v2`, its Welcome read.
    fn connect(addr: SocketAddr) -> Link {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut request = format!("ws://{addr}/").into_client_request().expect("request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", "ticksock.v2".parse().expect("header"));
        let (mut ws, response) = tungstenite::client(request, stream).expect("upgrade");
        let chosen = response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok());
        assert_eq!(chosen, Some("ticksock.v2"));
        let Message::Binary(bytes) = ws.read().expect("welcome") else { panic!("not binary") };
        match v2::decode_server_frame(Encoding::Binary, &bytes).expect("decodes") {
            ServerFrame::Welcome { version, conn_id, epoch, secret, .. } => {
                assert_eq!(version, 2);
                Link { ws, conn_id, epoch, secret, received: 0, next_seq: 1 }
            }
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    fn send(&mut self, frame: Vec<u8>) {
        self.ws.send(Message::Binary(frame.into())).expect("send");
    }

    /// Sends a request with an explicit number.
    fn request_numbered<T: serde::Serialize>(&mut self, seq: u64, id: u32, route: &str, body: &T) {
        let mut frame = Vec::new();
        v2::write_request(Encoding::Binary, &mut frame, seq, self.received, id, route, body).expect("encode");
        self.send(frame);
    }

    /// Sends the next request.
    fn request<T: serde::Serialize>(&mut self, id: u32, route: &str, body: &T) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.request_numbered(seq, id, route, body);
        seq
    }

    fn ack(&mut self) {
        let mut frame = Vec::new();
        v2::write_client_ack(Encoding::Binary, &mut frame, self.received);
        self.send(frame);
    }

    fn recv(&mut self) -> Got {
        loop {
            let message = self.ws.read().expect("a frame");
            let Message::Binary(bytes) = message else { continue };
            let got = match v2::decode_server_frame(Encoding::Binary, &bytes).expect("decodes") {
                ServerFrame::Reply { id, body } => Got::Reply(id, body.to_vec()),
                ServerFrame::Error { id, code, .. } => Got::Error(id, code),
                ServerFrame::Push { topic, body } => Got::Push(topic.into_owned(), body.to_vec()),
                ServerFrame::Resumed { received, secret } => Got::Resumed(received, secret),
                ServerFrame::ResumeFailed { reason, .. } => Got::ResumeFailed(reason),
                ServerFrame::Ack { received } => Got::Ack(received),
                ServerFrame::Welcome { .. } => panic!("a second welcome"),
            };
            if matches!(got, Got::Reply(..) | Got::Error(..) | Got::Push(..)) {
                self.received += 1;
            }
            return got;
        }
    }

    /// Drops the TCP connection without a close frame, as a network would.
    fn kill(self) {
        let _ = self.ws.get_ref().shutdown(Shutdown::Both);
    }

    /// A new link that resumes this one's session with `received` frames received; the
    /// answer (the new link carries the old session's counts on success).
    fn resume_with(&self, addr: SocketAddr, secret: Secret, received: u64) -> (Link, Got) {
        let mut link = Link::connect(addr);
        let mut frame = Vec::new();
        v2::write_resume(Encoding::Binary, &mut frame, self.conn_id, self.epoch, &secret, received);
        link.send(frame);
        let answer = link.recv();
        if let Got::Resumed(_, secret) = answer {
            link.conn_id = self.conn_id;
            link.epoch = self.epoch;
            link.secret = secret;
            link.received = received;
            link.next_seq = self.next_seq;
        }
        (link, answer)
    }

    /// Resumes, expecting success.
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

fn conn_of(link: &Link) -> ConnId {
    ConnId::from_u64(link.conn_id)
}

#[test]
fn a_dropped_link_resumes_with_every_reply_and_push_it_missed_in_order() {
    let h = start(Config::default());
    let mut a = Link::connect(h.addr());
    assert_eq!(a.request(1, "count", &()), 1);
    assert_eq!(a.recv(), Got::Reply(1, u32_body(1)));
    h.await_log(&format!("connect {}", conn_of(&a)));
    // Two pushes and a reply sent, none read before the link dies.
    a.request(2, "push", &2u32);
    a.request(3, "count", &());
    std::thread::sleep(Duration::from_millis(100));
    let old = Link { ws: a.ws, ..Link::connect(h.addr()) };
    let snapshot = (a.conn_id, a.epoch, a.secret, a.received, a.next_seq);
    old.kill();
    h.await_log(&format!("drop {}", ConnId::from_u64(snapshot.0)));
    let a = Link {
        ws: Link::connect(h.addr()).ws,
        conn_id: snapshot.0,
        epoch: snapshot.1,
        secret: snapshot.2,
        received: snapshot.3,
        next_seq: snapshot.4,
    };
    let (mut b, received) = a.resume(h.addr());
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
    h.await_log(&format!("resume {}", conn_of(&b)));
    // The session goes on: same connection for the game, numbering continued.
    assert_eq!(b.request(4, "count", &()), 4);
    assert_eq!(b.recv(), Got::Reply(4, u32_body(1)));
    assert_eq!(h.log.lock().iter().filter(|l| l.starts_with("connect")).count(), 3, "the links, not the session");
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
    let (conn_id, epoch, secret, next_seq) = (a.conn_id, a.epoch, a.secret, a.next_seq);
    a.kill();
    h.await_log(&format!("drop {}", ConnId::from_u64(conn_id)));
    let ghost = Link { ws: Link::connect(h.addr()).ws, conn_id, epoch, secret, received: 1, next_seq };
    let (mut b, received) = ghost.resume(h.addr());
    assert_eq!(received, 2);
    assert_eq!(b.recv(), Got::Reply(2, u32_body(1)), "replayed");
    // A naive client resends request 2 anyway: answered again from the kept answer, not run.
    b.request_numbered(2, 2, "count", &());
    assert_eq!(b.recv(), Got::Reply(2, u32_body(1)));
    // Once acknowledged, the answer is gone: a resend is refused as stale, and still not run.
    b.ack();
    b.request_numbered(1, 1, "count", &());
    assert_eq!(b.recv(), Got::Error(1, error_code::STALE_REQUEST));
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
    // The old link stays open but silent (half-open as far as the server can tell).
    let (mut b, received) = a.resume(h.addr());
    assert_eq!(received, 1);
    h.await_log(&format!("resume {}", conn_of(&b)));
    // The server ended the old link at once, without a close frame.
    let mut old = a.ws;
    old.get_mut().set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    match old.read() {
        Err(tungstenite::Error::Protocol(_) | tungstenite::Error::Io(_)) | Err(tungstenite::Error::ConnectionClosed) => {}
        other => panic!("the old link was not ended: {other:?}"),
    }
    // ... and that end did not touch the session, which the game never saw drop.
    b.request(2, "count", &());
    assert_eq!(b.recv(), Got::Reply(2, u32_body(1)));
    assert!(!h.log.lock().iter().any(|l| l.starts_with("drop") || l.starts_with("disconnect")), "{:?}", h.log.lock());
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn each_refused_resume_has_its_reason_and_costs_the_session_nothing() {
    let h = start(Config::default());
    let mut a = Link::connect(h.addr());
    a.request(1, "count", &());
    assert_eq!(a.recv(), Got::Reply(1, u32_body(1)));
    let wrong = [0xAB; 16];
    let cases = [
        ("bad secret", a.resume_with(h.addr(), wrong, 1).1, resume_reason::BAD_SECRET),
        ("more than was sent", a.resume_with(h.addr(), a.secret, 5).1, resume_reason::BAD_COUNT),
    ];
    for (what, got, reason) in cases {
        assert_eq!(got, Got::ResumeFailed(reason), "{what}");
    }
    let unknown = Link { conn_id: ConnId::new(9, 999_999).to_u64(), ws: Link::connect(h.addr()).ws, ..a.clone_state() };
    assert_eq!(unknown.resume_with(h.addr(), a.secret, 0).1, Got::ResumeFailed(resume_reason::UNKNOWN_SESSION));
    let other_run = Link { epoch: a.epoch ^ 1, ws: Link::connect(h.addr()).ws, ..a.clone_state() };
    assert_eq!(other_run.resume_with(h.addr(), a.secret, 1).1, Got::ResumeFailed(resume_reason::RESTARTED));
    // After all that, the real owner resumes, and a replay of its resume is superseded.
    let (mut b, _) = a.resume(h.addr());
    let (_, replayed) = a.resume_with(h.addr(), a.secret, 1);
    assert_eq!(replayed, Got::ResumeFailed(resume_reason::SUPERSEDED));
    // A resume that is not the first frame is refused and ignored.
    let mut frame = Vec::new();
    v2::write_resume(Encoding::Binary, &mut frame, b.conn_id, b.epoch, &b.secret, 1);
    b.send(frame);
    assert_eq!(b.recv(), Got::ResumeFailed(resume_reason::NOT_FIRST));
    b.request(2, "count", &());
    assert_eq!(b.recv(), Got::Reply(2, u32_body(1)), "the session is unharmed");
    h.server.shutdown().expect("clean shutdown");
}

#[test]
fn a_session_ends_at_its_grace_and_a_later_resume_is_told_so() {
    let h = start(Config { session_grace: Duration::from_millis(200), ..Config::default() });
    let mut a = Link::connect(h.addr());
    a.request(1, "count", &());
    assert_eq!(a.recv(), Got::Reply(1, u32_body(1)));
    let state = a.clone_state();
    a.kill();
    let conn = ConnId::from_u64(state.conn_id);
    h.await_log(&format!("drop {conn}"));
    h.await_log(&format!("disconnect {conn}"));
    let ghost = Link { ws: Link::connect(h.addr()).ws, ..state };
    let (mut c, got) = ghost.resume_with(h.addr(), ghost.secret, 1);
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
    // Two pushes of 3000 bytes, unread, then the link dies: 6000 bytes do not fit in 4096.
    a.request(2, "blob", &3000u32);
    a.request(3, "blob", &3000u32);
    std::thread::sleep(Duration::from_millis(100));
    let state = a.clone_state();
    a.kill();
    let conn = ConnId::from_u64(state.conn_id);
    h.await_log(&format!("disconnect {conn}"));
    let ghost = Link { ws: Link::connect(h.addr()).ws, ..state };
    let got = ghost.resume_with(h.addr(), ghost.secret, ghost.received).1;
    assert!(
        got == Got::ResumeFailed(resume_reason::ENDED) || got == Got::ResumeFailed(resume_reason::GAP_LOST),
        "{got:?}"
    );
    assert_eq!(h.server.metrics().reactor().sessions_dropped_bytes, 0, "nothing held for it");
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
    let _ = ErrorKind::Other;
    h.server.shutdown().expect("clean shutdown");
}

impl Link {
    /// This link's session state, with a placeholder socket to be replaced.
    fn clone_state(&self) -> Link {
        Link {
            ws: Link::connect_placeholder(self),
            conn_id: self.conn_id,
            epoch: self.epoch,
            secret: self.secret,
            received: self.received,
            next_seq: self.next_seq,
        }
    }

    /// A socket for a state copy: a new link to the same server, never used to resume.
    fn connect_placeholder(&self) -> WebSocket<TcpStream> {
        let addr = self.ws.get_ref().peer_addr().expect("peer");
        Link::connect(addr).ws
    }
}
