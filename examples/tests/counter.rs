//! The counter game in a server of its own, called by the blocking Rust client and, as the
//! page does, over the JSON subprotocol.

mod common;

use common::{connect, decode, error_code, http_get, push_where, pushes_so_far, raw_socket, start, stop};
use ticksock_examples::counter::{self, Counter, ERR_OVERFLOW, ROUTE_ADD, TOPIC_TOTAL};
use ticksock_server::StaticFiles;

/// So many ticks between pushes that none comes while a test runs.
const NEVER: u32 = u32::MAX;

#[test]
fn add_answers_the_new_total_and_every_connection_gets_it_pushed() {
    let server = start(Counter::new(1), 100, StaticFiles::none());
    let (mut ann, mut bob) = (connect(server.local_addr()), connect(server.local_addr()));
    assert_eq!(ann.call::<_, i64>(ROUTE_ADD, &5).expect("add"), 5);
    assert_eq!(bob.call::<_, i64>(ROUTE_ADD, &-2).expect("add"), 3);
    for client in [&mut ann, &mut bob] {
        assert_eq!(push_where(client, TOPIC_TOTAL, |&total: &i64| total == 3), 3);
    }
    stop(server, [ann, bob]);
}

#[test]
fn a_new_connection_gets_the_total_at_once_and_only_then_without_ticks() {
    let server = start(Counter::new(NEVER), 100, StaticFiles::none());
    let mut ann = connect(server.local_addr());
    assert_eq!(ann.call::<_, i64>(ROUTE_ADD, &7).expect("add"), 7);
    let mut bob = connect(server.local_addr());
    // The reply to bob's call comes after every push made for bob before it.
    assert_eq!(bob.call::<_, i64>(ROUTE_ADD, &0).expect("add"), 7);
    let pushes = pushes_so_far(&mut bob);
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!((pushes[0].0.as_str(), decode::<i64>(&pushes[0].1)), (TOPIC_TOTAL, 7));
    stop(server, [ann, bob]);
}

#[test]
fn bad_input_gets_a_clear_error_and_leaves_the_total() {
    let server = start(Counter::new(NEVER), 100, StaticFiles::none());
    let mut ann = connect(server.local_addr());
    assert_eq!(ann.call::<_, i64>(ROUTE_ADD, &i64::MAX).expect("add"), i64::MAX);
    assert_eq!(error_code(ann.call::<_, i64>(ROUTE_ADD, &1)), ERR_OVERFLOW);
    assert_eq!(error_code(ann.call::<_, i64>(ROUTE_ADD, &"one")), ticksock_protocol::error_code::BAD_BODY);
    assert_eq!(ann.call::<_, i64>(ROUTE_ADD, &-1).expect("the connection goes on"), i64::MAX - 1);
    stop(server, [ann]);
}

#[test]
fn the_page_speaks_json_add_and_total_as_plain_numbers() {
    use tungstenite::Message;
    fn read_json(ws: &mut tungstenite::WebSocket<std::net::TcpStream>) -> serde_json::Value {
        match ws.read().expect("a frame") {
            Message::Text(text) => serde_json::from_str(&text).expect("JSON"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
    let server = start(Counter::new(NEVER), 100, StaticFiles::none());
    let mut ws = raw_socket(server.local_addr(), ticksock_protocol::SUBPROTOCOL_JSON);
    assert_eq!(read_json(&mut ws), serde_json::json!({"type": "push", "topic": "total", "body": 0}));
    ws.send(Message::text(r#"{"id": 1, "route": "add", "body": 5}"#)).expect("send");
    assert_eq!(read_json(&mut ws), serde_json::json!({"type": "reply", "id": 1, "body": 5}));
    ws.send(Message::text(r#"{"id": 2, "route": "add", "body": 1.5}"#)).expect("send");
    let error = read_json(&mut ws);
    assert_eq!((&error["type"], &error["id"]), (&serde_json::json!("error"), &serde_json::json!(2)));
    assert_eq!(error["code"], ticksock_protocol::error_code::BAD_BODY);
    ws.close(None).expect("close");
    drop(ws);
    stop(server, []);
}

#[test]
fn the_page_and_the_browser_client_are_served() {
    let server = start(Counter::new(NEVER), 100, counter::page());
    let (status, content_type, body) = http_get(server.local_addr(), "/");
    assert_eq!((status, content_type.as_str()), (200, "text/html; charset=utf-8"));
    let page = String::from_utf8(body).expect("UTF-8");
    assert!(page.contains(r#"import { TicksockClient } from "/ticksock.js";"#), "{page}");
    assert!(page.contains(r#"client.call("add", n)"#) && page.contains(r#"client.on("total""#));
    let (status, content_type, body) = http_get(server.local_addr(), "/ticksock.js");
    assert_eq!((status, content_type.as_str()), (200, "text/javascript; charset=utf-8"));
    assert_eq!(body, include_bytes!("../../web/dist/ticksock.js"));
    assert_eq!(http_get(server.local_addr(), "/nope").0, 404);
    stop(server, []);
}
