//! The chat room through the test harness: joining and the names it refuses, saying lines,
//! presence, `who`, and leaving by closing the connection, in both encodings and in the JSON
//! text the page sends and reads. No socket and no waiting: what a call or a disconnect pushes
//! is queued when it returns. (The program serving its page over HTTP is tested in
//! `programs.rs`.)

use serde_json::json;
use ticksock_examples::chat::{
    self, Chat, ERR_ALREADY_JOINED, ERR_BAD_LINE, ERR_BAD_NAME, ERR_NAME_TAKEN, ERR_NOT_JOINED, Join, Line,
    MAX_LINE_CHARS, MAX_NAME_CHARS, Presence, ROOM, ROUTE_JOIN, ROUTE_SAY, ROUTE_WHO, Say, TOPIC_LINE,
    TOPIC_PRESENCE,
};
use ticksock_server::testing::{CallError, Encoding, TestClient, TestServer, error_code};

fn join(server: &mut TestServer<Chat>, client: TestClient, name: &str) -> Result<(), CallError> {
    server.call(client, ROUTE_JOIN, &Join { name: name.into() })
}

fn say(server: &mut TestServer<Chat>, client: TestClient, text: &str) -> Result<(), CallError> {
    server.call(client, ROUTE_SAY, &Say { text: text.into() })
}

fn who(server: &mut TestServer<Chat>, client: TestClient) -> Vec<String> {
    server.call(client, ROUTE_WHO, &()).expect("who")
}

/// The error code of a call that must fail.
fn code(answer: Result<(), CallError>) -> u16 {
    answer.expect_err("the call must fail").code
}

/// Every push `client` has received and not yet taken, by topic; none may be on another topic.
fn room_pushes(server: &mut TestServer<Chat>, client: TestClient) -> (Vec<Line>, Vec<Presence>) {
    let pushes = (server.pushes(client, TOPIC_LINE), server.pushes(client, TOPIC_PRESENCE));
    assert_eq!(server.frames(client).count(), 0, "{:?}: a push on another topic", client.conn());
    pushes
}

fn line(from: &str, text: &str) -> Line {
    Line { from: from.into(), text: text.into() }
}

fn presence(name: &str, online: bool) -> Presence {
    Presence { name: name.into(), online }
}

/// Nothing said, nobody came or went.
const QUIET: (Vec<Line>, Vec<Presence>) = (Vec::new(), Vec::new());

#[test]
fn a_joiner_is_announced_to_the_room_but_not_to_itself_or_to_outsiders() {
    let mut server = TestServer::new(Chat);
    let ann = server.connect(Encoding::Binary);
    let bob = server.connect(Encoding::Json);
    let eve = server.connect(Encoding::Binary);
    assert_eq!(join(&mut server, ann, " ann "), Ok(()));
    assert_eq!(who(&mut server, ann), ["ann"], "the name is trimmed");
    assert_eq!(server.hub().user_of(ann.conn()), Some("ann"), "and bound as the connection's user");
    assert_eq!(room_pushes(&mut server, ann), QUIET, "no presence of one's own join");

    assert_eq!(join(&mut server, bob, "bob"), Ok(()));
    assert_eq!(room_pushes(&mut server, ann), (vec![], vec![presence("bob", true)]));
    assert_eq!(room_pushes(&mut server, bob), QUIET, "nobody is announced to a joiner: it asks `who`");
    // eve is connected but has not joined: she hears nothing, and may still ask who is there.
    assert_eq!(room_pushes(&mut server, eve), QUIET);
    assert_eq!(who(&mut server, eve), ["ann", "bob"]);
    assert_eq!(server.hub().members(ROOM).count(), 2);
}

#[test]
fn who_lists_the_names_in_the_room_sorted() {
    let mut server = TestServer::new(Chat);
    let outsider = server.connect(Encoding::Json);
    assert_eq!(who(&mut server, outsider), [] as [&str; 0], "an empty room");
    for name in ["cy", "bob", "Ann", "ábel"] {
        let client = server.connect(Encoding::Binary);
        assert_eq!(join(&mut server, client, name), Ok(()));
    }
    // Sorted as Rust sorts strings, by code point: capitals first, accents last.
    assert_eq!(who(&mut server, outsider), ["Ann", "bob", "cy", "ábel"]);
}

#[test]
fn a_line_reaches_everyone_in_the_room_the_speaker_too_and_nobody_outside() {
    let mut server = TestServer::new(Chat);
    let [ann, bob] = [Encoding::Binary, Encoding::Json].map(|encoding| server.connect(encoding));
    let eve = server.connect(Encoding::Json);
    assert_eq!(join(&mut server, ann, "ann"), Ok(()));
    assert_eq!(join(&mut server, bob, "bob"), Ok(()));
    room_pushes(&mut server, ann);

    assert_eq!(say(&mut server, bob, "  hi ann \n"), Ok(()));
    assert_eq!(say(&mut server, ann, "hi bob"), Ok(()));
    let both = vec![line("bob", "hi ann"), line("ann", "hi bob")];
    assert_eq!(room_pushes(&mut server, ann), (both.clone(), vec![]), "trimmed, in the order said");
    assert_eq!(room_pushes(&mut server, bob), (both, vec![]), "the speaker hears its own line");
    assert_eq!(room_pushes(&mut server, eve), QUIET, "eve never joined");
    let longest = "x".repeat(MAX_LINE_CHARS);
    assert_eq!(say(&mut server, ann, &longest), Ok(()));
    assert_eq!(room_pushes(&mut server, bob), (vec![line("ann", &longest)], vec![]));
}

#[test]
fn refused_names_get_clear_errors_and_change_nothing() {
    let mut server = TestServer::new(Chat);
    let [ann, other] = [Encoding::Binary, Encoding::Json].map(|encoding| server.connect(encoding));
    let too_long = "x".repeat(MAX_NAME_CHARS + 1);
    for bad in ["", "   ", "new\nline", "tab\there", "nul\0", too_long.as_str()] {
        assert_eq!(
            join(&mut server, ann, bad),
            Err(CallError {
                code: ERR_BAD_NAME,
                message: format!(
                    "a name must be 1 to {MAX_NAME_CHARS} characters, without control characters"
                )
            }),
            "{bad:?}"
        );
    }
    assert_eq!(who(&mut server, other), [] as [&str; 0], "nobody joined");
    assert_eq!(server.hub().user_of(ann.conn()), None, "nor was a name bound");

    assert_eq!(join(&mut server, ann, "ann"), Ok(()));
    assert_eq!(
        join(&mut server, other, " ann "),
        Err(CallError { code: ERR_NAME_TAKEN, message: "`ann` is taken".into() }),
        "taken once trimmed"
    );
    assert_eq!(code(join(&mut server, ann, "ann")), ERR_ALREADY_JOINED, "even under the same name");
    assert_eq!(code(join(&mut server, ann, "ann2")), ERR_ALREADY_JOINED);
    assert_eq!(code(say(&mut server, other, "let me in")), ERR_NOT_JOINED, "a refused join leaves it out");
    assert_eq!(who(&mut server, other), ["ann"]);
    assert_eq!(server.hub().user_of(other.conn()), None);
    assert_eq!(room_pushes(&mut server, ann), QUIET, "nobody was announced");
    assert_eq!(room_pushes(&mut server, other), QUIET);

    // The longest name there may be, in characters rather than bytes.
    let longest = "é".repeat(MAX_NAME_CHARS);
    assert_eq!(join(&mut server, other, &longest), Ok(()), "it may join under a free name");
    assert_eq!(room_pushes(&mut server, ann), (vec![], vec![presence(&longest, true)]));
}

#[test]
fn a_line_before_joining_or_a_bad_line_is_refused_and_nothing_is_said() {
    let mut server = TestServer::new(Chat);
    let [ann, bob] = [Encoding::Binary, Encoding::Json].map(|encoding| server.connect(encoding));
    assert_eq!(
        say(&mut server, ann, "hello?"),
        Err(CallError { code: ERR_NOT_JOINED, message: "join first".into() })
    );
    assert_eq!(join(&mut server, ann, "ann"), Ok(()));
    assert_eq!(join(&mut server, bob, "bob"), Ok(()));
    room_pushes(&mut server, ann);
    let too_long = "x".repeat(MAX_LINE_CHARS + 1);
    for bad in ["", " \n ", "bell\u{7}", too_long.as_str()] {
        assert_eq!(code(say(&mut server, ann, bad)), ERR_BAD_LINE, "{bad:?}");
    }
    assert_eq!(room_pushes(&mut server, ann), QUIET);
    assert_eq!(room_pushes(&mut server, bob), QUIET);
}

#[test]
fn leaving_is_announced_to_the_room_and_frees_the_name() {
    let mut server = TestServer::new(Chat);
    let [ann, bob] = [Encoding::Binary, Encoding::Json].map(|encoding| server.connect(encoding));
    let eve = server.connect(Encoding::Binary);
    assert_eq!(join(&mut server, ann, "ann"), Ok(()));
    assert_eq!(join(&mut server, bob, "bob"), Ok(()));
    room_pushes(&mut server, ann);

    server.disconnect(bob);
    assert_eq!(room_pushes(&mut server, ann), (vec![], vec![presence("bob", false)]));
    assert_eq!(room_pushes(&mut server, eve), QUIET, "eve is not in the room");
    assert_eq!(who(&mut server, ann), ["ann"]);

    let bob_again = server.connect(Encoding::Binary);
    assert_eq!(join(&mut server, bob_again, "bob"), Ok(()), "the name is free again");
    assert_eq!(room_pushes(&mut server, ann), (vec![], vec![presence("bob", true)]));
    assert_eq!(say(&mut server, bob_again, "back"), Ok(()));
    assert_eq!(room_pushes(&mut server, ann), (vec![line("bob", "back")], vec![]));
}

#[test]
fn leaving_without_having_joined_announces_nothing() {
    let mut server = TestServer::new(Chat);
    let [ann, refused, outsider] = [Encoding::Binary; 3].map(|encoding| server.connect(encoding));
    assert_eq!(join(&mut server, ann, "ann"), Ok(()));
    assert_eq!(code(join(&mut server, refused, "ann")), ERR_NAME_TAKEN);
    server.disconnect(refused);
    server.disconnect(outsider);
    assert_eq!(room_pushes(&mut server, ann), QUIET);
    assert_eq!(who(&mut server, ann), ["ann"], "ann's name stays hers");
}

/// The frames `client` has received and not yet taken, as text.
fn json_frames(server: &TestServer<Chat>, client: TestClient) -> Vec<String> {
    server.frames(client).map(|f| String::from_utf8(f.to_vec()).expect("JSON text")).collect()
}

#[test]
fn the_page_joins_says_and_follows_the_room_in_json() {
    let mut server = TestServer::new(Chat);
    let page = server.connect(Encoding::Json);
    let bob = server.connect(Encoding::Binary);

    // `client.call("join", { name })`: an object with the name.
    let id = server.send(page, ROUTE_JOIN, &json!({"name": "ann"}));
    assert_eq!(json_frames(&server, page), [format!(r#"{{"type":"reply","id":{id},"body":null}}"#)]);
    assert_eq!(server.answer::<()>(page, id), Some(Ok(())));
    // `client.call("who")` sends no body, which the protocol reads as `null`, as sent here.
    assert_eq!(server.call::<_, serde_json::Value>(page, ROUTE_WHO, &json!(null)), Ok(json!(["ann"])));

    assert_eq!(join(&mut server, bob, "bob"), Ok(()));
    assert_eq!(say(&mut server, bob, "hi"), Ok(()));
    // `client.call("say", { text })`.
    assert_eq!(server.call::<_, ()>(page, ROUTE_SAY, &json!({"text": "hello bob"})), Ok(()));
    server.disconnect(bob);
    // What the page's `presence` and `line` handlers get, in order.
    assert_eq!(
        json_frames(&server, page),
        [
            r#"{"type":"push","topic":"presence","body":{"name":"bob","online":true}}"#,
            r#"{"type":"push","topic":"line","body":{"from":"bob","text":"hi"}}"#,
            r#"{"type":"push","topic":"line","body":{"from":"ann","text":"hello bob"}}"#,
            r#"{"type":"push","topic":"presence","body":{"name":"bob","online":false}}"#,
        ]
    );
}

#[test]
fn a_page_body_of_the_wrong_shape_is_refused_as_bad_body() {
    let mut server = TestServer::new(Chat);
    let page = server.connect(Encoding::Json);
    for (route, bad) in [
        (ROUTE_JOIN, json!({})),
        (ROUTE_JOIN, json!("ann")),
        (ROUTE_JOIN, json!({"name": 5})),
        (ROUTE_SAY, json!({"line": "hi"})),
        (ROUTE_WHO, json!({})),
    ] {
        assert_eq!(code(server.call(page, route, &bad)), error_code::BAD_BODY, "{route} {bad}");
    }
    assert_eq!(who(&mut server, page), [] as [&str; 0], "nobody joined");
    // A refusal the page shows: its code and message, as JSON.
    let id = server.send(page, ROUTE_JOIN, &json!({"name": ""}));
    let [error] = json_frames(&server, page).try_into().expect("one frame, the error");
    let error: serde_json::Value = serde_json::from_str(&error).expect("JSON");
    let message = format!("a name must be 1 to {MAX_NAME_CHARS} characters, without control characters");
    assert_eq!(error, json!({"type": "error", "id": id, "code": ERR_BAD_NAME, "message": message}));
}

#[test]
fn the_page_calls_join_who_and_say_and_imports_the_browser_client() {
    let files = chat::page();
    let (page, content_type) = files.get("/").expect("a page at /");
    assert_eq!(content_type, "text/html; charset=utf-8");
    let page = std::str::from_utf8(page).expect("UTF-8");
    for needed in [
        r#"import { TicksockClient } from "/ticksock.js";"#,
        r#"client.call("join", { name })"#,
        r#"client.call("who")"#,
        r#"client.call("say", { text:"#,
        r#"client.on("line", ({ from, text })"#,
        r#"client.on("presence", ({ name, online })"#,
    ] {
        assert!(page.contains(needed), "the page has {needed}");
    }
    let (script, content_type) = files.get("/ticksock.js").expect("the browser client");
    assert_eq!(content_type, "text/javascript; charset=utf-8");
    assert_eq!(script, include_bytes!("../../web/dist/ticksock.js"));
}
