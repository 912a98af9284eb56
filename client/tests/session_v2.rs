//! The sans-I/O session on version 2 links (`docs/PROTOCOL.md` section 11), against a fake
//! server made of frames, in simulated time: numbered requests and acknowledgements, the Ack
//! frames and when they go, the resume (the replay delivered once and in order, requests sent
//! again above the server's count only), a refused resume, `stale_request`, how links are
//! dropped, and a version 1 server met after a version 2 session.

use std::time::{Duration, Instant};

use ticksock_client::{
    CallId, CallOptions, Config, Error, Event, LinkCommand, LinkState, Outcome, Session, SessionEnd, Versions,
};
use ticksock_protocol::{Encoding, Secret, ServerFrame, Version, error_code, resume_reason, v2};

const MS: Duration = Duration::from_millis(1);
const EPOCH: u64 = 0xe90c;

fn config() -> Config {
    Config {
        call_timeout: 10_000 * MS,
        heartbeat_interval: 100 * MS,
        idle_timeout: 350 * MS,
        connect_timeout: 500 * MS,
        backoff_initial: 100 * MS,
        backoff_max: 1000 * MS,
        max_attempts: None,
        jitter_seed: Some(42),
        ..Config::default()
    }
}

/// Timers that stay out of the way of the acknowledgement timer.
fn quiet_config() -> Config {
    Config { heartbeat_interval: 60_000 * MS, idle_timeout: 180_000 * MS, ..config() }
}

fn secret(n: u8) -> Secret {
    [n; 16]
}

fn welcome(conn_id: u64, secret: Secret) -> Vec<u8> {
    let mut out = Vec::new();
    v2::write_welcome(Encoding::Binary, &mut out, 30, conn_id, EPOCH, &secret);
    out
}

fn resumed(received: u64, secret: Secret) -> Vec<u8> {
    let mut out = Vec::new();
    v2::write_resumed(Encoding::Binary, &mut out, received, &secret);
    out
}

fn resume_failed(reason: u16) -> Vec<u8> {
    let mut out = Vec::new();
    v2::write_resume_failed(Encoding::Binary, &mut out, reason, resume_reason::name(reason));
    out
}

fn server_ack(received: u64) -> Vec<u8> {
    let mut out = Vec::new();
    v2::write_server_ack(Encoding::Binary, &mut out, received);
    out
}

fn reply(id: CallId, body: &[u8]) -> Vec<u8> {
    ServerFrame::Reply { id: id.0, body }.to_vec()
}

fn push(topic: &str, body: &[u8]) -> Vec<u8> {
    ServerFrame::Push { topic: topic.into(), body }.to_vec()
}

/// A client frame as the fake server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    Request { seq: u64, ack: u64, id: u32, route: String },
    Ack(u64),
    Resume { session: u64, epoch: u64, secret: Secret, received: u64 },
}

/// Every frame the session wants sent now, decoded as version 2 frames.
fn sent(s: &mut Session) -> Vec<Sent> {
    std::iter::from_fn(|| s.poll_transmit())
        .map(|frame| match v2::decode_client_frame(Encoding::Binary, &frame).expect("a version 2 frame") {
            v2::ClientFrame::Request { seq, ack, request } => {
                Sent::Request { seq, ack, id: request.id, route: request.route.to_owned() }
            }
            v2::ClientFrame::Ack { ack } => Sent::Ack(ack),
            v2::ClientFrame::Resume { session, epoch, secret, received } => {
                Sent::Resume { session, epoch, secret, received }
            }
        })
        .collect()
}

fn request(seq: u64, ack: u64, id: CallId, route: &str) -> Sent {
    Sent::Request { seq, ack, id: id.0, route: route.into() }
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A short name for each event, to compare sequences of them.
fn names(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Outcome { id, outcome, .. } => format!("{id}:{outcome:?}"),
            Event::Push { topic, .. } => format!("push {topic}"),
            Event::Connected { conn_id, .. } => format!("Connected {conn_id}"),
            Event::Resumed { conn_id, .. } => format!("Resumed {conn_id}"),
            Event::SessionEnded { .. } => "SessionEnded".into(),
            Event::LinkDropped => "LinkDropped".into(),
            Event::Disconnected => "Disconnected".into(),
            Event::Reconnecting { .. } => "Reconnecting".into(),
            Event::ProtocolError { .. } => "ProtocolError".into(),
            other => format!("{other:?}"),
        })
        .collect()
}

/// A session whose first link (speaking `version`) has received its welcome at `t0`; the game
/// has taken `Connected` and polled again (the offline queue is free to go).
fn connected(config: Config, t0: Instant, conn_id: u64, secret: Secret) -> Session {
    let mut s = Session::new(config, t0);
    assert!(s.poll_connect(t0));
    s.handle_connected(Version::V2, t0);
    assert_eq!(s.link_state(), LinkState::AwaitingWelcome);
    s.handle_frame(&welcome(conn_id, secret), t0);
    assert!(matches!(s.poll_event(), Some(Event::Connected { tick_hz: 30, conn_id: c }) if c == conn_id));
    assert!(s.poll_event().is_none());
    assert_eq!((s.version(), s.held_session()), (Some(Version::V2), Some(conn_id)));
    s
}

/// Opens the next link at the reconnect's time; returns that time.
fn reconnect(s: &mut Session, version: Version) -> Instant {
    let at = s.poll_timeout().expect("a reconnect is scheduled");
    assert!(s.poll_connect(at));
    s.handle_connected(version, at);
    at
}

#[test]
fn a_fresh_session_announces_itself_then_numbers_its_requests_and_carries_its_count() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    assert!(s.poll_connect(t0));
    s.handle_connected(Version::V2, t0);
    assert!(s.poll_transmit().is_none(), "nothing before the welcome");
    s.handle_frame(&welcome(7, secret(1)), t0);
    // The first frame of a fresh session with no request to send: an Ack(0), so that the
    // server's game hears of the session (11.4).
    assert_eq!(sent(&mut s), [Sent::Ack(0)]);
    assert!(sent(&mut s).is_empty(), "once");
    assert!(matches!(s.poll_event(), Some(Event::Connected { conn_id: 7, .. })));
    let a = s.call("a", &(), t0).expect("call");
    let b = s.call("b", &(), t0).expect("call");
    assert_eq!(sent(&mut s), [request(1, 0, a, "a"), request(2, 0, b, "b")]);
    // Replies and pushes count; the next request carries the count.
    s.handle_frame(&push("p", &[]), t0 + MS);
    s.handle_frame(&reply(a, &[]), t0 + MS);
    let c = s.call("c", &(), t0 + MS).expect("call");
    assert_eq!(sent(&mut s), [request(3, 2, c, "c")]);
    assert_eq!(s.received_count(), 2);
    assert_eq!(s.unconfirmed_requests(), 3, "kept until the server says it took them");
    s.handle_frame(&server_ack(2), t0 + 2 * MS);
    assert_eq!(s.unconfirmed_requests(), 1);
    assert_eq!(s.received_count(), 2, "an Ack is not a sequenced frame");

    // A fresh session whose first frame is a request needs no Ack(0).
    let mut s = Session::new(config(), t0);
    let queued = s.call("login", &(), t0).expect("queued");
    assert!(s.poll_connect(t0));
    s.handle_connected(Version::V2, t0);
    s.handle_frame(&welcome(8, secret(1)), t0);
    assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
    assert!(s.poll_event().is_none());
    assert_eq!(sent(&mut s), [request(1, 0, queued, "login")]);
}

#[test]
fn an_ack_goes_after_its_delay_or_after_64_frames_and_not_when_a_request_carried_the_count() {
    let t0 = Instant::now();
    let mut s = connected(quiet_config(), t0, 7, secret(1));
    assert_eq!(sent(&mut s), [Sent::Ack(0)]);
    s.handle_frame(&push("p", &[]), t0 + 10 * MS);
    s.handle_frame(&push("p", &[]), t0 + 500 * MS);
    assert_eq!(s.poll_timeout(), Some(t0 + 1010 * MS), "1 s after the first frame not acknowledged");
    s.handle_timeout(t0 + 1009 * MS);
    assert!(sent(&mut s).is_empty(), "not before");
    s.handle_timeout(t0 + 1010 * MS);
    assert_eq!(sent(&mut s), [Sent::Ack(2)]);
    assert_eq!(s.poll_timeout(), Some(t0 + 60_000 * MS), "nothing owed: only the heartbeat");
    assert_eq!(s.stats().acks, 2);

    // A request carries the count: no Ack is owed after it.
    s.handle_frame(&push("p", &[]), t0 + 1100 * MS);
    let a = s.call("a", &(), t0 + 1200 * MS).expect("call");
    assert_eq!(sent(&mut s), [request(1, 3, a, "a")]);
    s.handle_timeout(t0 + 2200 * MS);
    assert!(sent(&mut s).is_empty());

    // 64 frames unacknowledged: an Ack at once, without waiting for the timer.
    for _ in 0..63 {
        s.handle_frame(&push("p", &[]), t0 + 2300 * MS);
    }
    assert!(sent(&mut s).is_empty(), "63 frames wait for the timer");
    s.handle_frame(&push("p", &[]), t0 + 2300 * MS);
    assert_eq!(sent(&mut s), [Sent::Ack(67)]);
    assert_eq!(s.stats().acks, 3);
}

#[test]
fn a_resume_replays_the_missed_reply_and_push_once_and_in_order_and_calls_in_flight_survive() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0, 7, secret(1));
    sent(&mut s);
    let a = s.call("a", &(), t0).expect("call");
    let b = s.call("b", &(), t0).expect("call");
    assert_eq!(sent(&mut s), [request(1, 0, a, "a"), request(2, 0, b, "b")]);
    s.handle_frame(&reply(a, &[1]), t0 + MS);
    s.handle_frame(&push("p1", &[]), t0 + MS);
    assert_eq!(names(&events(&mut s)), [format!("{a}:Reply([1])"), "push p1".into()]);

    // The link drops: the session is kept, and `b` waits for its answer.
    s.handle_disconnect(t0 + 10 * MS);
    assert_eq!(s.poll_link(), None, "the link is gone already: nothing to close");
    assert_eq!(names(&events(&mut s)), ["LinkDropped", "Reconnecting"]);
    assert!(s.is_pending(b));
    assert_eq!(s.stats().disconnected, 0);
    let c = s.call("c", &(), t0 + 20 * MS).expect("queued offline");

    // The next link: the Resume goes first, and nothing else until the answer.
    let at = reconnect(&mut s, Version::V2);
    s.handle_frame(&welcome(8, secret(2)), at);
    assert_eq!(s.link_state(), LinkState::Resuming);
    let resume = Sent::Resume { session: 7, epoch: EPOCH, secret: secret(1), received: 2 };
    assert_eq!(sent(&mut s), [resume]);
    let d = s.call("d", &(), at).expect("queued while resuming");
    assert!(sent(&mut s).is_empty(), "nothing after the Resume until its answer");
    assert!(events(&mut s).is_empty(), "no Connected: the game does not log in again");

    // Resumed: the server had taken both requests; then the replay.
    s.handle_frame(&resumed(2, secret(3)), at + MS);
    assert_eq!(s.link_state(), LinkState::Up);
    assert_eq!(s.welcome(), Some((30, 7)), "the session's id, not the welcome's");
    assert_eq!(sent(&mut s), [request(3, 2, c, "c"), request(4, 2, d, "d")], "nothing to resend");
    s.handle_frame(&reply(b, &[2]), at + 2 * MS);
    s.handle_frame(&push("p2", &[]), at + 2 * MS);
    // A duplicate answer (as the server sends for a duplicate request) is dropped.
    s.handle_frame(&reply(b, &[2]), at + 3 * MS);
    assert_eq!(names(&events(&mut s)), ["Resumed 7".to_owned(), format!("{b}:Reply([2])"), "push p2".into()]);
    assert_eq!(s.stats().late_answers, 1);
    assert_eq!((s.stats().resumes, s.stats().connections), (1, 2));

    // Every frame counted, the duplicate too; the next resume proves the new secret.
    s.handle_disconnect(at + 10 * MS);
    events(&mut s);
    let at = reconnect(&mut s, Version::V2);
    s.handle_frame(&welcome(9, secret(4)), at);
    assert_eq!(sent(&mut s), [Sent::Resume { session: 7, epoch: EPOCH, secret: secret(3), received: 5 }]);
}

#[test]
fn only_requests_above_the_servers_count_are_sent_again_in_order_before_the_offline_queue() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0, 7, secret(1));
    sent(&mut s);
    let ids: Vec<CallId> = (0..3).map(|_| s.call("x", &(), t0).expect("call")).collect();
    let short = s.call_with("x", &(), CallOptions::default().timeout(50 * MS), t0).expect("call");
    assert_eq!(sent(&mut s).len(), 4);
    s.handle_frame(&server_ack(1), t0 + MS);
    s.handle_frame(&push("p", &[]), t0 + MS);
    s.handle_disconnect(t0 + 10 * MS);
    // While down, `short` times out: its request keeps its number all the same, or the
    // requests after it would fall into a gap.
    s.handle_timeout(t0 + 50 * MS);
    let queued = s.call("q", &(), t0 + 60 * MS).expect("queued");
    let evs = events(&mut s);
    assert!(
        evs.iter().any(|e| matches!(e, Event::Outcome { id, outcome: Outcome::Timeout, .. } if *id == short))
    );

    let at = reconnect(&mut s, Version::V2);
    s.handle_frame(&welcome(8, secret(2)), at);
    assert_eq!(sent(&mut s), [Sent::Resume { session: 7, epoch: EPOCH, secret: secret(1), received: 1 }]);
    s.handle_frame(&resumed(2, secret(3)), at);
    // The server took 1 and 2: 3 and 4 again, with their numbers and ids, then the queue.
    assert_eq!(
        sent(&mut s),
        [request(3, 1, ids[2], "x"), request(4, 1, short, "x"), request(5, 1, queued, "q")]
    );
    assert_eq!(s.stats().resent, 2);
    // Their answers: once each; the timed-out call's is late.
    s.handle_frame(&reply(ids[1], &[]), at + MS);
    s.handle_frame(&reply(ids[2], &[]), at + MS);
    s.handle_frame(&reply(short, &[]), at + MS);
    let outcomes: Vec<CallId> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Outcome { id, outcome: Outcome::Reply(_), .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes, [ids[1], ids[2]]);
    assert_eq!(s.stats().late_answers, 1);
    assert!(s.is_pending(ids[0]), "its answer is still to come (the server took it)");
}

#[test]
fn a_refused_resume_fails_the_calls_in_flight_says_why_and_starts_the_welcomes_session() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0, 7, secret(1));
    sent(&mut s);
    let a = s.call("a", &(), t0).expect("call");
    sent(&mut s);
    s.handle_frame(&push("p", &[]), t0 + MS);
    s.handle_disconnect(t0 + 10 * MS);
    assert_eq!(names(&events(&mut s)), ["push p", "LinkDropped", "Reconnecting"]);
    let queued = s.call("move", &(), t0 + 20 * MS).expect("queued");

    let at = reconnect(&mut s, Version::V2);
    s.handle_frame(&welcome(9, secret(9)), at);
    sent(&mut s);
    s.handle_frame(&resume_failed(resume_reason::RESTARTED), at + MS);
    assert_eq!(s.link_state(), LinkState::Up);
    assert!(sent(&mut s).is_empty(), "the queue waits for the game to log in again; no Ack(0)");
    // The game reads up to Connected, and logs in there (its next poll releases the queue).
    let evs: Vec<Event> = (0..3).filter_map(|_| s.poll_event()).collect();
    assert_eq!(names(&evs), [format!("{a}:Disconnected"), "SessionEnded".into(), "Connected 9".into()]);
    let Event::SessionEnded { reason } = &evs[1] else { unreachable!("checked above") };
    assert!(
        matches!(reason, SessionEnd::ResumeFailed { reason: resume_reason::RESTARTED, .. }),
        "{reason:?}"
    );
    assert!(reason.to_string().contains("restarted"), "{reason}");
    assert_eq!(s.welcome(), Some((30, 9)));
    assert_eq!(s.held_session(), Some(9));
    assert_eq!((s.stats().resume_failures, s.stats().disconnected), (1, 1));
    // The login made on Connected goes first, then the queue, numbered afresh.
    let login = s.call("login", &(), at + MS).expect("call");
    assert!(s.poll_event().is_none());
    assert_eq!(sent(&mut s), [request(1, 0, login, "login"), request(2, 0, queued, "move")]);
    // The next resume is the new session's.
    s.handle_disconnect(at + 10 * MS);
    events(&mut s);
    let at = reconnect(&mut s, Version::V2);
    s.handle_frame(&welcome(10, secret(10)), at);
    assert_eq!(sent(&mut s), [Sent::Resume { session: 9, epoch: EPOCH, secret: secret(9), received: 0 }]);
}

#[test]
fn stale_request_fails_its_call_with_answer_lost() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0, 7, secret(1));
    let a = s.call("a", &(), t0).expect("call");
    sent(&mut s);
    let stale = ServerFrame::Error { id: a.0, code: error_code::STALE_REQUEST, message: "gone".into() };
    s.handle_frame(&stale.to_vec(), t0 + MS);
    let evs = events(&mut s);
    assert!(
        matches!(&evs[..], [Event::Outcome { id, outcome: Outcome::AnswerLost, .. }] if *id == a),
        "{evs:?}"
    );
    assert!(matches!(Outcome::AnswerLost.into_result(), Err(Error::AnswerLost)));
    assert_eq!(s.stats().errors, 1);
}

#[test]
fn the_session_drops_a_dead_link_without_a_close_frame_and_resumes_on_the_next() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0, 7, secret(1));
    sent(&mut s);
    let a = s.call("a", &(), t0).expect("call");
    sent(&mut s);
    // Silent past the idle timeout: dropped, not closed (a close frame ends the session).
    s.handle_timeout(t0 + 350 * MS);
    let commands: Vec<LinkCommand> = std::iter::from_fn(|| s.poll_link()).collect();
    assert_eq!(commands.last(), Some(&LinkCommand::Drop), "{commands:?}");
    assert!(!commands.iter().any(|c| matches!(c, LinkCommand::Close { .. })));
    assert_eq!(names(&events(&mut s)), ["LinkDropped", "Reconnecting"]);
    // A resume whose answer never comes: the connect timeout drops that link too, and the
    // next one asks again.
    let at = reconnect(&mut s, Version::V2);
    s.handle_frame(&welcome(8, secret(2)), at);
    sent(&mut s);
    assert_eq!(s.poll_timeout(), Some(at + 100 * MS), "the heartbeat, then the connect timeout");
    s.handle_heard(at + 400 * MS);
    s.handle_timeout(at + 500 * MS);
    assert_eq!(s.poll_link(), Some(LinkCommand::Drop));
    assert_eq!(names(&events(&mut s)), ["Reconnecting"], "no second LinkDropped: it was not up");
    let at = reconnect(&mut s, Version::V2);
    s.handle_frame(&welcome(9, secret(3)), at);
    assert_eq!(sent(&mut s), [Sent::Resume { session: 7, epoch: EPOCH, secret: secret(1), received: 0 }]);
    assert!(s.is_pending(a));
    // Closing for good sends a close frame, which ends the session on the server too.
    s.close(at + MS);
    assert!(matches!(s.poll_link(), Some(LinkCommand::Close { code: 1000, .. })));
    assert_eq!(s.held_session(), None);
    assert!(!s.is_pending(a));
}

#[test]
fn the_servers_close_frame_ends_the_session_with_the_link_and_the_next_starts_afresh() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0, 7, secret(1));
    sent(&mut s);
    let a = s.call("a", &(), t0).expect("call");
    sent(&mut s);
    s.handle_server_close(t0 + MS);
    s.handle_disconnect(t0 + MS);
    assert_eq!(
        names(&events(&mut s)),
        [format!("{a}:Disconnected"), "Disconnected".into(), "Reconnecting".into()]
    );
    assert_eq!(s.held_session(), None);
    let at = reconnect(&mut s, Version::V2);
    s.handle_frame(&welcome(8, secret(2)), at);
    assert_eq!(sent(&mut s), [Sent::Ack(0)], "a fresh session, no Resume");
    assert_eq!(names(&events(&mut s)), ["Connected 8"]);

    // A close on a link that does not carry the session yet (the resume unanswered) says
    // nothing of it: the next link asks again.
    let b = s.call("b", &(), at).expect("call");
    sent(&mut s);
    s.handle_disconnect(at + MS);
    events(&mut s);
    let at = reconnect(&mut s, Version::V2);
    s.handle_frame(&welcome(9, secret(3)), at);
    sent(&mut s);
    s.handle_server_close(at);
    s.handle_disconnect(at);
    assert_eq!(names(&events(&mut s)), ["Reconnecting"]);
    assert!(s.is_pending(b));
    let at = reconnect(&mut s, Version::V2);
    s.handle_frame(&welcome(10, secret(4)), at);
    assert_eq!(sent(&mut s), [Sent::Resume { session: 8, epoch: EPOCH, secret: secret(2), received: 0 }]);
}

#[test]
fn a_server_that_now_speaks_v1_ends_the_session_and_is_spoken_to_in_v1() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0, 7, secret(1));
    sent(&mut s);
    let a = s.call("a", &(), t0).expect("call");
    sent(&mut s);
    s.handle_disconnect(t0 + MS);
    events(&mut s);
    let at = reconnect(&mut s, Version::V1);
    let v1_welcome = ServerFrame::Welcome { version: 1, tick_hz: 30, conn_id: 3 }.to_vec();
    s.handle_frame(&v1_welcome, at);
    let evs = events(&mut s);
    assert_eq!(names(&evs), [format!("{a}:Disconnected"), "SessionEnded".into(), "Connected 3".into()]);
    assert!(matches!(evs[1], Event::SessionEnded { reason: SessionEnd::ServerSpeaksV1 }));
    let b = s.call("b", &(), at).expect("call");
    let frame = s.poll_transmit().expect("a request");
    assert_eq!(
        ticksock_protocol::ClientFrame::decode(&frame).expect("a version 1 request"),
        ticksock_protocol::ClientFrame::Request { id: b.0, route: "b", body: &[] }
    );
    assert!(s.poll_transmit().is_none(), "no Ack on version 1");
    s.handle_disconnect(at + MS);
    assert_eq!(
        names(&events(&mut s)),
        [format!("{b}:Disconnected"), "Disconnected".into(), "Reconnecting".into()]
    );
}

#[test]
fn a_client_forced_to_v1_refuses_a_v2_link() {
    let t0 = Instant::now();
    let mut s = Session::new(Config { versions: Versions::V1Only, ..config() }, t0);
    assert!(s.poll_connect(t0));
    s.handle_connected(Version::V2, t0);
    assert_eq!(s.poll_link(), Some(LinkCommand::Close { code: 1002, reason: "protocol error" }));
    assert_eq!(names(&events(&mut s)), ["ProtocolError", "Reconnecting"]);
    // And a v2 welcome on a v1 link (or the reverse) stops the session: another version.
    let mut s = Session::new(config(), t0);
    assert!(s.poll_connect(t0));
    s.handle_connected(Version::V1, t0);
    s.handle_frame(&welcome(7, secret(1)), t0);
    assert_eq!(s.link_state(), LinkState::Closed);
}

#[test]
fn frames_out_of_turn_and_counts_that_do_not_add_up_drop_the_link() {
    let t0 = Instant::now();
    // A reply while the resume's answer is awaited.
    let mut s = connected(config(), t0, 7, secret(1));
    s.handle_disconnect(t0 + MS);
    let at = reconnect(&mut s, Version::V2);
    s.handle_frame(&welcome(8, secret(2)), at);
    s.handle_frame(&push("p", &[]), at);
    assert_eq!(s.link_state(), LinkState::Down);
    assert_eq!(s.held_session(), Some(7), "the session is still worth resuming");
    // A Resumed that answers nothing.
    let mut s = connected(config(), t0, 7, secret(1));
    s.handle_frame(&resumed(0, secret(2)), t0);
    assert_eq!(s.link_state(), LinkState::Down);
    // A server that took more requests than were sent: the session cannot go on.
    let mut s = connected(config(), t0, 7, secret(1));
    sent(&mut s);
    let a = s.call("a", &(), t0).expect("call");
    sent(&mut s);
    s.handle_disconnect(t0 + MS);
    events(&mut s);
    let at = reconnect(&mut s, Version::V2);
    s.handle_frame(&welcome(8, secret(2)), at);
    sent(&mut s);
    s.handle_frame(&resumed(5, secret(3)), at);
    let evs = events(&mut s);
    assert_eq!(
        names(&evs),
        [format!("{a}:Disconnected"), "SessionEnded".into(), "ProtocolError".into(), "Reconnecting".into()]
    );
    assert!(matches!(&evs[1], Event::SessionEnded { reason: SessionEnd::CountMismatch { .. } }));
    assert_eq!(s.poll_link(), Some(LinkCommand::Close { code: 1002, reason: "protocol error" }));
    assert_eq!(s.held_session(), None, "the next link starts afresh");
}

#[test]
fn a_tick_reply_is_a_sequenced_frame_and_ends_its_call_with_its_stamp() {
    let t0 = Instant::now();
    let mut s = connected(Config { tick_stamps: true, ..config() }, t0, 7, secret(1));
    assert_eq!(sent(&mut s), [Sent::Ack(0)]);
    let a = s.call("a", &(), t0).expect("call");
    assert_eq!(sent(&mut s), [request(1, 0, a, "a")]);
    s.handle_frame(&ServerFrame::TickReply { id: a.0, tick: 41, body: &[] }.to_vec(), t0 + MS);
    assert_eq!(s.received_count(), 1, "counted as a Reply is");
    let got = events(&mut s);
    assert!(
        matches!(&got[..], [Event::Outcome { id, outcome: Outcome::TickReply { tick: 41, .. }, .. }] if *id == a),
        "{got:?}"
    );
}
