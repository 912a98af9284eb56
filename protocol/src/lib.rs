//! The ticksock wire format: what travels inside each WebSocket binary message.
//!
//! No I/O lives here: only bytes in, values out (and back). `docs/PROTOCOL.md` at the
//! repository root specifies the same format byte by byte; the test vectors there are checked
//! against this crate by `arena/tests/vectors.rs` (they encode the arena's bodies), and its
//! version 2 examples by this crate's `tests/v2_doc.rs`.
//!
//! # Modules
//! - [`wire`]: whole frames in either encoding, written into a caller's buffer and read back
//!   ([`write_reply`], [`write_reply_at`] for a tick-stamped reply, [`write_error`], [`write_push`], [`write_welcome`], [`write_request`],
//!   [`decode_request`], [`decode_server_frame`]). Servers and clients call these and never
//!   lay out frame bytes themselves.
//! - [`frame`]: the envelopes. A client sends a [`ClientFrame`] (a request tagged with a `u32`
//!   callback id); the server answers with [`ServerFrame`]s (welcome, reply, tick reply,
//!   error, push).
//! - [`body`]: how application types (anything `serde`) become a frame's body and back.
//! - [`error_code`]: the error codes the server itself puts in error replies.
//! - [`json`]: the same frames as JSON text messages, for browsers and consoles.
//! - [`replica`]: state replication (section 14): the update pushed after a tick, as a
//!   client decodes it and as a server lays it out from fields encoded once.
//! - [`v2`]: version 2 (`ticksock.v2`, `ticksock.v2.json`): sessions that survive a dropped
//!   link, with sequence numbers, acknowledgements and resume. [`choose_subprotocol`] picks
//!   the [`Version`] and [`Encoding`] of a link; [`resume_reason`] says why a resume failed.
//!
//! # Encoding
//! Every field is encoded with bincode 2's standard configuration (little-endian, variable-length
//! integers). A frame's body is not length-prefixed: it is the rest of the WebSocket message,
//! so a request's body can be handed to its handler without a copy. Untrusted bytes are only ever
//! decoded with [`DECODE_LIMIT`] in force.

pub mod body;
mod capped;
pub mod error_code;
pub mod frame;
pub mod json;
pub mod replica;
pub mod resume_reason;
pub mod v2;
mod version;
pub mod wire;

pub use body::{
    BodyError, decode_body, decode_body_as, decode_body_prefix, encode_body, encode_body_into,
    encode_body_into_as,
};
pub use frame::{ClientFrame, FrameError, ServerFrame};
pub use v2::{SECRET_LEN, Secret};
pub use version::{
    PROTOCOL_VERSION_2, SERVER_PREFERENCE, SUBPROTOCOL_V2, SUBPROTOCOL_V2_JSON, Version, choose_subprotocol,
    subprotocol,
};
pub use wire::{
    Request, decode_request, decode_server_frame, write_error, write_push, write_raw_reply,
    write_raw_reply_at, write_raw_request, write_reply, write_reply_at, write_request, write_welcome,
};

/// The version of this wire format, sent in the welcome frame.
pub const PROTOCOL_VERSION: u16 = 1;

/// The longest route name a request may carry, in bytes of UTF-8, in either encoding.
///
/// Route names are a game's own short vocabulary (`login`, `move`), never data, so a longer
/// name can only be a client's bug or a probe. The limit keeps what such a request costs
/// small: the name is not looked up, and the `BAD_FRAME` answer does not quote it (an unknown
/// route within the limit gets `UNKNOWN_ROUTE`, whose message quotes at most this many bytes).
/// At 64 (under 251) a route's length prefix is always one byte. A server refuses to register
/// a longer name.
pub const MAX_ROUTE_LEN: usize = 64;

/// The longest ticket a redirect's URL carries (PROTOCOL.md section 12.2), in bytes. A ticket
/// is made of `A-Z a-z 0-9 - _ .` only.
pub const MAX_TICKET_LEN: usize = 512;

/// The WebSocket close code of a connection whose ticket the node does not accept
/// (PROTOCOL.md section 12.3).
pub const CLOSE_BAD_TICKET: u16 = 4002;

/// The WebSocket close code of a connection whose upgrade's token the game's verifier refused
/// (PROTOCOL.md section 13.1).
pub const CLOSE_AUTH_FAILED: u16 = 4003;

/// The WebSocket close code of a connection whose identity expired and was not renewed within
/// the server's grace (PROTOCOL.md section 13.4).
pub const CLOSE_AUTH_EXPIRED: u16 = 4004;

/// The query parameter of the upgrade by which a client asks for tick-stamped replies
/// (PROTOCOL.md 4.3): `?ticks=1`. Any other value, or none, asks for plain replies.
pub const QUERY_TICKS: &str = "ticks";

/// The WebSocket close code of a connection that read nothing for the server's stalled-reader
/// time while frames were held back for it (PROTOCOL.md 7.3 and 7.5).
pub const CLOSE_STALLED_READER: u16 = 4005;

/// The push topic that tells a client how many events the server dropped because it read too
/// slowly (PROTOCOL.md 7.3): its body is the count since the last such push, a `u64`.
pub const TOPIC_DROPPED: &str = "ticksock.dropped";

/// The longest token a connection may offer (PROTOCOL.md section 13.1), in bytes.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The route of a server with a verifier that authenticates a connection in band (13.2).
pub const ROUTE_AUTH: &str = "auth";

/// The push topic that comes right before close 4004 (13.4).
pub const TOPIC_AUTH_EXPIRED: &str = "auth_expired";

/// The reply of [`ROUTE_AUTH`] (PROTOCOL.md section 13.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthReply {
    /// The user the connection is now bound to.
    pub user: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// How long until the identity expires; `None`: it does not.
    pub expires_in_ms: Option<u64>,
}

/// The WebSocket subprotocol (`Sec-WebSocket-Protocol`) that selects this wire format.
///
/// A client must offer it; the server refuses an upgrade that offers no version it speaks.
pub const SUBPROTOCOL: &str = "ticksock.v1";

/// The WebSocket subprotocol that selects the JSON form of the frames (see [`json`]).
pub const SUBPROTOCOL_JSON: &str = "ticksock.v1.json";

/// Which form of the frames a connection speaks, chosen by its subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// bincode frames in binary messages ([`SUBPROTOCOL`]): the default and the fast path.
    #[default]
    Binary,
    /// JSON frames in text messages ([`SUBPROTOCOL_JSON`]).
    Json,
}

/// The most memory, in bytes, that decoding one untrusted value may claim.
///
/// bincode checks every length it reads against this budget before it allocates, so a few
/// bytes that claim a huge string or vector fail with an error instead of aborting the process.
/// It bounds the *decoded* size, which can exceed the wire size (an empty `String` costs one byte
/// on the wire and 24 in memory), hence a budget well above the default message size limit.
pub const DECODE_LIMIT: usize = 1 << 20;

/// The bincode configuration for encoding: standard (little-endian, varint), no limit needed
/// because we only encode values we own.
pub(crate) const ENCODE_CONFIG: bincode::config::Configuration = bincode::config::standard();

/// The bincode configuration for decoding untrusted bytes: standard, with [`DECODE_LIMIT`].
pub(crate) const DECODE_CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_LIMIT>,
> = bincode::config::standard().with_limit::<DECODE_LIMIT>();
