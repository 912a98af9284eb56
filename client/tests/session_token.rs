//! The session's token (`docs/PROTOCOL.md` 13) against a fake server made of frames, in
//! simulated time: kept only when `auth` succeeds, forgotten on close 4003 and 4004, refused
//! unread when the server could not read it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ticksock_client::{Config, Error, Event, MAX_TOKEN_LEN, Outcome, Session};
use ticksock_protocol::{AuthReply, ClientFrame, ServerFrame, Version, error_code};

const MS: Duration = Duration::from_millis(1);

fn welcome() -> Vec<u8> {
    ServerFrame::Welcome { version: ticksock_protocol::PROTOCOL_VERSION, tick_hz: 30, conn_id: 7 }.to_vec()
}

/// A session connected at `t0` (welcome received, `Connected` taken).
fn connected(t0: Instant) -> Session {
    connected_with(None, t0)
}

/// A session that offered `token` at its upgrade, connected at `t0`.
fn connected_with(token: Option<&str>, t0: Instant) -> Session {
    let config = Config { backoff_initial: 100 * MS, jitter_seed: Some(1), ..Config::default() };
    let mut s = Session::new(config, t0);
    s.set_token(token.map(str::to_owned)).expect("a readable token");
    assert!(s.poll_connect(t0));
    s.handle_connected(Version::V1, t0);
    s.handle_frame(&welcome(), t0);
    assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
    s
}

/// The one request the session sent: (id, route, body).
fn sent_one(s: &mut Session) -> (u32, String, Vec<u8>) {
    let frame = s.poll_transmit().expect("a request was sent");
    assert!(s.poll_transmit().is_none(), "one request only");
    match ClientFrame::decode(&frame).expect("a valid request") {
        ClientFrame::Request { id, route, body } => (id, route.to_owned(), body.to_vec()),
    }
}

/// Calls `authenticate` and returns the request's id and where its outcome lands.
fn authenticate(s: &mut Session, token: &str, now: Instant) -> (u32, Arc<Mutex<Option<Outcome>>>) {
    let seen = Arc::new(Mutex::new(None));
    let keep = seen.clone();
    s.authenticate(token.to_owned(), now, move |_, outcome| {
        *keep.lock().expect("not poisoned") = Some(outcome)
    })
    .expect("sent");
    let (id, route, body) = sent_one(s);
    assert_eq!(route, ticksock_protocol::ROUTE_AUTH);
    assert_eq!(ticksock_protocol::decode_body::<String>(&body).expect("a string body"), token);
    (id, seen)
}

#[test]
fn authenticate_keeps_the_token_only_when_the_server_accepts_it() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    assert_eq!(s.token(), None);

    // Refused: Error unauthenticated, and no token is kept.
    let (id, seen) = authenticate(&mut s, "bad", t0);
    let refused = ServerFrame::Error { id, code: error_code::UNAUTHENTICATED, message: "no".into() };
    s.handle_frame(&refused.to_vec(), t0);
    assert!(matches!(
        *seen.lock().expect("not poisoned"),
        Some(Outcome::Error { code: error_code::UNAUTHENTICATED, .. })
    ));
    assert_eq!(s.token(), None);

    // Accepted: an AuthReply, and the token is kept for the next upgrade, before the
    // callback runs (it may reconnect at once).
    let seen_token = Arc::new(Mutex::new(None));
    let keep = seen_token.clone();
    s.authenticate("good.token".into(), t0, move |session, _| {
        *keep.lock().expect("not poisoned") = session.token().map(str::to_owned)
    })
    .expect("sent");
    let (id, ..) = sent_one(&mut s);
    let reply = AuthReply { user: "ann".into(), roles: vec![], expires_in_ms: Some(1000) };
    let body = ticksock_protocol::encode_body(&reply).expect("encodes");
    s.handle_frame(&ServerFrame::Reply { id, body: &body }.to_vec(), t0);
    assert_eq!(seen_token.lock().expect("not poisoned").as_deref(), Some("good.token"));
    assert_eq!(s.token(), Some("good.token"));

    // A later refusal of another token leaves the good one.
    let (id, _) = authenticate(&mut s, "other", t0);
    let refused = ServerFrame::Error { id, code: error_code::UNAUTHENTICATED, message: "no".into() };
    s.handle_frame(&refused.to_vec(), t0);
    assert_eq!(s.token(), Some("good.token"));

    // A reply that is not an AuthReply (a server without a verifier has no `auth` route and
    // answers an error; a confused one might answer something else): not kept.
    let mut s = connected(t0);
    let (id, _) = authenticate(&mut s, "tok", t0);
    s.handle_frame(&ServerFrame::Reply { id, body: &[] }.to_vec(), t0);
    assert_eq!(s.token(), None);
}

#[test]
fn a_close_4003_or_4004_forgets_the_token_and_the_session_reconnects_anonymous() {
    for (code, expired) in
        [(ticksock_protocol::CLOSE_AUTH_FAILED, false), (ticksock_protocol::CLOSE_AUTH_EXPIRED, true)]
    {
        let t0 = Instant::now();
        let mut s = connected_with(Some("tok"), t0);
        s.handle_server_close_code(code, t0);
        s.handle_disconnect(t0);
        let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
        let refused =
            events.iter().position(|e| matches!(e, Event::TokenRefused { expired: e } if *e == expired));
        let disconnected = events.iter().position(|e| matches!(e, Event::Disconnected));
        assert!(refused.is_some() && refused < disconnected, "{code}: {events:?}");
        assert!(events.iter().any(|e| matches!(e, Event::Reconnecting { .. })), "{events:?}");
        assert_eq!(s.token(), None, "{code}");
    }

    // A token the game set after the link opened (a fresh sign-in) is not the refused one.
    let t0 = Instant::now();
    let mut s = Session::new(Config { jitter_seed: Some(1), ..Config::default() }, t0);
    s.set_token(Some("old".into())).expect("a readable token");
    assert!(s.poll_connect(t0), "the link that offers `old`");
    s.handle_connected(Version::V1, t0);
    s.handle_frame(&welcome(), t0);
    s.set_token(Some("fresh".into())).expect("a readable token");
    s.handle_server_close_code(ticksock_protocol::CLOSE_AUTH_EXPIRED, t0);
    s.handle_disconnect(t0);
    assert!(
        std::iter::from_fn(|| s.poll_event()).any(|e| matches!(e, Event::TokenRefused { expired: true }))
    );
    assert_eq!(s.token(), Some("fresh"), "the next link offers the fresh one");

    // Any other close code keeps it.
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.set_token(Some("tok".into())).expect("a readable token");
    s.handle_server_close_code(1001, t0);
    s.handle_disconnect(t0);
    assert!(!std::iter::from_fn(|| s.poll_event()).any(|e| matches!(e, Event::TokenRefused { .. })));
    assert_eq!(s.token(), Some("tok"));
}

#[test]
fn a_token_the_server_could_not_read_is_refused_unsent_and_the_old_one_kept() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.set_token(Some("kept".into())).expect("a readable token");
    let too_long = "a".repeat(MAX_TOKEN_LEN + 1);
    for bad in ["", "has space", "percent%20", "é", too_long.as_str()] {
        assert!(matches!(s.set_token(Some(bad.into())), Err(Error::BadToken(_))), "{bad:?}");
        assert!(matches!(s.authenticate(bad.into(), t0, |_, _| {}), Err(Error::BadToken(_))), "{bad:?}");
        assert!(s.poll_transmit().is_none(), "{bad:?} was sent");
        assert_eq!(s.token(), Some("kept"));
    }
    let longest = "a".repeat(MAX_TOKEN_LEN);
    s.set_token(Some(longest.clone())).expect("4096 bytes are readable");
    s.set_token(Some("A-Za-z0-9-_.~+/=".into())).expect("every URL-safe character");
    s.set_token(None).expect("None clears it");
    assert_eq!(s.token(), None);
}
