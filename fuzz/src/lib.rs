//! The checks behind ticksock's fuzz targets, shared by the libFuzzer targets in
//! `fuzz/fuzz_targets/` and by the stable regression test `server/tests/fuzz_regressions.rs`
//! (which includes this file with `#[path]`, so both run exactly the same code).
//!
//! Each `check_*` function takes arbitrary bytes and panics only when it finds a bug: a panic
//! in the code under test, or a broken property (a frame that does not survive re-encoding, an
//! outcome that contradicts itself).

use std::sync::LazyLock;

use ticksock_arena::proto::{Chat, Join, Joined, Login, Move, RoomInfo, State, Whisper};
use ticksock_protocol::{ClientFrame, Encoding, ServerFrame, decode_body, encode_body};
use ticksock_server::__internals::RouteTable;
use ticksock_server::__internals::handshake::{self, Decision, Policy};
use ticksock_server::__internals::inbound::{ReadPathOutcome, run_read_path};
use ticksock_server::Config;

/// The names of the targets, as `cargo fuzz run` and `fuzz/regressions/<target>/` know them.
pub const TARGETS: &[&str] = &["frame_decode", "body_decode", "handshake", "read_path", "read_path_upgraded"];

/// Runs the check of the target named `target` on `data`. Panics on an unknown name.
pub fn check(target: &str, data: &[u8]) {
    match target {
        "frame_decode" => check_frame_decode(data),
        "body_decode" => check_body_decode(data),
        "handshake" => check_handshake(data),
        "read_path" => check_read_path(data),
        "read_path_upgraded" => check_read_path_upgraded(data),
        other => panic!("no fuzz target `{other}`"),
    }
}

/// Frame decoding: `ClientFrame::decode` and `ServerFrame::decode` never panic, and a frame
/// that decodes survives `to_vec()` and a second decode unchanged.
pub fn check_frame_decode(data: &[u8]) {
    if let Ok(frame) = ClientFrame::decode(data) {
        let bytes = frame.to_vec();
        let again = ClientFrame::decode(&bytes).expect("a re-encoded client frame decodes");
        assert_eq!(again, frame, "client frame changed through to_vec");
    }
    if let Ok(frame) = ServerFrame::decode(data) {
        let bytes = frame.to_vec();
        let again = ServerFrame::decode(&bytes).expect("a re-encoded server frame decodes");
        assert_eq!(again, frame, "server frame changed through to_vec");
    }
    // The error path must not panic either (Display of every error kind).
    if let Err(e) = ClientFrame::decode(data) {
        let _ = (e.to_string(), e.callback_id());
    }
    // Version 2's frames, in both encodings: decoding never panics, and neither do errors.
    for encoding in [Encoding::Binary, Encoding::Json] {
        match ticksock_protocol::v2::decode_client_frame(encoding, data) {
            Ok(frame) => {
                let _ = format!("{frame:?}");
            }
            Err(e) => {
                let _ = (e.to_string(), e.callback_id());
            }
        }
        if let Err(e) = ticksock_protocol::v2::decode_server_frame(encoding, data) {
            let _ = e.to_string();
        }
    }
}

/// Decodes `bytes` as `T`; if that succeeds, re-encodes and decodes again and checks the value
/// is unchanged.
fn body_round_trip<T>(bytes: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    match decode_body::<T>(bytes) {
        Ok(value) => {
            let encoded = encode_body(&value).expect("a decoded body encodes");
            let again = decode_body::<T>(&encoded).expect("a re-encoded body decodes");
            assert_eq!(again, value, "body changed through encode_body");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// The body decoder: the first byte picks the type, the rest is the body. `decode_body` never
/// panics, aborts or allocates beyond its limit (libFuzzer's `-malloc_limit_mb` catches that),
/// and a value that decodes survives a round trip.
pub fn check_body_decode(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    match selector % 10 {
        0 => body_round_trip::<Login>(body),
        1 => body_round_trip::<Join>(body),
        2 => body_round_trip::<Move>(body),
        3 => body_round_trip::<Chat>(body),
        4 => body_round_trip::<Whisper>(body),
        5 => body_round_trip::<State>(body),
        6 => body_round_trip::<Joined>(body),
        7 => body_round_trip::<Vec<RoomInfo>>(body),
        8 => body_round_trip::<Vec<u64>>(body),
        _ => body_round_trip::<String>(body),
    }
}

/// The game policy with the default limits, the echo policy, and a small limit.
fn policies() -> [Policy; 3] {
    let game = Policy::of(&Config::default());
    let echo = Policy::of(&Config::echo());
    let small = Policy { max_bytes: 64, ..game.clone() };
    [game, echo, small]
}

/// The HTTP status of a response, checking it looks like one.
fn status_of(response: &[u8]) -> u16 {
    let text = std::str::from_utf8(response).expect("responses are UTF-8");
    assert!(text.starts_with("HTTP/1.1 "), "not an HTTP/1.1 response: {text:?}");
    assert!(text.contains("\r\n\r\n"), "response without a header end: {text:?}");
    text.get(9..12).and_then(|s| s.parse().ok()).expect("a three-digit status")
}

/// `handshake::decide` never panics; an upgrade answers 101 and keeps exactly the bytes after
/// the request; a refusal is a well-formed HTTP response.
pub fn check_handshake(data: &[u8]) {
    for policy in policies() {
        match handshake::decide(data, &policy) {
            Decision::NeedMore => {
                assert!(data.len() <= policy.max_bytes, "NeedMore past max_bytes ({} bytes)", data.len());
            }
            Decision::Metrics => {}
            Decision::Upgrade { response, leftover, .. } => {
                assert_eq!(status_of(&response), 101);
                assert!(data.ends_with(&leftover), "leftover is not a suffix of the input");
                assert!(data.len() - leftover.len() <= policy.max_bytes, "accepted a request over max_bytes");
            }
            Decision::Respond { response } | Decision::File { head: response, .. } => {
                let status = status_of(&response);
                assert!((200..600).contains(&status) && status != 101, "odd status {status}");
            }
        }
    }
}

/// The arena's route table, built once.
fn routes() -> &'static RouteTable {
    static ROUTES: LazyLock<RouteTable> = LazyLock::new(|| {
        ticksock_server::__internals::Logic::new(ticksock_arena::Arena::default()).route_table()
    });
    &ROUTES
}

/// The default (game) configuration and echo mode's.
fn configs() -> &'static [Config; 2] {
    static CONFIGS: LazyLock<[Config; 2]> = LazyLock::new(|| [Config::default(), Config::echo()]);
    &CONFIGS
}

/// Checks that an outcome does not contradict itself.
fn check_outcome(outcome: &ReadPathOutcome) {
    if !outcome.upgraded {
        assert_eq!((outcome.requests, outcome.answers, outcome.close), (0, 0, None), "{outcome:?}");
    } else {
        assert_eq!(outcome.http_status, None, "{outcome:?}");
    }
}

/// The whole read path on arbitrary bytes, with the game configuration and echo mode's.
pub fn check_read_path(data: &[u8]) {
    for config in configs() {
        check_outcome(&run_read_path(data, config, routes()));
    }
}

/// A valid upgrade request offering the binary subprotocol (as in `inbound.rs`'s tests).
pub const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Protocol: ticksock.v1\r\n\r\n";

/// The same, offering the JSON subprotocol.
pub const UPGRADE_JSON: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Protocol: ticksock.v1.json\r\n\r\n";

/// The same, offering version 2's binary subprotocol.
pub const UPGRADE_V2: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Protocol: ticksock.v2\r\n\r\n";

/// The same, offering version 2's JSON subprotocol.
pub const UPGRADE_V2_JSON: &[u8] =
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Protocol: ticksock.v2.json\r\n\r\n";

/// The same, offering no subprotocol (echo mode).
pub const UPGRADE_ECHO: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// The read path past a valid upgrade, so every input reaches tungstenite's framing and the
/// frame decoder. The first byte picks the connection: 0 binary protocol, 1 JSON protocol,
/// 2 echo mode, 3 and 4 version 2's binary and JSON (`selector % 5`); the rest is what the
/// client sends after its upgrade.
pub fn check_read_path_upgraded(data: &[u8]) {
    let Some((&selector, frames)) = data.split_first() else { return };
    let (upgrade, config) = match selector % 5 {
        0 => (UPGRADE, &configs()[0]),
        1 => (UPGRADE_JSON, &configs()[0]),
        2 => (UPGRADE_ECHO, &configs()[1]),
        3 => (UPGRADE_V2, &configs()[0]),
        _ => (UPGRADE_V2_JSON, &configs()[0]),
    };
    let mut input = Vec::with_capacity(upgrade.len() + frames.len());
    input.extend_from_slice(upgrade);
    input.extend_from_slice(frames);
    let outcome = run_read_path(&input, config, routes());
    assert!(outcome.upgraded, "a valid upgrade was not accepted: {outcome:?}");
    check_outcome(&outcome);
}
