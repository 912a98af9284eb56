//! Version 2 links (PROTOCOL.md section 11): a link's first frame starts its session or resumes
//! an earlier one; requests are taken by number; every Reply, Error and Push to a session is
//! held until the client acknowledges it, and sent again after a resume. The decisions are
//! [`session`](super::session)'s; this file carries them out on the reactor's connections.

use std::time::Instant;

use bytes::Bytes;
use ticksock_protocol::{Encoding, error_code, resume_reason, v2};
use tungstenite::Message;

use super::Reactor;
use super::connection::Carries;
use super::hold::{Class, HeldOut, Released, dropped_notice};
use super::inbound::{self, InboundV2};
use super::lifecycle::{Lifecycle, Stage};
use super::session::replay::HeldFrame;
use super::session::{RequestVerdict, ResumeRequest, SECRET_LEN, Secret, Session};
use crate::ConnId;
use crate::bridge::{DataOpcode, RouteId, ToLogic};

/// A new session secret, from the operating system's random source.
pub(super) fn new_secret() -> Secret {
    let mut secret = [0u8; SECRET_LEN];
    if let Err(e) = getrandom::fill(&mut secret) {
        // Without randomness a secret would be guessable: that is not a session worth keeping
        // up, and no server can run on a system without a random source.
        panic!("no random source for a session secret: {e}");
    }
    secret
}

/// This server run's epoch (PROTOCOL.md 11.3), random so that a restarted server does not
/// mistake an earlier run's sessions for its own.
pub(super) fn new_epoch() -> u64 {
    // As for a secret: no server runs on a system without a random source.
    getrandom::u64().unwrap_or_else(|e| panic!("no random source for the server's epoch: {e}"))
}

impl Reactor {
    /// A data message on a version 2 link; `admitted` by the rate limit or not (a request that
    /// was not is still taken, by its number, and answered `rate_limited`).
    pub(super) fn handle_v2_message(&mut self, index: usize, message: Message, admitted: bool) {
        let Some(conn) = self.conns.get(index) else { return };
        let encoding = conn.encoding;
        match inbound::classify_v2(message, &self.routes, encoding) {
            InboundV2::Resume { session, epoch, secret, received } => {
                if conn.carries == Carries::Undecided {
                    let request = ResumeRequest { conn: ConnId::from_u64(session), epoch, secret, received };
                    self.resume_session(index, request);
                } else {
                    // Too late to resume: answered, and ignored.
                    self.send_unsequenced(index, |out| {
                        v2::write_resume_failed(
                            encoding,
                            out,
                            resume_reason::NOT_FIRST,
                            "a resume must come first",
                        )
                    });
                }
            }
            InboundV2::Close { code, reason } => self.close_after_replies(index, code, reason, false),
            other => {
                self.start_session(index);
                let Some(sid) = self.conns.get(index).map(|c| c.id) else { return };
                match other {
                    InboundV2::Ack { ack } => {
                        // A count above what was sent changes nothing; the client is wrong,
                        // and nothing it could lose depends on it.
                        if let Some(session) = self.sessions.get_mut(sid) {
                            let _ = session.acknowledge(ack);
                        }
                    }
                    InboundV2::Request { seq, ack, id, route, body } => {
                        self.take_request(index, sid, Taken { seq, ack, id, route, body }, admitted);
                    }
                    InboundV2::BadFrame { id, message } => {
                        self.answer(sid, encoding, id, error_code::BAD_FRAME, &message);
                    }
                    InboundV2::Resume { .. } | InboundV2::Close { .. } => {}
                }
            }
        }
    }

    /// Starts the session of a link whose first frame is not a Resume (or whose Resume
    /// failed): the game hears of it now.
    fn start_session(&mut self, index: usize) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        if conn.carries != Carries::Undecided {
            return;
        }
        conn.carries = Carries::Session;
        let (id, encoding) = (conn.id, conn.encoding);
        let credentials = self.tickets.remove(&index);
        if self.sessions.get_mut(id).is_some_and(Session::announce) {
            self.forward(ToLogic::Connected { conn: id, encoding, credentials });
        }
    }

    /// Takes one request of session `sid` on the link at `index`.
    fn take_request(&mut self, index: usize, sid: ConnId, request: Taken, admitted: bool) {
        let Some(conn) = self.conns.get(index) else { return };
        let encoding = conn.encoding;
        let now = self.now;
        let Some(session) = self.sessions.get_mut(sid) else { return };
        let Taken { seq, ack, id, route, body } = request;
        match session.take_request(seq, ack, id, now) {
            RequestVerdict::Run if !admitted => {
                self.answer(sid, encoding, id, error_code::RATE_LIMITED, "too many requests; slow down");
            }
            RequestVerdict::Run => match route {
                Ok(route) => {
                    self.counters.requests_forwarded += 1;
                    self.forward(ToLogic::Request { conn: sid, id, route, body, encoding });
                }
                Err((code, message)) => self.answer(sid, encoding, id, code, &message),
            },
            RequestVerdict::AnswerAgain if !admitted => {
                // Sending a held answer again costs its size: not for a client over its rate.
                self.answer(sid, encoding, id, error_code::RATE_LIMITED, "too many requests; slow down");
            }
            RequestVerdict::AnswerAgain => {
                if let Some(frame) = session.answer_to(id).cloned() {
                    self.send_to_session(sid, frame.opcode, || frame.bytes, Class::Reply(id), false);
                }
            }
            // Its one answer is on its way.
            RequestVerdict::AwaitAnswer => {}
            RequestVerdict::Stale => {
                self.answer(sid, encoding, id, error_code::STALE_REQUEST, "not run again; its answer is gone")
            }
            RequestVerdict::Malformed => {
                let message = "request number out of order, or acknowledges more than was sent";
                self.answer(sid, encoding, id, error_code::BAD_FRAME, message);
            }
        }
    }

    /// Answers call `id` of session `sid` with an error the reactor makes itself.
    fn answer(&mut self, sid: ConnId, encoding: Encoding, id: u32, code: u16, message: &str) {
        let mut frame = Vec::new();
        ticksock_protocol::write_error(encoding, &mut frame, id, code, message);
        self.counters.errors[usize::from(code).min(self.counters.errors.len() - 1)] += 1;
        self.send_to_session(sid, DataOpcode::of(encoding), || Bytes::from(frame), Class::Reply(id), false);
    }

    /// Checks a Resume arriving as the first frame of the link at `index`, and carries out
    /// the answer (PROTOCOL.md 11.4, 11.5).
    fn resume_session(&mut self, index: usize, request: ResumeRequest) {
        let Some(conn) = self.conns.get(index) else { return };
        let encoding = conn.encoding;
        // Generations are handed out in order from 1: a higher one was never given.
        let generation = request.conn.generation();
        let issued = generation != 0 && generation <= self.next_generation;
        // A session whose link is closing has ended, whatever its owner sends now: a close
        // frame went one way or the other (PROTOCOL.md 11.4), and the game is being told.
        let closing =
            self.sessions.get(request.conn).and_then(|s| s.link()).and_then(|old| self.conns.get(old));
        let result = match closing {
            Some(old) if old.peer_closed || !matches!(old.lifecycle, Lifecycle::Open) => {
                Err(resume_reason::ENDED)
            }
            _ => self.sessions.resume(request, index, new_secret(), issued).map(|r| {
                let replay: Vec<(DataOpcode, Bytes)> =
                    r.replay.iter().map(|f| (f.opcode, f.bytes.clone())).collect();
                (r.stale_link, r.was_dropped, r.received, replay)
            }),
        };
        match result {
            Ok((stale_link, was_dropped, received, replay)) => {
                let stale_link = stale_link.filter(|&old| old != index);
                let secret = self.sessions.get(request.conn).map(|s| *s.secret()).unwrap_or_default();
                let mut provisional = None;
                // A ticket is for a new connection: the resumed session keeps who it was.
                self.tickets.remove(&index);
                if let Some(conn) = self.conns.get_mut(index) {
                    // The link takes the session's name; the Welcome's session never was.
                    provisional = Some(std::mem::replace(&mut conn.id, request.conn));
                    conn.carries = Carries::Session;
                }
                if let Some(unused) = provisional {
                    // Never announced: it goes without a word.
                    self.sessions.end(unused);
                }
                // What the old link held back was never numbered: it follows the replay.
                let carried = stale_link.and_then(|old| self.take_hold(old));
                if let Some(old) = stale_link {
                    self.orphan(old);
                }
                self.send_unsequenced(index, |out| v2::write_resumed(encoding, out, received, &secret));
                for (opcode, bytes) in replay {
                    self.send_data(index, opcode, &bytes);
                }
                for next in carried.into_iter().flat_map(|mut hold| std::iter::from_fn(move || hold.pop())) {
                    let (opcode, bytes, class) = match next {
                        Released::Frame(f) => {
                            (f.opcode, f.bytes, f.answers.map_or(Class::Event, Class::Reply))
                        }
                        Released::DroppedNotice(count) => {
                            let opcode = DataOpcode::of(encoding);
                            (opcode, Bytes::from(dropped_notice(encoding, count)), Class::Event)
                        }
                    };
                    self.send_to_session(request.conn, opcode, || bytes, class, false);
                }
                self.counters.resumes += 1;
                let encoding = self.conns.get(index).map_or(encoding, |c| c.encoding);
                match self.sessions.get_mut(request.conn).map(Session::announce) {
                    // Its first link died before its client sent anything: the game hears of
                    // it now, as a new connection, with what that link offered.
                    Some(true) => {
                        let credentials = self.sessions.get_mut(request.conn).and_then(Session::take_offered);
                        self.forward(ToLogic::Connected { conn: request.conn, encoding, credentials })
                    }
                    Some(false) => {
                        if !was_dropped {
                            // Its old link was still up as far as the server knew: the game
                            // hears of the drop now, so that every resume follows a drop.
                            self.forward(ToLogic::Dropped(request.conn));
                        }
                        self.forward(ToLogic::Resumed(request.conn));
                    }
                    None => {}
                }
            }
            Err(reason) => {
                if reason == resume_reason::GAP_LOST {
                    // The session cannot be made whole: it ends now.
                    self.end_session(request.conn, true);
                }
                self.counters.resume_failures += 1;
                let message = resume_reason::name(reason);
                self.send_unsequenced(index, |out| v2::write_resume_failed(encoding, out, reason, message));
                self.start_session(index);
            }
        }
    }

    /// Ends a link whose session moved to another: no close frame (it is most likely
    /// half-open), and no word to the game.
    fn orphan(&mut self, index: usize) {
        if let Some(conn) = self.conns.get_mut(index) {
            conn.carries = Carries::Nothing;
        }
        self.remove(index);
    }

    /// Ends session `sid`: the game is told it disconnected (`expired`: that it expired
    /// first, a dropped session that never resumed); a link it still has goes too.
    pub(super) fn end_session(&mut self, sid: ConnId, expired: bool) {
        let Some(session) = self.sessions.end(sid) else { return };
        if let Some(index) = session.link() {
            self.orphan(index);
        }
        if session.is_announced() {
            // Only a session the game saw drop expires; one still linked just disconnects.
            let expired = expired && session.is_dropped();
            self.forward(if expired { ToLogic::Expired(sid) } else { ToLogic::Disconnected(sid) });
        }
    }

    /// What a link's going means for what it carried (called as it leaves the slab).
    pub(super) fn link_gone(&mut self, id: ConnId, carries: Carries, announced: bool, ended: bool) {
        match carries {
            Carries::Itself if announced => self.forward(ToLogic::Disconnected(id)),
            Carries::Session | Carries::Undecided if ended || self.stage != Stage::Running => {
                // Its link is already out of the slab: `end` has nothing of it to end.
                if self.sessions.end(id).is_some_and(|s| s.is_announced()) {
                    self.forward(ToLogic::Disconnected(id));
                }
            }
            Carries::Session | Carries::Undecided => {
                if self.sessions.drop_link(id, self.now) {
                    if self.sessions.get(id).is_some_and(Session::is_announced) {
                        self.forward(ToLogic::Dropped(id));
                    }
                    self.make_room_for_dropped();
                }
            }
            Carries::Itself | Carries::Nothing => {}
        }
    }

    /// Ends the sessions that have waited longest for a resume while live connections and
    /// waiting sessions together pass `Config::max_connections`: a client that opens sessions
    /// and drops them cannot make the server keep more of them than it serves.
    fn make_room_for_dropped(&mut self) {
        while self.conns.len() + self.sessions.dropped_count() > self.config.max_connections {
            let Some(oldest) = self.sessions.oldest_dropped() else { return };
            self.counters.sessions_evicted += 1;
            self.end_session(oldest, true);
        }
    }

    /// Sends a sequenced frame (Reply, Error, Push) of class `class` to `sid` if it names a
    /// version 2 session that lives, and says whether it did: held until the client
    /// acknowledges it, and written to its link if it has one (for a `broadcast`, with a slice
    /// of the flush backlog). A link that does not keep up holds it back unnumbered instead
    /// (see [`hold`](super::hold)): it is numbered when released into the link's queue, so one
    /// conflated or dropped was never numbered. `bytes` is made only for a session (a version
    /// 1 connection needs no copy), and the session is looked up once.
    pub(super) fn send_to_session(
        &mut self,
        sid: ConnId,
        opcode: DataOpcode,
        bytes: impl FnOnce() -> Bytes,
        class: Class,
        broadcast: bool,
    ) -> bool {
        // No lookup at all on a server that has no version 2 client.
        if self.sessions.len() == 0 {
            return false;
        }
        let Some(link) = self.sessions.get(sid).map(|s| s.link()) else { return false };
        let answers = if let Class::Reply(id) = class { Some(id) } else { None };
        if let Some(index) = link
            && self.holding(index)
        {
            self.hold_frame(index, class, HeldOut { opcode, bytes: bytes(), answers }, broadcast);
            return true;
        }
        let Some(session) = self.sessions.get_mut(sid) else { return false };
        let bytes = bytes();
        if !session.hold(HeldFrame { opcode, bytes: bytes.clone(), answers }) {
            tracing::debug!("{sid}: its replay buffer overflowed while it had no link; ending it");
            self.counters.sessions_overflowed += 1;
            self.end_session(sid, true);
            return true;
        }
        match link {
            Some(index) if broadcast => self.send_broadcast(index, opcode, &bytes),
            Some(index) => self.send_data(index, opcode, &bytes),
            None => {}
        }
        true
    }

    /// Moves what the link at `index` holds back into its session, numbered, for a resume:
    /// the link is going, and its session keeps what was sent to it.
    pub(super) fn settle_hold(&mut self, index: usize) {
        let Some(conn) = self.conns.get(index) else { return };
        let (sid, encoding) = (conn.id, conn.encoding);
        if !matches!(conn.carries, Carries::Session | Carries::Undecided) {
            return;
        }
        let Some(mut hold) = self.take_hold(index) else { return };
        let Some(session) = self.sessions.get_mut(sid) else { return };
        while let Some(next) = hold.pop() {
            let frame = match next {
                Released::Frame(f) => HeldFrame { opcode: f.opcode, bytes: f.bytes, answers: f.answers },
                Released::DroppedNotice(count) => HeldFrame {
                    opcode: DataOpcode::of(encoding),
                    bytes: Bytes::from(dropped_notice(encoding, count)),
                    answers: None,
                },
            };
            // The link is still the session's: holding drops older frames past the bound
            // (the resume will then fail, `gap_lost`) but does not end it.
            let _ = session.hold(frame);
        }
    }

    /// Sends a frame that is not sequenced (Resumed, ResumeFailed, Ack) on the link at `index`.
    fn send_unsequenced(&mut self, index: usize, write: impl FnOnce(&mut Vec<u8>)) {
        let Some(conn) = self.conns.get(index) else { return };
        let opcode = DataOpcode::of(conn.encoding);
        let mut frame = Vec::new();
        write(&mut frame);
        self.send_data(index, opcode, &frame);
    }

    /// The sweep's part for sessions at `now`: those whose grace has passed end, and those
    /// owed an Ack get one.
    pub(super) fn sweep_sessions(&mut self, now: Instant) {
        for sid in self.sessions.expired(now) {
            self.counters.sessions_expired += 1;
            self.end_session(sid, true);
        }
        let limits = *self.sessions.limits();
        let mut acks = Vec::new();
        for (_, session) in self.sessions.iter_mut() {
            if let (Some(link), Some(received)) = (session.link(), session.ack_due(now, &limits)) {
                acks.push((link, received));
            }
        }
        for (link, received) in acks {
            let encoding = self.conns.get(link).map_or(Encoding::Binary, |c| c.encoding);
            self.send_unsequenced(link, |out| v2::write_server_ack(encoding, out, received));
        }
        let (dropped, held) = self.sessions.dropped();
        self.counters.sessions_open = self.sessions.len() as u64;
        self.counters.sessions_dropped = dropped as u64;
        self.counters.sessions_dropped_bytes = held as u64;
    }
}

/// Whether a link's end is the end of its session (a close frame went either way, or it broke
/// a rule) rather than a drop it may resume from (a reset, a timeout, a silent peer).
pub(super) fn ends_session(lifecycle: Lifecycle, peer_closed: bool) -> bool {
    peer_closed || !matches!(lifecycle, Lifecycle::Open)
}

/// A version 2 request as read, before its session takes it.
struct Taken {
    seq: u64,
    ack: u64,
    id: u32,
    route: Result<RouteId, (u16, String)>,
    body: Bytes,
}
