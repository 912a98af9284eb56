//! Checks the hex test vectors in `docs/PROTOCOL.md` against `ticksock-protocol` and the
//! arena's message types (section 8). It lives with the arena because those vectors encode the
//! arena's bodies. (Just over 600 lines: most are the table of cases, one per vector of the
//! document with the value it encodes, kept in one list so that it reads beside the document.)
//!
//! Every line `vector: <name> = <hex>` inside a fenced code block of the document is parsed.
//! Each name must be one this test knows (see [`cases`]), each known name must appear exactly
//! once, and its bytes must equal what the crate encodes for the value the name stands for.
//! The document's bytes must also decode back to that value. So the test fails when a vector in
//! the document is edited, removed or added without a matching case here, and when the crate's
//! encoding changes without the document following.

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use ticksock_arena::proto::{
    Chat, ChatLine, Guest, GuestSession, Join, Joined, Leaderboard, LeaderboardBy, LeaderboardEntry,
    LoggedIn, Login, Move, Moved, PLAYER_FIELD_ID, PLAYER_FIELD_NAME, PLAYER_FIELD_POS, PlayerState,
    PlayerStats, Presence, REPLICA_KIND_PLAYER, ROUTE_REPLICA_ACK, Register, RoomInfo, RosterEntry, Session,
    SignIn, State,
};
use ticksock_protocol::replica::{AckOutcome, EntityUpdate, FieldUpdate, ReplicaUpdate, TOPIC_REPLICA};
use ticksock_protocol::{ClientFrame, Encoding, Request, Secret, ServerFrame, decode_body, encode_body, v2};

/// Where the specification lives, relative to this crate.
const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");

/// Checks that bytes decode back to a case's value; `Err` describes the mismatch.
type DecodeCheck = Box<dyn Fn(&[u8]) -> Result<(), String>>;

/// The vectors found in the document: name to (line number, bytes).
type DocVectors = BTreeMap<String, (usize, Vec<u8>)>;

/// A named vector: the bytes the crate produces, and a check that decoding bytes gives back the
/// value (returning a description of the mismatch, if any).
struct Case {
    name: &'static str,
    encoded: Vec<u8>,
    decodes_back: DecodeCheck,
}

/// A vector of a bare body (a route's request or reply, a push's payload, or a primitive).
fn body_case<T>(name: &'static str, value: T) -> Case
where
    T: Serialize + DeserializeOwned + PartialEq + Debug + 'static,
{
    let encoded = encode_body(&value).expect("the test values are all bincode-encodable");
    Case {
        name,
        encoded,
        decodes_back: Box::new(move |bytes| {
            let decoded: T = decode_body(bytes).map_err(|e| format!("does not decode: {e}"))?;
            same(&decoded, &value)
        }),
    }
}

/// A vector of a whole client frame whose body is raw bytes (checked byte for byte).
fn request_case(name: &'static str, id: u32, route: &'static str, body: Vec<u8>) -> Case {
    let encoded = ClientFrame::Request { id, route, body: &body }.to_vec();
    Case {
        name,
        encoded,
        decodes_back: Box::new(move |bytes| {
            let decoded = ClientFrame::decode(bytes).map_err(|e| format!("does not decode: {e}"))?;
            same(&decoded, &ClientFrame::Request { id, route, body: &body })
        }),
    }
}

/// A vector of a whole client request whose body is the encoding of `value`; decoding checks
/// the envelope and then decodes the body as `T`.
fn typed_request_case<T>(name: &'static str, id: u32, route: &'static str, value: T) -> Case
where
    T: Serialize + DeserializeOwned + PartialEq + Debug + 'static,
{
    let body = encode_body(&value).expect("the test values are all bincode-encodable");
    let encoded = ClientFrame::Request { id, route, body: &body }.to_vec();
    Case {
        name,
        encoded,
        decodes_back: Box::new(move |bytes| {
            match ClientFrame::decode(bytes).map_err(|e| format!("does not decode: {e}"))? {
                ClientFrame::Request { id: got_id, route: got_route, body: got_body } => {
                    same(&(got_id, got_route), &(id, route))?;
                    let decoded: T =
                        decode_body(got_body).map_err(|e| format!("body does not decode: {e}"))?;
                    same(&decoded, &value)
                }
            }
        }),
    }
}

/// A vector of a whole server frame that carries no typed body (welcome, error, raw reply).
fn server_case(name: &'static str, frame: ServerFrame<'static>) -> Case {
    Case {
        name,
        encoded: frame.to_vec(),
        decodes_back: Box::new(move |bytes| {
            let decoded = ServerFrame::decode(bytes).map_err(|e| format!("does not decode: {e}"))?;
            same(&decoded, &frame)
        }),
    }
}

/// A vector of a whole reply whose body is the encoding of `value`.
fn typed_reply_case<T>(name: &'static str, id: u32, value: T) -> Case
where
    T: Serialize + DeserializeOwned + PartialEq + Debug + 'static,
{
    let body = encode_body(&value).expect("the test values are all bincode-encodable");
    let encoded = ServerFrame::Reply { id, body: &body }.to_vec();
    Case {
        name,
        encoded,
        decodes_back: Box::new(move |bytes| {
            match ServerFrame::decode(bytes).map_err(|e| format!("does not decode: {e}"))? {
                ServerFrame::Reply { id: got_id, body: got_body } => {
                    same(&got_id, &id)?;
                    let decoded: T =
                        decode_body(got_body).map_err(|e| format!("body does not decode: {e}"))?;
                    same(&decoded, &value)
                }
                other => Err(format!("decodes as {other:?}, not a reply")),
            }
        }),
    }
}

/// A vector of a whole TickReply (section 4.3) with a raw body: written by
/// [`ticksock_protocol::write_raw_reply_at`], and read back the same by the version 1 and the
/// version 2 decoders (tag 7 in both).
fn tick_reply_case(name: &'static str, id: u32, tick: u64, body: Vec<u8>) -> Case {
    let mut encoded = Vec::new();
    ticksock_protocol::write_raw_reply_at(Encoding::Binary, &mut encoded, id, Some(tick), &body)
        .expect("a binary raw reply always writes");
    Case {
        name,
        encoded,
        decodes_back: Box::new(move |bytes| {
            let v1 = ServerFrame::decode(bytes).map_err(|e| format!("does not decode (v1): {e}"))?;
            same(&v1, &ServerFrame::TickReply { id, tick, body: &body })?;
            let v2 = v2::decode_server_frame(Encoding::Binary, bytes)
                .map_err(|e| format!("does not decode (v2): {e}"))?;
            same(&v2, &v2::ServerFrame::TickReply { id, tick, body: &body })
        }),
    }
}

/// A vector of a whole push whose body is the encoding of `value`.
fn typed_push_case<T>(name: &'static str, topic: &'static str, value: T) -> Case
where
    T: Serialize + DeserializeOwned + PartialEq + Debug + 'static,
{
    let body = encode_body(&value).expect("the test values are all bincode-encodable");
    let encoded = ServerFrame::Push { topic: topic.into(), body: &body }.to_vec();
    Case {
        name,
        encoded,
        decodes_back: Box::new(move |bytes| {
            match ServerFrame::decode(bytes).map_err(|e| format!("does not decode: {e}"))? {
                ServerFrame::Push { topic: got_topic, body: got_body } => {
                    same(&*got_topic, topic)?;
                    let decoded: T =
                        decode_body(got_body).map_err(|e| format!("body does not decode: {e}"))?;
                    same(&decoded, &value)
                }
                other => Err(format!("decodes as {other:?}, not a push")),
            }
        }),
    }
}

/// A vector of a whole version 2 request: written by `v2::write_raw_request` (a raw body) or
/// `v2::write_request` (a typed one), decoded by `v2::decode_client_frame` back to the body's
/// bytes.
fn v2_request_case(
    name: &'static str,
    seq: u64,
    ack: u64,
    id: u32,
    route: &'static str,
    body: V2Body,
) -> Case {
    let mut encoded = Vec::new();
    let body = match body {
        V2Body::Raw(bytes) => {
            v2::write_raw_request(Encoding::Binary, &mut encoded, seq, ack, id, route, &bytes)
                .expect("a raw bincode body always writes");
            bytes
        }
        V2Body::Login(login) => {
            v2::write_request(Encoding::Binary, &mut encoded, seq, ack, id, route, &login)
                .expect("the test values are all bincode-encodable");
            encode_body(&login).expect("the test values are all bincode-encodable")
        }
    };
    Case {
        name,
        encoded,
        decodes_back: Box::new(move |bytes| {
            let decoded = v2::decode_client_frame(Encoding::Binary, bytes)
                .map_err(|e| format!("does not decode: {e}"))?;
            same(
                &decoded,
                &v2::ClientFrame::Request { seq, ack, request: Request { id, route, body: &body } },
            )
        }),
    }
}

/// The body of a version 2 request vector.
enum V2Body {
    /// Raw bytes, written as they are.
    Raw(Vec<u8>),
    /// A typed body, written by the typed writer.
    Login(Login),
}

/// A vector of a version 2 client frame without a body, written by `write`.
fn v2_client_case(
    name: &'static str,
    write: impl FnOnce(&mut Vec<u8>),
    frame: v2::ClientFrame<'static>,
) -> Case {
    let mut encoded = Vec::new();
    write(&mut encoded);
    Case {
        name,
        encoded,
        decodes_back: Box::new(move |bytes| {
            let decoded = v2::decode_client_frame(Encoding::Binary, bytes)
                .map_err(|e| format!("does not decode: {e}"))?;
            same(&decoded, &frame)
        }),
    }
}

/// A vector of a version 2 server frame without a body, written by `write`.
fn v2_server_case(
    name: &'static str,
    write: impl FnOnce(&mut Vec<u8>),
    frame: v2::ServerFrame<'static>,
) -> Case {
    let mut encoded = Vec::new();
    write(&mut encoded);
    Case {
        name,
        encoded,
        decodes_back: Box::new(move |bytes| {
            let decoded = v2::decode_server_frame(Encoding::Binary, bytes)
                .map_err(|e| format!("does not decode: {e}"))?;
            same(&decoded, &frame)
        }),
    }
}

/// The epoch and secret of section 11's examples.
const V2_EPOCH: u64 = 11_400_714_819_323_198_485;
const V2_SECRET: Secret =
    [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
const V2_NEW_SECRET: Secret =
    [0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00];

/// Every version 2 vector (section 11.3), with the value it stands for.
fn v2_cases() -> Vec<Case> {
    use ticksock_arena::proto::{ROUTE_ECHO, ROUTE_LOGIN};
    use ticksock_protocol::{error_code, resume_reason};

    let bin = Encoding::Binary;
    vec![
        v2_request_case("v2_request_echo", 1, 0, 1, ROUTE_ECHO, V2Body::Raw(vec![0xde, 0xad])),
        v2_request_case(
            "v2_request_login",
            300,
            5,
            2,
            ROUTE_LOGIN,
            V2Body::Login(Login { name: "ann".into() }),
        ),
        v2_client_case(
            "v2_client_ack",
            |out| v2::write_client_ack(bin, out, 300),
            v2::ClientFrame::Ack { ack: 300 },
        ),
        v2_client_case(
            "v2_resume",
            |out| v2::write_resume(bin, out, 1 << 32, V2_EPOCH, &V2_SECRET, 5),
            v2::ClientFrame::Resume { session: 1 << 32, epoch: V2_EPOCH, secret: V2_SECRET, received: 5 },
        ),
        v2_server_case(
            "v2_welcome",
            |out| v2::write_welcome(bin, out, 30, 1 << 32, V2_EPOCH, &V2_SECRET),
            v2::ServerFrame::Welcome {
                version: ticksock_protocol::PROTOCOL_VERSION_2,
                tick_hz: 30,
                conn_id: 1 << 32,
                epoch: V2_EPOCH,
                secret: V2_SECRET,
            },
        ),
        v2_server_case(
            "v2_resumed",
            |out| v2::write_resumed(bin, out, 3, &V2_NEW_SECRET),
            v2::ServerFrame::Resumed { received: 3, secret: V2_NEW_SECRET },
        ),
        v2_server_case(
            "v2_resume_failed",
            |out| v2::write_resume_failed(bin, out, resume_reason::ENDED, "session ended"),
            v2::ServerFrame::ResumeFailed { reason: resume_reason::ENDED, message: "session ended".into() },
        ),
        v2_server_case(
            "v2_server_ack",
            |out| v2::write_server_ack(bin, out, 7),
            v2::ServerFrame::Ack { received: 7 },
        ),
        v2_server_case(
            "v2_error_stale_request",
            |out| ticksock_protocol::write_error(bin, out, 4, error_code::STALE_REQUEST, ""),
            v2::ServerFrame::Error { id: 4, code: error_code::STALE_REQUEST, message: "".into() },
        ),
    ]
}

fn same<T: PartialEq + Debug + ?Sized>(got: &T, want: &T) -> Result<(), String> {
    if got == want { Ok(()) } else { Err(format!("decodes to {got:?}, expected {want:?}")) }
}

fn ann_at(x: i32, y: i32) -> PlayerState {
    PlayerState { id: 1, x, y }
}

/// Every vector the document must contain, with the value it stands for.
fn cases() -> Vec<Case> {
    use ticksock_arena::proto::{
        ROUTE_CHAT, ROUTE_ECHO, ROUTE_JOIN, ROUTE_LEAVE, ROUTE_LOGIN, ROUTE_MOVE, ROUTE_ROOMS, TOPIC_CHAT,
        TOPIC_PRESENCE, TOPIC_STATE,
    };
    use ticksock_protocol::error_code;

    vec![
        // Primitives.
        body_case("u32_0", 0u32),
        body_case("u32_250", 250u32),
        body_case("u32_251", 251u32),
        body_case("u32_300", 300u32),
        body_case("u32_65535", 65_535u32),
        body_case("u32_65536", 65_536u32),
        body_case("u32_70000", 70_000u32),
        body_case("u32_max", u32::MAX),
        body_case("u64_4294967296", 4_294_967_296u64),
        body_case("u16_1000", 1000u16),
        body_case("i32_0", 0i32),
        body_case("i32_minus_1", -1i32),
        body_case("i32_1", 1i32),
        body_case("i32_minus_3", -3i32),
        body_case("i32_10", 10i32),
        body_case("i32_minus_126", -126i32),
        body_case("i32_126", 126i32),
        body_case("i32_min", i32::MIN),
        body_case("i64_minus_200", -200i64),
        body_case("i8_minus_1", -1i8),
        body_case("i8_minus_128", i8::MIN),
        body_case("u8_255", 255u8),
        body_case("bool_true", true),
        body_case("option_none", None::<u32>),
        body_case("option_some_300", Some(300u32)),
        body_case("string_ann", String::from("ann")),
        body_case("string_empty", String::new()),
        body_case("string_utf8", String::from("é")),
        body_case("vec_u8", vec![0xdeu8, 0xad]),
        body_case("f32_1_5", 1.5f32),
        // Arena bodies.
        body_case("body_login", Login { name: "ann".into() }),
        body_case("body_logged_in", LoggedIn { player_id: 1 }),
        body_case(
            "body_rooms",
            vec![
                RoomInfo { name: "a1".into(), players: 3, capacity: 64 },
                RoomInfo { name: "b2".into(), players: 0, capacity: 300 },
            ],
        ),
        body_case("body_join", Join { room: "a1".into() }),
        body_case(
            "body_joined",
            Joined {
                room: "a1".into(),
                players: vec![ann_at(500, 500)],
                roster: vec![RosterEntry { id: 1, name: "ann".into() }],
            },
        ),
        body_case("body_move", Move { dx: -1, dy: 1 }),
        body_case("body_moved", Moved { tick: 300 }),
        body_case("body_chat", Chat { text: "hi".into() }),
        body_case("body_chat_line", ChatLine { player_id: 1, name: "ann".into(), text: "hi".into() }),
        body_case("body_presence", Presence { player_id: 2, name: "bob".into(), joined: true }),
        body_case("body_state", State { tick: 5, players: vec![ann_at(10, -3)] }),
        body_case("body_register", Register { name: "ann".into(), password: "pw".into() }),
        body_case("body_signin", SignIn { name: "ann".into(), password: "pw".into() }),
        body_case("body_session", Session { token: "t.k".into() }),
        body_case("body_guest_new", Guest { device_token: None }),
        body_case("body_guest_again", Guest { device_token: Some("d".into()) }),
        body_case("body_guest_session", GuestSession { token: "t.k".into(), device_token: "d".into() }),
        body_case("body_leaderboard", Leaderboard { by: LeaderboardBy::Messages, limit: 10 }),
        body_case(
            "body_leaderboard_entries",
            vec![
                LeaderboardEntry { name: "ann".into(), value: 300 },
                LeaderboardEntry { name: "bob".into(), value: 7 },
            ],
        ),
        body_case("body_player_stats", PlayerStats { distance: 500, messages: 3, games: 1 }),
        // Client frames.
        request_case("request_echo", 1, ROUTE_ECHO, vec![0xde, 0xad]),
        request_case("request_id_300", 300, ROUTE_ROOMS, Vec::new()),
        request_case("request_id_70000", 70_000, ROUTE_LEAVE, Vec::new()),
        typed_request_case("request_login", 2, ROUTE_LOGIN, Login { name: "ann".into() }),
        typed_request_case("request_join", 3, ROUTE_JOIN, Join { room: "a1".into() }),
        typed_request_case("request_move", 4, ROUTE_MOVE, Move { dx: -1, dy: 1 }),
        typed_request_case("request_chat", 5, ROUTE_CHAT, Chat { text: "hi".into() }),
        // Server frames.
        server_case(
            "welcome",
            ServerFrame::Welcome {
                version: ticksock_protocol::PROTOCOL_VERSION,
                tick_hz: 30,
                conn_id: 1 << 32,
            },
        ),
        server_case("reply_echo", ServerFrame::Reply { id: 1, body: &[0xde, 0xad] }),
        server_case("reply_empty", ServerFrame::Reply { id: 70_000, body: &[] }),
        typed_reply_case("reply_login", 2, LoggedIn { player_id: 1 }),
        typed_reply_case("reply_move", 4, Moved { tick: 300 }),
        tick_reply_case("tick_reply_echo", 1, 300, vec![0xde, 0xad]),
        tick_reply_case("tick_reply_move", 4, 300, encode_body(&Moved { tick: 300 }).expect("encodes")),
        server_case(
            "error_unknown_route",
            ServerFrame::Error { id: 7, code: error_code::UNKNOWN_ROUTE, message: "unknown route".into() },
        ),
        server_case(
            "error_not_logged_in",
            ServerFrame::Error { id: 3, code: ticksock_arena::proto::ERR_NOT_LOGGED_IN, message: "".into() },
        ),
        typed_push_case("push_state", TOPIC_STATE, State { tick: 5, players: vec![ann_at(10, -3)] }),
        typed_push_case(
            "push_chat",
            TOPIC_CHAT,
            ChatLine { player_id: 1, name: "ann".into(), text: "hi".into() },
        ),
        typed_push_case(
            "push_presence",
            TOPIC_PRESENCE,
            Presence { player_id: 2, name: "bob".into(), joined: false },
        ),
        // Events dropped for a slow reader (section 7.3).
        typed_push_case("push_dropped", ticksock_protocol::TOPIC_DROPPED, 300u64),
        // Replication (sections 8.9 and 14).
        body_case("body_replica_full", replica_full()),
        typed_push_case("push_replica_delta", TOPIC_REPLICA, replica_delta()),
        typed_request_case("request_replica_ack", 9, ROUTE_REPLICA_ACK, 7u64),
        typed_reply_case("reply_replica_ack", 9, AckOutcome::Accepted),
        typed_reply_case("reply_replica_digest", 9, Some((5u64, digest_after(&replica_full())))),
        body_case("body_ack_outcome_stale", AckOutcome::Stale),
        body_case("body_ack_outcome_unknown", AckOutcome::Unknown),
    ]
}

fn field<T: serde::Serialize>(index: u8, value: T) -> FieldUpdate {
    FieldUpdate { index, value: ticksock_protocol::encode_body(&value).expect("encodes") }
}

/// Ann (player 7) enters at (10, -3): the arena's player entity with its three fields.
fn replica_full() -> ReplicaUpdate {
    let ann = EntityUpdate {
        id: 1,
        kind: REPLICA_KIND_PLAYER,
        fields: vec![
            field(PLAYER_FIELD_POS, (10i32, -3i32)),
            field(PLAYER_FIELD_ID, 7u32),
            field(PLAYER_FIELD_NAME, "ann"),
        ],
    };
    ReplicaUpdate { tick: 5, baseline: None, entered: vec![ann], changed: vec![], left: vec![] }
}

/// The digest (PROTOCOL.md 14.5) of the view a client holds after `update`, as the Rust
/// client's mirror computes it (`server/tests/replica.rs` checks that it equals the server's).
fn digest_after(update: &ReplicaUpdate) -> u64 {
    let mut mirror = ticksock_client::replica::Mirror::default();
    mirror.apply(&encode_body(update).expect("encodes")).expect("a full snapshot applies");
    mirror.digest()
}

/// From tick 5: ann moved to (11, -3), entity 2 left.
fn replica_delta() -> ReplicaUpdate {
    let ann = EntityUpdate {
        id: 1,
        kind: REPLICA_KIND_PLAYER,
        fields: vec![field(PLAYER_FIELD_POS, (11i32, -3i32))],
    };
    ReplicaUpdate { tick: 7, baseline: Some(5), entered: vec![], changed: vec![ann], left: vec![2] }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// Parses `aa bb cc`: two lowercase hex digits per byte, single spaces between bytes.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(' ')
        .map(|pair| {
            let well_formed =
                pair.len() == 2 && pair.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
            if !well_formed {
                return Err(format!("`{pair}` is not two lowercase hex digits"));
            }
            u8::from_str_radix(pair, 16).map_err(|e| format!("`{pair}`: {e}"))
        })
        .collect()
}

/// The vectors in the document, by name, with the line each is on. A `vector:` line outside a
/// fenced code block, a malformed line or a repeated name is an error.
fn parse_doc(doc: &str) -> Result<DocVectors, Vec<String>> {
    let mut vectors = BTreeMap::new();
    let mut problems = Vec::new();
    let mut in_fence = false;
    for (index, line) in doc.lines().enumerate() {
        let line_no = index + 1;
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        let Some(rest) = line.strip_prefix("vector: ") else {
            if line.trim_start().starts_with("vector:") {
                problems.push(format!("line {line_no}: malformed vector line `{line}`"));
            }
            continue;
        };
        if !in_fence {
            problems.push(format!("line {line_no}: vector line outside a fenced code block"));
            continue;
        }
        let Some((name, hex_text)) = rest.split_once(" = ") else {
            problems.push(format!("line {line_no}: expected `vector: <name> = <hex>`"));
            continue;
        };
        let name_ok = !name.is_empty()
            && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
        if !name_ok {
            problems.push(format!("line {line_no}: bad vector name `{name}`"));
            continue;
        }
        match parse_hex(hex_text) {
            Ok(bytes) => {
                if let Some((first, _)) = vectors.insert(name.to_owned(), (line_no, bytes)) {
                    problems.push(format!("line {line_no}: vector `{name}` repeats the one on line {first}"));
                }
            }
            Err(e) => problems.push(format!("line {line_no}: vector `{name}`: {e}")),
        }
    }
    if problems.is_empty() { Ok(vectors) } else { Err(problems) }
}

#[test]
fn every_vector_in_the_spec_matches_the_crate() {
    let doc = std::fs::read_to_string(DOC_PATH)
        .unwrap_or_else(|e| panic!("cannot read the specification at {DOC_PATH}: {e}"));
    let mut in_doc = match parse_doc(&doc) {
        Ok(vectors) => vectors,
        Err(problems) => panic!("{DOC_PATH} has bad vector lines:\n{}", problems.join("\n")),
    };

    let mut problems = Vec::new();
    let mut known = std::collections::BTreeSet::new();
    for case in cases().into_iter().chain(v2_cases()) {
        assert!(known.insert(case.name), "case `{}` listed twice", case.name);
        let expected_line = format!("vector: {} = {}", case.name, hex(&case.encoded));
        let Some((line_no, bytes)) = in_doc.remove(case.name) else {
            problems.push(format!("missing vector; add: {expected_line}"));
            continue;
        };
        if bytes != case.encoded {
            problems.push(format!(
                "line {line_no}: vector `{}` is {}; the crate encodes: {expected_line}",
                case.name,
                hex(&bytes)
            ));
        }
        if let Err(e) = (case.decodes_back)(&bytes) {
            problems.push(format!("line {line_no}: vector `{}` {e}", case.name));
        }
    }
    for (name, (line_no, _)) in in_doc {
        problems
            .push(format!("line {line_no}: vector `{name}` is not checked by tests/vectors.rs; add a case"));
    }
    assert!(problems.is_empty(), "{DOC_PATH} disagrees with the protocol crate:\n{}", problems.join("\n"));
}

#[test]
fn the_vector_parser_rejects_what_it_should() {
    let good = "```\nvector: a_1 = 00 ff\nvector: empty = \n```\n";
    let parsed = parse_doc(good).expect("well-formed vectors parse");
    assert_eq!(parsed.get("a_1").map(|(_, b)| b.clone()), Some(vec![0, 255]));
    assert_eq!(parsed.get("empty").map(|(_, b)| b.clone()), Some(Vec::new()));

    for bad in [
        "vector: outside = 00\n",
        "```\nvector: upper = 0A\n```\n",
        "```\nvector: two_spaces = 00  01\n```\n",
        "```\nvector: odd = 0\n```\n",
        "```\nvector: Name = 00\n```\n",
        "```\nvector:nospace = 00\n```\n",
        "```\nvector: dup = 00\nvector: dup = 00\n```\n",
    ] {
        assert!(parse_doc(bad).is_err(), "accepted {bad:?}");
    }
}
