//! What comes from the server: the welcome, replies and error replies (matched to their call
//! by id), and pushes (dispatched by topic to their handler, or queued as events).

use std::time::Instant;

use serde::de::DeserializeOwned;
use ticksock_protocol::ServerFrame;

use super::{Event, Outcome, Session, State};
use crate::Error;

/// A topic's push handler; an `Err` becomes an [`Event::BadPush`].
pub(super) type PushHandler = Box<dyn FnMut(&[u8]) -> Result<(), Error> + Send>;

impl Session {
    /// Registers the handler of `topic`'s pushes, replacing any other. Pushes on topics
    /// without a handler become [`Event::Push`].
    pub fn on_push(&mut self, topic: &str, mut handler: impl FnMut(&[u8]) + Send + 'static) {
        self.handlers.insert(
            topic.into(),
            Box::new(move |body| {
                handler(body);
                Ok(())
            }),
        );
    }

    /// Registers a handler that receives `topic`'s pushes decoded as `T`. A body that does not
    /// decode becomes an [`Event::BadPush`].
    pub fn on_push_typed<T: DeserializeOwned>(
        &mut self,
        topic: &str,
        mut handler: impl FnMut(T) + Send + 'static,
    ) {
        self.handlers.insert(
            topic.into(),
            Box::new(move |body| {
                handler(ticksock_protocol::decode_body(body).map_err(Error::Decode)?);
                Ok(())
            }),
        );
    }

    /// Removes `topic`'s handler. Returns whether there was one.
    pub fn remove_push_handler(&mut self, topic: &str) -> bool {
        self.handlers.remove(topic).is_some()
    }

    /// Handles one binary message from the server. Pushes go to their handler, or become
    /// [`Event::Push`].
    pub fn handle_frame(&mut self, frame: &[u8], now: Instant) {
        self.handle_frame_with(frame, now, |_, _| false);
    }

    /// Like [`Session::handle_frame`], but a push on a topic without a handler is first offered
    /// to `sink` (topic, body), borrowed: no copy. If `sink` returns `false` it becomes an
    /// [`Event::Push`]. For callers that process pushes in place (the load simulator).
    pub fn handle_frame_with(&mut self, frame: &[u8], now: Instant, sink: impl FnMut(&str, &[u8]) -> bool) {
        self.now = now;
        if matches!(self.state, State::Down | State::Closed | State::Connecting { .. }) {
            return; // Stale bytes from a connection already given up.
        }
        self.last_heard = now;
        let decoded = match ServerFrame::decode(frame) {
            Ok(decoded) => decoded,
            Err(e) => return self.violation(now, format!("undecodable frame: {e}")),
        };
        let welcomed = matches!(self.state, State::Up { .. });
        match decoded {
            ServerFrame::Welcome { version, tick_hz, conn_id } => {
                if welcomed {
                    return self.violation(now, "a second welcome".into());
                }
                self.welcomed(version, tick_hz, conn_id, now);
            }
            _ if !welcomed => self.violation(now, "a frame before the welcome".into()),
            ServerFrame::Reply { id, body } => self.answer(id, now, || Outcome::Reply(body.to_vec())),
            ServerFrame::Error { id, code, message } => {
                self.answer(id, now, || Outcome::Error { code, message: message.into_owned() })
            }
            ServerFrame::Push { topic, body } => self.push(&topic, body, sink),
        }
    }

    /// The connection's first frame: the link is up, unless the server speaks another version.
    fn welcomed(&mut self, version: u16, tick_hz: u16, conn_id: u64, now: Instant) {
        if version != ticksock_protocol::PROTOCOL_VERSION {
            let problem = format!(
                "the server speaks protocol version {version}, this client {}",
                ticksock_protocol::PROTOCOL_VERSION
            );
            self.events.push_back(Event::ProtocolError { problem: problem.clone() });
            return self.stop(now, Error::Protocol(problem), 1002);
        }
        self.state = State::Up { since: now };
        self.welcome = Some((tick_hz, conn_id));
        self.stats.connections += 1;
        // The offline queue waits until the game has seen this connection (and logged in).
        self.outbox.hold();
        self.release_on_poll = false;
        self.queued_connected += 1;
        self.events.push_back(Event::Connected { tick_hz, conn_id });
    }

    /// A push: to its topic's handler, else to `sink`, else queued as an [`Event::Push`]
    /// (dropped and counted past [`Config::max_queued_pushes`](crate::Config::max_queued_pushes)).
    fn push(&mut self, topic: &str, body: &[u8], mut sink: impl FnMut(&str, &[u8]) -> bool) {
        self.stats.pushes += 1;
        if let Some(handler) = self.handlers.get_mut(topic) {
            if let Err(error) = handler(body) {
                self.events.push_back(Event::BadPush { topic: topic.to_owned(), error });
            }
        } else if !sink(topic, body) {
            if self.queued_pushes >= self.config.max_queued_pushes {
                self.stats.pushes_dropped += 1;
            } else {
                self.queued_pushes += 1;
                self.events.push_back(Event::Push { topic: topic.to_owned(), body: body.to_vec() });
            }
        }
    }
}
