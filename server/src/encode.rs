//! Building the server's frames in a connection's encoding: bincode in binary messages, or
//! JSON in text messages. A push is encoded at most once per encoding, however many
//! recipients share it.

use protocol::{Encoding, ServerFrame, error_code, frame, json};
use serde::{Serialize, de::DeserializeOwned};
use tungstenite::Message;

use crate::app::{AppError, Caller};
use crate::bridge::{Batch, Payload};
use crate::outbound::DataOpcode;

/// Decodes a request body in the caller's encoding; `BAD_BODY` when it does not fit the type.
pub(crate) fn request<Req: DeserializeOwned>(encoding: Encoding, body: &[u8]) -> Result<Req, AppError> {
    protocol::decode_body_as(encoding, body).map_err(|e| AppError::new(error_code::BAD_BODY, e.to_string()))
}

/// Encodes the reply frame carrying `value` into `out`.
pub(crate) fn reply<T: Serialize + ?Sized>(
    out: &mut Batch,
    caller: Caller,
    value: &T,
) -> Result<Payload, AppError> {
    let unencodable = |e: protocol::BodyError| {
        tracing::error!("reply does not encode: {e}");
        AppError::new(error_code::INTERNAL, "reply does not encode")
    };
    match caller.encoding {
        Encoding::Binary => out.write_payload(DataOpcode::Binary, |buf| {
            frame::write_reply_header(buf, caller.id);
            protocol::encode_body_into(value, buf).map_err(unencodable)
        }),
        Encoding::Json => out.write_payload(DataOpcode::Text, |buf| {
            json::write_reply_open(buf, caller.id);
            protocol::encode_body_into_as(Encoding::Json, value, buf).map_err(unencodable)?;
            buf.push(json::FRAME_CLOSE);
            Ok(())
        }),
    }
}

/// Encodes the reply frame of a raw route into `out`: `body` as the handler returned it (JSON
/// text on a JSON connection).
pub(crate) fn raw_reply(out: &mut Batch, caller: Caller, body: &[u8]) -> Result<Payload, AppError> {
    match caller.encoding {
        Encoding::Binary => Ok(out.push_payload(DataOpcode::Binary, |buf| {
            frame::write_reply_header(buf, caller.id);
            buf.extend_from_slice(body);
        })),
        Encoding::Json => match std::str::from_utf8(body) {
            Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
                Ok(out.push_payload(DataOpcode::Text, |buf| {
                    json::write_reply_open(buf, caller.id);
                    buf.extend_from_slice(body);
                    buf.push(json::FRAME_CLOSE);
                }))
            }
            _ => Err(AppError::new(error_code::INTERNAL, "a raw reply on a JSON connection must be JSON")),
        },
    }
}

/// Appends the error frame for call `id` to `buf`; returns its kind.
fn error_into(buf: &mut Vec<u8>, id: u32, encoding: Encoding, error: &AppError) -> DataOpcode {
    match encoding {
        Encoding::Binary => {
            ServerFrame::Error { id, code: error.code, message: &error.message }.encode_into(buf);
            DataOpcode::Binary
        }
        Encoding::Json => {
            buf.extend_from_slice(json::error(id, error.code, &error.message).as_bytes());
            DataOpcode::Text
        }
    }
}

/// Encodes the error frame for call `id` into `out`.
pub(crate) fn error_payload(out: &mut Batch, id: u32, encoding: Encoding, error: &AppError) -> Payload {
    let opcode = match encoding {
        Encoding::Binary => DataOpcode::Binary,
        Encoding::Json => DataOpcode::Text,
    };
    out.push_payload(opcode, |buf| {
        error_into(buf, id, encoding, error);
    })
}

/// The error frame for call `id`, as a message of its own (for the reactor's own answers).
pub(crate) fn error(id: u32, encoding: Encoding, error: &AppError) -> Message {
    let mut buf = Vec::new();
    match error_into(&mut buf, id, encoding, error) {
        DataOpcode::Binary => Message::Binary(buf.into()),
        // Cannot fail: the JSON error frame is built from `str`s and integers.
        DataOpcode::Text => Message::Text(String::from_utf8(buf).expect("JSON is UTF-8").into()),
    }
}

/// The welcome frame.
pub(crate) fn welcome(encoding: Encoding, tick_hz: u16, conn_id: u64) -> Message {
    match encoding {
        Encoding::Binary => Message::Binary(
            ServerFrame::Welcome { version: protocol::PROTOCOL_VERSION, tick_hz, conn_id }.to_vec().into(),
        ),
        Encoding::Json => Message::Text(json::welcome(protocol::PROTOCOL_VERSION, tick_hz, conn_id).into()),
    }
}

/// One push, encoded lazily for each encoding its recipients speak, into the batch.
pub(crate) struct PushFrames<'a, T: ?Sized> {
    topic: &'a str,
    value: &'a T,
    binary: Option<Option<Payload>>,
    json: Option<Option<Payload>>,
}

impl<'a, T: Serialize + ?Sized> PushFrames<'a, T> {
    pub(crate) fn new(topic: &'a str, value: &'a T) -> Self {
        Self { topic, value, binary: None, json: None }
    }

    /// The frame for recipients of `encoding`, encoded into `out` on first use and shared
    /// after. `None` (logged once) when the value does not encode, which is a bug in its type.
    pub(crate) fn payload(
        &mut self,
        out: &mut Batch,
        encoding: Encoding,
        encodes: &mut u64,
    ) -> Option<Payload> {
        let (topic, value) = (self.topic, self.value);
        match encoding {
            Encoding::Binary => *self.binary.get_or_insert_with(|| {
                *encodes += 1;
                out.write_payload(DataOpcode::Binary, |buf| {
                    frame::write_push_header(buf, topic);
                    protocol::encode_body_into(value, buf)
                })
                .map_err(|e| tracing::error!("push on `{topic}` does not encode: {e}"))
                .ok()
            }),
            Encoding::Json => *self.json.get_or_insert_with(|| {
                *encodes += 1;
                out.write_payload(DataOpcode::Text, |buf| {
                    json::write_push_open(buf, topic);
                    serde_json::to_writer(&mut *buf, value)?;
                    buf.push(json::FRAME_CLOSE);
                    Ok(())
                })
                .map_err(|e: serde_json::Error| {
                    tracing::error!("push on `{topic}` does not encode as JSON: {e}")
                })
                .ok()
            }),
        }
    }
}
