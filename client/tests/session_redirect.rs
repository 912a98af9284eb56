//! The sans-I/O session following redirects (`docs/PROTOCOL.md` section 12), against fake
//! servers made of frames, in simulated time: the call made again on the node after its
//! welcome and answered once, the old link kept for the calls in flight on it, the redirect
//! limit, a refused ticket (close 4002), a URL that cannot be used, a node that cannot be
//! reached, and a version 2 session (the node starts a new one).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ticksock_client::{
    CallId, CallOptions, Config, Event, LinkCommand, LinkState, MAX_REDIRECTS, Outcome, RedirectFailure,
    Session, Versions,
};
use ticksock_protocol::{CLOSE_BAD_TICKET, ClientFrame, Encoding, ServerFrame, Version, error_code, v2};

const MS: Duration = Duration::from_millis(1);
const NODE_B: &str = "ws://10.0.0.2:9102/?ticket=abc";
const NODE_B_AGAIN: &str = "ws://10.0.0.2:9102/";

fn config() -> Config {
    Config {
        call_timeout: 10_000 * MS,
        heartbeat_interval: 60_000 * MS,
        idle_timeout: 180_000 * MS,
        connect_timeout: 500 * MS,
        backoff_initial: 100 * MS,
        backoff_max: 1000 * MS,
        max_attempts: Some(5),
        jitter_seed: Some(42),
        old_link_grace: 2000 * MS,
        versions: Versions::V1Only,
        ..Config::default()
    }
}

fn welcome(conn_id: u64) -> Vec<u8> {
    ServerFrame::Welcome { version: ticksock_protocol::PROTOCOL_VERSION, tick_hz: 30, conn_id }.to_vec()
}

fn reply(id: u32, body: &[u8]) -> Vec<u8> {
    ServerFrame::Reply { id, body }.to_vec()
}

fn redirect(id: u32, url: &str) -> Vec<u8> {
    ServerFrame::Error { id, code: error_code::REDIRECT, message: url.into() }.to_vec()
}

/// Opens a link (version 1) and delivers its welcome; returns its events.
fn open_link(s: &mut Session, conn_id: u64, at: Instant) -> Vec<Event> {
    assert!(s.poll_connect(at), "a connection is due");
    s.handle_connected(Version::V1, at);
    s.handle_frame(&welcome(conn_id), at);
    events(s)
}

/// A session whose first link is up at `t0` (its `Connected` taken).
fn connected(t0: Instant) -> Session {
    let mut s = Session::new(config(), t0);
    let events = open_link(&mut s, 1, t0);
    assert!(matches!(events[..], [Event::Connected { conn_id: 1, .. }]), "{events:?}");
    s
}

/// Every request the session wants sent now: (id, route, body).
fn sent(s: &mut Session) -> Vec<(u32, String, Vec<u8>)> {
    std::iter::from_fn(|| s.poll_transmit())
        .map(|frame| match ClientFrame::decode(&frame).expect("a request") {
            ClientFrame::Request { id, route, body } => (id, route.to_owned(), body.to_vec()),
        })
        .collect()
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn links(s: &mut Session) -> Vec<LinkCommand> {
    std::iter::from_fn(|| s.poll_link()).collect()
}

/// A callback that records every outcome it gets.
fn recorder() -> (Arc<Mutex<Vec<Outcome>>>, CallOptions) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    let options =
        CallOptions::default().then(move |_, outcome| sink.lock().expect("not poisoned").push(outcome));
    (got, options)
}

#[test]
fn the_call_is_made_again_on_the_node_after_its_welcome_and_its_callback_gets_that_answer_once() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let (got, options) = recorder();
    let join = s.call_with("join", &"a1", options, t0).expect("call");
    let first = sent(&mut s);
    assert_eq!(first.len(), 1);
    s.handle_frame(&redirect(join.0, NODE_B), t0 + MS);
    assert_eq!(links(&mut s), [LinkCommand::Redirect], "the current link is set aside");
    assert!(got.lock().expect("lock").is_empty(), "no outcome yet");
    assert!(s.is_pending(join));
    assert_eq!(s.connect_url(), Some(NODE_B), "the first connection offers the ticket");
    // Calls made meanwhile wait.
    let later = s.call("rooms", &(), t0 + 2 * MS).expect("call");
    assert!(sent(&mut s).is_empty());

    let arrival = open_link(&mut s, 2, t0 + 3 * MS);
    assert!(
        matches!(&arrival[..], [Event::Redirected { url, conn_id: 2, .. }] if url == NODE_B_AGAIN),
        "Redirected, not Connected: {arrival:?}"
    );
    // The redirected call goes first, with the same route and body; the queue waits for its answer.
    let on_b = sent(&mut s);
    assert_eq!(on_b.len(), 1, "{on_b:?}");
    assert_eq!((&on_b[0].1, &on_b[0].2), (&first[0].1, &first[0].2));
    assert!(!s.keeps_old_link(), "nothing waits on the old link once the call is sent");
    s.handle_frame(&reply(on_b[0].0, b"joined"), t0 + 4 * MS);
    s.handle_frame(&reply(on_b[0].0, b"again"), t0 + 5 * MS);
    assert_eq!(*got.lock().expect("lock"), [Outcome::Reply(b"joined".to_vec())], "exactly once");
    assert_eq!(sent(&mut s).iter().map(|w| CallId(w.0)).collect::<Vec<_>>(), [later], "then the queue");
    assert_eq!(s.stats().redirects, 1);
    assert_eq!(s.stats().late_answers, 1, "the duplicate");

    // A reconnect goes to the node, without the spent ticket, and is an ordinary connection.
    s.handle_disconnect(t0 + 6 * MS);
    assert_eq!(s.connect_url(), Some(NODE_B_AGAIN));
    let at = s.poll_timeout().expect("a reconnect is scheduled");
    let again = open_link(&mut s, 3, at);
    assert!(again.iter().any(|e| matches!(e, Event::Connected { conn_id: 3, .. })), "{again:?}");
}

#[test]
fn calls_in_flight_on_the_old_link_get_their_answers_there_within_its_grace() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let answered = s.call("double", &1u32, t0).expect("call");
    let join = s.call("join", &"a1", t0).expect("call");
    let unanswered = s.call("double", &2u32, t0).expect("call");
    assert_eq!(sent(&mut s).len(), 3);
    s.handle_frame(&redirect(join.0, NODE_B), t0 + MS);
    assert_eq!(links(&mut s), [LinkCommand::Redirect]);
    open_link(&mut s, 2, t0 + 2 * MS);
    let on_b = sent(&mut s);
    assert_eq!(on_b.len(), 1);
    assert!(s.keeps_old_link(), "two calls still wait on the old link");
    // The old link's answer ends its call; its push and an answer to the redirected call's
    // old id are dropped.
    s.handle_old_link_frame(&reply(answered.0, b"2"), t0 + 3 * MS);
    s.handle_old_link_frame(&ServerFrame::Push { topic: "state".into(), body: b"" }.to_vec(), t0 + 3 * MS);
    s.handle_old_link_frame(&reply(join.0, b"stale"), t0 + 3 * MS);
    s.handle_frame(&reply(on_b[0].0, b"joined"), t0 + 4 * MS);
    let outcomes = |s: &mut Session| {
        events(s)
            .into_iter()
            .filter_map(|e| match e {
                Event::Outcome { id, outcome, .. } => Some((id, outcome)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        outcomes(&mut s),
        [(answered, Outcome::Reply(b"2".to_vec())), (join, Outcome::Reply(b"joined".to_vec()))]
    );
    // The other is never answered: the grace ends the old link, and the call with it.
    assert!(s.keeps_old_link());
    let grace_end = t0 + MS + config().old_link_grace;
    assert_eq!(s.poll_timeout(), Some(grace_end));
    s.handle_timeout(grace_end - MS);
    assert!(s.keeps_old_link(), "not before its grace");
    s.handle_timeout(grace_end);
    assert!(!s.keeps_old_link());
    assert_eq!(outcomes(&mut s), [(unanswered, Outcome::Disconnected)]);
    assert_eq!(s.link_state(), LinkState::Up, "the new link is not touched");
}

#[test]
fn a_call_follows_three_redirects_and_the_fourth_fails_it() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let (got, options) = recorder();
    s.call_with("join", &"a1", options, t0).expect("call");
    let mut id = sent(&mut s)[0].0;
    for hop in 0..MAX_REDIRECTS {
        let at = t0 + Duration::from_millis(10 * u64::from(hop) + 10);
        let url = format!("ws://10.0.0.{}:9102/?ticket=t{hop}", hop + 2);
        s.handle_frame(&redirect(id, &url), at);
        assert_eq!(links(&mut s), [LinkCommand::Redirect], "hop {hop}");
        assert_eq!(s.connect_url(), Some(url.as_str()));
        let arrival = open_link(&mut s, u64::from(hop) + 2, at + MS);
        assert!(matches!(arrival[..], [Event::Redirected { .. }]), "{arrival:?}");
        id = sent(&mut s)[0].0;
    }
    let last = "ws://10.0.0.9:9102/?ticket=t9";
    s.handle_frame(&redirect(id, last), t0 + 100 * MS);
    assert!(links(&mut s).is_empty(), "the fourth is not followed");
    assert_eq!(
        *got.lock().expect("lock"),
        [Outcome::Redirect(RedirectFailure::TooMany { url: last.into() })]
    );
    assert_eq!(s.link_state(), LinkState::Up);
    assert_eq!(s.pending_calls(), 0);
}

#[test]
fn a_refused_ticket_fails_the_call_and_the_session_goes_back_to_its_own_url() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let join = s.call("join", &"a1", t0).expect("call");
    sent(&mut s);
    s.handle_frame(&redirect(join.0, NODE_B), t0 + MS);
    links(&mut s);
    let queued = s.call("rooms", &(), t0 + 2 * MS).expect("call");
    open_link(&mut s, 2, t0 + 3 * MS);
    assert_eq!(sent(&mut s).len(), 1, "only the redirected call goes out on an unproven ticket");
    s.handle_server_close_code(CLOSE_BAD_TICKET, t0 + 4 * MS);
    s.handle_disconnect(t0 + 4 * MS);
    let after = events(&mut s);
    assert!(
        matches!(
            &after[..],
            [
                Event::Outcome { id, outcome: Outcome::Redirect(RedirectFailure::TicketRefused { url }), .. },
                Event::Disconnected,
                Event::Reconnecting { attempt: 1, .. },
            ] if *id == join && url == NODE_B
        ),
        "{after:?}"
    );
    assert_eq!(s.connect_url(), None, "back to its own URL");
    assert!(s.is_pending(queued), "the queued call waits for the next connection");
    let at = s.poll_timeout().expect("a reconnect, with backoff");
    assert!(at > t0 + 4 * MS);
    let home = open_link(&mut s, 3, at);
    assert!(matches!(home[..], [Event::Connected { conn_id: 3, .. }]), "log in again: {home:?}");
    s.poll_event(); // Releases the queue, as a game's next poll does.
    assert_eq!(sent(&mut s).iter().map(|w| CallId(w.0)).collect::<Vec<_>>(), [queued]);
}

#[test]
fn a_url_that_cannot_be_used_fails_the_call_and_the_session_stays() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let join = s.call("join", &"a1", t0).expect("call");
    sent(&mut s);
    s.handle_frame(&redirect(join.0, "http://10.0.0.2/?ticket=abc"), t0 + MS);
    assert!(links(&mut s).is_empty());
    let after = events(&mut s);
    assert!(
        matches!(
            &after[..],
            [Event::Outcome { outcome: Outcome::Redirect(RedirectFailure::BadUrl { .. }), .. }]
        ),
        "{after:?}"
    );
    assert_eq!((s.link_state(), s.connect_url()), (LinkState::Up, None));

    // One the session takes but the I/O layer cannot (say, a name that does not resolve):
    // the call fails, and the session reconnects to its own URL with backoff.
    let join = s.call("join", &"a1", t0 + 2 * MS).expect("call");
    sent(&mut s);
    s.handle_frame(&redirect(join.0, "ws://nowhere.invalid:1/?ticket=abc"), t0 + 3 * MS);
    links(&mut s);
    assert!(s.poll_connect(t0 + 3 * MS));
    s.handle_unusable_url("no address".into(), t0 + 3 * MS);
    let after = events(&mut s);
    assert!(
        matches!(
            &after[..],
            [
                Event::Outcome { outcome: Outcome::Redirect(RedirectFailure::BadUrl { problem, .. }), .. },
                Event::Reconnecting { .. },
            ] if problem == "no address"
        ),
        "{after:?}"
    );
    assert_eq!(s.connect_url(), None);
}

#[test]
fn a_node_that_cannot_be_reached_fails_the_call_and_the_session_goes_back_with_backoff() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let join = s.call("join", &"a1", t0).expect("call");
    sent(&mut s);
    s.handle_frame(&redirect(join.0, NODE_B), t0 + MS);
    links(&mut s);
    assert!(s.poll_connect(t0 + MS), "at once: a redirect is no failure");
    // No welcome within the connect timeout.
    let at = s.poll_timeout().expect("the connect timeout");
    s.handle_timeout(at);
    let after = events(&mut s);
    assert!(
        matches!(
            &after[..],
            [
                Event::Outcome { outcome: Outcome::Redirect(RedirectFailure::Unreachable { url }), .. },
                Event::Reconnecting { attempt: 1, .. },
            ] if url == NODE_B
        ),
        "{after:?}"
    );
    assert_eq!(s.connect_url(), None);
    assert!(!s.keeps_old_link(), "nothing waits on the old link: it is closed");
}

#[test]
fn on_version_2_the_node_starts_a_new_session_and_the_call_is_its_first_request() {
    let t0 = Instant::now();
    let mut s = Session::new(Config { versions: Versions::V2ThenV1, ..config() }, t0);
    let v2_welcome = |conn_id: u64| {
        let mut out = Vec::new();
        v2::write_welcome(Encoding::Binary, &mut out, 30, conn_id, 77, &[conn_id as u8; 16]);
        out
    };
    assert!(s.poll_connect(t0));
    s.handle_connected(Version::V2, t0);
    s.handle_frame(&v2_welcome(1), t0);
    events(&mut s);
    let join = s.call("join", &"a1", t0).expect("call");
    let requests = |s: &mut Session| {
        std::iter::from_fn(|| s.poll_transmit())
            .filter_map(|frame| match v2::decode_client_frame(Encoding::Binary, &frame).expect("v2") {
                v2::ClientFrame::Request { seq, request, .. } => Some((seq, request.route.to_owned())),
                v2::ClientFrame::Ack { .. } => None,
                other => panic!("only requests and acks: {other:?}"),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(requests(&mut s), [(1, "join".to_owned())]);
    s.handle_frame(&redirect(join.0, NODE_B), t0 + MS);
    assert_eq!(links(&mut s), [LinkCommand::Redirect]);
    assert_eq!(s.held_session(), None, "the old session is not resumed: its link is closed");
    assert!(s.poll_connect(t0 + MS));
    s.handle_connected(Version::V2, t0 + MS);
    s.handle_frame(&v2_welcome(2), t0 + 2 * MS);
    assert!(matches!(events(&mut s)[..], [Event::Redirected { conn_id: 2, .. }]));
    assert_eq!(requests(&mut s), [(1, "join".to_owned())], "no Resume: the first request of a new session");
    assert_eq!(s.held_session(), Some(2));
}
