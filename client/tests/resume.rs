//! Version 2 over real sockets, against the server in this process (`docs/PROTOCOL.md` 11):
//! the client's TCP connection is cut under a call in flight ([`Client::drop_link`], both
//! directions shut down, no close frame), and the session resumes on the next link: the call's
//! reply comes exactly once, and a push the game made while the link was down comes after the
//! resume. Also: a request the server never got is sent again; a restarted server or a session
//! whose grace passed refuses the resume, and the client starts afresh; a client forced to
//! version 1 loses its calls with the link, as before.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Hook, TOPIC_WHILE_DOWN, fast_config, pump_for, pump_until, server_config, start_game, url};
use ticksock_client::{CallId, Client, Config, Event, Outcome, SessionEnd, Versions};
use ticksock_protocol::{Version, resume_reason};
use ticksock_server::ConnId;

const WITHIN: Duration = Duration::from_secs(5);

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("an address")
}

fn connected_client(addr: std::net::SocketAddr, config: Config) -> Client {
    let mut client = Client::new(&url(addr), config).expect("client");
    pump_until(&mut client, WITHIN, |e| matches!(e, Event::Connected { .. }));
    client
}

/// Waits (without driving the client, whose link stays down meanwhile) until the game has run
/// `hook`.
fn wait_for_hook(hooks: &Arc<Mutex<Vec<Hook>>>, hook: Hook) {
    let deadline = Instant::now() + WITHIN;
    while !hooks.lock().expect("hooks").contains(&hook) {
        assert!(Instant::now() < deadline, "the game never ran {hook:?}: {:?}", hooks.lock().expect("hooks"));
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Calls `route` and waits for its reply, decoded as u32.
fn call_u32(client: &mut Client, route: &str, value: u32) -> u32 {
    let id = client.call(route, &value).expect("call");
    let events = pump_until(client, WITHIN, |e| matches!(e, Event::Outcome { id: done, .. } if *done == id));
    match events.last() {
        Some(Event::Outcome { outcome, .. }) => outcome.clone().decode().expect("a u32 reply"),
        other => panic!("{other:?}"),
    }
}

fn outcomes_of(events: &[Event], wanted: CallId) -> Vec<&Outcome> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Outcome { id, outcome, .. } if *id == wanted => Some(outcome),
            _ => None,
        })
        .collect()
}

/// The session id the client holds, as the server names it.
fn session_of(client: &Client) -> ConnId {
    ConnId::from_u64(client.session().held_session().expect("a version 2 session"))
}

#[test]
fn a_cut_link_resumes_the_call_in_flight_gets_its_one_reply_and_the_push_made_meanwhile_follows() {
    let (server, _, hooks) = start_game(server_config(any_port()));
    let mut client = connected_client(server.local_addr(), fast_config());
    assert_eq!(client.session().version(), Some(Version::V2), "the server picks version 2");
    let session = session_of(&client);
    assert_eq!(call_u32(&mut client, "double", 4), 8);
    // In flight: the game answers it when the link drops, then pushes.
    let in_flight = client.call("until_drop", &41u32).expect("call");
    client.drop_link();
    wait_for_hook(&hooks, Hook::Drop(session));

    let mut pushes = 0;
    let events = pump_until(&mut client, WITHIN, |e| {
        pushes += usize::from(matches!(e, Event::Push { topic, .. } if topic == TOPIC_WHILE_DOWN));
        pushes == 1
    });
    let later = pump_for(&mut client, Duration::from_millis(300));
    let order: Vec<&str> = events
        .iter()
        .map(|e| match e {
            Event::LinkDropped => "LinkDropped",
            Event::Reconnecting { .. } => "Reconnecting",
            Event::Resumed { .. } => "Resumed",
            Event::Outcome { .. } => "Outcome",
            Event::Push { .. } => "Push",
            _ => "other",
        })
        .filter(|name| *name != "Reconnecting")
        .collect();
    assert_eq!(order, ["LinkDropped", "Resumed", "Outcome", "Push"], "{events:?}");
    assert_eq!(outcomes_of(&events, in_flight), [&Outcome::Reply(vec![41])], "41 is one byte in bincode");
    assert!(outcomes_of(&later, in_flight).is_empty(), "exactly once: {later:?}");
    assert!(
        matches!(events.iter().find(|e| matches!(e, Event::Resumed { .. })), Some(Event::Resumed { conn_id, .. }) if *conn_id == session.to_u64())
    );
    let stats = *client.session().stats();
    assert_eq!((stats.resumes, stats.resume_failures, stats.late_answers), (1, 0, 0));
    assert_eq!(session_of(&client), session, "the same session");
    // The game saw one connection, dropped and resumed: no new connect, no disconnect.
    assert_eq!(
        *hooks.lock().expect("hooks"),
        [Hook::Connect(session), Hook::Drop(session), Hook::Resume(session)]
    );
    assert_eq!(call_u32(&mut client, "double", 5), 10, "the session goes on");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_request_written_into_the_cut_link_is_sent_again_after_the_resume_and_runs_once() {
    let (server, log, hooks) = start_game(server_config(any_port()));
    let mut client = connected_client(server.local_addr(), fast_config());
    let session = session_of(&client);
    assert_eq!(call_u32(&mut client, "record", 1), 1);
    client.drop_link();
    // Numbered and handed to the dead socket: the server never reads it.
    let lost = client.call("record", &2u32).expect("call");
    assert_eq!(client.session().stats().sent, 2);
    wait_for_hook(&hooks, Hook::Drop(session));
    let events = pump_until(&mut client, WITHIN, |e| matches!(e, Event::Outcome { id, .. } if *id == lost));
    assert_eq!(outcomes_of(&events, lost), [&Outcome::Reply(vec![2])], "the second record");
    pump_for(&mut client, Duration::from_millis(200));
    assert_eq!(*log.lock().expect("log"), [1, 2], "run once");
    assert_eq!((client.session().stats().resent, client.session().stats().resumes), (1, 1));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_restarted_server_refuses_the_resume_and_the_client_starts_a_new_session() {
    let (server, _, hooks) = start_game(server_config(any_port()));
    let addr = server.local_addr();
    let mut client = connected_client(addr, fast_config());
    let session = session_of(&client);
    let in_flight = client.call("never", &()).expect("call");
    // Answered after `never` was taken: the server takes a session's requests in order.
    assert_eq!(call_u32(&mut client, "double", 1), 2);
    client.drop_link();
    wait_for_hook(&hooks, Hook::Drop(session));
    server.shutdown().expect("clean shutdown");

    let (server, _, hooks) = start_game(server_config(addr));
    let events = pump_until(&mut client, WITHIN, |e| matches!(e, Event::Connected { .. }));
    assert_eq!(outcomes_of(&events, in_flight), [&Outcome::Disconnected]);
    let ended = events.iter().find_map(|e| match e {
        Event::SessionEnded { reason } => Some(reason),
        _ => None,
    });
    assert!(
        matches!(ended, Some(SessionEnd::ResumeFailed { reason: resume_reason::RESTARTED, .. })),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(e, Event::LinkDropped)));
    // The new run's first connection may get the same id (2): what counts is that the client
    // holds the session of the new welcome, which the game has started.
    let Some(Event::Connected { conn_id, .. }) = events.last() else {
        unreachable!("pumped until Connected")
    };
    assert_eq!(client.session().held_session(), Some(*conn_id));
    assert_eq!(call_u32(&mut client, "double", 3), 6);
    assert_eq!(*hooks.lock().expect("hooks"), [Hook::Connect(ConnId::from_u64(*conn_id))]);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_session_whose_grace_passed_refuses_the_resume_as_ended() {
    let config =
        ticksock_server::Config { session_grace: Duration::from_millis(50), ..server_config(any_port()) };
    let (server, _, hooks) = start_game(config);
    let mut client = connected_client(server.local_addr(), fast_config());
    let session = session_of(&client);
    let in_flight = client.call("never", &()).expect("call");
    assert_eq!(call_u32(&mut client, "double", 1), 2);
    client.drop_link();
    wait_for_hook(&hooks, Hook::Disconnect(session));
    let events = pump_until(&mut client, WITHIN, |e| matches!(e, Event::Connected { .. }));
    assert_eq!(outcomes_of(&events, in_flight), [&Outcome::Disconnected]);
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::SessionEnded { reason: SessionEnd::ResumeFailed { reason: resume_reason::ENDED, .. } }
        )),
        "{events:?}"
    );
    assert_eq!(call_u32(&mut client, "double", 3), 6);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_client_forced_to_v1_speaks_v1_and_its_calls_in_flight_fail_with_the_link() {
    let (server, _, hooks) = start_game(server_config(any_port()));
    let config = Config { versions: Versions::V1Only, ..fast_config() };
    let mut client = connected_client(server.local_addr(), config);
    assert_eq!(client.session().version(), Some(Version::V1));
    assert_eq!(client.session().held_session(), None);
    let in_flight = client.call("never", &()).expect("call");
    assert_eq!(call_u32(&mut client, "double", 1), 2);
    client.drop_link();
    let events = pump_until(&mut client, WITHIN, |e| matches!(e, Event::Connected { .. }));
    assert_eq!(outcomes_of(&events, in_flight), [&Outcome::Disconnected]);
    assert!(events.iter().any(|e| matches!(e, Event::Disconnected)));
    assert!(!events.iter().any(|e| matches!(e, Event::LinkDropped | Event::Resumed { .. })));
    assert_eq!(call_u32(&mut client, "double", 3), 6);
    let hooks = hooks.lock().expect("hooks").clone();
    assert!(matches!(hooks[..], [Hook::Connect(_), Hook::Disconnect(_), Hook::Connect(_)]), "{hooks:?}");
    server.shutdown().expect("clean shutdown");
}
