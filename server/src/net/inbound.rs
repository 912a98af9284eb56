//! What the server does with each message a client sends, decided without sockets: the
//! reactor calls [`classify`] for every WebSocket message, and [`run_read_path`] drives the
//! whole read path (HTTP upgrade, WebSocket framing, classification) over an in-memory stream,
//! for fuzzing and tests.

use std::io::{self, Read, Write};

use bytes::Bytes;
use ticksock_protocol::{Encoding, Request, Version, error_code};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use super::handshake::{self, Decision};
use crate::Config;
use crate::bridge::{DataOpcode, RouteId, RouteTable};

/// WebSocket close codes the server sends (RFC 6455 section 7.4.1), and the reason text it
/// sends with each, all in one place: `docs/PROTOCOL.md` section 7.5 lists the reasons, and
/// `server/tests/protocol_doc.rs` checks that list against [`REASONS`](close::REASONS).
pub mod close {
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the WebSocket protocol.
    pub const PROTOCOL: u16 = 1002;
    /// A text message on the binary protocol.
    pub const UNSUPPORTED: u16 = 1003;
    /// A frame whose callback id cannot be read, or a text message that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// A policy limit: the inbound rate, or the outbound buffer.
    pub const POLICY: u16 = 1008;
    /// A message or frame over its size limit.
    pub const TOO_BIG: u16 = 1009;

    /// Declares each reason as a constant, and [`REASONS`] listing them all with their codes,
    /// so that no reason can be left out of the list the protocol document is checked against.
    macro_rules! reasons {
        ($($(#[$doc:meta])* $name:ident = ($code:expr, $text:literal);)*) => {
            $($(#[$doc])* pub const $name: &str = $text;)*

            /// Every reason above with the code it is sent with, in the order of the document.
            pub const REASONS: &[(u16, &str)] = &[$(($code, $name)),*];
        };
    }

    reasons! {
        /// With [`GOING_AWAY`]: the server is shutting down.
        SHUTTING_DOWN = (GOING_AWAY, "server shutting down");
        /// With [`PROTOCOL`]: the WebSocket layer found a protocol violation in what the peer
        /// sent (an unmasked frame, a bad opcode, ...).
        PROTOCOL_ERROR = (PROTOCOL, "protocol error");
        /// With [`PROTOCOL`]: the answer to a peer's Close whose code a peer may not send.
        /// tungstenite writes this text itself (the server never passes it); it is named here
        /// so that the list is complete, and a test checks that tungstenite still sends it.
        INVALID_CLOSE_CODE = (PROTOCOL, "Protocol violation");
        /// With [`UNSUPPORTED`]: a text message on `ticksock.v1`.
        TEXT_ON_BINARY = (UNSUPPORTED, "text messages are not part of ticksock.v1");
        /// With [`UNSUPPORTED`]: a binary message on `ticksock.v1.json`.
        BINARY_ON_JSON = (UNSUPPORTED, "binary messages are not part of ticksock.v1.json");
        /// With [`UNSUPPORTED`]: a text message on `ticksock.v2`.
        TEXT_ON_BINARY_V2 = (UNSUPPORTED, "text messages are not part of ticksock.v2");
        /// With [`UNSUPPORTED`]: a binary message on `ticksock.v2.json`.
        BINARY_ON_JSON_V2 = (UNSUPPORTED, "binary messages are not part of ticksock.v2.json");
        /// With [`INVALID_DATA`]: a message whose callback id cannot be read.
        UNDECODABLE_FRAME = (INVALID_DATA, "undecodable frame");
        /// With [`INVALID_DATA`]: a text message whose payload is not UTF-8.
        INVALID_UTF8 = (INVALID_DATA, "invalid UTF-8");
        /// With [`POLICY`]: the connection stayed over its inbound rate.
        RATE_LIMIT = (POLICY, "rate limit exceeded");
        /// With [`POLICY`]: the connection's outbound buffer is full (the client does not read).
        OUTBOUND_FULL = (POLICY, "outbound buffer full");
        /// With [`TOO_BIG`]: a message or frame over its size limit.
        MESSAGE_TOO_BIG = (TOO_BIG, "message too big");
    }
}

/// How a connection's messages are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Echo mode: every data message goes back as it is.
    Echo,
    /// The ticksock protocol in this encoding.
    Protocol(Encoding),
}

/// What to do with one message from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// Pass a request to the logic thread.
    Request {
        /// Its callback id.
        id: u32,
        /// Its route.
        route: RouteId,
        /// Its body, a slice of the message.
        body: Bytes,
    },
    /// Echo mode: send the message back through the logic thread.
    Echo {
        /// Text or binary, as it came.
        opcode: DataOpcode,
        /// The message's bytes.
        payload: Bytes,
    },
    /// Answer at once with this error frame; the connection goes on.
    Answer {
        /// The error code in the frame.
        code: u16,
        /// The kind of message that carries it.
        opcode: DataOpcode,
        /// The encoded error frame.
        frame: Vec<u8>,
    },
    /// Close the connection with this code.
    Close {
        /// The close code.
        code: u16,
        /// A short reason.
        reason: &'static str,
    },
    /// A control message (ping, pong, close): tungstenite answered it; flush.
    Control,
}

/// Decides what to do with `message`.
pub fn classify(message: Message, routes: &RouteTable, mode: Mode) -> Inbound {
    match (mode, message) {
        (_, Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_)) => Inbound::Control,
        (Mode::Echo, Message::Binary(payload)) => Inbound::Echo { opcode: DataOpcode::Binary, payload },
        (Mode::Echo, Message::Text(text)) => Inbound::Echo { opcode: DataOpcode::Text, payload: text.into() },
        (Mode::Protocol(encoding @ Encoding::Binary), Message::Binary(bytes)) => {
            request(encoding, bytes, routes)
        }
        (Mode::Protocol(encoding @ Encoding::Json), Message::Text(text)) => {
            request(encoding, text.into(), routes)
        }
        (Mode::Protocol(Encoding::Binary), Message::Text(_)) => {
            Inbound::Close { code: close::UNSUPPORTED, reason: close::TEXT_ON_BINARY }
        }
        (Mode::Protocol(Encoding::Json), Message::Binary(_)) => {
            Inbound::Close { code: close::UNSUPPORTED, reason: close::BINARY_ON_JSON }
        }
    }
}

fn request(encoding: Encoding, bytes: Bytes, routes: &RouteTable) -> Inbound {
    match ticksock_protocol::decode_request(encoding, &bytes) {
        Ok(Request { id, route, body }) => match routes.get(route) {
            Some(route) => Inbound::Request { id, route, body: slice_of(&bytes, body) },
            None => answer(id, encoding, error_code::UNKNOWN_ROUTE, &format!("no route `{route}`")),
        },
        Err(e) => match e.callback_id() {
            Some(id) => answer(id, encoding, error_code::BAD_FRAME, &e.to_string()),
            None => Inbound::Close { code: close::INVALID_DATA, reason: close::UNDECODABLE_FRAME },
        },
    }
}

/// What to do with one data message on a version 2 link (PROTOCOL.md section 11). Unlike
/// version 1, a request is not answered here: its sequence number decides first whether it is
/// taken at all, which only its session knows.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundV2 {
    /// A request: `route` is its route if it exists, else the error to answer once the
    /// request is taken (`unknown_route`).
    Request {
        /// Its number on the session.
        seq: u64,
        /// The client's received count.
        ack: u64,
        /// Its callback id.
        id: u32,
        /// Its route, or the code and message of the error that answers it.
        route: Result<RouteId, (u16, String)>,
        /// Its body, a slice of the message.
        body: Bytes,
    },
    /// The client's Ack.
    Ack {
        /// Its received count.
        ack: u64,
    },
    /// A Resume.
    Resume {
        /// The session's name.
        session: u64,
        /// The server run it belongs to.
        epoch: u64,
        /// Its secret.
        secret: ticksock_protocol::Secret,
        /// The client's received count.
        received: u64,
    },
    /// A request whose callback id was read but whose envelope is malformed (its `seq` may
    /// be unknown): answer `bad_frame`, take nothing.
    BadFrame {
        /// Its callback id.
        id: u32,
        /// What was wrong.
        message: String,
    },
    /// Close the connection with this code (no callback id could be read, or the wrong kind
    /// of message).
    Close {
        /// The close code.
        code: u16,
        /// A short reason.
        reason: &'static str,
    },
}

/// Decides what a data message on a version 2 link is (control messages do not come here).
pub fn classify_v2(message: Message, routes: &RouteTable, encoding: Encoding) -> InboundV2 {
    let bytes: Bytes = match (encoding, message) {
        (Encoding::Binary, Message::Binary(bytes)) => bytes,
        (Encoding::Json, Message::Text(text)) => text.into(),
        (Encoding::Binary, _) => {
            return InboundV2::Close { code: close::UNSUPPORTED, reason: close::TEXT_ON_BINARY_V2 };
        }
        (Encoding::Json, _) => {
            return InboundV2::Close { code: close::UNSUPPORTED, reason: close::BINARY_ON_JSON_V2 };
        }
    };
    use ticksock_protocol::v2::ClientFrame;
    match ticksock_protocol::v2::decode_client_frame(encoding, &bytes) {
        Ok(ClientFrame::Request { seq, ack, request }) => {
            let route = routes
                .get(request.route)
                .ok_or_else(|| (error_code::UNKNOWN_ROUTE, format!("no route `{}`", request.route)));
            InboundV2::Request { seq, ack, id: request.id, route, body: slice_of(&bytes, request.body) }
        }
        Ok(ClientFrame::Ack { ack }) => InboundV2::Ack { ack },
        Ok(ClientFrame::Resume { session, epoch, secret, received }) => {
            InboundV2::Resume { session, epoch, secret, received }
        }
        Err(e) => match e.callback_id() {
            Some(id) => InboundV2::BadFrame { id, message: e.to_string() },
            None => InboundV2::Close { code: close::INVALID_DATA, reason: close::UNDECODABLE_FRAME },
        },
    }
}

/// `part` as a slice of `whole` (no copy) when it lies inside it; otherwise a copy (the
/// `null` body of a JSON request that has none).
fn slice_of(whole: &Bytes, part: &[u8]) -> Bytes {
    let range = whole.as_ptr_range();
    if range.contains(&part.as_ptr()) || (part.is_empty() && part.as_ptr() == range.end) {
        whole.slice_ref(part)
    } else {
        Bytes::copy_from_slice(part)
    }
}

/// The error frame for call `id`, for the reactor to send itself.
pub fn answer(id: u32, encoding: Encoding, code: u16, message: &str) -> Inbound {
    let mut frame = Vec::new();
    ticksock_protocol::write_error(encoding, &mut frame, id, code, message);
    Inbound::Answer { code, opcode: DataOpcode::of(encoding), frame }
}

/// The callback id of a request message, if one can be read.
pub fn callback_id(message: &Message, encoding: Encoding) -> Option<u32> {
    let bytes: &[u8] = match (encoding, message) {
        (Encoding::Binary, Message::Binary(bytes)) => bytes,
        (Encoding::Json, Message::Text(text)) => text.as_bytes(),
        _ => return None,
    };
    ticksock_protocol::decode_request(encoding, bytes).map_or_else(|e| e.callback_id(), |r| Some(r.id))
}

/// The close code for an error tungstenite returned while reading, or `None` when the
/// connection is simply gone.
pub fn close_code_for(error: &tungstenite::Error) -> Option<(u16, &'static str)> {
    use tungstenite::Error as E;
    match error {
        E::Capacity(_) => Some((close::TOO_BIG, close::MESSAGE_TOO_BIG)),
        // The peer's end of stream without a close frame: it is gone, not misbehaving (and a
        // version 2 session may resume from it).
        E::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => None,
        E::Protocol(_) => Some((close::PROTOCOL, close::PROTOCOL_ERROR)),
        E::Utf8(_) => Some((close::INVALID_DATA, close::INVALID_UTF8)),
        _ => None,
    }
}

/// What [`run_read_path`] saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReadPathOutcome {
    /// Whether the bytes held a complete, accepted upgrade request.
    pub upgraded: bool,
    /// The HTTP status of a refused or plain request, if any.
    pub http_status: Option<u16>,
    /// Requests that would reach the logic thread.
    pub requests: usize,
    /// Error replies the reactor would send itself.
    pub answers: usize,
    /// The close code the connection would end with, if the server closes it.
    pub close: Option<u16>,
}

/// Feeds `input`, as if a client sent it all at once, through the server's read path with
/// `config`'s limits: the HTTP upgrade decision, tungstenite's framing, and [`classify`] (or
/// [`classify_v2`] on a version 2 link).
pub fn run_read_path(input: &[u8], config: &Config, routes: &RouteTable) -> ReadPathOutcome {
    let policy = handshake::Policy::of(config);
    let mut outcome = ReadPathOutcome::default();
    let leftover = match handshake::decide(input, &policy) {
        Decision::NeedMore | Decision::Metrics => return outcome,
        Decision::Respond { response } | Decision::File { head: response, .. } => {
            outcome.http_status =
                std::str::from_utf8(&response).ok().and_then(|r| r.get(9..12)?.parse().ok());
            return outcome;
        }
        Decision::Upgrade { leftover, encoding, version, .. } => (leftover, encoding, version),
    };
    let (leftover, encoding, version) = leftover;
    let mode = if config.echo { Mode::Echo } else { Mode::Protocol(encoding) };
    outcome.upgraded = true;
    let mut ws =
        WebSocket::from_partially_read(MemoryStream, leftover, Role::Server, Some(config.websocket_config()));
    loop {
        match ws.read() {
            Ok(message) if version == Version::V2 && (message.is_binary() || message.is_text()) => {
                match classify_v2(message, routes, encoding) {
                    InboundV2::Request { route: Ok(_), .. } => outcome.requests += 1,
                    InboundV2::Request { route: Err(_), .. } | InboundV2::BadFrame { .. } => {
                        outcome.answers += 1
                    }
                    InboundV2::Ack { .. } | InboundV2::Resume { .. } => {}
                    InboundV2::Close { code, .. } => {
                        outcome.close = Some(code);
                        return outcome;
                    }
                }
            }
            Ok(message) => match classify(message, routes, mode) {
                Inbound::Request { .. } | Inbound::Echo { .. } => outcome.requests += 1,
                Inbound::Answer { .. } => outcome.answers += 1,
                Inbound::Close { code, .. } => {
                    outcome.close = Some(code);
                    return outcome;
                }
                Inbound::Control => {}
            },
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return outcome,
            Err(e) => {
                outcome.close = close_code_for(&e).map(|(code, _)| code);
                return outcome;
            }
        }
    }
}

/// A stream with nothing more to read (as a non-blocking socket that would block) and that
/// swallows writes.
struct MemoryStream;

impl Read for MemoryStream {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl Write for MemoryStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticksock_protocol::ClientFrame;

    const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Protocol: ticksock.v1\r\n\r\n";

    /// A masked client frame (mask 0 keeps the payload readable).
    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    }

    fn routes() -> RouteTable {
        RouteTable::new([("echo".into(), RouteId(0)), ("rooms".into(), RouteId(1))])
    }

    #[test]
    fn requests_answers_and_closes_are_classified_as_the_reactor_acts() {
        let mut input = UPGRADE.to_vec();
        input.extend(masked(2, &ClientFrame::Request { id: 1, route: "echo", body: b"x" }.to_vec()));
        input.extend(masked(2, &ClientFrame::Request { id: 2, route: "nope", body: b"" }.to_vec()));
        input.extend(masked(2, &[0, 3, 2, 0xff, 0xfe]));
        input.extend(masked(1, b"text"));
        let outcome = run_read_path(&input, &Config::default(), &routes());
        assert_eq!(
            outcome,
            ReadPathOutcome {
                upgraded: true,
                http_status: None,
                requests: 1,
                answers: 2,
                close: Some(close::UNSUPPORTED)
            }
        );
    }

    #[test]
    fn the_json_read_path_takes_requests_with_and_without_a_body() {
        let upgrade = String::from_utf8_lossy(UPGRADE).replace("ticksock.v1", "ticksock.v1.json");
        let mut input = upgrade.into_bytes();
        input.extend(masked(1, br#"{"id":1,"route":"rooms"}"#));
        input.extend(masked(1, br#"{"id":2,"route":"echo","body":[1]}"#));
        input.extend(masked(1, br#"{"id":3}"#));
        input.extend(masked(2, b"\x00"));
        let outcome = run_read_path(&input, &Config::default(), &routes());
        assert_eq!((outcome.requests, outcome.answers, outcome.close), (2, 1, Some(close::UNSUPPORTED)));
    }

    #[test]
    fn refusals_and_violations_are_reported() {
        let config = Config::default();
        let plain = run_read_path(b"GET /x HTTP/1.1\r\n\r\n", &config, &routes());
        assert_eq!(plain.http_status, Some(404));
        let mut unmasked = UPGRADE.to_vec();
        unmasked.extend([0x82, 0x01, 0x00]);
        assert_eq!(run_read_path(&unmasked, &config, &routes()).close, Some(close::PROTOCOL));
        let mut huge = UPGRADE.to_vec();
        huge.extend([0x82, 0xff, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]); // 128 KiB
        assert_eq!(run_read_path(&huge, &config, &routes()).close, Some(close::TOO_BIG));
    }
}
