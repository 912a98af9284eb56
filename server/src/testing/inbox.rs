//! [`Inbox`]: the frames one test client has received and not yet taken, in order, and the
//! decoding of what a test takes out of it.

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use ticksock_protocol::{Encoding, ServerFrame};

use crate::ConnId;

/// An error reply: the server refused a call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallError {
    /// The code: one of [`ticksock_protocol::error_code`], or the game's own (from
    /// [`APP_MIN`](ticksock_protocol::error_code::APP_MIN)).
    pub code: u16,
    /// The explanation the server gave.
    pub message: String,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error reply {} ({}): {}",
            self.code,
            ticksock_protocol::error_code::name(self.code),
            self.message
        )
    }
}

impl std::error::Error for CallError {}

/// What a queued frame is, read once when it arrives so that finding an answer or the pushes
/// of a topic does not decode every frame again.
#[derive(Debug)]
enum Kind {
    /// A reply or an error reply to the call with this callback id.
    Answer(u32),
    /// A push on this topic.
    Push(Box<str>),
}

#[derive(Debug)]
struct Queued {
    kind: Kind,
    /// The whole frame, as the server would send it. A frame for several clients is one buffer.
    bytes: Bytes,
}

/// The frames a client has received and not yet taken, oldest first.
#[derive(Debug)]
pub(super) struct Inbox {
    conn: ConnId,
    encoding: Encoding,
    frames: VecDeque<Queued>,
}

impl Inbox {
    pub(super) fn new(conn: ConnId, encoding: Encoding) -> Self {
        Self { conn, encoding, frames: VecDeque::new() }
    }

    /// The encoding its client speaks.
    pub(super) fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Queues a frame the server sent.
    ///
    /// # Panics
    /// If it does not decode in the client's encoding, or is not a reply, an error or a push:
    /// the server sent its client something the client cannot read, which is a bug.
    pub(super) fn queue(&mut self, bytes: Bytes) {
        let kind = match self.decode(&bytes) {
            ServerFrame::Reply { id, .. }
            | ServerFrame::TickReply { id, .. }
            | ServerFrame::Error { id, .. } => Kind::Answer(id),
            ServerFrame::Push { topic, .. } => Kind::Push(topic.into()),
            ServerFrame::Welcome { .. } => {
                panic!("{}: the game sent a welcome frame, which only the reactor sends", self.conn)
            }
        };
        self.frames.push_back(Queued { kind, bytes });
    }

    /// Takes the answer to call `id`, if it has come.
    ///
    /// # Panics
    /// If the reply does not decode as `Resp` (the test expects another type than the route
    /// replies with).
    pub(super) fn take_answer<Resp: DeserializeOwned>(&mut self, id: u32) -> Option<Result<Resp, CallError>> {
        self.take_stamped_answer(id).map(|answer| answer.map(|(_, reply)| reply))
    }

    /// Takes the answer to call `id`, if it has come, with the tick its reply is stamped with
    /// (`None` for a plain reply).
    ///
    /// # Panics
    /// As [`Inbox::take_answer`].
    pub(super) fn take_stamped_answer<Resp: DeserializeOwned>(
        &mut self,
        id: u32,
    ) -> Option<Result<(Option<u64>, Resp), CallError>> {
        let at = self.frames.iter().position(|f| matches!(f.kind, Kind::Answer(i) if i == id))?;
        let frame = self.frames.remove(at)?;
        let reply = |body| self.body(body, || format!("the reply to call {id}"));
        Some(match self.decode(&frame.bytes) {
            ServerFrame::Reply { body, .. } => Ok((None, reply(body))),
            ServerFrame::TickReply { tick, body, .. } => Ok((Some(tick), reply(body))),
            ServerFrame::Error { code, message, .. } => Err(CallError { code, message: message.into() }),
            // `queue` filed this frame as an answer, so it decoded as one of the three above.
            other => unreachable!("{}: {other:?} was queued as an answer", self.conn),
        })
    }

    /// Takes every push on `topic`, oldest first, leaving the other frames queued.
    ///
    /// # Panics
    /// If one does not decode as `T`.
    pub(super) fn take_pushes<T: DeserializeOwned>(&mut self, topic: &str) -> Vec<T> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.frames.len());
        for frame in std::mem::take(&mut self.frames) {
            match &frame.kind {
                Kind::Push(t) if &**t == topic => taken.push(frame.bytes),
                _ => kept.push_back(frame),
            }
        }
        self.frames = kept;
        taken
            .iter()
            .map(|bytes| match self.decode(bytes) {
                ServerFrame::Push { body, .. } => self.body(body, || format!("a push on `{topic}`")),
                other => unreachable!("{}: {other:?} was queued as a push", self.conn),
            })
            .collect()
    }

    /// The frames not yet taken, oldest first.
    pub(super) fn frames(&self) -> impl Iterator<Item = &Bytes> {
        self.frames.iter().map(|f| &f.bytes)
    }

    fn decode<'a>(&self, bytes: &'a [u8]) -> ServerFrame<'a> {
        ticksock_protocol::decode_server_frame(self.encoding, bytes).unwrap_or_else(|e| {
            panic!(
                "{}: the server sent a frame that does not decode as {:?}: {e}; the frame: {}",
                self.conn,
                self.encoding,
                match self.encoding {
                    Encoding::Json => String::from_utf8_lossy(bytes).escape_debug().to_string(),
                    Encoding::Binary => format!("{bytes:?}"),
                }
            )
        })
    }

    fn body<T: DeserializeOwned>(&self, body: &[u8], what: impl FnOnce() -> String) -> T {
        ticksock_protocol::decode_body_as(self.encoding, body).unwrap_or_else(|e| {
            panic!(
                "{}: {} does not decode as {} ({:?}): {e}",
                self.conn,
                what(),
                std::any::type_name::<T>(),
                self.encoding
            )
        })
    }
}
