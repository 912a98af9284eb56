//! The JSON subprotocol: the same routes and handlers, JSON text frames.

// The blocking socket client of the server's own tests: one copy for both crates.
#[path = "../../server/tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::Client;
use serde_json::{Value, json};
use ticksock_arena::proto::*;
use ticksock_arena::{Arena, ArenaConfig};
use ticksock_server::testing::{Encoding, TestClient, TestServer};
use ticksock_server::{Config, RunningServer, Server};
use tungstenite::Message;

fn start() -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        tick_hz: 60,
        close_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    Server::start(config, Arena::new(ArenaConfig::default())).expect("server starts")
}

struct JsonClient {
    ws: tungstenite::WebSocket<std::net::TcpStream>,
    welcome: Value,
}

impl JsonClient {
    fn connect(addr: std::net::SocketAddr) -> Self {
        let mut ws = common::connect_raw(addr, Some(ticksock_protocol::SUBPROTOCOL_JSON)).expect("upgrade");
        let welcome = match ws.read().expect("welcome") {
            Message::Text(t) => serde_json::from_str(&t).expect("JSON"),
            other => panic!("expected a text welcome, got {other:?}"),
        };
        Self { ws, welcome }
    }

    fn send(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).expect("send");
    }

    fn recv(&mut self) -> Value {
        loop {
            match self.ws.read().expect("read") {
                Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Sends a request and returns its answer, skipping pushes.
    fn call(&mut self, id: u32, route: &str, body: Value) -> Value {
        self.send(&json!({"id": id, "route": route, "body": body}).to_string());
        loop {
            let frame = self.recv();
            if frame["type"] != "push" {
                assert_eq!(frame["id"], id, "{frame}");
                return frame;
            }
        }
    }

    fn wait_push(&mut self, topic: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            assert!(Instant::now() < deadline, "no push on {topic}");
            let frame = self.recv();
            if frame["type"] == "push" && frame["topic"] == topic && pred(&frame["body"]) {
                return frame["body"].clone();
            }
        }
    }

    fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.ws.read() {
                Ok(Message::Close(f)) => return f.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}

#[test]
fn a_json_client_plays_through_the_same_routes() {
    let server = start();
    let mut ann = JsonClient::connect(server.local_addr());
    assert_eq!(ann.welcome["type"], "welcome");
    assert_eq!(ann.welcome["version"], 1);
    assert_eq!(ann.welcome["tick_hz"], 60);
    assert!(ann.welcome["conn_id"].as_str().expect("a string").parse::<u64>().is_ok());

    let logged = ann.call(1, "login", json!({"name": "ann"}));
    assert_eq!(logged["type"], "reply");
    let me = logged["body"]["player_id"].as_u64().expect("id");
    let rooms = ann.call(2, "rooms", Value::Null);
    assert!(rooms["body"].as_array().expect("list").iter().any(|r| r["name"] == "lobby"));
    let joined = ann.call(3, "join", json!({"room": "lobby"}));
    let x0 = joined["body"]["players"][0]["x"].as_i64().expect("x");
    let dx = if x0 > 500 { -1 } else { 1 };
    let moved = ann.call(4, "move", json!({"dx": dx, "dy": 0}));
    assert!(moved["body"]["tick"].as_u64().is_some());
    ann.wait_push("state", |s| {
        s["players"].as_array().is_some_and(|p| p.iter().any(|p| p["id"] == me && p["x"] != x0))
    });
    let echoed = ann.call(5, "echo", json!({"any": ["json", 1, null]}));
    assert_eq!(echoed["body"], json!({"any": ["json", 1, null]}));
    // A request without a body is a `()` request.
    ann.send(r#"{"type":"request","id":6,"route":"leave"}"#);
    let left = loop {
        let f = ann.recv();
        if f["type"] != "push" {
            break f;
        }
    };
    assert_eq!(left, json!({"type": "reply", "id": 6, "body": null}));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn json_errors_carry_the_id_and_codes() {
    let server = start();
    let mut c = JsonClient::connect(server.local_addr());
    let e = c.call(1, "nope", Value::Null);
    assert_eq!((e["type"].as_str(), e["code"].as_u64()), (Some("error"), Some(1)));
    let e = c.call(2, "login", json!({"nom": "x"}));
    assert_eq!(e["code"], 2, "{e}");
    c.send(r#"{"id": 3}"#);
    assert_eq!(c.recv()["code"], 4);
    let e = c.call(4, "move", json!({"dx": 1, "dy": 0}));
    assert_eq!(e["code"], ERR_NOT_LOGGED_IN);
    c.send("not json at all");
    assert_eq!(c.expect_close(), Some(1007));

    let mut b = JsonClient::connect(server.local_addr());
    b.ws.send(Message::Binary(vec![0, 1, 0].into())).expect("send");
    assert_eq!(b.expect_close(), Some(1003));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn binary_and_json_players_chat_in_one_arena() {
    let server = start();
    let mut j = JsonClient::connect(server.local_addr());
    let mut b = Client::connect(server.local_addr());
    j.call(1, "login", json!({"name": "jay"}));
    j.call(2, "join", json!({"room": "mixed"}));
    let _: LoggedIn = b.call_ok(1, ROUTE_LOGIN, &Login { name: "bee".into() });
    let _: Joined = b.call_ok(2, ROUTE_JOIN, &Join { room: "mixed".into() });

    j.call(3, "chat", json!({"text": "from json"}));
    let line: ChatLine = b.wait_push(TOPIC_CHAT, Duration::from_secs(2), |_: &ChatLine| true);
    assert_eq!(line.text, "from json");
    let () = b.call_ok(3, ROUTE_CHAT, &Chat { text: "from binary".into() });
    let line = j.wait_push("chat", |l| l["text"] == "from binary");
    assert_eq!(line["name"], "bee");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_push_to_a_mixed_room_is_encoded_once_per_encoding() {
    let mut server = TestServer::new(Arena::new(ArenaConfig::default()));
    let players: Vec<TestClient> = (0..40)
        .map(|i| {
            let encoding = if i % 2 == 0 { Encoding::Binary } else { Encoding::Json };
            let player = server.connect(encoding);
            let _: LoggedIn = server.call(player, ROUTE_LOGIN, &Login { name: format!("p{i}") }).expect("in");
            let _: Joined = server.call(player, ROUTE_JOIN, &Join { room: "lobby".into() }).expect("joined");
            player
        })
        .collect();
    let before = server.stats().encodes;
    server.advance_ticks(1);
    assert_eq!(server.stats().encodes - before, 2, "one state encode per encoding for 40 players");

    // One buffer per encoding, shared by its 20 recipients: a JSON text frame, a bincode one.
    let (binary, json): (Vec<TestClient>, Vec<TestClient>) =
        players.iter().partition(|p| p.encoding() == Encoding::Binary);
    for group in [&binary, &json] {
        let frames: Vec<&[u8]> =
            group.iter().map(|&p| server.frames(p).last().expect("the state push")).collect();
        assert_eq!(frames.len(), 20);
        assert!(frames.iter().all(|f| f.as_ptr() == frames[0].as_ptr()), "one shared buffer");
        assert_eq!(frames[0].first() == Some(&b'{'), group[0].encoding() == Encoding::Json);
    }
    for player in players {
        let states: Vec<State> = server.pushes(player, TOPIC_STATE);
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].players.len(), 40, "{:?}", player.encoding());
    }
}

#[test]
fn a_json_move_clamps_any_integer_and_refuses_other_numbers() {
    let server = start();
    let mut c = JsonClient::connect(server.local_addr());
    c.call(1, "login", json!({"name": "mover"}));
    let start_x =
        c.call(2, "join", json!({"room": "clamps"}))["body"]["players"][0]["x"].as_i64().expect("x");
    // The last move heads for the middle, away from the walls, which would stop it.
    let (toward_middle, step) = if start_x > 500 { (json!(i64::MIN), -1) } else { (json!(u64::MAX), 1) };
    // Beyond i8, beyond i32, the ends of i64 and u64: each is a direction, clamped to -1..=1.
    let mut id = 3;
    for (dx, dy) in [
        (json!(300), json!(-129)),
        (json!(128), json!(-1000)),
        (json!(i64::MIN), json!(u64::MAX)),
        (json!(1i64 << 40), json!(0)),
        (toward_middle, json!(0)),
    ] {
        let answer = c.call(id, "move", json!({"dx": dx, "dy": dy}));
        assert_eq!(answer["type"], "reply", "dx {dx}, dy {dy}: {answer}");
        id += 1;
    }
    // The last move holds: one step of SPEED along x per tick, none along y. (Joining the
    // arena one is in changes nothing and tells where one is.)
    let me = c.call(id, "join", json!({"room": "clamps"}))["body"]["players"][0].clone();
    let (x0, y0) = (me["x"].as_i64().expect("x"), me["y"].as_i64().expect("y"));
    let moved = c.wait_push("state", |s| s["players"][0]["x"].as_i64() != Some(x0));
    assert_eq!(moved["players"][0]["x"].as_i64(), Some(x0 + step * i64::from(SPEED)), "{moved}");
    assert_eq!(moved["players"][0]["y"].as_i64(), Some(y0), "{moved}");
    // Not integers: a fraction, an exponent, a string, null, an integer past u64.
    for bad in [json!(1.5), json!(1.0), json!("1"), json!(null), json!(true)] {
        id += 1;
        let answer = c.call(id, "move", json!({"dx": bad, "dy": 0}));
        assert_eq!(answer["code"], 2, "dx {bad}: {answer}");
    }
    for text in [r#"{"dx":1e2,"dy":0}"#, r#"{"dx":18446744073709551616,"dy":0}"#] {
        id += 1;
        c.send(&format!(r#"{{"id":{id},"route":"move","body":{text}}}"#));
        let answer = loop {
            let f = c.recv();
            if f["type"] != "push" {
                break f;
            }
        };
        assert_eq!(
            (answer["id"].as_u64(), answer["code"].as_u64()),
            (Some(id.into()), Some(2)),
            "{text}: {answer}"
        );
    }
    server.shutdown().expect("clean shutdown");
}
