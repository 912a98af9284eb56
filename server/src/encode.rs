//! Building the server's frames in a connection's encoding: bincode in binary messages, or
//! JSON in text messages. A push is encoded at most once per encoding, however many
//! recipients share it.

use bytes::Bytes;
use protocol::{Encoding, ServerFrame, error_code, frame, json};
use serde::{Serialize, de::DeserializeOwned};
use tungstenite::Message;
use tungstenite::protocol::frame::Utf8Bytes;

use crate::app::{AppError, Caller};

/// Decodes a request body in the caller's encoding; `BAD_BODY` when it does not fit the type.
pub(crate) fn request<Req: DeserializeOwned>(encoding: Encoding, body: &[u8]) -> Result<Req, AppError> {
    protocol::decode_body_as(encoding, body).map_err(|e| AppError::new(error_code::BAD_BODY, e.to_string()))
}

/// The reply frame carrying `value`.
pub(crate) fn reply<T: Serialize + ?Sized>(caller: Caller, value: &T) -> Result<Message, AppError> {
    let unencodable = |e: protocol::BodyError| {
        tracing::error!("reply does not encode: {e}");
        AppError::new(error_code::INTERNAL, "reply does not encode")
    };
    match caller.encoding {
        Encoding::Binary => {
            let mut out = Vec::with_capacity(32);
            frame::write_reply_header(&mut out, caller.id);
            protocol::encode_body_into(value, &mut out).map_err(unencodable)?;
            Ok(Message::Binary(Bytes::from(out)))
        }
        Encoding::Json => {
            let mut body = Vec::with_capacity(32);
            protocol::encode_body_into_as(Encoding::Json, value, &mut body).map_err(unencodable)?;
            let body =
                String::from_utf8(body).map_err(|_| AppError::new(error_code::INTERNAL, "not UTF-8"))?;
            Ok(Message::Text(json::reply(caller.id, &body).into()))
        }
    }
}

/// The reply frame of a raw route: `body` as the handler returned it (JSON text on a JSON
/// connection).
pub(crate) fn raw_reply(caller: Caller, body: &[u8]) -> Result<Message, AppError> {
    match caller.encoding {
        Encoding::Binary => {
            let mut out = Vec::with_capacity(8 + body.len());
            frame::write_reply_header(&mut out, caller.id);
            out.extend_from_slice(body);
            Ok(Message::Binary(Bytes::from(out)))
        }
        Encoding::Json => match std::str::from_utf8(body) {
            Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
                Ok(Message::Text(json::reply(caller.id, text).into()))
            }
            _ => Err(AppError::new(error_code::INTERNAL, "a raw reply on a JSON connection must be JSON")),
        },
    }
}

/// The error frame for call `id`.
pub(crate) fn error(id: u32, encoding: Encoding, error: &AppError) -> Message {
    match encoding {
        Encoding::Binary => Message::Binary(
            ServerFrame::Error { id, code: error.code, message: &error.message }.to_vec().into(),
        ),
        Encoding::Json => Message::Text(json::error(id, error.code, &error.message).into()),
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

/// One push, encoded lazily for each encoding its recipients speak.
pub(crate) struct PushFrames<'a, T: ?Sized> {
    topic: &'a str,
    value: &'a T,
    binary: Option<Option<Bytes>>,
    json: Option<Option<Utf8Bytes>>,
}

impl<'a, T: Serialize + ?Sized> PushFrames<'a, T> {
    pub(crate) fn new(topic: &'a str, value: &'a T) -> Self {
        Self { topic, value, binary: None, json: None }
    }

    /// The message for a recipient of `encoding`: a shared buffer, encoded on first use.
    /// `None` (logged once) when the value does not encode, which is a bug in its type.
    pub(crate) fn message(&mut self, encoding: Encoding, encodes: &mut u64) -> Option<Message> {
        let (topic, value) = (self.topic, self.value);
        match encoding {
            Encoding::Binary => self
                .binary
                .get_or_insert_with(|| {
                    *encodes += 1;
                    let mut out = Vec::with_capacity(64);
                    frame::write_push_header(&mut out, topic);
                    protocol::encode_body_into(value, &mut out)
                        .map_err(|e| tracing::error!("push on `{topic}` does not encode: {e}"))
                        .ok()
                        .map(|()| Bytes::from(out))
                })
                .clone()
                .map(Message::Binary),
            Encoding::Json => self
                .json
                .get_or_insert_with(|| {
                    *encodes += 1;
                    serde_json::to_string(value)
                        .map_err(|e| tracing::error!("push on `{topic}` does not encode as JSON: {e}"))
                        .ok()
                        .map(|body: String| Utf8Bytes::from(json::push(topic, &body)))
                })
                .clone()
                .map(Message::Text),
        }
    }
}
