//! The chat room in a server of its own, called by blocking Rust clients.
//!
//! Nothing here waits for time to pass: a call's reply comes after every push the server made
//! for that connection before answering it, so after a call, the pushes received so far are all
//! there are.

mod common;

use common::{connect, decode, error_code, http_get, push_where, pushes_so_far, start, stop};
use ticksock_client::BlockingClient;
use ticksock_examples::chat::{
    self, Chat, ERR_ALREADY_JOINED, ERR_BAD_LINE, ERR_BAD_NAME, ERR_NAME_TAKEN, ERR_NOT_JOINED, Join, Line,
    MAX_NAME_CHARS, Presence, ROUTE_JOIN, ROUTE_SAY, ROUTE_WHO, Say, TOPIC_LINE, TOPIC_PRESENCE,
};
use ticksock_server::StaticFiles;

fn join(client: &mut BlockingClient, name: &str) -> Result<(), ticksock_client::Error> {
    client.call(ROUTE_JOIN, &Join { name: name.into() })
}

fn say(client: &mut BlockingClient, text: &str) -> Result<(), ticksock_client::Error> {
    client.call(ROUTE_SAY, &Say { text: text.into() })
}

fn who(client: &mut BlockingClient) -> Vec<String> {
    client.call(ROUTE_WHO, &()).expect("who")
}

/// The pushes received so far, decoded by topic.
fn room_pushes(client: &mut BlockingClient) -> (Vec<Line>, Vec<Presence>) {
    let (mut lines, mut presence) = (Vec::new(), Vec::new());
    for (topic, body) in pushes_so_far(client) {
        match topic.as_str() {
            TOPIC_LINE => lines.push(decode(&body)),
            TOPIC_PRESENCE => presence.push(decode(&body)),
            other => panic!("unexpected push on `{other}`"),
        }
    }
    (lines, presence)
}

fn line(from: &str, text: &str) -> Line {
    Line { from: from.into(), text: text.into() }
}

fn presence(name: &str, online: bool) -> Presence {
    Presence { name: name.into(), online }
}

#[test]
fn joiners_are_announced_to_the_others_and_lines_reach_everyone_in_the_room() {
    let server = start(Chat, 30, StaticFiles::none());
    let (mut ann, mut bob, mut eve) =
        (connect(server.local_addr()), connect(server.local_addr()), connect(server.local_addr()));
    join(&mut ann, " ann ").expect("join");
    assert_eq!(who(&mut ann), ["ann"], "the name is trimmed");
    join(&mut bob, "bob").expect("join");
    assert_eq!(who(&mut bob), ["ann", "bob"]);
    assert_eq!(room_pushes(&mut bob), (vec![], vec![]), "no presence of one's own join");

    say(&mut bob, "  hi ann ").expect("say");
    assert_eq!(
        room_pushes(&mut bob),
        (vec![line("bob", "hi ann")], vec![]),
        "the speaker gets its line first"
    );
    assert_eq!(who(&mut ann), ["ann", "bob"]);
    assert_eq!(room_pushes(&mut ann), (vec![line("bob", "hi ann")], vec![presence("bob", true)]));
    // eve is connected but has not joined: she is not in the room.
    assert_eq!(who(&mut eve), ["ann", "bob"]);
    assert_eq!(room_pushes(&mut eve), (vec![], vec![]));
    stop(server, [ann, bob, eve]);
}

#[test]
fn leaving_is_announced_and_frees_the_name() {
    let server = start(Chat, 30, StaticFiles::none());
    let (mut ann, mut bob) = (connect(server.local_addr()), connect(server.local_addr()));
    join(&mut ann, "ann").expect("join");
    join(&mut bob, "bob").expect("join");
    bob.close();
    let left = push_where(&mut ann, TOPIC_PRESENCE, |p: &Presence| !p.online);
    assert_eq!(left, presence("bob", false));
    assert_eq!(who(&mut ann), ["ann"]);
    let mut bob_again = connect(server.local_addr());
    join(&mut bob_again, "bob").expect("the name is free again");
    stop(server, [ann, bob_again]);
}

#[test]
fn bad_calls_get_clear_errors_and_change_nothing() {
    let server = start(Chat, 30, StaticFiles::none());
    let (mut ann, mut other) = (connect(server.local_addr()), connect(server.local_addr()));
    assert_eq!(error_code(say(&mut ann, "hello?")), ERR_NOT_JOINED);
    for bad in ["", "  ", "new\nline", &"x".repeat(MAX_NAME_CHARS + 1)] {
        assert_eq!(error_code(join(&mut ann, bad)), ERR_BAD_NAME, "{bad:?}");
    }
    join(&mut ann, "ann").expect("join");
    assert_eq!(error_code(join(&mut ann, "ann2")), ERR_ALREADY_JOINED);
    assert_eq!(error_code(join(&mut other, "ann")), ERR_NAME_TAKEN);
    assert_eq!(error_code(say(&mut ann, " ")), ERR_BAD_LINE);
    assert_eq!(who(&mut other), ["ann"]);
    assert_eq!(room_pushes(&mut other), (vec![], vec![]), "nothing was said or announced");
    assert_eq!(room_pushes(&mut ann), (vec![], vec![]));
    stop(server, [ann, other]);
}

#[test]
fn the_page_and_the_browser_client_are_served() {
    let server = start(Chat, 30, chat::page());
    let (status, content_type, body) = http_get(server.local_addr(), "/");
    assert_eq!((status, content_type.as_str()), (200, "text/html; charset=utf-8"));
    let page = String::from_utf8(body).expect("UTF-8");
    assert!(page.contains(r#"import { TicksockClient } from "/ticksock.js";"#), "{page}");
    for call in [r#"client.call("join", { name })"#, r#"client.call("who")"#, r#"client.call("say""#] {
        assert!(page.contains(call), "the page calls {call}");
    }
    let (status, _, body) = http_get(server.local_addr(), "/ticksock.js");
    assert_eq!(status, 200);
    assert_eq!(body, include_bytes!("../../web/dist/ticksock.js"));
    stop(server, []);
}
