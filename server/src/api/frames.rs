//! The game's answers, encoded by [`ticksock_protocol::wire`] straight into the batch for the
//! reactor, in each connection's encoding. A push is encoded at most once per encoding,
//! however many recipients share it.

use serde::{Serialize, de::DeserializeOwned};
use ticksock_protocol::{Encoding, error_code};

use super::{AppError, Caller};
use crate::bridge::{Batch, DataOpcode, Payload};

/// Decodes a request body in the caller's encoding; `BAD_BODY` when it does not fit the type.
pub(crate) fn request<Req: DeserializeOwned>(encoding: Encoding, body: &[u8]) -> Result<Req, AppError> {
    ticksock_protocol::decode_body_as(encoding, body)
        .map_err(|e| AppError::new(error_code::BAD_BODY, e.to_string()))
}

/// Encodes the reply frame carrying `value` into `out`: stamped with `tick` when the caller
/// asked for tick-stamped replies ([`Ctx::stamp`](super::Ctx)).
pub(crate) fn reply<T: Serialize + ?Sized>(
    out: &mut Batch,
    caller: Caller,
    tick: Option<u64>,
    value: &T,
) -> Result<Payload, AppError> {
    out.write_payload(DataOpcode::of(caller.encoding), |buf| {
        ticksock_protocol::write_reply_at(caller.encoding, buf, caller.id, tick, value).map_err(|e| {
            tracing::error!("reply does not encode: {e}");
            AppError::new(error_code::INTERNAL, "reply does not encode")
        })
    })
}

/// Encodes the reply frame of a raw route into `out`: `body` as the handler returned it (JSON
/// text on a JSON connection), stamped with `tick` when given, as [`reply`].
pub(crate) fn raw_reply(
    out: &mut Batch,
    caller: Caller,
    tick: Option<u64>,
    body: &[u8],
) -> Result<Payload, AppError> {
    out.write_payload(DataOpcode::of(caller.encoding), |buf| {
        ticksock_protocol::write_raw_reply_at(caller.encoding, buf, caller.id, tick, body)
            .map_err(|_| AppError::new(error_code::INTERNAL, "a raw reply on a JSON connection must be JSON"))
    })
}

/// Encodes the error frame for call `id` into `out`.
pub(crate) fn error(out: &mut Batch, id: u32, encoding: Encoding, error: &AppError) -> Payload {
    out.push_payload(DataOpcode::of(encoding), |buf| {
        ticksock_protocol::write_error(encoding, buf, id, error.code, &error.message)
    })
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
        let slot = match encoding {
            Encoding::Binary => &mut self.binary,
            Encoding::Json => &mut self.json,
        };
        *slot.get_or_insert_with(|| {
            *encodes += 1;
            out.write_payload(DataOpcode::of(encoding), |buf| {
                ticksock_protocol::write_push(encoding, buf, topic, value)
            })
            .map_err(|e| tracing::error!("push on `{topic}` does not encode ({encoding:?}): {e}"))
            .ok()
        })
    }
}
