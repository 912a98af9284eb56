//! The request envelope over real sockets, in both subprotocols: what the server does with a
//! JSON `type` of `null`, with keys it does not know and with duplicated keys (PROTOCOL.md
//! section 9), and with route names on either side of the length limit (sections 4.1, 7.4).

mod common;

use std::time::Duration;

use common::{Client, Frame};
use serde_json::{Value, json};
use ticksock_protocol::error_code;
use ticksock_server::{AppError, Config, Game, Router, RunningServer, Server};
use tungstenite::Message;

/// A route name of exactly the longest length a route may have (64 bytes).
fn longest_route() -> String {
    "r".repeat(64)
}

struct Harness;

impl Game for Harness {
    fn routes(router: &mut Router<Self>) {
        router
            .route("double", |_, _, _, n: u32| Ok::<_, AppError>(n * 2))
            .raw("echo", |_, _, _, body, reply| {
                reply.extend_from_slice(body);
                Ok(())
            })
            .route(&longest_route(), |_, _, _, (): ()| Ok::<_, AppError>(64u32));
    }
}

fn start() -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        close_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    Server::start(config, Harness).expect("server starts")
}

/// A `ticksock.v1.json` client that sends raw text, so that it can send what a JSON library
/// would not write (duplicated keys).
struct JsonClient {
    ws: tungstenite::WebSocket<std::net::TcpStream>,
}

impl JsonClient {
    fn connect(server: &RunningServer) -> Self {
        let mut ws = common::connect_raw(server.local_addr(), Some(ticksock_protocol::SUBPROTOCOL_JSON))
            .expect("upgrade");
        match ws.read().expect("welcome") {
            Message::Text(t) => assert!(t.starts_with(r#"{"type":"welcome""#), "{t}"),
            other => panic!("expected a text welcome, got {other:?}"),
        }
        Self { ws }
    }

    /// Sends `text` as one message and returns the next frame.
    fn exchange(&mut self, text: &str) -> Value {
        self.ws.send(Message::Text(text.into())).expect("send");
        loop {
            match self.ws.read().expect("an answer") {
                Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Sends `text` and returns the close code the server answers with.
    fn closed_by(&mut self, text: &str) -> Option<u16> {
        self.ws.send(Message::Text(text.into())).expect("send");
        loop {
            match self.ws.read() {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(other) => panic!("expected a close, got {other:?}"),
                Err(e) => panic!("no close frame: {e}"),
            }
        }
    }
}

/// The code of a JSON error frame answering `id`; panics on anything else.
fn error_code_of(frame: &Value, id: u32) -> u64 {
    assert_eq!(
        (frame["type"].as_str(), frame["id"].as_u64()),
        (Some("error"), Some(u64::from(id))),
        "{frame}"
    );
    frame["code"].as_u64().expect("a code")
}

#[test]
fn a_json_type_of_null_is_not_an_absent_type_but_a_bad_frame() {
    let server = start();
    let mut c = JsonClient::connect(&server);
    let answer = c.exchange(r#"{"id":33,"route":"echo","type":null,"body":1}"#);
    assert_eq!(error_code_of(&answer, 33), u64::from(error_code::BAD_FRAME), "{answer}");
    for other in [r#"1"#, r#""reply""#, r#""""#, r#"["request"]"#, r#""Request""#] {
        let answer = c.exchange(&format!(r#"{{"id":34,"route":"echo","type":{other},"body":1}}"#));
        assert_eq!(error_code_of(&answer, 34), u64::from(error_code::BAD_FRAME), "type {other}: {answer}");
    }
    // Absent, or exactly "request": an ordinary request.
    assert_eq!(
        c.exchange(r#"{"id":35,"route":"echo","body":1}"#),
        json!({"type": "reply", "id": 35, "body": 1})
    );
    assert_eq!(
        c.exchange(r#"{"id":36,"type":"request","route":"echo","body":1}"#),
        json!({"type": "reply", "id": 36, "body": 1})
    );
    server.shutdown().expect("clean shutdown");
}

#[test]
fn unknown_json_keys_are_ignored_wherever_they_are() {
    let server = start();
    let mut c = JsonClient::connect(&server);
    for (id, text) in [
        (1, r#"{"trace":"abc","id":1,"route":"double","body":21}"#),
        (2, r#"{"id":2,"route":"double","body":21,"sent_at":1700000000123,"tags":[1,{"a":null}]}"#),
        (3, r#"{"id":3,"x":1,"x":2,"route":"double","body":21}"#),
        (4, r#"{"ID":99,"id":4,"Route":"nope","route":"double","body":21}"#),
    ] {
        assert_eq!(c.exchange(text), json!({"type": "reply", "id": id, "body": 42}), "{text}");
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_duplicated_json_key_is_a_bad_frame_and_a_duplicated_id_closes_with_1007() {
    let server = start();
    let mut c = JsonClient::connect(&server);
    for (id, text) in [
        (5, r#"{"id":5,"route":"double","route":"double","body":21}"#),
        (6, r#"{"id":6,"route":"double","body":21,"body":21}"#),
        (7, r#"{"id":7,"type":"request","type":"request","route":"double","body":21}"#),
    ] {
        assert_eq!(error_code_of(&c.exchange(text), id), u64::from(error_code::BAD_FRAME), "{text}");
    }
    // The connection goes on after those.
    assert_eq!(c.exchange(r#"{"id":8,"route":"double","body":1}"#)["body"], 2);
    // Two ids, even equal ones: no callback id can be read.
    assert_eq!(c.closed_by(r#"{"id":9,"id":9,"route":"double","body":21}"#), Some(1007));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn route_names_of_64_bytes_are_looked_up_and_longer_ones_are_bad_frames_in_binary() {
    let server = start();
    let mut c = Client::connect(server.local_addr());
    let longest = longest_route();
    assert_eq!(
        c.call(1, &longest, &()),
        Frame::Reply { id: 1, body: ticksock_protocol::encode_body(&64u32).expect("encode") }
    );
    let unknown = "u".repeat(64);
    assert_eq!(
        c.call(2, &unknown, &()),
        Frame::Error { id: 2, code: error_code::UNKNOWN_ROUTE, message: format!("no route `{unknown}`") }
    );
    for (id, route) in [(3, format!("{longest}r")), (4, "v".repeat(65)), (5, "w".repeat(65_000))] {
        let Frame::Error { id: got, code, message } = c.call(id, &route, &()) else { panic!("not an error") };
        assert_eq!((got, code), (id, error_code::BAD_FRAME), "{message}");
        assert!(!message.contains(&route[..65]), "the name is echoed: {message}");
        assert!(message.len() <= 80, "not short: {message}");
    }
    assert_eq!(c.call(6, &longest, &()), Frame::Reply { id: 6, body: vec![64] });
    server.shutdown().expect("clean shutdown");
}

#[test]
fn route_names_of_64_bytes_are_looked_up_and_longer_ones_are_bad_frames_in_json() {
    let server = start();
    let mut c = JsonClient::connect(&server);
    let longest = longest_route();
    let call = |route: &str, id: u32| json!({"id": id, "route": route}).to_string();
    assert_eq!(c.exchange(&call(&longest, 1)), json!({"type": "reply", "id": 1, "body": 64}));
    let unknown = "u".repeat(64);
    assert_eq!(
        c.exchange(&call(&unknown, 2)),
        json!({"type": "error", "id": 2, "code": error_code::UNKNOWN_ROUTE, "message": format!("no route `{unknown}`")})
    );
    for (id, route) in [(3, format!("{longest}r")), (4, "v".repeat(65)), (5, "w".repeat(65_000))] {
        let answer = c.exchange(&call(&route, id));
        assert_eq!(error_code_of(&answer, id), u64::from(error_code::BAD_FRAME), "{answer}");
        let message = answer["message"].as_str().expect("a message");
        assert!(!message.contains(&route[..65]), "the name is echoed: {message}");
        assert!(message.len() <= 80, "not short: {message}");
    }
    server.shutdown().expect("clean shutdown");
}
