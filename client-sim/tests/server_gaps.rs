//! What `--faults` found the server doing differently from what PROTOCOL.md section 11 and
//! issue 14 ask, each as a small reproducer against a real server in this process, driven by
//! the client crate's own `Session` and `Connection` (the simulator's bots, without the
//! simulator), kept as a regression test once the server was fixed. Next to each, the same
//! case a step later.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ticksock_arena::Arena;
use ticksock_client::connection::upgrade_request;
use ticksock_client::{Config, Connection, Event, Progress, Session, SessionEnd, Versions};
use ticksock_server::{Config as ServerConfig, RunningServer, Server};

fn start_arena() -> RunningServer {
    let config = ServerConfig { listen: "127.0.0.1:0".parse().expect("addr"), ..ServerConfig::default() };
    Server::start(config, Arena::new(Default::default())).expect("server starts")
}

/// A version 2 session that reconnects 10 ms after a drop.
fn session() -> Session {
    let config = Config {
        versions: Versions::V2ThenV1,
        backoff_initial: Duration::from_millis(10),
        backoff_jitter: 0.0,
        ..Config::default()
    };
    Session::new(config, Instant::now())
}

/// Opens the session's next link to `addr`, once the session wants one.
fn connect(session: &mut Session, addr: SocketAddr) -> Connection {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !session.poll_connect(Instant::now()) {
        assert!(Instant::now() < deadline, "the session never asked to connect");
        std::thread::sleep(Duration::from_millis(1));
    }
    let request = upgrade_request(&format!("ws://{addr}/"), Versions::V2ThenV1).expect("request");
    Connection::open(addr, request, session.config().websocket_config(), false).expect("connects")
}

/// Moves the link along (reading, and writing only if `write`) until the session gives an
/// event that `want` takes.
fn until<T>(
    session: &mut Session,
    conn: &mut Connection,
    write: bool,
    mut want: impl FnMut(Event) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no such event within 5 s");
        if let Progress::Finished(error) = conn.receive(session, Instant::now(), |_, _| false) {
            panic!("the link ended: {error:?}");
        }
        while let Some(event) = session.poll_event() {
            if let Some(found) = want(event) {
                return found;
            }
        }
        if write && let Progress::Finished(error) = conn.transmit(session) {
            panic!("the link ended: {error:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A session welcomed on a first link, which then dies by a reset: after one `echo` call
/// answered on it if `first_call`, else before the client sent anything at all. Returns how
/// the server answers its resume on a second link: `Ok` if it resumed, else why it ended.
fn resume_after_a_reset(addr: SocketAddr, first_call: bool) -> Result<(), SessionEnd> {
    let mut session = session();
    let mut conn = connect(&mut session, addr);
    until(&mut session, &mut conn, false, |e| matches!(e, Event::Connected { .. }).then_some(()));
    if first_call {
        let id = session.call_raw("echo", b"hi", Default::default(), Instant::now()).expect("call");
        let outcome = until(&mut session, &mut conn, true, |e| match e {
            Event::Outcome { id: answered, outcome, .. } if answered == id => Some(outcome),
            _ => None,
        });
        assert!(outcome.is_reply(), "{outcome:?}");
    }
    // A reset: SO_LINGER 0, then close; nothing written on this link in the first case.
    if let Some(tcp) = conn.tcp_mut() {
        socket2::SockRef::from(&*tcp).set_linger(Some(Duration::ZERO)).expect("linger");
    }
    drop(conn);
    session.handle_disconnect(Instant::now());
    let mut conn = connect(&mut session, addr);
    until(&mut session, &mut conn, true, |e| match e {
        Event::Resumed { .. } => Some(Ok(())),
        Event::SessionEnded { reason } => Some(Err(reason)),
        _ => None,
    })
}

#[test]
fn a_session_whose_link_died_after_its_first_frame_resumes() {
    let server = start_arena();
    assert_eq!(resume_after_a_reset(server.local_addr(), true), Ok(()));
    server.shutdown().expect("clean shutdown");
}

/// The gap it found: the server opened a version 2 session only when the link's first frame
/// arrived, so a link that died between its Welcome and the client's first frame left no
/// session behind, and the Resume of the Welcome's `conn_id` was refused with `ended`. Issue
/// 14 asks that resumes inside the window succeed "including sessions that had sent nothing
/// before the drop". Fixed: the session exists from its Welcome (PROTOCOL.md 11.4), and the
/// game hears of it at the first frame that arrives for it, the resume included.
#[test]
fn a_session_whose_link_died_before_its_first_frame_resumes() {
    let server = start_arena();
    assert_eq!(resume_after_a_reset(server.local_addr(), false), Ok(()));
    server.shutdown().expect("clean shutdown");
}
