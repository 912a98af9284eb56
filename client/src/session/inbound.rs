//! What comes from the server: the welcome, replies (stamped with a tick or not) and error
//! replies (matched to their call by id), and pushes (dispatched by topic to their handler, or queued as events); on
//! version 2 also the answer to a resume (handled in `resume`) and the server's Acks, and every
//! reply, error and push is counted.

use std::time::Instant;

use serde::de::DeserializeOwned;
use ticksock_protocol::{Encoding, ServerFrame, Version, error_code, v2};

use super::sequence::Identity;
use super::{Event, Outcome, Session, SessionEnd, State};
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
        match self.version {
            Some(Version::V2) => self.handle_v2_frame(frame, now, sink),
            _ => self.handle_v1_frame(frame, now, sink),
        }
    }

    /// A frame on a version 1 link.
    fn handle_v1_frame(&mut self, frame: &[u8], now: Instant, sink: impl FnMut(&str, &[u8]) -> bool) {
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
                if !self.speaks(version, now) {
                    return;
                }
                self.stats.connections += 1;
                if self.sequencing.holds() && !self.end_session(SessionEnd::ServerSpeaksV1, now) {
                    return; // A callback of a call that failed dropped the link or closed.
                }
                self.start_fresh(tick_hz, conn_id, now);
            }
            _ if !welcomed => self.violation(now, "a frame before the welcome".into()),
            ServerFrame::Reply { id, body } => self.answer(id, now, || Outcome::Reply(body.to_vec())),
            ServerFrame::TickReply { id, tick, body } => {
                self.answer(id, now, || Outcome::TickReply { tick, body: body.to_vec() })
            }
            ServerFrame::Error { id, code: error_code::REDIRECT, message }
                if self.config.follow_redirects =>
            {
                self.answer_redirect(id, message.into_owned(), now)
            }
            ServerFrame::Error { id, code, message } => {
                self.answer(id, now, || Outcome::Error { code, message: message.into_owned() })
            }
            ServerFrame::Push { topic, body } => self.push(&topic, body, sink),
        }
    }

    /// A frame on a version 2 link (`docs/PROTOCOL.md` 11.3, 11.4).
    fn handle_v2_frame(&mut self, frame: &[u8], now: Instant, sink: impl FnMut(&str, &[u8]) -> bool) {
        let decoded = match v2::decode_server_frame(Encoding::Binary, frame) {
            Ok(decoded) => decoded,
            Err(e) => return self.violation(now, format!("undecodable frame: {e}")),
        };
        let up = matches!(self.state, State::Up { .. });
        match decoded {
            v2::ServerFrame::Welcome { version, tick_hz, conn_id, epoch, secret } => {
                if !matches!(self.state, State::AwaitingWelcome { .. }) {
                    return self.violation(now, "a second welcome".into());
                }
                if self.speaks(version, now) {
                    self.welcomed_v2(tick_hz, Identity { conn_id, epoch, secret }, now);
                }
            }
            v2::ServerFrame::Resumed { received, secret } => self.resumed(received, secret, now),
            v2::ServerFrame::ResumeFailed { reason, message } => {
                self.resume_failed(reason, message.into_owned(), now)
            }
            _ if !up => self.violation(now, "a frame before the welcome or the resume's answer".into()),
            v2::ServerFrame::Ack { received } => {
                if let Err(problem) = self.sequencing.server_acked(received) {
                    self.violation(now, problem);
                }
            }
            v2::ServerFrame::Reply { id, body } => {
                self.sequencing.on_sequenced(now, self.config.ack_after_frames);
                self.answer(id, now, || Outcome::Reply(body.to_vec()));
            }
            v2::ServerFrame::TickReply { id, tick, body } => {
                self.sequencing.on_sequenced(now, self.config.ack_after_frames);
                self.answer(id, now, || Outcome::TickReply { tick, body: body.to_vec() });
            }
            v2::ServerFrame::Error { id, code: error_code::REDIRECT, message }
                if self.config.follow_redirects =>
            {
                self.sequencing.on_sequenced(now, self.config.ack_after_frames);
                self.answer_redirect(id, message.into_owned(), now);
            }
            v2::ServerFrame::Error { id, code, message } => {
                self.sequencing.on_sequenced(now, self.config.ack_after_frames);
                self.answer(id, now, || match code {
                    error_code::STALE_REQUEST => Outcome::AnswerLost,
                    code => Outcome::Error { code, message: message.into_owned() },
                });
            }
            v2::ServerFrame::Push { topic, body } => {
                self.sequencing.on_sequenced(now, self.config.ack_after_frames);
                self.push(&topic, body, sink);
            }
        }
    }

    /// Error `redirect` to `url` on call `id`: followed (see `redirect`), if the call waits.
    fn answer_redirect(&mut self, id: u32, url: String, now: Instant) {
        self.redirect.proven();
        if self.calls.get(id).is_some_and(|p| p.sent_at.is_some()) {
            self.redirected(id, url, true, now);
        } else {
            self.stats.late_answers += 1;
        }
    }

    /// Whether the welcome's `version` is the one the link was opened for; if not, the
    /// session stops for good (the server speaks something this client does not).
    fn speaks(&mut self, version: u16, now: Instant) -> bool {
        let expected = self.version.unwrap_or_default().number();
        if version == expected {
            return true;
        }
        let problem = format!(
            "the server's welcome says protocol version {version}, the link was opened for {expected}"
        );
        self.events.push_back(Event::ProtocolError { problem: problem.clone() });
        self.stop(now, Error::Protocol(problem), 1002);
        false
    }

    /// A push: to its topic's handler, else to `sink`, else queued as an [`Event::Push`]
    /// (dropped and counted past [`Config::max_queued_pushes`](crate::Config::max_queued_pushes)).
    fn push(&mut self, topic: &str, body: &[u8], mut sink: impl FnMut(&str, &[u8]) -> bool) {
        self.stats.pushes += 1;
        if topic == ticksock_protocol::TOPIC_DROPPED {
            // The server's own topic: never a game's handler's, and never dropped here, since
            // it is what tells the game it lost events.
            match ticksock_protocol::decode_body::<u64>(body) {
                Ok(count) => {
                    self.stats.server_dropped_events += count;
                    self.events.push_back(Event::EventsDropped { count });
                }
                Err(e) => self
                    .events
                    .push_back(Event::BadPush { topic: topic.to_owned(), error: crate::Error::Decode(e) }),
            }
        } else if let Some(handler) = self.handlers.get_mut(topic) {
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
