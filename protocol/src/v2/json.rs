//! Version 2 frames in JSON (`docs/PROTOCOL.md` section 11.8): one object per text message,
//! with the conventions of version 1's JSON (section 9). `type` is required in every frame.
//! `session`, `epoch` and `conn_id` are decimal strings (they can exceed 2^53, which a
//! JavaScript number does not hold exactly); `seq`, `ack` and `received` are plain numbers; a
//! secret is 32 lowercase hex digits.
//!
//! ```text
//! client:  {"type":"request","seq":1,"ack":0,"id":1,"route":"login","body":{"name":"ann"}}
//!          {"type":"ack","ack":5}
//!          {"type":"resume","session":"4294967296","epoch":"7","secret":"00112233445566778899aabbccddeeff","received":5}
//! server:  {"type":"welcome","version":2,"tick_hz":30,"conn_id":"4294967296","epoch":"7","secret":"0011..."}
//!          {"type":"resumed","received":3,"secret":"ffeeddccbbaa99887766554433221100"}
//!          {"type":"resume_failed","reason":2,"message":"session ended"}
//!          {"type":"ack","received":7}
//! ```
//!
//! A Request's `id`, `route` and `body` are read by version 1's reader
//! ([`JsonRequest::decode`]), and Reply, Error and Push are version 1's frames, so both
//! versions apply the same rules to them.

use std::borrow::Cow;
use std::io::Write;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{ClientFrame, SECRET_LEN, Secret, ServerFrame, from_v1};
use crate::json::{JsonFrameError, JsonRequest};
use crate::{Encoding, FrameError, Request};

/// The keys of every client frame, each kept as its raw JSON text, so that only the keys of
/// the frame's own type are read: any other key is ignored, whatever it holds. One of these
/// keys given twice fails the whole frame (serde refuses a duplicate field), as section 11.8
/// says.
#[derive(Deserialize)]
struct ClientEnvelope<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    seq: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ack: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    session: Option<&'a RawValue>,
    #[serde(borrow, default)]
    epoch: Option<&'a RawValue>,
    #[serde(borrow, default)]
    secret: Option<&'a RawValue>,
    #[serde(borrow, default)]
    received: Option<&'a RawValue>,
}

/// The keys of the server frames that version 2 adds, likewise.
#[derive(Deserialize)]
struct ServerEnvelope<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tick_hz: Option<&'a RawValue>,
    #[serde(borrow, default)]
    conn_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    epoch: Option<&'a RawValue>,
    #[serde(borrow, default)]
    secret: Option<&'a RawValue>,
    #[serde(borrow, default)]
    received: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reason: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
}

/// A JSON string, borrowed unless it holds escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Decodes one client frame from a whole text message.
pub(super) fn decode_client_frame(message: &[u8]) -> Result<ClientFrame<'_>, FrameError> {
    let text = std::str::from_utf8(message).map_err(|_| no_id("not UTF-8"))?;
    let envelope: ClientEnvelope<'_> = serde_json::from_str(text).map_err(no_id)?;
    match frame_type(envelope.kind)? {
        "request" => {
            let seq = required(envelope.seq, "request", "seq")?;
            let ack = required(envelope.ack, "request", "ack")?;
            // Only whether the id reads is decided here; version 1's reader reads it again,
            // with the route and the body, and answers with it what fails after it.
            required::<u32>(envelope.id, "request", "id")?;
            let JsonRequest { id, route, body } = JsonRequest::decode(text)?;
            let body = body.map_or(&b"null"[..], str::as_bytes);
            Ok(ClientFrame::Request { seq, ack, request: Request { id, route, body } })
        }
        "ack" => Ok(ClientFrame::Ack { ack: required(envelope.ack, "ack", "ack")? }),
        "resume" => Ok(ClientFrame::Resume {
            session: decimal(envelope.session, "resume", "session")?,
            epoch: decimal(envelope.epoch, "resume", "epoch")?,
            secret: secret(envelope.secret, "resume")?,
            received: required(envelope.received, "resume", "received")?,
        }),
        other => Err(no_id(format_args!("unknown client frame type `{other}`"))),
    }
}

/// Decodes one server frame from a whole text message.
pub(super) fn decode_server_frame(message: &[u8]) -> Result<ServerFrame<'_>, FrameError> {
    let envelope: ServerEnvelope<'_> = serde_json::from_slice(message).map_err(no_id)?;
    match frame_type(envelope.kind)? {
        "welcome" => Ok(ServerFrame::Welcome {
            version: required(envelope.version, "welcome", "version")?,
            tick_hz: required(envelope.tick_hz, "welcome", "tick_hz")?,
            conn_id: decimal(envelope.conn_id, "welcome", "conn_id")?,
            epoch: decimal(envelope.epoch, "welcome", "epoch")?,
            secret: secret(envelope.secret, "welcome")?,
        }),
        kind @ ("reply" | "error" | "push") => {
            // Version 1's frames, read by version 1's decoder, which never makes a Welcome of
            // these types; if it did, that would be no frame of this type.
            from_v1(crate::decode_server_frame(Encoding::Json, message)?)
                .ok_or_else(|| no_id(format_args!("a `{kind}` frame that is not one")))
        }
        "resumed" => Ok(ServerFrame::Resumed {
            received: required(envelope.received, "resumed", "received")?,
            secret: secret(envelope.secret, "resumed")?,
        }),
        "resume_failed" => Ok(ServerFrame::ResumeFailed {
            reason: required(envelope.reason, "resume_failed", "reason")?,
            message: required::<Text<'_>>(envelope.message, "resume_failed", "message")?.0,
        }),
        "ack" => Ok(ServerFrame::Ack { received: required(envelope.received, "ack", "received")? }),
        other => Err(no_id(format_args!("unknown server frame type `{other}`"))),
    }
}

/// An error that carries no callback id: the receiver closes the link (1007).
fn no_id(reason: impl std::fmt::Display) -> FrameError {
    FrameError::Json(JsonFrameError::NoId(reason.to_string()))
}

/// The frame's `type`, which every version 2 frame must have, as a string without escapes.
fn frame_type(raw: Option<&RawValue>) -> Result<&str, FrameError> {
    let raw = raw.ok_or_else(|| no_id("no `type`"))?;
    serde_json::from_str(raw.get()).map_err(|_| no_id("`type` is not a string without escapes"))
}

/// The value of a required key `key` of a `frame` frame, as JSON gives it (a number, or a
/// string); `null` is no value.
fn required<'a, T: Deserialize<'a>>(
    raw: Option<&'a RawValue>,
    frame: &str,
    key: &str,
) -> Result<T, FrameError> {
    let raw = raw.ok_or_else(|| no_id(format_args!("`{frame}` frame without `{key}`")))?;
    serde_json::from_str(raw.get()).map_err(|e| no_id(format_args!("`{frame}` frame: `{key}`: {e}")))
}

/// A u64 written as a decimal string: digits only, no sign, no leading zero (but `"0"`).
fn decimal(raw: Option<&RawValue>, frame: &str, key: &str) -> Result<u64, FrameError> {
    let text: &str = required(raw, frame, key)?;
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    let value = if canonical { text.parse().ok() } else { None };
    value.ok_or_else(|| {
        no_id(format_args!(
            "`{frame}` frame: `{key}` is not a u64 in decimal digits (no sign, no leading zero)"
        ))
    })
}

/// A secret written as exactly 32 lowercase hex digits.
fn secret(raw: Option<&RawValue>, frame: &str) -> Result<Secret, FrameError> {
    let text: &str = required(raw, frame, "secret")?;
    let bad =
        || no_id(format_args!("`{frame}` frame: `secret` is not {} lowercase hex digits", 2 * SECRET_LEN));
    if text.len() != 2 * SECRET_LEN {
        return Err(bad());
    }
    let mut secret = [0; SECRET_LEN];
    for (byte, pair) in secret.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        *byte = (hex_digit(pair[0]).ok_or_else(bad)? << 4) | hex_digit(pair[1]).ok_or_else(bad)?;
    }
    Ok(secret)
}

/// The value of one lowercase hex digit.
fn hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// Appends `secret` as 32 lowercase hex digits, between quotes.
fn write_secret(out: &mut Vec<u8>, secret: &Secret) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for byte in secret {
        out.extend_from_slice(&[DIGITS[usize::from(byte >> 4)], DIGITS[usize::from(byte & 0x0f)]]);
    }
    out.push(b'"');
}

/// Appends `text` as a JSON string.
fn write_text(out: &mut Vec<u8>, text: &str) {
    // Cannot fail: a str always serializes, and a Vec accepts every write.
    serde_json::to_writer(out, text).expect("a str serializes into a Vec");
}

/// Appends formatted text.
fn write_fmt(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    // Cannot fail: a Vec accepts every write.
    out.write_fmt(args).expect("writing into a Vec");
}

/// Appends a request frame up to its body: the caller appends the body's JSON text and then
/// [`crate::json::FRAME_CLOSE`].
pub(super) fn write_request_open(out: &mut Vec<u8>, seq: u64, ack: u64, id: u32, route: &str) {
    write_fmt(out, format_args!(r#"{{"type":"request","seq":{seq},"ack":{ack},"id":{id},"route":"#));
    write_text(out, route);
    out.extend_from_slice(br#","body":"#);
}

/// Appends a client's Ack.
pub(super) fn write_client_ack(out: &mut Vec<u8>, ack: u64) {
    write_fmt(out, format_args!(r#"{{"type":"ack","ack":{ack}}}"#));
}

/// Appends a Resume.
pub(super) fn write_resume(out: &mut Vec<u8>, session: u64, epoch: u64, secret: &Secret, received: u64) {
    write_fmt(out, format_args!(r#"{{"type":"resume","session":"{session}","epoch":"{epoch}","secret":"#));
    write_secret(out, secret);
    write_fmt(out, format_args!(r#","received":{received}}}"#));
}

/// Appends a Welcome.
pub(super) fn write_welcome(
    out: &mut Vec<u8>,
    version: u16,
    tick_hz: u16,
    conn_id: u64,
    epoch: u64,
    secret: &Secret,
) {
    write_fmt(
        out,
        format_args!(
            r#"{{"type":"welcome","version":{version},"tick_hz":{tick_hz},"conn_id":"{conn_id}","epoch":"{epoch}","secret":"#
        ),
    );
    write_secret(out, secret);
    out.push(b'}');
}

/// Appends a Resumed.
pub(super) fn write_resumed(out: &mut Vec<u8>, received: u64, secret: &Secret) {
    write_fmt(out, format_args!(r#"{{"type":"resumed","received":{received},"secret":"#));
    write_secret(out, secret);
    out.push(b'}');
}

/// Appends a ResumeFailed.
pub(super) fn write_resume_failed(out: &mut Vec<u8>, reason: u16, message: &str) {
    write_fmt(out, format_args!(r#"{{"type":"resume_failed","reason":{reason},"message":"#));
    write_text(out, message);
    out.push(b'}');
}

/// Appends a server's Ack.
pub(super) fn write_server_ack(out: &mut Vec<u8>, received: u64) {
    write_fmt(out, format_args!(r#"{{"type":"ack","received":{received}}}"#));
}
